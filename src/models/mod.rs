//! Backbones and their parameters. Each backbone declares its parameters, its convolutions (for
//! cost accounting) and which of them form the quantizable body.

pub mod edsr;
pub mod fwd;
pub mod layers;
pub mod params;
pub mod rdn;
pub mod srresnet;

pub use fwd::{Capture, Fwd};
pub use layers::ConvInfo;
pub use params::{Init, ParamDecl, Params};

use crate::spec::ModelSpec;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// A backbone built from its spec.
#[derive(Clone, Debug)]
pub enum Model {
    Edsr(edsr::Edsr),
    Rdn(rdn::Rdn),
    SrResNet(srresnet::SrResNet),
}

macro_rules! each {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Model::Edsr($m) => $e,
            Model::Rdn($m) => $e,
            Model::SrResNet($m) => $e,
        }
    };
}

impl Model {
    pub fn from_spec(m: &ModelSpec, scale: usize) -> Self {
        match m {
            ModelSpec::Edsr(c) => Model::Edsr(edsr::Edsr::new(c.clone(), scale)),
            ModelSpec::Rdn(c) => Model::Rdn(rdn::Rdn::new(c.clone(), scale)),
            ModelSpec::SrResNet(c) => Model::SrResNet(srresnet::SrResNet::new(c.clone(), scale)),
        }
    }

    /// The spec the backbone was built from.
    pub fn spec(&self) -> ModelSpec {
        match self {
            Model::Edsr(m) => ModelSpec::Edsr(m.cfg.clone()),
            Model::Rdn(m) => ModelSpec::Rdn(m.cfg.clone()),
            Model::SrResNet(m) => ModelSpec::SrResNet(m.cfg.clone()),
        }
    }

    /// Parameter (and buffer) declarations, in initialisation order.
    pub fn decls(&self) -> Vec<ParamDecl> {
        each!(self, m => m.decls())
    }

    /// Every convolution in forward order.
    pub fn convs(&self) -> Vec<ConvInfo> {
        each!(self, m => m.convs())
    }

    /// The quantization points of a placement, in forward order.
    pub fn quant_points(&self, placement: crate::quant::Placement) -> Vec<crate::quant::QPoint> {
        each!(self, m => m.quant_points(placement))
    }

    /// The official PyTorch checkpoint key of one of our parameter names.
    pub fn pytorch_key(&self, name: &str) -> String {
        each!(self, m => m.pytorch_key(name))
    }

    pub fn forward<B: Backend>(&self, f: &Fwd<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        each!(self, m => m.forward(f, x))
    }

    /// Run a full forward and return every planned point's activation-quantizer input, in
    /// forward order (also in FP mode: `Capture::all_planned`). Used by range calibration and
    /// `inspect`; a full pass, so that head/tail points see their real inputs.
    pub fn planned_inputs<B: Backend>(
        &self,
        p: &Params<B>,
        plan: &crate::quant::QuantPlan,
        x: Tensor<B, 4>,
        train: bool,
    ) -> Vec<(String, Tensor<B, 4>)> {
        let cap = std::cell::RefCell::new(Capture {
            all_planned: true,
            ..Default::default()
        });
        let f = Fwd {
            p,
            plan,
            capture: Some(&cap),
            train,
            body_only: false,
        };
        let _ = self.forward(&f, x);
        cap.into_inner().act_inputs
    }

    /// Value range of the network's input and output.
    pub fn rgb_range(&self) -> f64 {
        each!(self, m => m.cfg.rgb_range)
    }

    /// Number of trainable parameters (buffers excluded).
    pub fn param_count(&self) -> usize {
        self.decls()
            .iter()
            .filter(|d| !d.buffer)
            .map(|d| d.shape.iter().product::<usize>())
            .sum()
    }
}
