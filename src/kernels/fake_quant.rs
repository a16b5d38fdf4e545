//! Per-channel activation fake quantization fused into one pass forward and one pass backward,
//! for `Flex` and `Autodiff<Flex>`. It computes exactly what `quant::fake_quant` composes from
//! burn ops, in the same f32 operation order (so the values are bit-identical):
//! xc = (x − relu(x − u)) + relu(l − x), s = max((u − l)/(2^b − 1), 1e−8),
//! y = xc + (round_half_even((xc − l)/s)·s + l − xc); and the straight-through gradients
//! dx = g − g·1[x > u] − g·1[x < l], du = Σ g·1[x > u], dl = Σ g·1[x < l] (sums over N, H, W,
//! per image and channel in parallel, then over images in index order: deterministic). Bounds
//! have one entry per channel, or a single entry shared by all channels.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use super::flex::{values, AdPrim};

/// One value through the quantizer (forward).
#[inline]
fn q1(x: f32, l: f32, u: f32, s: f32) -> f32 {
    let r1 = (x - u).max(0.0);
    let r2 = (l - x).max(0.0);
    let xc = (x - r1) + r2;
    let q = ((xc - l) / s).round_ties_even() * s + l;
    xc + (q - xc)
}

fn steps(l: &[f32], u: &[f32], bits: u32) -> Vec<f32> {
    let levels = ((1u64 << bits) - 1) as f32;
    l.iter()
        .zip(u)
        .map(|(&l, &u)| ((u - l) / levels).max(1e-8))
        .collect()
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

/// Forward on a flex tensor (N×C×H×W) with per-channel bounds `l`, `u` (C).
pub fn forward(x: &FlexTensor, l: &FlexTensor, u: &FlexTensor, bits: u32) -> FlexTensor {
    let (_, c, hw) = shape(x);
    let (l, u) = (values(l), values(u));
    assert!(
        l.len() == u.len() && (l.len() == c || l.len() == 1),
        "bound sizes"
    );
    let s = steps(&l, &u, bits);
    let mut y = values(x).into_owned();
    y.par_chunks_mut(hw).enumerate().for_each(|(p, plane)| {
        let ch = bound_of(p, c, l.len());
        plane
            .iter_mut()
            .for_each(|v| *v = q1(*v, l[ch], u[ch], s[ch]));
    });
    FlexTensor::from_data(TensorData::new(y, x.layout().shape().clone()))
}

/// Backward of the fused quantizer: keeps its input and bounds.
#[derive(Debug)]
struct FakeQuant;

impl Backward<Flex, 3> for FakeQuant {
    type State = (FlexTensor, FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_l, node_u] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (x, l, u) = ops.state;
        let (n, c, hw) = shape(&x);
        let (xv, gv, lv, uv) = (values(&x), values(&g), values(&l), values(&u));
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
                    let gu = if x - hi > 0.0 { g } else { 0.0 };
                    let gl = if lo - x > 0.0 { g } else { 0.0 };
                    *d = g - gu - gl;
                    su += gu;
                    sl += gl;
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
pub fn forward_ad(x: AdPrim, l: AdPrim, u: AdPrim, bits: u32) -> AdPrim {
    let y = forward(&x.primitive, &l.primitive, &u.primitive, bits);
    match FakeQuant
        .prepare::<NoCheckpointing>([x.node.clone(), l.node.clone(), u.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x.primitive, l.primitive, u.primitive), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
