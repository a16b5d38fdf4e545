//! Per-channel scale and shift of an N×C×H×W tensor, y = x·s_c and y = x + t_c (ODM's
//! selective channel-wise offsets, `quant::apply_offsets`), each as one pass forward and one
//! backward on `Flex` and `Autodiff<Flex>`. burn-flex has no fast path for a [1, C, 1, 1]
//! broadcast and falls back to a scalar strided iterator (about 6 % of a training step with
//! offsets). The forward is one f32 multiply or add per value, as burn's, so its values are
//! bit-identical. Backward: dx = g·s_c (bit-identical) or g; ds_c = Σ g·x and dt_c = Σ g over
//! N, H, W: per image and channel in [`LANES`] fixed lanes summed by a fixed tree, then over
//! images in index order, so the sums depend on the layout only, never on the thread count
//! (they differ from burn's own reduction in the last bits).

use super::fake_quant::{tree_sum, LANES};
use super::flex::{values, AdPrim};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

/// Which per-channel operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// y = x·s_c.
    Scale,
    /// y = x + t_c.
    Shift,
}

fn dims(x: &FlexTensor) -> (usize, usize, usize) {
    let s = x.layout().shape();
    (s[0], s[1], s[2] * s[3])
}

fn tensor(v: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// Forward on flex tensors: x (N×C×H×W), p (C).
pub fn forward(x: &FlexTensor, p: &FlexTensor, kind: Kind) -> FlexTensor {
    let (_, c, hw) = dims(x);
    let pv = values(p);
    assert_eq!(pv.len(), c, "one offset per channel");
    let mut y = values(x).into_owned();
    y.par_chunks_mut(hw).enumerate().for_each(|(i, plane)| {
        let v = pv[i % c];
        match kind {
            Kind::Scale => plane.iter_mut().for_each(|a| *a *= v),
            Kind::Shift => plane.iter_mut().for_each(|a| *a += v),
        }
    });
    tensor(y, x.layout().shape().clone())
}

/// Σ a_i·b_i (or Σ a_i when `b` is `None`) over one plane, in [`LANES`] lanes and a fixed tree.
fn plane_sum(a: &[f32], b: Option<&[f32]>) -> f32 {
    let mut acc = [0.0f32; LANES];
    let body = a.len() / LANES * LANES;
    match b {
        Some(b) => {
            for (ac, bc) in a[..body]
                .chunks_exact(LANES)
                .zip(b[..body].chunks_exact(LANES))
            {
                for k in 0..LANES {
                    acc[k] += ac[k] * bc[k];
                }
            }
            for i in body..a.len() {
                acc[i - body] += a[i] * b[i];
            }
        }
        None => {
            for ac in a[..body].chunks_exact(LANES) {
                for k in 0..LANES {
                    acc[k] += ac[k];
                }
            }
            for i in body..a.len() {
                acc[i - body] += a[i];
            }
        }
    }
    tree_sum(acc)
}

/// Per-channel sums over N, H, W of g·x (`x` given) or of g: planes in parallel, then images in
/// index order.
pub fn channel_sums(g: &[f32], x: Option<&[f32]>, c: usize, hw: usize) -> Vec<f32> {
    let parts: Vec<f32> = (0..g.len() / hw)
        .into_par_iter()
        .map(|p| {
            let r = p * hw..(p + 1) * hw;
            plane_sum(&g[r.clone()], x.map(|x| &x[r]))
        })
        .collect();
    let mut s = vec![0.0f32; c];
    for (p, v) in parts.iter().enumerate() {
        s[p % c] += v;
    }
    s
}

/// The backward node; for `Scale` it keeps x and s.
#[derive(Debug)]
struct Affine(Kind);

impl Backward<Flex, 2> for Affine {
    type State = (Option<(FlexTensor, FlexTensor)>, Shape);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_p] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (kept, shape) = ops.state;
        let (_, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
        match (self.0, kept) {
            (Kind::Scale, Some((x, s))) => {
                if let Some(node) = node_p {
                    let ds = channel_sums(&values(&g), Some(&values(&x)), c, hw);
                    grads.register::<Flex>(node.id, tensor(ds, Shape::new([c])));
                }
                if let Some(node) = node_x {
                    grads.register::<Flex>(node.id, forward(&g, &s, Kind::Scale));
                }
            }
            (Kind::Shift, _) => {
                if let Some(node) = node_p {
                    let dt = channel_sums(&values(&g), None, c, hw);
                    grads.register::<Flex>(node.id, tensor(dt, Shape::new([c])));
                }
                if let Some(node) = node_x {
                    grads.register::<Flex>(node.id, g);
                }
            }
            (Kind::Scale, None) => unreachable!("the scale's backward keeps x and s"),
        }
    }
}

/// Forward on training tensors, recording [`Affine`] when x or p is tracked.
pub fn forward_ad(x: AdPrim, p: AdPrim, kind: Kind) -> AdPrim {
    let y = forward(&x.primitive, &p.primitive, kind);
    let shape = x.primitive.layout().shape().clone();
    match Affine(kind)
        .prepare::<NoCheckpointing>([x.node.clone(), p.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let kept = (kind == Kind::Scale).then_some((x.primitive, p.primitive));
            prep.finish((kept, shape), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
