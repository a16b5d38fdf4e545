//! The qualitative figure: a grid with one row per method (HR, bicubic, the FP model, every
//! W2A2 method that saved crops) and one column per saved crop (a box of one benchmark image,
//! `crops` in the spec), nearest-neighbour zoomed, each tile's crop Y-PSNR under it. The methods
//! are split into blocks side by side so that the PNG is at most [`MAX_W`] pixels wide. Above each
//! column: the crop's name and, where the run stored it, a thumbnail of the whole HR image with
//! the box drawn on it. Drawn from the PNGs the runs saved (`crops/`), so it regenerates from the
//! ledger. PNG only: a vector copy of the pixels would be megabytes.

use super::figures::layout::Rect;
use super::figures::style::{self, text_size, wrap_px, AXIS_PX, TEXT_PX, TITLE_PX};
use super::figures::{init_font, Plt};
use super::tables::{groups, Group, Item};
use super::{put, Run, PROTOCOL};
use crate::eval::crops::CropRecord;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// The widest PNG this figure writes.
pub const MAX_W: i32 = 1600;
/// The largest tile side in pixels (the zoom is the largest integer that fits).
const TILE: usize = 192;
const GAP: i32 = 10;
const MARGIN: i32 = 16;

/// An RGB image in memory.
#[derive(Clone)]
pub struct Pixels {
    pub w: usize,
    pub h: usize,
    pub rgb: Vec<u8>,
}

/// One column: a crop, its header and the HR thumbnail (with the box scaled onto it).
pub struct Column {
    pub title: String,
    pub w: usize,
    pub h: usize,
    pub thumb: Option<(Pixels, Rect)>,
}

/// One row: a method's name and its tile (with its PSNR; none for HR) in each column.
pub struct Row {
    pub name: String,
    pub tiles: Vec<Option<(Pixels, Option<f64>)>>,
}

/// Where everything goes, in pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub size: (u32, u32),
    pub zoom: usize,
    pub title: Rect,
    pub heads: Vec<Rect>,
    pub thumbs: Vec<Rect>,
    pub names: Vec<Rect>,
    pub tiles: Vec<Rect>,
    pub psnrs: Vec<Rect>,
    pub caption: Rect,
    pub caption_lines: Vec<String>,
    pub min_text_px: u32,
}

impl Layout {
    /// Every box that must not overlap another.
    pub fn boxes(&self) -> Vec<(String, Rect)> {
        let mut v = vec![("title".to_string(), self.title)];
        let mut add = |k: &str, rs: &[Rect]| {
            v.extend(rs.iter().enumerate().map(|(i, r)| (format!("{k} {i}"), *r)));
        };
        add("head", &self.heads);
        add("thumb", &self.thumbs);
        add("name", &self.names);
        add("tile", &self.tiles);
        add("psnr", &self.psnrs);
        v.push(("caption".to_string(), self.caption));
        v
    }
}

