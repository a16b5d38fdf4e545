//! Evaluation speed: the FP bench model scored ([`crate::eval::evaluate`], the protocol of a
//! run's evaluation: forward, 8-bit rounding, Y-channel PSNR and SSIM) on a synthetic set of
//! benchmark-sized images, and its FLOP efficiency: the forward's conv FLOPs (2·MACs per conv,
//! [`super::flops::macs`]) over the time, against the sgemm peak measured beside it; and the W4A4
//! bench model scored as runs score it (weights quantized once per evaluation,
//! [`crate::quant::frozen_weights`]) beside every forward quantizing its weights itself (the
//! baseline, measured in the same run, with the same scores).

use super::{flops, synthetic_image, time, StepKind};
use crate::data::{ImageSet, Pair};
use burn::tensor::backend::Backend;
use serde::Serialize;

/// The evaluation line of `odm bench`.
#[derive(Serialize, Clone, Debug)]
pub struct EvalBench {
    /// LR sizes (w×h) of the synthetic set (×4 HR).
    pub eval_images: Vec<[usize; 2]>,
    /// Median milliseconds to score the set.
    pub eval_ms: f64,
    /// The forward's conv FLOPs over the set (GFLOP), and FLOPs / time / the sgemm peak
    /// measured just before (`eval_sgemm_gflops`).
    pub eval_gflop: f64,
    pub eval_sgemm_gflops: f64,
    pub eval_efficiency: f64,
    /// Median milliseconds to score the set with the W4A4 bench model, weights quantized once
    /// (as runs evaluate), and with every forward quantizing them (the baseline).
    pub eval_w4a4_ms: f64,
    pub eval_w4a4_per_forward_ms: f64,
}

/// LR sizes: Set14/B100/Urban100-like at the full size (one each), small ones at the small size.
fn sizes(size: super::Size) -> Vec<[usize; 2]> {
    match size {
        super::Size::Full => vec![[125, 120], [120, 80], [256, 192]],
        super::Size::Small => vec![[40, 30], [24, 36]],
    }
}

/// A synthetic ×4 set of `sizes` (HR made, LR by bicubic downscaling).
fn synthetic_eval_set(sizes: &[[usize; 2]]) -> ImageSet {
    let pairs = sizes
        .iter()
        .enumerate()
        .map(|(i, &[w, h])| {
            let hr = synthetic_image(4 * h, 4 * w);
            let lr = hr.downscale(4);
            Pair {
                name: format!("synthetic{i}"),
                file: format!("synthetic{i}.png"),
                hr,
                lr,
            }
        })
        .collect();
    ImageSet {
        name: "synthetic".into(),
        dir: ".".into(),
        scale: 4,
        pairs,
    }
}

/// Time the evaluation of the FP bench model.
pub fn eval_bench<B: Backend>(
    size: super::Size,
    reps: usize,
    d: &B::Device,
) -> anyhow::Result<EvalBench> {
    let (_, model, _, st) = super::setup::<B>(size, StepKind::Fp, d)?;
    let images = sizes(size);
    let set = synthetic_eval_set(&images);
    let ms = time(1, reps, || {
        let _ = crate::eval::evaluate(&model, &st.params, &st.plan, &set, d);
    });
    let (w4a4_ms, per_forward_ms) = quantized_eval_ms::<B>(size, &set, reps, d)?;
    let flop = flops::forward_flops(&model, images.iter().map(|[w, h]| w * h).sum());
    let peak = super::sgemm_gflops::<B>(reps, d);
    Ok(EvalBench {
        eval_images: images,
        eval_ms: ms,
        eval_gflop: flop / 1e9,
        eval_sgemm_gflops: peak,
        eval_efficiency: flop / (ms * 1e-3) / (peak * 1e9),
        eval_w4a4_ms: w4a4_ms,
        eval_w4a4_per_forward_ms: per_forward_ms,
    })
}

/// Median milliseconds to score `set` with the W4A4 bench model: as runs do, and with every
/// forward quantizing its weights ([`crate::eval::super_resolve`] per image). The two must
/// score the same; an error says so otherwise.
fn quantized_eval_ms<B: Backend>(
    size: super::Size,
    set: &ImageSet,
    reps: usize,
    d: &B::Device,
) -> anyhow::Result<(f64, f64)> {
    let (_, model, _, st) = super::setup::<B>(size, StepKind::Plain, d)?;
    let (p, plan) = (&st.params, &st.plan);
    let per_forward = |set: &ImageSet| {
        crate::eval::evaluate_by(set, &mut |lr| {
            crate::eval::super_resolve(&model, p, plan, lr, d)
        })
    };
    let runs = crate::eval::evaluate(&model, p, plan, set, d);
    let each = per_forward(set);
    anyhow::ensure!(
        runs.psnr_y.to_bits() == each.psnr_y.to_bits()
            && runs.ssim_y.to_bits() == each.ssim_y.to_bits(),
        "bench: weights quantized once score {} / {}, every forward quantizing them {} / {}",
        runs.psnr_y,
        runs.ssim_y,
        each.psnr_y,
        each.ssim_y
    );
    let once = time(1, reps, || {
        let _ = crate::eval::evaluate(&model, p, plan, set, d);
    });
    let every = time(1, reps, || {
        let _ = per_forward(set);
    });
    Ok((once, every))
}

impl EvalBench {
    /// The human-readable line.
    pub fn describe(&self) -> String {
        format!(
            "  evaluation of {} synthetic images (LR {:?}, ×4): {:.0} ms, {:.1} GFLOP of convs = {:.0}% of sgemm ({:.1} GFLOP/s)\n",
            self.eval_images.len(),
            self.eval_images,
            self.eval_ms,
            self.eval_gflop,
            100.0 * self.eval_efficiency,
            self.eval_sgemm_gflops,
        ) + &format!(
            "  W4A4 evaluation of the same images: {:.0} ms with the weights quantized once, {:.0} ms with every forward quantizing them ({:.2}×)\n",
            self.eval_w4a4_ms,
            self.eval_w4a4_per_forward_ms,
            self.eval_w4a4_ms / self.eval_w4a4_per_forward_ms.max(1e-9),
        )
    }
}
