//! Zoomed crops for the qualitative figure every SR paper prints: the same HR box of the HR
//! image, of its bicubic upscaling and of the model's output, saved as PNG with the crop's
//! Y-PSNR (BT.601, no shave: the box is the region compared).

use super::metrics::{psnr, rgb_to_y};
use super::super_resolve;
use crate::data::imresize::imresize_u8;
use crate::data::{ImageSet, RgbImage};
use crate::error::user;
use crate::models::{Model, Params};
use crate::quant::QuantPlan;
use crate::record::atomic_write;
use crate::spec::Crop;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// One saved crop, as `crops.json` lists it (paths relative to the run folder).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CropRecord {
    /// The box, as the spec gives it.
    pub crop: Crop,
    pub sr: String,
    pub hr: String,
    pub bicubic: String,
    pub psnr_y: f64,
    pub bicubic_psnr_y: f64,
    /// The whole HR image shrunk for the qualitative figure's column header (runs before it
    /// existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumb: Option<Thumb>,
}

/// A thumbnail of the whole (mod-cropped) HR image: its file and the integer factor it is
/// shrunk by (box average), so the crop's box on it is the box divided by `factor`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Thumb {
    pub file: String,
    pub factor: usize,
}

/// The longest side of a thumbnail, at most.
pub const THUMB_SIDE: usize = 160;

/// `img` shrunk by the smallest integer factor that brings its longest side to at most
/// [`THUMB_SIDE`], each pixel the rounded mean of its factor × factor box; and that factor.
pub fn thumbnail(img: &RgbImage) -> (RgbImage, usize) {
    let f = img.w.max(img.h).div_ceil(THUMB_SIDE).max(1);
    let (w, h) = (img.w / f, img.h / f);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..3 {
                let mut s = 0usize;
                for dy in 0..f {
                    for dx in 0..f {
                        s += img.data[((y * f + dy) * img.w + x * f + dx) * 3 + ch] as usize;
                    }
                }
                data.push(((s + f * f / 2) / (f * f)) as u8);
            }
        }
    }
    (RgbImage { h, w, data }, f)
}

/// The file stem of a crop: `<set>-<image>-<x>_<y>_<w>x<h>`.
pub fn stem(c: &Crop) -> String {
    format!("{}-{}-{}_{}_{}x{}", c.set, c.image, c.x, c.y, c.w, c.h)
}

/// The set and image pair a crop names, with its box checked against the (mod-cropped) HR.
/// Errors name the field, the value and what is available.
pub fn find<'a>(
    c: &Crop,
    sets: &'a [Arc<ImageSet>],
) -> Result<(&'a ImageSet, &'a crate::data::Pair), String> {
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    let set = sets
        .iter()
        .find(|s| s.name == c.set)
        .ok_or_else(|| format!("set {:?} is not in data.eval (sets: {names:?})", c.set))?;
    let pair = set
        .pairs
        .iter()
        .find(|p| p.name == c.image)
        .ok_or_else(|| format!("{} has no image {:?}", c.set, c.image))?;
    if c.x + c.w > pair.hr.w || c.y + c.h > pair.hr.h {
        return Err(format!(
            "box x {} y {} w {} h {} leaves {}/{} ({}×{} after cropping to ×{})",
            c.x, c.y, c.w, c.h, c.set, c.image, pair.hr.w, pair.hr.h, set.scale
        ));
    }
    Ok((set, pair))
}

fn cut(img: &RgbImage, c: &Crop) -> RgbImage {
    let mut data = Vec::with_capacity(c.w * c.h * 3);
    for y in c.y..c.y + c.h {
        let row = (y * img.w + c.x) * 3;
        data.extend_from_slice(&img.data[row..row + c.w * 3]);
    }
    RgbImage {
        h: c.h,
        w: c.w,
        data,
    }
}

/// Y-PSNR of two same-sized 8-bit RGB crops (peak 255).
pub fn crop_psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    psnr(
        &rgb_to_y(&a.data, a.h, a.w),
        &rgb_to_y(&b.data, b.h, b.w),
        255.0,
    )
}

/// Run the model on each crop's image and write `crops/<stem>-{sr,hr,bicubic}.png` and
/// `crops.json` into `dir`.
pub fn save<B: Backend>(
    crops: &[Crop],
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    sets: &[Arc<ImageSet>],
    dir: &Path,
    device: &B::Device,
) -> anyhow::Result<()> {
    if crops.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir.join("crops"))?;
    let mut records = Vec::new();
    for (i, c) in crops.iter().enumerate() {
        let (set, pair) = find(c, sets).map_err(|m| user(format!("crops[{i}]: {m}")))?;
        let sr = super_resolve(model, params, plan, &pair.lr, device);
        let (bic, h, w) = imresize_u8(&pair.lr.data, pair.lr.h, pair.lr.w, 3, set.scale as f64);
        let bic = RgbImage { h, w, data: bic };
        let (sr_c, hr_c, bic_c) = (cut(&sr, c), cut(&pair.hr, c), cut(&bic, c));
        let s = stem(c);
        let files = [("sr", &sr_c), ("hr", &hr_c), ("bicubic", &bic_c)].map(|(k, img)| {
            let rel = format!("crops/{s}-{k}.png");
            (rel, img)
        });
        for (rel, img) in &files {
            atomic_write(&dir.join(rel), &img.to_png()?)?;
        }
        let (th, factor) = thumbnail(&pair.hr);
        let thumb = format!("crops/{}-{}-thumb.png", c.set, c.image);
        atomic_write(&dir.join(&thumb), &th.to_png()?)?;
        records.push(CropRecord {
            crop: c.clone(),
            sr: files[0].0.clone(),
            hr: files[1].0.clone(),
            bicubic: files[2].0.clone(),
            psnr_y: crop_psnr(&sr_c, &hr_c),
            bicubic_psnr_y: crop_psnr(&bic_c, &hr_c),
            thumb: Some(Thumb {
                file: thumb,
                factor,
            }),
        });
    }
    atomic_write(
        &dir.join("crops.json"),
        serde_json::to_string_pretty(&records)?.as_bytes(),
    )
}
