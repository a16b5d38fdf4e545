//! The SR evaluation protocol: HR cropped to a multiple of the scale, LR by MATLAB-compatible
//! bicubic, SR rounded and clipped to 8 bits, PSNR/SSIM on BT.601 Y with `scale` pixels shaved.

pub mod crops;
pub mod inspect;
pub mod metrics;
pub mod tiles;

use crate::data::imresize::imresize_u8;
use crate::data::{ImageSet, RgbImage};
use crate::models::{Model, Params};
use crate::quant::QuantPlan;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// One image's scores.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ImageScore {
    pub image: String,
    pub psnr_y: f64,
    pub ssim_y: f64,
}

/// Scores of one set: per image and mean, in the `--json` shape.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SetScore {
    pub set: String,
    pub scale: usize,
    pub images: usize,
    pub psnr_y: f64,
    pub ssim_y: f64,
    #[serde(skip)]
    pub per_image: Vec<ImageScore>,
}

impl SetScore {
    fn from_images(set: &str, scale: usize, per_image: Vec<ImageScore>) -> Self {
        let n = per_image.len().max(1) as f64;
        Self {
            set: set.to_string(),
            scale,
            images: per_image.len(),
            psnr_y: per_image.iter().map(|s| s.psnr_y).sum::<f64>() / n,
            ssim_y: per_image.iter().map(|s| s.ssim_y).sum::<f64>() / n,
            per_image,
        }
    }
}

fn score(name: &str, sr: &RgbImage, hr: &RgbImage, scale: usize) -> ImageScore {
    let s = metrics::score_y(&sr.data, &hr.data, hr.h, hr.w, 3, scale);
    ImageScore {
        image: name.to_string(),
        psnr_y: s.psnr,
        ssim_y: s.ssim,
    }
}

/// SSIM's 11×11 window must fit in the HR image once `scale` pixels are shaved on every side,
/// and image names must be unique within the set (scores and saved images are keyed by them).
pub fn check_evaluable(set: &ImageSet) -> anyhow::Result<()> {
    let mut seen = std::collections::HashMap::new();
    for p in &set.pairs {
        if let Some(other) = seen.insert(p.name.as_str(), p.file.as_str()) {
            return Err(crate::error::user(format!(
                "{}: two images named {:?} ({other} and {}); rename one (per-image scores and saved images are keyed by name)",
                set.dir.display(),
                p.name,
                p.file
            )));
        }
        let (h, w) = (
            p.hr.h.saturating_sub(2 * set.scale),
            p.hr.w.saturating_sub(2 * set.scale),
        );
        if h < 11 || w < 11 {
            return Err(crate::error::user(format!(
                "{}/{}: image is {}×{} after cropping to ×{}; evaluation needs at least {} px per side (11 for SSIM plus the shaved border)",
                set.dir.display(),
                p.file,
                p.hr.w,
                p.hr.h,
                set.scale,
                11 + 2 * set.scale
            )));
        }
    }
    Ok(())
}

/// Bicubic upscaling of the bicubic LR, rounded to 8 bits: the baseline every SR paper reports.
pub fn bicubic(set: &ImageSet) -> SetScore {
    let per = set
        .pairs
        .iter()
        .map(|p| {
            let (data, h, w) = imresize_u8(&p.lr.data, p.lr.h, p.lr.w, 3, set.scale as f64);
            score(&p.name, &RgbImage { h, w, data }, &p.hr, set.scale)
        })
        .collect();
    SetScore::from_images(&set.name, set.scale, per)
}

/// An 8-bit HWC image as a 1×3×H×W tensor on the model's `rgb_range` scale.
pub fn lr_tensor<B: Backend>(model: &Model, lr: &RgbImage, device: &B::Device) -> Tensor<B, 4> {
    lr_tensor_region(model, lr, 0..lr.h, 0..lr.w, device)
}

/// Rows `ys` × columns `xs` of an 8-bit HWC image as a 1×3×h×w tensor on the model's
/// `rgb_range` scale: per pixel the values of [`lr_tensor`], so a tile built this way equals the
/// same slice of the whole image's tensor.
fn lr_tensor_region<B: Backend>(
    model: &Model,
    lr: &RgbImage,
    ys: Range<usize>,
    xs: Range<usize>,
    device: &B::Device,
) -> Tensor<B, 4> {
    let k = (model.rgb_range() / 255.0) as f32;
    let (h, w) = (ys.len(), xs.len());
    let mut chw = vec![0f32; 3 * h * w];
    for (y, row) in ys.enumerate() {
        let src = &lr.data[(row * lr.w + xs.start) * 3..(row * lr.w + xs.end) * 3];
        for (x, px) in src.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * h * w + y * w + x] = px[c] as f32 * k;
            }
        }
    }
    Tensor::<B, 4>::from_data(TensorData::new(chw, [1, 3, h, w]), device)
}