/// The grid's layout: `rows` method names, columns of crops `w`×`h` with thumbnails of the
/// given sizes (zero: none).
pub fn layout(
    title: &str,
    caption: &str,
    names: &[String],
    cols: &[(usize, usize, (i32, i32))],
) -> Layout {
    let zoom = cols
        .iter()
        .map(|c| TILE / c.0.max(c.1).max(1))
        .min()
        .unwrap_or(1)
        .max(1);
    let tile_w = cols.iter().map(|c| (c.0 * zoom) as i32).max().unwrap_or(0);
    let tile_h = cols.iter().map(|c| (c.1 * zoom) as i32).max().unwrap_or(0);
    // The method-name column of a block: the widest name and a gap.
    let name_w = names
        .iter()
        .map(|n| text_size(n, AXIS_PX).0)
        .max()
        .unwrap_or(0)
        + 2 * GAP;
    let block_w = name_w + cols.len() as i32 * (tile_w + GAP);
    let line = text_size("Ag", TEXT_PX).1;
    let row_h = tile_h + line + 4 + GAP;
    // Blocks side by side: as few as keep the rows' height within the widest figure (a grid no
    // taller than [`MAX_W`]), as many as fit in its width.
    let n = names.len().max(1) as i32;
    let fit = ((MAX_W - 2 * MARGIN + GAP) / (block_w + GAP)).max(1);
    let blocks = (1..=fit)
        .find(|b| (n + b - 1) / b * row_h <= MAX_W)
        .unwrap_or(fit)
        .min(n);
    let per = (n + blocks - 1) / blocks;
    let (tw, th) = text_size(title, TITLE_PX);
    let width = (2 * MARGIN + blocks * block_w + (blocks - 1) * GAP).max(tw + 2 * MARGIN);
    let title_r = Rect {
        x: MARGIN,
        y: MARGIN,
        w: tw,
        h: th,
    };
    let mut y = title_r.bottom() + GAP;
    let thumb_h = cols.iter().map(|c| c.2 .1).max().unwrap_or(0);
    let (mut heads, mut thumbs) = (Vec::new(), Vec::new());
    for b in 0..blocks {
        let x0 = MARGIN + b * (block_w + GAP) + name_w;
        for (j, c) in cols.iter().enumerate() {
            let x = x0 + j as i32 * (tile_w + GAP);
            heads.push(Rect {
                x,
                y,
                w: tile_w,
                h: 2 * line,
            });
            if c.2 .0 > 0 {
                thumbs.push(Rect {
                    x,
                    y: y + 2 * line + 4,
                    w: c.2 .0,
                    h: c.2 .1,
                });
            }
        }
    }
    y += 2 * line + 4 + if thumb_h > 0 { thumb_h + GAP } else { 0 };
    let (mut name_r, mut tiles, mut psnrs) = (Vec::new(), Vec::new(), Vec::new());
    for (i, n) in names.iter().enumerate() {
        let (b, k) = (i as i32 / per, i as i32 % per);
        let x0 = MARGIN + b * (block_w + GAP);
        let ty = y + k * row_h;
        let (nw, nh) = text_size(n, AXIS_PX);
        name_r.push(Rect {
            x: x0,
            y: ty + tile_h / 2 - nh / 2,
            w: nw,
            h: nh,
        });
        for j in 0..cols.len() as i32 {
            let x = x0 + name_w + j * (tile_w + GAP);
            tiles.push(Rect {
                x,
                y: ty,
                w: tile_w,
                h: tile_h,
            });
            psnrs.push(Rect {
                x,
                y: ty + tile_h + 2,
                w: text_size("00.00 dB", TEXT_PX).0,
                h: line,
            });
        }
    }
    y += per * row_h + GAP;
    let caption_lines = wrap_px(caption, TEXT_PX, width - 2 * MARGIN);
    let caption = Rect {
        x: MARGIN,
        y,
        w: caption_lines
            .iter()
            .map(|l| text_size(l, TEXT_PX).0)
            .max()
            .unwrap_or(0),
        h: line * caption_lines.len() as i32,
    };
    Layout {
        size: (width as u32, (caption.bottom() + MARGIN) as u32),
        zoom,
        title: title_r,
        heads,
        thumbs,
        names: name_r,
        tiles,
        psnrs,
        caption,
        caption_lines,
        min_text_px: TEXT_PX,
    }
}

