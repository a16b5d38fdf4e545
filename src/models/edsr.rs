//! EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
//! CVPRW 2017), structured as EDSR-PyTorch: mean shift, head conv, `n_resblocks` residual blocks
//! (conv–ReLU–conv, scaled by `res_scale`), a last body conv, a global skip, a pixel-shuffle
//! upsampler and a tail conv. The quantized weights are the two convs of every residual block
//! (PAMS, DAQ, DDTB, AdaBM); the last body conv stays FP. Activations: see [`res_block`].

use super::build::{Bias, Builder, Conv, Point, Q};
use super::layers::{pixel_shuffle, Ops};
use super::params::ParamId;
use super::trace::{Scalar, Trace};
use crate::spec::{EdsrSpec, InputNorm};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// DIV2K RGB mean used by EDSR-PyTorch's `MeanShift`.
pub const DIV2K_MEAN: [f64; 3] = [0.4488, 0.4371, 0.4040];

/// The mean-shift constant `mean · rgb_range` as a 1×3×1×1 tensor.
pub fn mean_shift<B: Backend>(rgb_range: f64, device: &B::Device) -> Tensor<B, 4> {
    let m: Vec<f32> = DIV2K_MEAN.iter().map(|v| (v * rgb_range) as f32).collect();
    Tensor::<B, 1>::from_data(TensorData::new(m, [3]), device).reshape([1, 3, 1, 1])
}

/// `sign · mean · rgb_range` per channel (the mean shift as [`Trace::add_channels`] takes it).
fn shift(signed_range: f64) -> Vec<f32> {
    DIV2K_MEAN
        .iter()
        .map(|v| (v * signed_range) as f32)
        .collect()
}

/// Upsampler stages (EDSR-PyTorch `Upsampler`): ×2 → [2], ×3 → [3], ×4 → [2, 2].
pub fn up_stages(scale: usize) -> Vec<usize> {
    match scale {
        3 => vec![3],
        s => vec![2; s.trailing_zeros() as usize],
    }
}

/// One residual block: PAMS/DDTB's shortcut point, conv–ReLU–conv, and the block-output point.
#[derive(Clone, Debug)]
struct ResBlock {
    skip: Point,
    conv1: Conv,
    conv2: Conv,
    res: Point,
}

/// An EDSR of a given configuration and scale, with its layer handles.
#[derive(Clone, Debug)]
pub struct Edsr {
    pub cfg: EdsrSpec,
    pub scale: usize,
    head: Conv,
    blocks: Vec<ResBlock>,
    body_end: Conv,
    upsample: Vec<(Conv, usize)>,
    tail: Conv,
}

impl Edsr {
    /// Declare every layer in forward order. EDSR-PyTorch keys: `head.0`, `body.{i}.body.0` /
    /// `body.{i}.body.2` (the block convs), `body.{n}` (last body conv), `tail.0.{2k}` (upsampler
    /// stage k) and `tail.1`. Quantization points: see [`res_block`].
    pub fn build(cfg: EdsrSpec, scale: usize, b: &mut Builder) -> Self {
        let f = cfg.n_feats;
        let head = b.conv("head", "head.0", [3, f, 3], Bias::Default);
        let blocks = (0..cfg.n_resblocks).map(|i| res_block(b, i, f)).collect();
        let body_end = b.conv(
            "body_end",
            &format!("body.{}", cfg.n_resblocks),
            [f, f, 3],
            Bias::Default,
        );
        let upsample = up_stages(scale)
            .into_iter()
            .enumerate()
            .map(|(k, r)| {
                let c = b.conv(
                    &format!("upsample.{k}"),
                    &format!("tail.0.{}", 2 * k),
                    [f, r * r * f, 3],
                    Bias::Default,
                );
                b.upscale(r);
                (c, r)
            })
            .collect();
        let tail = b.conv("tail", "tail.1", [f, 3, 3], Bias::Default);
        Self {
            cfg,
            scale,
            head,
            blocks,
            body_end,
            upsample,
            tail,
        }
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, f: &impl Ops<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.normalise(x);
        let x = f.conv(&self.head, x);
        let mut h = x.clone();
        for blk in &self.blocks {
            let skip = f.act(&blk.skip, h.clone());
            let r = f.conv(&blk.conv1, h);
            let r = f.conv(&blk.conv2, relu(r));
            let r = if self.cfg.res_scale == 1.0 {
                r
            } else {
                r.mul_scalar(self.cfg.res_scale)
            };
            h = skip + f.act(&blk.res, r);
        }
        if f.body_only() {
            return h;
        }
        let mut y = f.feature(f.conv(&self.body_end, h) + x);
        for (c, r) in &self.upsample {
            y = pixel_shuffle(f.conv(c, y), *r);
        }
        self.restore(f.conv(&self.tail, y))
    }

