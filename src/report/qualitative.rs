//! The qualitative figure: for each saved crop (a box of one benchmark image, `crops` in the
//! spec), HR, bicubic, the FP model and every W2A2 method side by side, nearest-neighbour
//! zoomed, each with its crop's Y-PSNR. Drawn from the PNGs the runs saved (`crops/`), so it
//! regenerates from the ledger. PNG only: a vector copy of the pixels would be megabytes.

use super::figures::{init_font, wrap, Plt, FONT};
use super::tables::{groups, Group, Item};
use super::{put, Run, PROTOCOL};
use crate::eval::crops::CropRecord;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// One tile: its label, the crop's PSNR (none for HR) and the pixels.
struct Tile {
    label: String,
    psnr: Option<f64>,
    rgb: Vec<u8>,
}

fn read_rgb(p: &Path, w: usize, h: usize) -> anyhow::Result<Vec<u8>> {
    let img = image::open(p)
        .map_err(|e| crate::error::user(format!("{}: {e}", p.display())))?
        .to_rgb8();
    if img.dimensions() != (w as u32, h as u32) {
        return Err(crate::error::user(format!(
            "{}: is {}×{}, crops.json says {w}×{h}; rerun the run",
            p.display(),
            img.width(),
            img.height()
        )));
    }
    Ok(img.into_raw())
}

/// The groups shown: the FP group(s) then every W2A2 group, in table order, that saved crops.
fn shown<'a>(gs: &'a [Group<'a>]) -> Vec<&'a Group<'a>> {
    let mut v: Vec<&Group> = gs
        .iter()
        .filter(|g| g.first().crops.is_some())
        .filter(|g| matches!(g.first().bits, None | Some((2, 2))))
        .collect();
    v.sort_by_key(|g| g.order());
    v
}

/// The tiles of one crop row.
fn row(c: &CropRecord, first: &Run, gs: &[&Group]) -> anyhow::Result<Vec<Tile>> {
    let (w, h) = (c.crop.w, c.crop.h);
    let mut tiles = vec![
        Tile {
            label: "HR".into(),
            psnr: None,
            rgb: read_rgb(&first.dir.join(&c.hr), w, h)?,
        },
        Tile {
            label: "Bicubic".into(),
            psnr: Some(c.bicubic_psnr_y),
            rgb: read_rgb(&first.dir.join(&c.bicubic), w, h)?,
        },
    ];
    for g in gs {
        let r = g.first();
        let Some(mine) = r.crops.iter().flatten().find(|m| m.crop == c.crop) else {
            continue;
        };
        let label = if r.bits.is_none() {
            "FP32".to_string()
        } else if r.point.is_empty() {
            r.name.clone()
        } else {
            r.point.clone()
        };
        tiles.push(Tile {
            label,
            psnr: Some(mine.psnr_y),
            rgb: read_rgb(&r.dir.join(&mine.sr), w, h)?,
        });
    }
    Ok(tiles)
}

