//! Shared layer pieces: what a forward pass needs from its context ([`Ops`]), BatchNorm, PReLU
//! and the pixel shuffle.

use super::build::{Bn, Conv, PRelu, Point};
use super::params::{ParamId, Params};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// BatchNorm ε (PyTorch default).
pub const BN_EPS: f64 = 1e-5;

/// What a backbone's `forward` reads and calls: parameters by handle, the (possibly quantized)
/// convolution and activation points, and the pass's mode. Implemented by `forward::Fwd`,
/// which adds quantization and capture; backbones never see either.
pub trait Ops<B: Backend> {
    /// The parameters; a model's come first, in declaration order.
    fn params(&self) -> &Params<B>;
    /// `same`-padded convolution `c` (quantized as the pass's plan says).
    fn conv(&self, c: &Conv, x: Tensor<B, 4>) -> Tensor<B, 4>;
    /// Activation point `p` (quantized as the pass's plan says).
    fn act(&self, p: &Point, x: Tensor<B, 4>) -> Tensor<B, 4>;
    /// Mark `x` as the body output (PAMS's `out`, the feature SKT compares); returns it.
    fn feature(&self, x: Tensor<B, 4>) -> Tensor<B, 4>;
    /// Training mode: BatchNorm uses batch statistics.
    fn train(&self) -> bool;
    /// Stop after the last quantizable layer and return the body features.
    fn body_only(&self) -> bool;
    /// Report BatchNorm `bn`'s detached batch (mean, unbiased variance) in training mode.
    fn bn_batch(&self, bn: &Bn, mean: Tensor<B, 1>, var: Tensor<B, 1>);

    /// A parameter by handle, reshaped to its declared shape.
    fn param<const D: usize>(&self, id: ParamId) -> Tensor<B, D> {
        self.params().at(id)
    }
}

/// BatchNorm2d (Ioffe & Szegedy, ICML 2015) over N×C×H×W. Training mode: batch mean and biased
/// batch variance over N, H, W (gradients flow through both), and the detached (mean, unbiased
/// variance) are reported through [`Ops::bn_batch`]. Evaluation mode: the running buffers.
pub fn batch_norm<B: Backend>(f: &impl Ops<B>, bn: &Bn, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let gamma = f.param::<1>(bn.gamma).reshape([1, c, 1, 1]);
    let beta = f.param::<1>(bn.beta).reshape([1, c, 1, 1]);
    if f.train() {
        let mean = x.clone().mean_dims(&[0, 2, 3]);
        let xc = x - mean.clone();
        let var = xc.clone().square().mean_dims(&[0, 2, 3]);
        let m = n * h * w;
        let unbiased = m as f64 / (m.max(2) - 1) as f64;
        f.bn_batch(
            bn,
            mean.detach().reshape([c]),
            var.clone().detach().mul_scalar(unbiased).reshape([c]),
        );
        xc / var.add_scalar(BN_EPS).sqrt() * gamma + beta
    } else {
        let rm = f.param::<1>(bn.mean).reshape([1, c, 1, 1]);
        let rv = f.param::<1>(bn.var).reshape([1, c, 1, 1]);
        let scale = gamma / rv.add_scalar(BN_EPS).sqrt();
        let shift = beta - rm * scale.clone();
        x * scale + shift
    }
}

/// PReLU with one shared slope a: `relu(x) − a·relu(−x)`.
pub fn prelu<B: Backend>(f: &impl Ops<B>, p: &PRelu, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let a = f.param::<1>(p.slope).reshape([1, 1, 1, 1]);
    relu(x.clone()) - relu(x.neg()) * a
}

/// Sub-pixel convolution's shuffle (Shi et al., CVPR 2016), PyTorch `pixel_shuffle` order:
/// input channel c·r² + i·r + j goes to output channel c at (h·r + i, w·r + j).
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    crate::kernels::pixel_shuffle(x, r)
}
