//! Uniform fake quantization for QAT.
//!
//! Asymmetric form: q(x) = round((clip(x, l, u) − l)/s)·s + l with s = (u − l)/(2^b − 1), so a
//! b-bit quantizer has exactly 2^b levels. Symmetric form: l = −u. Rounding uses a
//! straight-through estimator (Bengio et al. 2013): the backward pass sees clip(x, l, u), so the
//! gradient is 1 inside [l, u] and 0 outside, and the learnable bounds receive the gradient of the
//! clip (PACT, Choi et al. 2018; PAMS, Li et al. ECCV 2020): ∂/∂u = 1[x > u], ∂/∂l = 1[x < l].
//! Weights are quantized symmetrically with u = max|W| (per layer or per output channel),
//! recomputed from the current weights at every step.

pub mod calib;
pub mod cost;
pub mod offsets;
pub mod plan;

pub use plan::{ActForm, LayerQuant, QuantPlan};

use crate::models::Params;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Smallest step, so that a collapsed range (u = l) never divides by zero.
const MIN_STEP: f64 = 1e-8;

/// Differentiable clip(x, l, u) = x − relu(x − u) + relu(l − x); `l`, `u` broadcast against `x`.
pub fn clip<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    l: Tensor<B, D>,
    u: Tensor<B, D>,
) -> Tensor<B, D> {
    x.clone() - relu(x.clone() - u) + relu(l - x)
}

/// Fake-quantize `x` to `bits` over [l, u] with the straight-through estimator described above.
pub fn fake_quant<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    l: Tensor<B, D>,
    u: Tensor<B, D>,
    bits: u32,
) -> Tensor<B, D> {
    let xc = clip(x, l.clone(), u.clone());
    let (l, u) = (l.detach(), u.detach());
    let s = (u - l.clone())
        .div_scalar(((1u64 << bits) - 1) as f64)
        .clamp_min(MIN_STEP);
    let xd = xc.clone().detach();
    let q = ((xd.clone() - l.clone()) / s.clone()).round() * s + l;
    xc + (q - xd)
}

/// Quantizer bound parameter names of a layer.
pub fn bound_names(layer: &str) -> (String, String) {
    (format!("{layer}.act.lo"), format!("{layer}.act.hi"))
}

/// Quantize a layer's input activation with its learned bounds.
pub fn fake_quant_act<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let (lo_n, hi_n) = bound_names(layer);
    let hi: Tensor<B, 1> = p.get::<1>(&hi_n);
    let lo = match lq.act {
        ActForm::Symmetric => hi.clone().neg(),
        ActForm::Asymmetric => p.get::<1>(&lo_n),
    };
    crate::kernels::fake_quant_channels(x, lo, hi, lq.a_bits)
}

/// Names of a layer's offset parameters (channel-wise scale and shift).
pub fn offset_names(layer: &str) -> (String, String) {
    (
        format!("{layer}.offset.scale"),
        format!("{layer}.offset.shift"),
    )
}

/// Name of a layer's WCC γ.
pub fn wcc_name(layer: &str) -> String {
    format!("{layer}.wcc.gamma")
}

/// The `p`-th percentile of a 1-D tensor (linear interpolation between order statistics).
pub fn percentile_tensor<B: Backend>(v: Tensor<B, 1>, p: f64) -> Tensor<B, 1> {
    let n = v.dims()[0];
    let sorted = v.sort(0);
    let pos = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let a = sorted.clone().slice([lo..lo + 1]);
    if hi == lo {
        return a;
    }
    let b = sorted.slice([hi..hi + 1]);
    a.clone() + (b - a).mul_scalar(pos - lo as f64)
}

/// The weight bound u_w of a layer: max|W| (detached; per layer or per output channel), or with
/// WCC P(|W|)·γ where the percentile is detached and γ is learned.
pub fn weight_bound<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    w: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [co, ci, kh, kw] = w.dims();
    if let Some(pc) = lq.wcc {
        let flat = w.clone().abs().reshape([co * ci * kh * kw]).detach();
        let gamma: Tensor<B, 1> = p.get(&wcc_name(layer));
        return (percentile_tensor(flat, pc) * gamma)
            .clamp_min(1e-8)
            .reshape([1, 1, 1, 1]);
    }
    if lq.per_channel {
        w.clone()
            .abs()
            .reshape([co, ci * kh * kw])
            .max_dim(1)
            .reshape([co, 1, 1, 1])
    } else {
        w.clone().abs().max().reshape([1, 1, 1, 1])
    }
    .detach()
}

/// Quantize a layer's weights symmetrically over [−u_w, u_w] (see [`weight_bound`]).
pub fn fake_quant_weight<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    w: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let u = weight_bound(p, layer, lq, &w);
    fake_quant(w, u.clone().neg(), u, lq.w_bits)
}

/// Apply a layer's learned channel-wise offsets (x·scale + shift) before its quantizer.
pub fn apply_offsets<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let (sn, hn) = offset_names(layer);
    let c = lq.channels;
    let mut x = x;
    if lq.scale {
        x = x * p.get::<1>(&sn).reshape([1, c, 1, 1]);
    }
    if lq.shift {
        x = x + p.get::<1>(&hn).reshape([1, c, 1, 1]);
    }
    x
}
