//! The fake quantizer's value and gradients, composed from burn ops: the reference for every
//! backend ([`super::fake_quant_channels`] fuses it on the CPU), in the three forms of the
//! sources ([`QForm`]).
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

use crate::spec::{BoundGrad, QForm};
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
        QForm::Daq { .. } => unreachable!("DAQ has no bounds; quant::daq quantizes it"),
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
