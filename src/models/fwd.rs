//! The forward context: parameters, the quantization plan, and optional capture of every
//! quantized layer's activation-quantizer input (for range calibration, the ODM regularizers and
//! the distribution figures).

use super::params::Params;
use crate::quant::{apply_offsets, fake_quant_act, fake_quant_weight, QuantPlan};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use std::cell::RefCell;
use std::collections::VecDeque;

/// What a forward pass can record.
#[derive(Default)]
pub struct Capture<B: Backend> {
    /// (layer, activation-quantizer input) in forward order.
    pub act_inputs: Vec<(String, Tensor<B, 4>)>,
    /// Capture inputs of every planned layer even in FP mode (calibration before QAT).
    pub all_planned: bool,
    /// BatchNorm batch statistics (layer, mean, unbiased variance), detached, in training mode.
    /// The trainer folds them into the `<layer>.running_mean` / `.running_var` buffers.
    pub bn_batch: Vec<(String, Tensor<B, 1>, Tensor<B, 1>)>,
    /// The body output before the upsampler (PAMS's `out`, the feature SKT compares).
    pub feature: Option<Tensor<B, 4>>,
    /// Record every convolution's output in `conv_out` (layer, output), in forward order.
    pub record_convs: bool,
    pub conv_out: Vec<(String, Tensor<B, 4>)>,
    /// Outputs of an earlier, identical forward (same parameters, same input), in forward
    /// order: while the next convolution's name matches the front entry, that output is reused
    /// instead of recomputed (the backward is unchanged). A mismatch clears the queue.
    pub replay: VecDeque<(String, Tensor<B, 4>)>,
}

impl<B: Backend> Capture<B> {
    /// The recorded output of convolution `name` if it is next in the replay queue.
    fn replayed(&mut self, name: &str) -> Option<Tensor<B, 4>> {
        match self.replay.front() {
            Some((n, _)) if n == name => self.replay.pop_front().map(|(_, t)| t),
            Some(_) => {
                self.replay.clear();
                None
            }
            None => None,
        }
    }
}

/// Everything a forward pass reads.
pub struct Fwd<'a, B: Backend> {
    pub p: &'a Params<B>,
    pub plan: &'a QuantPlan,
    pub capture: Option<&'a RefCell<Capture<B>>>,
    /// Training mode (BatchNorm uses batch statistics); evaluation uses running statistics.
    pub train: bool,
    /// Stop after the last quantizable layer and return the body features (the regularizer's
    /// pass needs nothing after it).
    pub body_only: bool,
}

impl<'a, B: Backend> Fwd<'a, B> {
    /// An evaluation forward: quantized as `plan` says (an FP plan quantizes nothing), no
    /// capture, BatchNorm on its running statistics.
    pub fn plain(p: &'a Params<B>, plan: &'a QuantPlan) -> Self {
        Self {
            p,
            plan,
            capture: None,
            train: false,
            body_only: false,
        }
    }

    /// A parameter by name, reshaped.
    pub fn get<const D: usize>(&self, name: &str) -> Tensor<B, D> {
        self.p.get(name)
    }

    /// Mark `x` as the body output (recorded when capturing); returns it unchanged.
    pub fn feature(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if let Some(cap) = self.capture {
            cap.borrow_mut().feature = Some(x.clone());
        }
        x
    }

    /// Activation quantization point `name`: offsets, capture of the quantizer input, then the
    /// fake quantizer, when the plan quantizes an activation there; otherwise `x` unchanged.
    pub fn act(&self, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let Some(l) = self.plan.layer(name).filter(|l| l.has_act()) else {
            return x;
        };
        let mut x = x;
        if l.active {
            x = apply_offsets(self.p, name, l, x);
        }
        if let Some(cap) = self.capture {
            let mut c = cap.borrow_mut();
            if l.active || c.all_planned {
                c.act_inputs.push((name.to_string(), x.clone()));
            }
        }
        if l.active {
            x = fake_quant_act(self.p, name, l, x);
        }
        x
    }

    /// `same`-padded convolution `<name>` with bias `<name>.bias`, or none (a zero bias) when
    /// the model declares none. If the plan quantizes the layer, its input activation (point
    /// `<name>`) and its weights go through the fake quantizers first.
    pub fn conv(&self, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut w: Tensor<B, 4> = self.p.get(&format!("{name}.weight"));
        let bias = format!("{name}.bias");
        let b: Tensor<B, 1> = if self.p.has(&bias) {
            self.p.get(&bias)
        } else {
            Tensor::zeros([w.dims()[0]], &w.device())
        };
        let x = self.act(name, x);
        if let Some(l) = self.plan.layer(name).filter(|l| l.active && l.has_weight()) {
            w = fake_quant_weight(self.p, name, l, w);
        }
        let known = self.capture.and_then(|c| c.borrow_mut().replayed(name));
        let y = crate::kernels::conv2d_same_replay(x, w, b, known);
        if let Some(cap) = self.capture {
            let mut c = cap.borrow_mut();
            if c.record_convs {
                c.conv_out.push((name.to_string(), y.clone()));
            }
        }
        y
    }
}
