//! Adam (Kingma & Ba, ICLR 2015) in PyTorch's formulation, over the named parameter store:
//! m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g², θ ← θ − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
//! Optional clipping of the global L2 norm of all gradients (PyTorch `clip_grad_norm_`).

use crate::models::Params;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};

/// Adam state.
pub struct Adam<B: Backend> {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken.
    pub t: usize,
    pub m: Vec<Tensor<B, 1>>,
    pub v: Vec<Tensor<B, 1>>,
}

impl<B: Backend> Adam<B> {
    pub fn new(params: &Params<B>, beta1: f64, beta2: f64, eps: f64) -> Self {
        let zeros = || params.tensors.iter().map(|t| t.zeros_like()).collect();
        Self {
            beta1,
            beta2,
            eps,
            t: 0,
            m: zeros(),
            v: zeros(),
        }
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, params: &mut Params<B>, grads: Vec<Tensor<B, 1>>, lr: f64) {
        self.t += 1;
        let bc1 = 1.0 - self.beta1.powi(self.t as i32);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        let step = lr / bc1;
        for (i, g) in grads.into_iter().enumerate() {
            let mult = params.lr_mult[i];
            if mult == 0.0 {
                continue;
            }
            let m =
                self.m[i].clone().mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1);
            let v = self.v[i].clone().mul_scalar(self.beta2)
                + (g.clone() * g).mul_scalar(1.0 - self.beta2);
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(self.eps);
            params.tensors[i] =
                params.tensors[i].clone() - (m.clone() / denom).mul_scalar(step * mult);
            self.m[i] = m;
            self.v[i] = v;
        }
    }
}

/// Scale gradients so that their global L2 norm is at most `max_norm`; returns the norm before.
pub fn clip_global_norm<B: Backend>(grads: &mut [Tensor<B, 1>], max_norm: f64) -> f64 {
    let sq: Vec<Tensor<B, 1>> = grads
        .iter()
        .map(|g| (g.clone() * g.clone()).sum())
        .collect();
    let total = Tensor::cat(sq, 0).sum().into_scalar();
    let norm = total.elem::<f64>().sqrt();
    if norm > max_norm {
        let k = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = g.clone().mul_scalar(k);
        }
    }
    norm
}
