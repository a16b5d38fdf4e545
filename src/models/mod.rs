//! Backbones and their parameters.

pub mod edsr;
pub mod layers;
pub mod params;

pub use params::{Init, ParamDecl, Params};

use crate::spec::ModelSpec;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A backbone built from its spec.
#[derive(Clone, Debug)]
pub enum Model {
    Edsr(edsr::Edsr),
}

impl Model {
    pub fn from_spec(m: &ModelSpec, scale: usize) -> Self {
        match m {
            ModelSpec::Edsr(c) => Model::Edsr(edsr::Edsr::new(c.clone(), scale)),
        }
    }

    pub fn decls(&self) -> Vec<ParamDecl> {
        match self {
            Model::Edsr(m) => m.decls(),
        }
    }

    pub fn forward<B: Backend>(&self, p: &Params<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Model::Edsr(m) => m.forward(p, x),
        }
    }

    /// Value range of the network's input and output.
    pub fn rgb_range(&self) -> f64 {
        match self {
            Model::Edsr(m) => m.cfg.rgb_range,
        }
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.decls()
            .iter()
            .map(|d| d.shape.iter().product::<usize>())
            .sum()
    }
}
