//! Fake quantization fused into one pass forward and one pass backward, for `Flex` and
//! `Autodiff<Flex>`. It computes what `quant::fake_quant` composes from burn ops, in the same
//! f32 operation order, so the values are bit-identical (README, "QAT", for each form):
//! Affine q = round((x_c − l)/(u − l)·n)/n·(u − l) + l; SymZero q = round(x_c·Q/u)·u/Q;
//! ZeroPoint s = n/(u − l), z = round(s·l) + 2^(b−1), q = (round(s·x_c − z) + z)/s.
//! Backward (from the kept input and output): dx = g·c_x, du = Σ g·(c_u + t), dl = Σ g·(c_l − t)
//! with the clip derivatives c and t = (q − x_c)·(1/(u − l)) (`BoundGrad::Full`) or 0
//! (`ClipOnly`); the reciprocal makes the bound gradients differ from the reference's division
//! in the last bits only. Sums run over H, W per image and channel in parallel (in 16 fixed
//! lanes, see [`LANES`]), then over images in index order: deterministic for any thread count.
//! Bounds have one entry per channel, or a single entry shared by all channels.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::flex::{values, AdPrim};
use super::quantizer::{levels, Quantizer};
use crate::spec::BoundGrad;
use crate::spec::QForm;

/// Round half to even, exactly as `f32::round_ties_even`, in a form that vectorises on any
/// x86-64 (no SSE4.1 `roundps` needed): for |x| < 2^23, (|x| + 2^23) − 2^23 rounds |x| to the
/// nearest integer, ties to even, in the default rounding mode; larger |x| are integers already.
#[inline(always)]
pub fn round_even(x: f32) -> f32 {
    const BIG: f32 = 8_388_608.0; // 2^23
    let a = x.abs();
    let r = ((a + BIG) - BIG).copysign(x);
    if a < BIG {
        r
    } else {
        x
    }
}

/// Per-bound constants of the forward.
#[derive(Clone, Copy)]
struct Consts {
    l: f32,
    u: f32,
    /// u − l.
    d: f32,
    n: f32,
    /// PAMS's Q = 2^(b−1) − 1.
    qm: f32,
    /// DDTB's s = n/(u − l) and rounded zero point z.
    sf: f32,
    zp: f32,
}

impl Consts {
    fn new(l: f32, u: f32, qz: &Quantizer) -> Self {
        let n = levels(qz.bits);
        let sf = n / (u - l);
        Self {
            l,
            u,
            d: u - l,
            n,
            qm: (n - 1.0) / 2.0,
            sf,
            zp: round_even(sf * l) + (1u64 << (qz.bits - 1)) as f32,
        }
    }
}

/// q(x) for one value (the op order of `quant::fake_quant`).
#[inline(always)]
fn quant(x: f32, c: &Consts, form: QForm) -> f32 {
    let xc = x.max(c.l).min(c.u);
    match form {
        QForm::Affine => round_even((xc - c.l) / c.d * c.n) / c.n * c.d + c.l,
        QForm::SymZero => round_even((xc * c.qm) / c.u) * c.u / c.qm,
        QForm::ZeroPoint => (round_even(c.sf * xc - c.zp) + c.zp) / c.sf,
        QForm::Daq { .. } => unreachable!("DAQ has no bounds; quant::daq quantizes it"),
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
    let consts: Vec<Consts> = l
        .iter()
        .zip(u.iter())
        .map(|(&l, &u)| Consts::new(l, u, &qz))
        .collect();
    let mut y = values(x).into_owned();
    y.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
        let c = consts[bound_of(p, c, consts.len())];
        match qz.form {
            QForm::Affine => plane
                .iter_mut()
                .for_each(|v| *v = quant(*v, &c, QForm::Affine)),
            QForm::SymZero => plane
                .iter_mut()
                .for_each(|v| *v = quant(*v, &c, QForm::SymZero)),
            QForm::ZeroPoint => plane
                .iter_mut()
                .for_each(|v| *v = quant(*v, &c, QForm::ZeroPoint)),
            QForm::Daq { .. } => unreachable!("DAQ has no bounds; quant::daq quantizes it"),
        }
    });
    FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()))
}

/// Backward of the fused quantizer: keeps its input, bounds and output q.
#[derive(Debug)]
struct FakeQuant(Quantizer);

