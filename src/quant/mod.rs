//! Quantization of a backbone: the per-point plan ([`plan`]), range calibration, distribution
//! offsets, cost accounting, and the parameters each quantizer reads (activation bounds, learned
//! weight bounds, WCC γ, offsets). The quantizer function itself, its forms and gradients, is in
//! [`crate::kernels::quantizer`].

pub mod calib;
pub mod cost;
pub mod daq;
pub mod ddtb;
pub mod offsets;
pub mod plan;

pub use crate::kernels::quantizer::{fake_quant, levels, Quantizer};
pub use plan::{LayerQuant, Placement, QForm, QPoint, QuantPlan, WeightQ};

use crate::models::Params;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

impl Quantizer {
    /// The activation quantizer of a point.
    pub fn act(lq: &LayerQuant) -> Self {
        Self {
            bits: lq.a_bits,
            form: lq.form,
            grad: lq.bound_grad,
            split_ties: lq.form != QForm::Affine,
        }
    }

    /// The weight quantizer of a layer.
    pub fn weight(lq: &LayerQuant) -> Self {
        Self {
            bits: lq.w_bits,
            form: lq.form,
            grad: lq.bound_grad,
            split_ties: lq.form != QForm::Affine
                && matches!(lq.weights, WeightQ::Percentile { .. }),
        }
    }
}

/// Quantizer bound parameter names of a point.
pub fn bound_names(layer: &str) -> (String, String) {
    (format!("{layer}.act.lo"), format!("{layer}.act.hi"))
}

/// The activation bounds (l, u) of a point: learned l and u, or (−α, α) for the symmetric form.
pub fn act_bounds<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let (lo_n, hi_n) = bound_names(layer);
    let hi: Tensor<B, 1> = p.get::<1>(&hi_n);
    let lo = if lq.form.symmetric() {
        hi.clone().neg()
    } else {
        p.get::<1>(&lo_n)
    };
    (lo, hi)
}

/// Quantize a point's activation with its learned bounds.
pub fn fake_quant_act<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    if let QForm::Daq { sigma_bits, strict } = lq.form {
        return daq::quantize_act(x, lq.a_bits, sigma_bits, strict);
    }
    let (lo, hi) = act_bounds(p, layer, lq);
    crate::kernels::fake_quant_channels(x, lo, hi, Quantizer::act(lq))
}

/// Names of a point's offset parameters (channel-wise scale and shift).
pub fn offset_names(layer: &str) -> (String, String) {
    (
        format!("{layer}.offset.scale"),
        format!("{layer}.offset.shift"),
    )
}

