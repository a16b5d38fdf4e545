//! Backbones and their parameters. Each backbone declares its layers once, through a
//! [`Builder`] (parameters, PyTorch keys, convolutions for cost accounting, quantization points),
//! keeps the typed handles, and runs `forward` against an [`Ops`] context. Adding a backbone:
//! one module with `build` and `forward`, one arm in [`Arch`] (and in `spec::ModelSpec`); see
//! ARCHITECTURE.md.

pub mod build;
pub mod edsr;
pub mod layers;
pub mod params;
pub mod rdn;
pub mod rescale;
pub mod srresnet;
pub mod trace;

pub use build::{Bias, Bn, Builder, Conv, ConvInfo, Layers, PRelu, Point, QPoint, Q};
pub use layers::Ops;
pub use params::{Init, ParamDecl, ParamId, Params};
pub use trace::{Scalar, Trace};

use crate::spec::{ModelSpec, Placement};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The backbones, each with its layer handles.
#[derive(Clone, Debug)]
pub enum Arch {
    Edsr(edsr::Edsr),
    Rdn(rdn::Rdn),
    SrResNet(srresnet::SrResNet),
}

/// A backbone built from its spec: its handles and everything it declared.
#[derive(Clone, Debug)]
pub struct Model {
    pub arch: Arch,
    layers: Layers,
}

impl Model {
    pub fn from_spec(m: &ModelSpec, scale: usize) -> Self {
        let mut b = Builder::new();
        let arch = match m {
            ModelSpec::Edsr(c) => Arch::Edsr(edsr::Edsr::build(c.clone(), scale, &mut b)),
            ModelSpec::Rdn(c) => Arch::Rdn(rdn::Rdn::build(c.clone(), scale, &mut b)),
            ModelSpec::SrResNet(c) => {
                Arch::SrResNet(srresnet::SrResNet::build(c.clone(), scale, &mut b))
            }
        };
        Self {
            arch,
            layers: b.finish(),
        }
    }

    /// The spec the backbone was built from.
    pub fn spec(&self) -> ModelSpec {
        match &self.arch {
            Arch::Edsr(m) => ModelSpec::Edsr(m.cfg.clone()),
            Arch::Rdn(m) => ModelSpec::Rdn(m.cfg.clone()),
            Arch::SrResNet(m) => ModelSpec::SrResNet(m.cfg.clone()),
        }
    }

    /// Everything the backbone declared.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Parameter (and buffer) declarations, in initialisation order.
    pub fn decls(&self) -> Vec<ParamDecl> {
        self.layers.decls.clone()
    }

    /// Every convolution in forward order.
    pub fn convs(&self) -> Vec<ConvInfo> {
        self.layers.convs.clone()
    }

    /// The quantization points of a placement, in forward order.
    pub fn quant_points(&self, placement: Placement) -> Vec<QPoint> {
        self.layers.quant_points(placement)
    }

    /// The official PyTorch checkpoint key of one of our parameter names.
    pub fn pytorch_key(&self, name: &str) -> String {
        self.layers.pytorch_key(name)
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR. The context's parameters must start with
    /// this model's declarations (checked in debug builds).
    pub fn forward<B: Backend>(&self, f: &impl Ops<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        debug_assert!(f.params().starts_with(&self.layers.decls));
        match &self.arch {
            Arch::Edsr(m) => m.forward(f, x),
            Arch::Rdn(m) => m.forward(f, x),
            Arch::SrResNet(m) => m.forward(f, x),
        }
    }

    /// The forward as a symbolic trace (evaluation mode).
    pub fn trace<T: Trace>(&self, t: &mut T, x: T::V) -> T::V {
        match &self.arch {
            Arch::Edsr(m) => m.trace(t, x),
            Arch::Rdn(m) => m.trace(t, x),
            Arch::SrResNet(m) => m.trace(t, x),
        }
    }

    /// Value range of the network's input and output.
    pub fn rgb_range(&self) -> f64 {
        match &self.arch {
            Arch::Edsr(m) => m.cfg.rgb_range,
            Arch::Rdn(m) => m.cfg.rgb_range,
            Arch::SrResNet(m) => m.cfg.rgb_range,
        }
    }

    /// Number of trainable parameters (buffers excluded).
    pub fn param_count(&self) -> usize {
        self.layers
            .decls
            .iter()
            .filter(|d| !d.buffer)
            .map(|d| d.shape.iter().product::<usize>())
            .sum()
    }
}
