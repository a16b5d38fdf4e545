//! Fake quantization fused into one pass forward and one pass backward, for `Flex` and
//! `Autodiff<Flex>`. It computes what `quant::fake_quant` composes from burn ops, in the same
//! f32 operation order, so the values are bit-identical (README, "QAT", for each form):
//! Affine q = round((x_c − l)/(u − l)·n)/n·(u − l) + l; SymZero q = round(x_c·Q/u)·u/Q;
//! ZeroPoint s = n/(u − l), z = round(s·l) + 2^(b−1), q = (round(s·x_c − z) + z)/s.
//! Backward: dx = g·c_x, du = Σ g·(c_u + t), dl = Σ g·(c_l − t) with the clip derivatives c and
//! t = (q − x_c)/(u − l) (`BoundGrad::Full`) or 0 (`ClipOnly`). Sums run over H, W per image and
//! channel in parallel, then over images in index order: deterministic for any thread count.
//! Bounds have one entry per channel, or a single entry shared by all channels.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::flex::{values, AdPrim};
use crate::quant::{levels, QForm, Quantizer};
use crate::spec::BoundGrad;

/// One element's value and derivatives.
struct Elem {
    q: f32,
    cx: f32,
    du: f32,
    dl: f32,
}

/// The quantizer on one value with bounds `l`, `u`.
#[inline]
fn elem(x: f32, l: f32, u: f32, qz: &Quantizer) -> Elem {
    let n = levels(qz.bits);
    let xc = x.max(l).min(u);
    let (mut cx, mut cu, mut cl) = if x > u {
        (0.0, 1.0, 0.0)
    } else if x < l {
        (0.0, 0.0, 1.0)
    } else {
        (1.0, 0.0, 0.0)
    };
    if qz.split_ties && (x == u || x == l) {
        cx = 0.5;
        if x == u {
            cu = 0.5;
        } else {
            cl = 0.5;
        }
    }
    let q = match qz.form {
        QForm::Affine => ((xc - l) / (u - l) * n).round_ties_even() / n * (u - l) + l,
        QForm::SymZero => {
            let qm = (n - 1.0) / 2.0;
            ((xc * qm) / u).round_ties_even() * u / qm
        }
        QForm::ZeroPoint => {
            let sf = n / (u - l);
            let zp = (sf * l).round_ties_even() + (1u64 << (qz.bits - 1)) as f32;
            ((sf * xc - zp).round_ties_even() + zp) / sf
        }
    };
    let t = match qz.grad {
        BoundGrad::Full => (q - xc) / (u - l),
        BoundGrad::ClipOnly => 0.0,
    };
    Elem {
        q,
        cx,
        du: cu + t,
        dl: cl - t,
    }
}

fn shape(x: &FlexTensor) -> (usize, usize, usize) {
    let s = x.layout().shape();
    (s[0], s[1], s[2] * s[3])
}

/// The bound entry of plane `p` (image-major, channel-minor) for `nb` bound entries.
fn bound_of(p: usize, c: usize, nb: usize) -> usize {
    if nb == 1 {
        0
    } else {
        p % c
    }
}

/// Forward on a flex tensor (N×C×H×W) with bounds `l`, `u` (C or 1 entries).
pub fn forward(x: &FlexTensor, l: &FlexTensor, u: &FlexTensor, qz: Quantizer) -> FlexTensor {
    let (_, c, hw) = shape(x);
    let (l, u) = (values(l), values(u));
    assert!(
        l.len() == u.len() && (l.len() == c || l.len() == 1),
        "bound sizes"
    );
    let mut y = values(x).into_owned();
    y.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
        let ch = bound_of(p, c, l.len());
        plane
            .iter_mut()
            .for_each(|v| *v = elem(*v, l[ch], u[ch], &qz).q);
    });
    FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()))
}

/// Backward of the fused quantizer: keeps its input and bounds.
#[derive(Debug)]
struct FakeQuant(Quantizer);

impl Backward<Flex, 3> for FakeQuant {
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_l, node_u] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (x, l, u) = ops.state;
        let (n, c, hw) = shape(&x);
        let (xv, gv, lv, uv) = (values(&x), values(&g), values(&l), values(&u));
        let qz = self.0;
        let mut dx = vec![0.0f32; xv.len()];
        // Per plane (image, channel): dx and the partial sums of du and dl.
        let parts: Vec<(f32, f32)> = dx
            .par_chunks_mut(hw)
            .enumerate()
            .map(|(p, d)| {
                let b = bound_of(p, c, lv.len());
                let (lo, hi) = (lv[b], uv[b]);
                let (xs, gs) = (&xv[p * hw..][..hw], &gv[p * hw..][..hw]);
                let (mut su, mut sl) = (0.0f32, 0.0f32);
                for ((d, &x), &g) in d.iter_mut().zip(xs).zip(gs) {
                    let e = elem(x, lo, hi, &qz);
                    *d = g * e.cx;
                    su += g * e.du;
                    sl += g * e.dl;
                }
                (su, sl)
            })
            .collect();
        let nb = lv.len();
        let mut du = vec![0.0f32; nb];
        let mut dl = vec![0.0f32; nb];
        for (p, (su, sl)) in parts.iter().enumerate().take(n * c) {
            du[bound_of(p, c, nb)] += su;
            dl[bound_of(p, c, nb)] += sl;
        }
        let t = |v: Vec<f32>, s: Shape| FlexTensor::from_data(TensorData::new(v, s));
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, t(dx, x.layout().shape().clone()));
        }
        if let Some(node) = node_l {
            grads.register::<Flex>(node.id, t(dl, Shape::new([nb])));
        }
        if let Some(node) = node_u {
            grads.register::<Flex>(node.id, t(du, Shape::new([nb])));
        }
    }
}

/// Forward on training tensors, recording [`FakeQuant`] when any input is tracked.
pub fn forward_ad(x: AdPrim, l: AdPrim, u: AdPrim, qz: Quantizer) -> AdPrim {
    let y = forward(&x.primitive, &l.primitive, &u.primitive, qz);
    match FakeQuant(qz)
        .prepare::<NoCheckpointing>([x.node.clone(), l.node.clone(), u.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x.primitive, l.primitive, u.primitive), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