fn read_rgb(p: &Path, size: Option<(usize, usize)>) -> anyhow::Result<Pixels> {
    let img = image::open(p)
        .map_err(|e| crate::error::user(format!("{}: {e}", p.display())))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    if let Some((ew, eh)) = size.filter(|s| *s != (w, h)) {
        return Err(crate::error::user(format!(
            "{}: is {w}×{h}, crops.json says {ew}×{eh}; rerun the run",
            p.display()
        )));
    }
    Ok(Pixels {
        w,
        h,
        rgb: img.into_raw(),
    })
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

/// A group's row name.
fn name(r: &Run) -> String {
    if r.bits.is_none() {
        "FP32".to_string()
    } else if r.point.is_empty() {
        r.name.clone()
    } else {
        r.point.clone()
    }
}

/// The column of crop `c`: header and, when stored, the thumbnail with the box on it.
fn column(c: &CropRecord, first: &Run) -> anyhow::Result<Column> {
    let k = &c.crop;
    let thumb = match &c.thumb {
        Some(t) => {
            let px = read_rgb(&first.dir.join(&t.file), None)?;
            let f = t.factor.max(1) as i32;
            let r = Rect {
                x: k.x as i32 / f,
                y: k.y as i32 / f,
                w: (k.w as i32 / f).max(2),
                h: (k.h as i32 / f).max(2),
            };
            Some((px, r))
        }
        None => None,
    };
    Ok(Column {
        title: format!(
            "{}/{}: x {} y {}, {}×{} px",
            k.set, k.image, k.x, k.y, k.w, k.h
        ),
        w: k.w,
        h: k.h,
        thumb,
    })
}

/// The rows: HR, bicubic, then each shown group.
fn rows(keys: &[(CropRecord, &Run)], show: &[&Group]) -> anyhow::Result<Vec<Row>> {
    let size = |c: &CropRecord| Some((c.crop.w, c.crop.h));
    let mut rows = vec![
        Row {
            name: "HR".into(),
            tiles: keys
                .iter()
                .map(|(c, r)| Ok(Some((read_rgb(&r.dir.join(&c.hr), size(c))?, None))))
                .collect::<anyhow::Result<_>>()?,
        },
        Row {
            name: "Bicubic".into(),
            tiles: keys
                .iter()
                .map(|(c, r)| {
                    Ok(Some((
                        read_rgb(&r.dir.join(&c.bicubic), size(c))?,
                        Some(c.bicubic_psnr_y),
                    )))
                })
                .collect::<anyhow::Result<_>>()?,
        },
    ];
    for g in show {
        let r = g.first();
        let tiles = keys
            .iter()
            .map(
                |(c, _)| match r.crops.iter().flatten().find(|m| m.crop == c.crop) {
                    Some(m) => Ok(Some((
                        read_rgb(&r.dir.join(&m.sr), size(c))?,
                        Some(m.psnr_y),
                    ))),
                    None => Ok(None),
                },
            )
            .collect::<anyhow::Result<_>>()?;
        rows.push(Row {
            name: name(r),
            tiles,
        });
    }
    Ok(rows)
}

const TITLE: &str = "Qualitative comparison (W2A2)";

/// The grid's rows, columns and caption, when some W2A2 run saved crops.
pub type Grid = (Vec<Row>, Vec<Column>, String);

/// The grid the runs give, if any run saved crops.
pub fn grid(runs: &[Run]) -> anyhow::Result<Option<Grid>> {
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
    let cols: Vec<Column> = keys
        .iter()
        .map(|(c, r)| column(c, r))
        .collect::<anyhow::Result<_>>()?;
    let rows = rows(&keys, &show)?;
    let seeds: Vec<String> = show
        .iter()
        .map(|g| format!("{} seed {}", g.name, g.first().spec.seed))
        .collect();
    let thumbs = if cols.iter().any(|c| c.thumb.is_some()) {
        "Above each column: the whole HR image with the crop's box."
    } else {
        "These runs stored no thumbnail of the whole HR image (runs from before odm saved one), so no column shows where its box lies."
    };
    let caption = format!(
        "Crops of benchmark images, nearest-neighbour zoomed; rows: HR, bicubic, the FP model and each W2A2 group that saved crops (one seed per group: {}). Under each tile: Y-PSNR (BT.601) of the crop against HR, no shave. {thumbs} Whole-set scores follow {PROTOCOL}.",
        seeds.join(", ")
    );
    Ok(Some((rows, cols, caption)))
}

/// Draw the figure if any run saved crops; returns its index entry.
pub fn write(runs: &[Run], out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<Option<Item>> {
    let Some((rows, cols, caption)) = grid(runs)? else {
        return Ok(None);
    };
    let png = render(&rows, &cols, &caption)?;
    put(out, "figures/qualitative.png", &png, written)?;
    Ok(Some(Item {
        title: "Qualitative comparison".into(),
        files: vec!["figures/qualitative.png".into()],
        caption,
    }))
}

/// The layout of `rows` × `cols` (the thumbnails scaled to fit [`THUMB`]).
pub fn grid_layout(rows: &[Row], cols: &[Column], caption: &str) -> Layout {
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let sizes: Vec<(usize, usize, (i32, i32))> = cols
        .iter()
        .map(|c| {
            (
                c.w,
                c.h,
                c.thumb
                    .as_ref()
                    .map_or((0, 0), |(p, _)| (p.w as i32, p.h as i32)),
            )
        })
        .collect();
    layout(TITLE, caption, &names, &sizes)
}

/// Lay the grid out, blit the zoomed tiles and thumbnails, then draw the text with plotters.
pub fn render(rows: &[Row], cols: &[Column], caption: &str) -> anyhow::Result<Vec<u8>> {
    init_font();
    let l = grid_layout(rows, cols, caption);
    let (width, height) = l.size;
    let mut buf = vec![255u8; (width * height * 3) as usize];
    let bw = width as usize;
    let nb = l.heads.len() / cols.len().max(1);
    // The thumbnails in the layout's order: block by block, the columns that have one.
    let placed: Vec<(&Pixels, &Rect, &Rect)> = (0..nb)
        .flat_map(|_| cols.iter().filter_map(|c| c.thumb.as_ref()))
        .zip(&l.thumbs)
        .map(|((px, b), r)| (px, b, r))
        .collect();
    for (px, _, r) in &placed {
        blit(
            &mut buf,
            bw,
            &px.rgb,
            (px.w, px.h, 1),
            (r.x as usize, r.y as usize),
        );
    }
    for (i, row) in rows.iter().enumerate() {
        for (j, t) in row.tiles.iter().enumerate() {
            if let Some((px, _)) = t {
                let r = l.tiles[i * cols.len() + j];
                blit(
                    &mut buf,
                    bw,
                    &px.rgb,
                    (px.w, px.h, l.zoom),
                    (r.x as usize, r.y as usize),
                );
            }
        }
    }
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        style::text(&root, TITLE, (l.title.x, l.title.y), TITLE_PX, BLACK)?;
        let line = text_size("Ag", TEXT_PX).1;
        for (k, h) in l.heads.iter().enumerate() {
            let c = &cols[k % cols.len()];
            for (n, s) in wrap_px(&c.title, TEXT_PX, h.w).iter().take(2).enumerate() {
                style::text(&root, s, (h.x, h.y + n as i32 * line), TEXT_PX, BLACK)?;
            }
        }
        let red = RGBColor(213, 94, 0);
        for (_, b, r) in &placed {
            let (x0, y0) = (r.x + b.x, r.y + b.y);
            root.draw(&Rectangle::new(
                [(x0, y0), (x0 + b.w, y0 + b.h)],
                red.stroke_width(2),
            ))
            .p()?;
        }
        for (i, row) in rows.iter().enumerate() {
            let n = l.names[i];
            style::text(&root, &row.name, (n.x, n.y), AXIS_PX, BLACK)?;
            for (j, t) in row.tiles.iter().enumerate() {
                let p = l.psnrs[i * cols.len() + j];
                let s = match t {
                    Some((_, Some(v))) => format!("{v:.2} dB"),
                    Some((_, None)) => "reference".to_string(),
                    None => "no crop saved".to_string(),
                };
                style::text(&root, &s, (p.x, p.y), TEXT_PX, BLACK)?;
            }
        }
        let grey = RGBColor(64, 64, 64);
        for (k, s) in l.caption_lines.iter().enumerate() {
            style::text(
                &root,
                s,
                (l.caption.x, l.caption.y + k as i32 * line),
                TEXT_PX,
                grey,
            )?;
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