/// Draw the figure if any run saved crops; returns its index entry.
pub fn write(runs: &[Run], out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<Option<Item>> {
    let gs = groups(runs);
    let show = shown(&gs);
    let mut keys: Vec<(CropRecord, &Run)> = Vec::new();
    for g in &show {
        for c in g.first().crops.iter().flatten() {
            if !keys.iter().any(|(k, _)| k.crop == c.crop) {
                keys.push((c.clone(), g.first()));
            }
        }
    }
    if keys.is_empty() || !show.iter().any(|g| g.first().bits.is_some()) {
        return Ok(None);
    }
    let rows: Vec<Row> = keys
        .iter()
        .map(|(r, first)| {
            let c = &r.crop;
            Ok(Row {
                title: format!(
                    "{}/{}: box x {} y {}, {}×{} px",
                    c.set, c.image, c.x, c.y, c.w, c.h
                ),
                w: c.w,
                h: c.h,
                tiles: row(r, first, &show)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let seeds: Vec<String> = show
        .iter()
        .map(|g| format!("{} seed {}", g.name, g.first().spec.seed))
        .collect();
    let caption = format!(
        "Crops of benchmark images, nearest-neighbour zoomed: HR, bicubic, the FP model and each W2A2 run that saved crops (one seed per group: {}). Under each tile: Y-PSNR (BT.601) of the crop against HR, no shave. Whole-set scores follow {PROTOCOL}.",
        seeds.join(", ")
    );
    let png = render(&rows, &caption)?;
    put(out, "figures/qualitative.png", &png, written)?;
    Ok(Some(Item {
        title: "Qualitative comparison".into(),
        files: vec!["figures/qualitative.png".into()],
        caption,
    }))
}

const TILE: usize = 176;
const GAP: usize = 8;
const LABEL: usize = 18;
const HEAD: usize = 40;

/// One row of the figure: a crop box of `w` × `h` px and its tiles.
struct Row {
    title: String,
    w: usize,
    h: usize,
    tiles: Vec<Tile>,
}

impl Row {
    /// Zoom: the largest integer that fits the crop into the tile box.
    fn zoom(&self) -> usize {
        (TILE / self.w.max(self.h)).max(1)
    }
    /// Title, tile labels, tiles, PSNR line, gap.
    fn height(&self) -> usize {
        3 * LABEL + self.h * self.zoom() + GAP + 4
    }
}

/// Lay the rows out on a white canvas, blit the zoomed tiles, then draw the text with plotters.
fn render(rows: &[Row], caption: &str) -> anyhow::Result<Vec<u8>> {
    init_font();
    let cols = rows.iter().map(|r| r.tiles.len()).max().unwrap_or(1);
    let tile_w = rows
        .iter()
        .map(|r| r.w * r.zoom())
        .max()
        .unwrap_or(TILE)
        .max(TILE);
    let width = (GAP + cols * (tile_w + GAP)) as u32;
    let lines = wrap(caption, (width as usize * 10 / 72).max(40));
    let body: usize = rows.iter().map(Row::height).sum();
    let height = (HEAD + body + 12 + 17 * lines.len()) as u32;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    let mut texts: Vec<(String, usize, usize, u32)> = Vec::new();
    let mut y0 = HEAD;
    for r in rows {
        let z = r.zoom();
        texts.push((r.title.clone(), GAP, y0, 15));
        let ty = y0 + LABEL + 4;
        for (j, t) in r.tiles.iter().enumerate() {
            let x0 = GAP + j * (tile_w + GAP);
            blit(
                &mut buf,
                width as usize,
                &t.rgb,
                (r.w, r.h, z),
                (x0, ty + LABEL),
            );
            let label: String = t.label.chars().take(tile_w / 7).collect();
            texts.push((label, x0, ty, 13));
            if let Some(p) = t.psnr {
                texts.push((format!("{p:.2} dB"), x0, ty + LABEL + r.h * z + 3, 13));
            }
        }
        y0 += r.height();
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let title = "Qualitative comparison (W2A2)";
        root.draw(&Text::new(title, (GAP as i32, 8), (FONT, 22).into_font()))
            .p()?;
        for (s, x, y, size) in texts {
            root.draw(&Text::new(
                s,
                (x as i32, y as i32),
                (FONT, size).into_font(),
            ))
            .p()?;
        }
        for (k, line) in lines.into_iter().enumerate() {
            let y = (HEAD + body + 6 + 17 * k) as i32;
            let font = (FONT, 13).into_font().color(&BLACK.mix(0.75));
            root.draw(&Text::new(line, (12, y), font)).p()?;
        }
        root.present().p()?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &buf,
        width,
        height,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(png)
}

/// Copy an RGB `w`×`h` image, zoomed `z`× by repetition, into `buf` (`bw` wide) at (x0, y0).
fn blit(
    buf: &mut [u8],
    bw: usize,
    rgb: &[u8],
    (w, h, z): (usize, usize, usize),
    (x0, y0): (usize, usize),
) {
    for y in 0..h * z {
        for x in 0..w * z {
            let s = ((y / z) * w + x / z) * 3;
            let d = ((y0 + y) * bw + x0 + x) * 3;
            buf[d..d + 3].copy_from_slice(&rgb[s..s + 3]);
        }
    }
}
