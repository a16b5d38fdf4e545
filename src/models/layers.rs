//! Functional layers on named parameters.

use super::params::Params;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

/// `same`-padded k×k convolution with bias, parameters `<name>.weight` and `<name>.bias`.
pub fn conv<B: Backend>(p: &Params<B>, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let w: Tensor<B, 4> = p.get(&format!("{name}.weight"));
    let k = w.dims()[2];
    let b: Tensor<B, 1> = p.get(&format!("{name}.bias"));
    conv2d(
        x,
        w,
        Some(b),
        ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1),
    )
}

/// Sub-pixel convolution's shuffle (Shi et al., CVPR 2016), PyTorch `pixel_shuffle` order:
/// input channel c·r² + i·r + j goes to output channel c at (h·r + i, w·r + j).
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let co = c / (r * r);
    x.reshape([n * co, r, r, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([n, co, h * r, w * r])
}