/// True for the name of a quantizer's learned bound: an activation bound, a learned weight
/// bound or a WCC γ.
pub fn is_bound_name(name: &str) -> bool {
    [".act.lo", ".act.hi", ".wq.hi", ".wcc.gamma"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Name of a layer's WCC γ.
pub fn wcc_name(layer: &str) -> String {
    format!("{layer}.wcc.gamma")
}

/// Name of a layer's learned weight bound u_w.
pub fn weight_bound_name(layer: &str) -> String {
    format!("{layer}.wq.hi")
}

/// The `p`-th percentiles of the rows of a 2-D tensor (linear interpolation between order
/// statistics, numpy's default: position p/100·(n − 1)); one value per row.
pub fn percentile_rows<B: Backend>(v: Tensor<B, 2>, p: f64) -> Tensor<B, 1> {
    percentile_sorted(v.sort(1), p)
}

/// [`percentile_rows`] of rows that are already sorted ascending.
fn percentile_sorted<B: Backend>(sorted: Tensor<B, 2>, p: f64) -> Tensor<B, 1> {
    let [r, n] = sorted.dims();
    let pos = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let a = sorted.clone().slice([0..r, lo..lo + 1]).reshape([r]);
    if hi == lo {
        return a;
    }
    let b = sorted.slice([0..r, hi..hi + 1]).reshape([r]);
    a.clone() + (b - a).mul_scalar(pos - lo as f64)
}

/// The weight range (l, u) of a layer, one entry per output channel (`per_channel`) or one:
/// detached max|W| + 1e-8 (l = −u), detached percentiles of W, a learned u_w (l = −u_w), or
/// WCC's P(|W|)·γ with the percentile detached and γ learned.
pub fn weight_range<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    w: &Tensor<B, 4>,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let [co, ci, kh, kw] = w.dims();
    let rows = if lq.per_channel { co } else { 1 };
    let flat = w.clone().detach().reshape([rows, co * ci * kh * kw / rows]);
    let sym = |u: Tensor<B, 1>| (u.clone().neg(), u);
    match &lq.weights {
        WeightQ::MaxAbs => sym(flat.abs().max_dim(1).reshape([rows]).add_scalar(1e-8)),
        WeightQ::Percentile { low, high } => {
            // One sort per step serves both bounds.
            let sorted = flat.sort(1);
            (
                percentile_sorted(sorted.clone(), *low),
                percentile_sorted(sorted, *high),
            )
        }
        WeightQ::Learned => sym(p.get::<1>(&weight_bound_name(layer))),
        WeightQ::Wcc { percentile } => {
            let gamma: Tensor<B, 1> = p.get(&wcc_name(layer));
            sym(percentile_rows(flat.abs(), *percentile) * gamma)
        }
        WeightQ::Daq => unreachable!("DAQ's weights have no range: quant::daq::weight"),
    }
}

/// Quantize a layer's weights over [`weight_range`] in the layer's form. The weights go through
/// the fused kernel as a 1×C_out×(C_in·k)×k tensor, so that per-output-channel bounds are its
/// per-channel bounds.
pub fn fake_quant_weight<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    w: Tensor<B, 4>,
) -> Tensor<B, 4> {
    if lq.weights == WeightQ::Daq {
        return daq::weight(w, lq.w_bits);
    }
    let [co, ci, kh, kw] = w.dims();
    let (l, u) = weight_range(p, layer, lq, &w);
    let x = w.reshape([1, co, ci * kh, kw]);
    crate::kernels::fake_quant_channels(x, l, u, Quantizer::weight(lq)).reshape([co, ci, kh, kw])
}

/// The weights an evaluation's every forward would fake-quantize, quantized once, and the plan
/// that then leaves them as they are (their layers' `w_bits` set to 32): the same values per
/// image, since [`fake_quant_weight`] depends on the weights and their learned ranges only, both
/// fixed while evaluating, without recomputing the ranges (WCC's and DDTB's percentile sorts) and
/// the codes for every image.
pub fn frozen_weights<B: Backend>(
    model: &crate::models::Model,
    params: &Params<B>,
    plan: &QuantPlan,
) -> (Params<B>, QuantPlan) {
    let (mut p, mut q) = (params.clone(), plan.clone());
    let convs = model.convs();
    for (name, l) in &mut q.layers {
        let conv = convs.iter().any(|c| &c.name == name);
        if !l.active || !l.has_weight() || !conv {
            continue;
        }
        let key = format!("{name}.weight");
        let w: Tensor<B, 4> = params.get(&key);
        let n = w.shape().num_elements();
        p.set(&key, fake_quant_weight(params, name, l, w).reshape([n]));
        l.w_bits = 32;
    }
    (p, q)
}

/// Apply a point's learned channel-wise offsets (x·scale + shift) before its quantizer, each a
/// one-pass per-channel kernel on the CPU backend ([`crate::kernels::channel_affine`]).
pub fn apply_offsets<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let (sn, hn) = offset_names(layer);
    use crate::kernels::{channel_affine, AffineKind};
    let mut x = x;
    if lq.scale {
        x = channel_affine(x, p.get::<1>(&sn), AffineKind::Scale);
    }
    if lq.shift {
        x = channel_affine(x, p.get::<1>(&hn), AffineKind::Shift);
    }
    x
}
