//! A symbolic forward: the operations a backbone performs, on opaque values, for writers of a
//! graph (ONNX export). A backbone's `trace` mirrors its `forward` (`Ops`) step for step; the
//! tracer decides what a conv or an activation point means (FP, or quantize–dequantize pairs).

use super::build::{Bn, Conv, PRelu, Point};
use super::params::ParamId;

/// An elementwise operation with a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Add,
    Sub,
    Mul,
    Div,
}

/// The operations the backbones' forwards are made of.
pub trait Trace {
    /// A value (a tensor name in a graph).
    type V: Clone;
    /// `same`-padded convolution `c` with its bias; quantized as the plan says.
    fn conv(&mut self, c: &Conv, x: Self::V) -> Self::V;
    /// Activation quantization point `p` (identity when the plan has none there).
    fn act(&mut self, p: &Point, x: Self::V) -> Self::V;
    fn relu(&mut self, x: Self::V) -> Self::V;
    fn add(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// x ∘ v for a scalar v.
    fn scalar(&mut self, x: Self::V, op: Scalar, v: f32) -> Self::V;
    /// x + v with one v per channel (1×C×1×1).
    fn add_channels(&mut self, x: Self::V, v: &[f32]) -> Self::V;
    /// Sub-pixel shuffle by `r` in PyTorch's `pixel_shuffle` order.
    fn pixel_shuffle(&mut self, x: Self::V, r: usize) -> Self::V;
    /// Concatenation along channels.
    fn concat(&mut self, xs: Vec<Self::V>) -> Self::V;
    /// x·scale + shift with one (scale, shift) per channel.
    fn channel_affine(&mut self, x: Self::V, scale: &[f32], shift: &[f32]) -> Self::V;
    /// PReLU with one shared slope a: x for x ≥ 0, a·x below.
    fn prelu(&mut self, x: Self::V, a: f32) -> Self::V;
    /// A parameter's values.
    fn param(&self, id: ParamId) -> Vec<f32>;

    /// BatchNorm in evaluation mode as [`super::layers::batch_norm`] computes it:
    /// x·(γ/√(var + ε)) + (β − mean·γ/√(var + ε)).
    fn batch_norm(&mut self, bn: &Bn, x: Self::V) -> Self::V {
        let (g, b) = (self.param(bn.gamma), self.param(bn.beta));
        let (m, v) = (self.param(bn.mean), self.param(bn.var));
        let scale: Vec<f32> = g
            .iter()
            .zip(&v)
            .map(|(g, v)| g / (v + super::layers::BN_EPS as f32).sqrt())
            .collect();
        let shift: Vec<f32> = b
            .iter()
            .zip(&m)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        self.channel_affine(x, &scale, &shift)
    }

    /// A PReLU layer.
    fn prelu_layer(&mut self, p: &PRelu, x: Self::V) -> Self::V {
        let a = self.param(p.slope)[0];
        self.prelu(x, a)
    }
}