    /// [`Self::forward`] as a symbolic trace (the same operations in the same order).
    pub fn trace<T: Trace>(&self, t: &mut T, x: T::V) -> T::V {
        let r = self.cfg.rgb_range as f32;
        let x = match self.cfg.input_norm {
            InputNorm::MeanShift => t.add_channels(x, &shift(-self.cfg.rgb_range)),
            InputNorm::Symmetric => {
                let x = t.scalar(x, Scalar::Div, r);
                let x = t.scalar(x, Scalar::Sub, 0.5);
                t.scalar(x, Scalar::Div, 0.5)
            }
            InputNorm::Centered => t.scalar(x, Scalar::Sub, r / 2.0),
        };
        let x = t.conv(&self.head, x);
        let mut h = x.clone();
        for blk in &self.blocks {
            let skip = t.act(&blk.skip, h.clone());
            let r1 = t.conv(&blk.conv1, h);
            let r1 = t.relu(r1);
            let mut r2 = t.conv(&blk.conv2, r1);
            if self.cfg.res_scale != 1.0 {
                r2 = t.scalar(r2, Scalar::Mul, self.cfg.res_scale as f32);
            }
            let r2 = t.act(&blk.res, r2);
            h = t.add(skip, r2);
        }
        let b = t.conv(&self.body_end, h);
        let mut y = t.add(b, x);
        for (c, s) in &self.upsample {
            let z = t.conv(c, y);
            y = t.pixel_shuffle(z, *s);
        }
        let y = t.conv(&self.tail, y);
        match self.cfg.input_norm {
            InputNorm::MeanShift => t.add_channels(y, &shift(self.cfg.rgb_range)),
            InputNorm::Symmetric => {
                let y = t.scalar(y, Scalar::Mul, 0.5);
                let y = t.scalar(y, Scalar::Add, 0.5);
                t.scalar(y, Scalar::Mul, r)
            }
            InputNorm::Centered => t.scalar(y, Scalar::Add, r / 2.0),
        }
    }

    /// Feature rescaling by `c > 0` ([`super::rescale`]): with the head's weights and bias ×c
    /// the head output is c·x; each block conv's bias ×c keeps conv1 → ReLU → conv2 → ·res_scale
    /// homogeneous (ReLU(c·y) = c·ReLU(y)), so every block input and output is c× the original;
    /// `body_end`'s bias ×c keeps the global skip sum c×, each upsampler conv's bias ×c its
    /// output (the shuffle is a permutation); the tail's weights ÷c bring the output back. The
    /// input normalisation (mean shift or LIIF's) comes before the head and is untouched.
    pub fn rescale_factors(&self, c: f64) -> Vec<(ParamId, f64)> {
        let mut v = vec![(self.head.weight, c)];
        let biased = std::iter::once(&self.head)
            .chain(self.blocks.iter().flat_map(|b| [&b.conv1, &b.conv2]))
            .chain(std::iter::once(&self.body_end))
            .chain(self.upsample.iter().map(|(u, _)| u));
        v.extend(biased.filter_map(|conv| conv.bias).map(|b| (b, c)));
        v.push((self.tail.weight, 1.0 / c));
        v
    }

    /// From `Symmetric` to `Centered` weights ([`super::rescale::recentre`]): LIIF's input
    /// (x − r/2)/(r/2) times c = r/2 is `Centered`'s x − r/2, so with the head's weights as they
    /// are and its bias ×c the head output is c× the `Symmetric` model's; every later bias ×c
    /// keeps every feature c× (as in [`Self::rescale_factors`]); the tail's bias ×c too, since
    /// `Symmetric` restores (y·0.5 + 0.5)·r = c·y + r/2 and `Centered` y + r/2. No weight
    /// changes, so Adam's absolute steps move them as much, relative to their size, as before.
    pub fn recentre_factors(&self) -> Vec<(ParamId, f64)> {
        let c = self.cfg.rgb_range / 2.0;
        std::iter::once(&self.head)
            .chain(self.blocks.iter().flat_map(|b| [&b.conv1, &b.conv2]))
            .chain(std::iter::once(&self.body_end))
            .chain(self.upsample.iter().map(|(u, _)| u))
            .chain(std::iter::once(&self.tail))
            .filter_map(|conv| conv.bias)
            .map(|b| (b, c))
            .collect()
    }

    /// The input normalisation of [`InputNorm`]: mean shift, LIIF's (x/r − 0.5)/0.5, or x − r/2.
    fn normalise<B: Backend>(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let r = self.cfg.rgb_range;
        match self.cfg.input_norm {
            InputNorm::MeanShift => x.clone() - mean_shift::<B>(r, &x.device()),
            InputNorm::Symmetric => x.div_scalar(r).sub_scalar(0.5).div_scalar(0.5),
            InputNorm::Centered => x.sub_scalar(r / 2.0),
        }
    }

    /// The inverse of [`Self::normalise`] at the output: + mean, (y·0.5 + 0.5)·r, or + r/2.
    fn restore<B: Backend>(&self, y: Tensor<B, 4>) -> Tensor<B, 4> {
        let r = self.cfg.rgb_range;
        match self.cfg.input_norm {
            InputNorm::MeanShift => y.clone() + mean_shift::<B>(r, &y.device()),
            InputNorm::Symmetric => y.mul_scalar(0.5).add_scalar(0.5).mul_scalar(r),
            InputNorm::Centered => y.add_scalar(r / 2.0),
        }
    }
}

/// Residual block `i` of `f` features and its quantization points in forward order: both convs,
/// weights and inputs (conv-input placement: DAQ, AdaBM, ODM), or PAMS/DDTB's shortcut
/// `body.{i}.skip`, the first conv's weights, the second conv's weights and (post-activation)
/// input, and the block output `body.{i}.res` (block placement; colorjam/PAMS and zysxmu/DDTB
/// `model/edsr.py`, `*_ResBlock`).
fn res_block(b: &mut Builder, i: usize, f: usize) -> ResBlock {
    let conv = |b: &mut Builder, k: usize| {
        let key = format!("body.{i}.body.{}", 2 * (k - 1));
        b.conv(&format!("body.{i}.conv{k}"), &key, [f, f, 3], Bias::Default)
    };
    let skip = b.point(&format!("body.{i}.skip"), f, Q::NONE, Q::ACT);
    let conv1 = conv(b, 1);
    b.quantize(&conv1, Q::BOTH, Q::WEIGHT);
    let conv2 = conv(b, 2);
    b.quantize(&conv2, Q::BOTH, Q::BOTH);
    let res = b.point(&format!("body.{i}.res"), f, Q::NONE, Q::ACT);
    ResBlock {
        skip,
        conv1,
        conv2,
        res,
    }
}
