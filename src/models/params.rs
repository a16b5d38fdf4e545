//! Named parameter store. Parameters live flat (`Tensor<B, 1>`) with their shape and a stable
//! hierarchical name (`head.weight`, `body.0.conv1.weight`, …); layers reshape them on use.
//! Keeping parameters outside burn's `Module` tree gives exact control over initialisation,
//! the optimizer (global-norm clipping, per-group learning rates, gradient gating) and the
//! checkpoint format (safetensors).

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// How a parameter is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// U(−1/√fan_in, 1/√fan_in): PyTorch's default for `nn.Conv2d` weights and biases
    /// (Kaiming-uniform with a = √5), as EDSR-PyTorch uses.
    UniformFanIn(usize),
    /// A constant value.
    Const(f32),
}

/// A parameter's position in [`Params`]. A model's parameters come first, in declaration order
/// (the order of [`super::Layers::decls`]); quantizer parameters are appended after them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamId(pub usize);

/// Declaration of one parameter.
#[derive(Clone, Debug)]
pub struct ParamDecl {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Buffers (BatchNorm running statistics) are stored and checkpointed but not optimized.
    pub buffer: bool,
}

impl ParamDecl {
    /// A trainable parameter.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, init: Init) -> Self {
        Self {
            name: name.into(),
            shape,
            init,
            buffer: false,
        }
    }

    /// A non-trainable buffer.
    pub fn buffer(name: impl Into<String>, shape: Vec<usize>, init: Init) -> Self {
        Self {
            name: name.into(),
            shape,
            init,
            buffer: true,
        }
    }
}

/// Parameters of one model on backend `B`, in declaration order.
#[derive(Clone, Debug)]
pub struct Params<B: Backend> {
    pub names: Vec<String>,
    pub shapes: Vec<Vec<usize>>,
    pub tensors: Vec<Tensor<B, 1>>,
    /// Learning-rate multiplier per parameter; 0 for buffers.
    pub lr_mult: Vec<f64>,
    index: HashMap<String, usize>,
}

/// A 1-D tensor of host values on `device`.
pub fn host_tensor<B: Backend>(v: &[f32], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// The values of a tensor on the host, as f32.
pub fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().expect("f32")
}

/// RNG stream for weight initialisation.
pub const INIT_STREAM: u64 = 1;

impl<B: Backend> Params<B> {
    /// Build from names, shapes and flat tensors.
    pub fn from_parts(
        names: Vec<String>,
        shapes: Vec<Vec<usize>>,
        tensors: Vec<Tensor<B, 1>>,
    ) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let lr_mult = vec![1.0; names.len()];
        Self {
            names,
            shapes,
            tensors,
            lr_mult,
            index,
        }
    }

    /// Append a parameter (e.g. a quantizer bound) with its learning-rate multiplier.
    pub fn push(&mut self, name: &str, shape: Vec<usize>, t: Tensor<B, 1>, lr_mult: f64) {
        self.index.insert(name.to_string(), self.names.len());
        self.names.push(name.to_string());
        self.shapes.push(shape);
        self.tensors.push(t);
        self.lr_mult.push(lr_mult);
    }

    /// Whether a parameter exists.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Replace a parameter's value (same number of elements).
    pub fn set(&mut self, name: &str, t: Tensor<B, 1>) {
        let i = self.idx(name);
        self.tensors[i] = t;
    }

    /// Initialise from declarations with a ChaCha8 stream of `seed` (values drawn in order).
    pub fn init(decls: &[ParamDecl], seed: u64, device: &B::Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        let mut tensors = Vec::new();
        for d in decls {
            let n: usize = d.shape.iter().product();
            let v: Vec<f32> = match d.init {
                Init::UniformFanIn(fan_in) => {
                    let b = 1.0 / (fan_in as f64).sqrt();
                    (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
                }
                Init::Const(c) => vec![c; n],
            };
            tensors.push(Tensor::from_data(TensorData::new(v, [n]), device));
        }
        let mut p = Self::from_parts(
            decls.iter().map(|d| d.name.clone()).collect(),
            decls.iter().map(|d| d.shape.clone()).collect(),
            tensors,
        );
        p.lr_mult = decls
            .iter()
            .map(|d| if d.buffer { 0.0 } else { 1.0 })
            .collect();
        p
    }

    /// Index of a parameter by name.
    pub fn idx(&self, name: &str) -> usize {
        *self
            .index
            .get(name)
            .unwrap_or_else(|| panic!("model asked for undeclared parameter {name}"))
    }

    /// A parameter reshaped to its declared `D`-dimensional shape.
    pub fn get<const D: usize>(&self, name: &str) -> Tensor<B, D> {
        let i = self.idx(name);
        let s: [usize; D] = self.shapes[i].clone().try_into().expect("parameter rank");
        self.tensors[i].clone().reshape(s)
    }

    /// A model parameter by handle, reshaped to its declared `D`-dimensional shape.
    pub fn at<const D: usize>(&self, id: ParamId) -> Tensor<B, D> {
        let s: [usize; D] = self.shapes[id.0]
            .clone()
            .try_into()
            .expect("parameter rank");
        self.tensors[id.0].clone().reshape(s)
    }

    /// Whether the first parameters are the model's declarations, in order (what handles
    /// index).
    pub fn starts_with(&self, decls: &[ParamDecl]) -> bool {
        decls.len() <= self.names.len() && decls.iter().zip(&self.names).all(|(d, n)| &d.name == n)
    }

    /// Copy to another device / backend of the same kind.
    pub fn from_host(
        names: Vec<String>,
        shapes: Vec<Vec<usize>>,
        values: Vec<Vec<f32>>,
        device: &B::Device,
    ) -> Self {
        let tensors = values
            .into_iter()
            .map(|v| {
                let n = v.len();
                Tensor::from_data(TensorData::new(v, [n]), device)
            })
            .collect();
        Self::from_parts(names, shapes, tensors)
    }
}

impl<B: Backend> Params<B> {
    /// Leaves on the autodiff backend that track gradients.
    pub fn to_autodiff<AB: AutodiffBackend<InnerBackend = B>>(&self) -> Params<AB> {
        let mut p = Params::from_parts(
            self.names.clone(),
            self.shapes.clone(),
            self.tensors
                .iter()
                .zip(&self.lr_mult)
                .map(|(t, &m)| {
                    let t = Tensor::<AB, 1>::from_inner(t.clone());
                    if m > 0.0 {
                        t.require_grad()
                    } else {
                        t
                    }
                })
                .collect(),
        );
        p.lr_mult = self.lr_mult.clone();
        p
    }
}

impl<AB: AutodiffBackend> Params<AB> {
    /// The gradient of every parameter (zeros where a parameter did not take part).
    pub fn grads(&self, grads: &AB::Gradients) -> Vec<Tensor<AB::InnerBackend, 1>> {
        self.tensors
            .iter()
            .map(|t| {
                t.grad(grads)
                    .unwrap_or_else(|| t.clone().inner().zeros_like())
            })
            .collect()
    }
}
