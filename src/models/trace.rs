//! A symbolic forward: the operations a backbone performs, on opaque values, for writers of a
//! graph (ONNX export). A backbone's `trace` mirrors its `forward` (`Ops`) step for step; the
//! tracer decides what a conv or an activation point means (FP, or quantize–dequantize pairs).

use super::build::{Conv, Point};

/// An elementwise operation with a scalar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    Add,
    Sub,
    Mul,
    Div,
}

/// The operations EDSR's forward is made of.
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
}
