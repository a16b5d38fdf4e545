//! Uniform fake quantization for QAT, in the three forms of the sources ([`QForm`]).
//!
//! Rounding uses a straight-through estimator (Bengio et al. 2013): ∂round(t)/∂t = 1. The
//! bounds are differentiated as the sources' autograd does it: through the clip and through the
//! step size. With `BoundGrad::Full`, for every element,
//! ∂q/∂u = c_u(x) + (q − x_c)/(u − l) and ∂q/∂l = c_l(x) − (q − x_c)/(u − l), where x_c is the
//! clipped input and c_u, c_l the clip's derivatives (LSQ, Esser et al. 2020, in the bound
//! parameterisation of PAMS/DDTB/AdaBM); for the symmetric form (l = −α) that gives
//! ∂q/∂α = c_u − c_l + (q − x_c)/α. `BoundGrad::ClipOnly` keeps only c_u, c_l (PACT).
//! Clip derivatives: AdaBM's `torch.clamp(x, min=l, max=u)` passes the gradient to x on
//! l ≤ x ≤ u (c_u = 1[x > u], c_l = 1[x < l]); PAMS's and DDTB's `max(min(x, u), l)` split it
//! in half at exact ties x = u or x = l, as `torch.minimum`/`torch.maximum` do.

pub mod calib;
pub mod cost;
pub mod offsets;
pub mod plan;

pub use plan::{LayerQuant, Placement, QForm, QPoint, QuantPlan, WeightQ};

use crate::models::Params;
use crate::spec::BoundGrad;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Levels parameter n = 2^b − 1.
pub fn levels(bits: u32) -> f32 {
    ((1u64 << bits) - 1) as f32
}

/// One quantizer call's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantizer {
    pub bits: u32,
    pub form: QForm,
    pub grad: BoundGrad,
    /// Clip as `max(min(x, u), l)`, which halves the gradient at exact ties (PAMS/DDTB
    /// activations, DDTB weights); otherwise as `clamp` (AdaBM; PAMS weights, never clipped).
    pub split_ties: bool,
}

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

/// Per-element values and derivatives of one quantizer call.
struct Parts<B: Backend, const D: usize> {
    q: Tensor<B, D>,
    /// ∂q/∂x, ∂q/∂u, ∂q/∂l per element (detached).
    dx: Tensor<B, D>,
    du: Tensor<B, D>,
    dl: Tensor<B, D>,
}

/// The quantizer's value and derivatives from detached x, l, u (l, u broadcast against x).
fn parts<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    l: Tensor<B, D>,
    u: Tensor<B, D>,
    qz: Quantizer,
) -> Parts<B, D> {
    let Quantizer {
        bits,
        form,
        grad,
        split_ties,
    } = qz;
    let n = levels(bits);
    let shape = x.shape();
    let (lb, ub) = (l.clone().expand(shape.clone()), u.clone().expand(shape));
    let above = x.clone().greater(ub.clone()).float();
    let below = x.clone().lower(lb.clone()).float();
    let xc = x.clone().max_pair(lb.clone()).min_pair(ub.clone());
    let (dx, cu, cl) = match split_ties {
        false => {
            let inside = above.clone().add(below.clone()).neg().add_scalar(1.0);
            (inside, above, below)
        }
        true => {
            let at_u = x.clone().equal(ub).float().mul_scalar(0.5);
            let at_l = x.clone().equal(lb).float().mul_scalar(0.5);
            let inside = above.clone().add(below.clone()).neg().add_scalar(1.0);
            (
                inside - at_u.clone() - at_l.clone(),
                above + at_u,
                below + at_l,
            )
        }
    };
    let q = match form {
        QForm::Affine => ((xc.clone() - l.clone()) / (u.clone() - l.clone()))
            .mul_scalar(n)
            .round()
            .div_scalar(n)
            .mul(u.clone() - l.clone())
            .add(l.clone()),
        QForm::SymZero => {
            let qm = (n - 1.0) / 2.0;
            (xc.clone().mul_scalar(qm) / u.clone())
                .round()
                .mul(u.clone())
                .div_scalar(qm)
        }
        QForm::ZeroPoint => {
            let d = u.clone() - l.clone();
            let sf = d.clone().ones_like().mul_scalar(n) / d;
            let zp = (sf.clone() * l.clone())
                .round()
                .add_scalar((1u64 << (bits - 1)) as f32);
            ((sf.clone() * xc.clone() - zp.clone()).round() + zp) / sf
        }
    };
    let (du, dl) = match grad {
        BoundGrad::ClipOnly => (cu, cl),
        BoundGrad::Full => {
            let lsq = (q.clone() - xc) / (u - l);
            (cu + lsq.clone(), cl - lsq)
        }
    };
    Parts { q, dx, du, dl }
}

/// `t − t.detach()`: zero in value, the gradient of `t` in backward.
fn grad_only<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    t.clone() - t.detach()
}

/// Fake-quantize `x` over [l, u] (broadcast against `x`) to `bits` in `form`: the value is q(x)
/// exactly, and the gradients are those of the module doc, built as
/// q + Σ (v·∂q/∂v − (v·∂q/∂v).detach()) over v ∈ {x, u, l}. The reference implementation for
/// every backend; `kernels::fake_quant_channels` fuses it on the CPU.
pub fn fake_quant<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    l: Tensor<B, D>,
    u: Tensor<B, D>,
    qz: Quantizer,
) -> Tensor<B, D> {
    let pt = parts(
        x.clone().detach(),
        l.clone().detach(),
        u.clone().detach(),
        qz,
    );
    pt.q + grad_only(x * pt.dx) + grad_only(u * pt.du) + grad_only(l * pt.dl)
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
    let [co, ci, kh, kw] = w.dims();
    let (l, u) = weight_range(p, layer, lq, &w);
    let x = w.reshape([1, co, ci * kh, kw]);
    crate::kernels::fake_quant_channels(x, l, u, Quantizer::weight(lq)).reshape([co, ci, kh, kw])
}

/// Apply a point's learned channel-wise offsets (x·scale + shift) before its quantizer.
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
