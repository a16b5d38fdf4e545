//! Sub-pixel convolution's shuffle (Shi et al., CVPR 2016) in PyTorch's `pixel_shuffle` order,
//! as one pass over the data: y[n][c][h·r + i][w·r + j] = x[n][c·r² + i·r + j][h][w]; its
//! gradient is the inverse permutation. A plain forward for `Flex` and a custom autodiff
//! operation for `Autodiff<Flex>` (burn's reshape–permute–reshape goes through a generic strided
//! copy, a few per cent of a training step). A permutation: exact, whatever the thread count.

use super::flex::{values, AdPrim};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

/// x (n × c·r² × h × w) → y (n × c × h·r × w·r).
pub fn shuffle(x: &[f32], [n, cr, h, w]: [usize; 4], r: usize) -> Vec<f32> {
    let c = cr / (r * r);
    let plane = h * r * w * r;
    let mut y = vec![0f32; n * c * plane];
    y.par_chunks_mut(plane).enumerate().for_each(|(nc, out)| {
        let (img, ch) = (nc / c, nc % c);
        for i in 0..r {
            for j in 0..r {
                let src = &x[(img * cr + ch * r * r + i * r + j) * h * w..][..h * w];
                for hh in 0..h {
                    let row = &mut out[(hh * r + i) * w * r..][..w * r];
                    for (ww, v) in src[hh * w..(hh + 1) * w].iter().enumerate() {
                        row[ww * r + j] = *v;
                    }
                }
            }
        }
    });
    y
}

/// The inverse of [`shuffle`]: dy (n × c × h·r × w·r) → dx (n × c·r² × h × w).
pub fn unshuffle(dy: &[f32], [n, cr, h, w]: [usize; 4], r: usize) -> Vec<f32> {
    let c = cr / (r * r);
    let mut dx = vec![0f32; n * cr * h * w];
    dx.par_chunks_mut(h * w).enumerate().for_each(|(nk, out)| {
        let (img, k) = (nk / cr, nk % cr);
        let (ch, i, j) = (k / (r * r), (k % (r * r)) / r, k % r);
        let src = &dy[(img * c + ch) * h * r * w * r..][..h * r * w * r];
        for hh in 0..h {
            let row = &src[(hh * r + i) * w * r..][..w * r];
            for (ww, o) in out[hh * w..(hh + 1) * w].iter_mut().enumerate() {
                *o = row[ww * r + j];
            }
        }
    });
    dx
}

fn dims(x: &FlexTensor) -> [usize; 4] {
    let s = x.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// Forward on a flex tensor.
pub fn forward(x: &FlexTensor, r: usize) -> FlexTensor {
    let d = dims(x);
    let y = shuffle(&values(x), d, r);
    let shape = vec![d[0], d[1] / (r * r), d[2] * r, d[3] * r];
    FlexTensor::from_data(TensorData::new(y, Shape::from(shape)))
}

/// The backward node: keeps the input's dimensions and the factor.
#[derive(Debug)]
struct Shuffle;

impl Backward<Flex, 1> for Shuffle {
    type State = ([usize; 4], usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (d, r) = ops.state;
        if let Some(node) = node {
            let dx = unshuffle(&values(&dy), d, r);
            let t = FlexTensor::from_data(TensorData::new(dx, Shape::from(d.to_vec())));
            grads.register::<Flex>(node.id, t);
        }
    }
}

/// Forward on a training tensor, recording [`Shuffle`] when the input is tracked.
pub fn forward_ad(x: AdPrim, r: usize) -> AdPrim {
    let d = dims(&x.primitive);
    let y = forward(&x.primitive, r);
    match Shuffle
        .prepare::<NoCheckpointing>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((d, r), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}