/// Lanes of the partial sums of du and dl: element i of a plane adds into lane i mod LANES and
/// the lanes are summed in a fixed tree at the end, so the reduction vectorises (a single
/// running sum is a serial dependency chain) and depends on the data layout only, never on the
/// thread count.
pub(super) const LANES: usize = 16;

/// One element's (dx, du, dl) contributions; `SPLIT`: PAMS's half-and-half split at x = bound.
#[inline(always)]
fn elem<const SPLIT: bool>(x: f32, q: f32, g: f32, l: f32, u: f32, inv: f32) -> (f32, f32, f32) {
    let xc = x.max(l).min(u);
    let above = if x > u { 1.0 } else { 0.0 };
    let below = if x < l { 1.0 } else { 0.0 };
    let (mut cx, mut cu, mut cl) = (1.0 - above - below, above, below);
    if SPLIT {
        let tu = if x == u { 0.5 } else { 0.0 };
        let tl = if x == l { 0.5 } else { 0.0 };
        cx -= tu + tl;
        cu += tu;
        cl += tl;
    }
    let t = (q - xc) * inv;
    (g * cx, g * (cu + t), g * (cl - t))
}

/// Sum of the lanes as a fixed pairwise tree.
#[inline(always)]
pub(super) fn tree_sum(mut v: [f32; LANES]) -> f32 {
    let mut w = LANES / 2;
    while w > 0 {
        for k in 0..w {
            v[k] += v[k + w];
        }
        w /= 2;
    }
    v[0]
}

/// One plane's backward: writes dx and returns the sums of du and dl over the plane.
#[inline(always)]
fn plane_grads_impl<const SPLIT: bool>(
    d: &mut [f32],
    xs: &[f32],
    qs: &[f32],
    gs: &[f32],
    (l, u, inv): (f32, f32, f32),
) -> (f32, f32) {
    let (mut su, mut sl) = ([0.0f32; LANES], [0.0f32; LANES]);
    let body = d.len() / LANES * LANES;
    let chunks = d[..body]
        .chunks_exact_mut(LANES)
        .zip(xs[..body].chunks_exact(LANES))
        .zip(qs[..body].chunks_exact(LANES))
        .zip(gs[..body].chunks_exact(LANES));
    for (((dc, xc), qc), gc) in chunks {
        for k in 0..LANES {
            let (dx, du, dl) = elem::<SPLIT>(xc[k], qc[k], gc[k], l, u, inv);
            dc[k] = dx;
            su[k] += du;
            sl[k] += dl;
        }
    }
    for i in body..d.len() {
        let (dx, du, dl) = elem::<SPLIT>(xs[i], qs[i], gs[i], l, u, inv);
        d[i] = dx;
        su[i - body] += du;
        sl[i - body] += dl;
    }
    (tree_sum(su), tree_sum(sl))
}

/// One plane's backward for quantizer `qz` (see [`plane_grads_impl`]).
fn plane_grads(
    d: &mut [f32],
    xs: &[f32],
    qs: &[f32],
    gs: &[f32],
    l: f32,
    u: f32,
    qz: &Quantizer,
) -> (f32, f32) {
    let inv = match qz.grad {
        BoundGrad::Full => 1.0 / (u - l),
        BoundGrad::ClipOnly => 0.0,
    };
    if qz.split_ties {
        plane_grads_impl::<true>(d, xs, qs, gs, (l, u, inv))
    } else {
        plane_grads_impl::<false>(d, xs, qs, gs, (l, u, inv))
    }
}

impl Backward<Flex, 3> for FakeQuant {
    type State = (FlexTensor, FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_l, node_u] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (x, l, u, y) = ops.state;
        let (n, c, hw) = shape(&x);
        let (xv, gv, lv, uv, yv) = (values(&x), values(&g), values(&l), values(&u), values(&y));
        let qz = self.0;
        let mut dx = vec![0.0f32; xv.len()];
        // Per plane (image, channel): dx and the partial sums of du and dl.
        let parts: Vec<(f32, f32)> = dx
            .par_chunks_mut(hw)
            .enumerate()
            .map(|(p, d)| {
                let b = bound_of(p, c, lv.len());
                let r = p * hw..(p + 1) * hw;
                plane_grads(d, &xv[r.clone()], &yv[r.clone()], &gv[r], lv[b], uv[b], &qz)
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
        OpsKind::Tracked(prep) => {
            let q = y.clone();
            prep.finish((x.primitive, l.primitive, u.primitive, q), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