/// Run the model on one LR image; output rounded and clipped to 8 bits (EDSR-PyTorch `quantize`).
pub fn super_resolve<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    lr: &RgbImage,
    device: &B::Device,
) -> RgbImage {
    super_resolve_tiled(model, params, plan, lr, None, device)
}

/// [`super_resolve`] in tiles of `tile` LR pixels (bit-identical output; see [`tiles`]).
///
/// Each tile's input tensor is built from the 8-bit LR and its float output rounded into the 8-bit
/// SR image as it comes, so no float tensor of the whole image (input or output) is ever held:
/// with tiles, the memory beyond the 8-bit LR and SR images is one tile's forward.
pub fn super_resolve_tiled<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    lr: &RgbImage,
    tile: Option<usize>,
    device: &B::Device,
) -> RgbImage {
    let k = (model.rgb_range() / 255.0) as f32;
    let input = |ys: Range<usize>, xs: Range<usize>| lr_tensor_region(model, lr, ys, xs, device);
    let mut out: Option<RgbImage> = None;
    tiles::forward_tiles(model, params, plan, [lr.h, lr.w], &input, tile, &mut |p| {
        let [_, _, th, tw] = p.y.dims();
        let d = p.y.to_data().convert::<f32>();
        let v = d.as_slice::<f32>().expect("f32 output");
        let img = out.get_or_insert_with(|| {
            let (h, w) = (lr.h * p.scale, lr.w * p.scale);
            RgbImage {
                h,
                w,
                data: vec![0u8; h * w * 3],
            }
        });
        write_rgb8(v, th, tw, k, img, p.oy, p.ox);
    });
    out.expect("a forward hands over at least one piece")
}

/// A 3×H×W output on the `rgb_range` scale (`k` = rgb_range/255) as 8-bit HWC: clipped to
/// [0, 255] and rounded (EDSR-PyTorch `quantize`).
pub fn to_rgb8(v: &[f32], h: usize, w: usize, k: f32) -> RgbImage {
    let mut img = RgbImage {
        h,
        w,
        data: vec![0u8; h * w * 3],
    };
    write_rgb8(v, h, w, k, &mut img, 0, 0);
    img
}

/// [`to_rgb8`] of a 3×h×w block into `img` with its top-left pixel at `(oy, ox)` (per pixel, so
/// a tiled output rounds to the same bytes as the whole one).
fn write_rgb8(v: &[f32], h: usize, w: usize, k: f32, img: &mut RgbImage, oy: usize, ox: usize) {
    for c in 0..3 {
        let plane = &v[c * h * w..(c + 1) * h * w];
        for (y, src) in plane.chunks_exact(w).enumerate() {
            let row = (oy + y) * img.w + ox;
            let dst = &mut img.data[row * 3..(row + w) * 3];
            for (px, &s) in dst.chunks_exact_mut(3).zip(src) {
                px[c] = (s / k).clamp(0.0, 255.0).round() as u8;
            }
        }
    }
}

/// Score a set with any super-resolver `sr` (LR → 8-bit SR), under the same protocol.
pub fn evaluate_by(set: &ImageSet, sr: &mut dyn FnMut(&RgbImage) -> RgbImage) -> SetScore {
    let per = set
        .pairs
        .iter()
        .map(|p| score(&p.name, &sr(&p.lr), &p.hr, set.scale))
        .collect();
    SetScore::from_images(&set.name, set.scale, per)
}

/// Evaluate a model on a set.
pub fn evaluate<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    set: &ImageSet,
    device: &B::Device,
) -> SetScore {
    evaluate_with(model, params, plan, set, None, device, &mut |_, _| Ok(()))
        .expect("a sink that cannot fail")
}

/// Evaluate a model on a set (in tiles of `tile` LR pixels when given), handing each SR image
/// (by its file stem) to `sink`, e.g. to save it; the first error of the sink stops the
/// evaluation.
pub fn evaluate_with<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    set: &ImageSet,
    tile: Option<usize>,
    device: &B::Device,
    sink: &mut dyn FnMut(&str, &RgbImage) -> anyhow::Result<()>,
) -> anyhow::Result<SetScore> {
    let (params, plan) = &crate::quant::frozen_weights(model, params, plan);
    let mut per = Vec::with_capacity(set.pairs.len());
    for p in &set.pairs {
        let sr = super_resolve_tiled(model, params, plan, &p.lr, tile, device);
        sink(&p.name, &sr)?;
        per.push(score(&p.name, &sr, &p.hr, set.scale));
    }
    Ok(SetScore::from_images(&set.name, set.scale, per))
}
