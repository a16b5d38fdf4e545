//! The forward context a backbone runs against ([`Ops`]): parameters, the quantization plan
//! (fake quantizers and offsets at the planned points), and optional capture of every quantized
//! layer's activation-quantizer input (for range calibration, the ODM regularizers and the
//! distribution figures), BatchNorm batch statistics, the body feature and conv outputs.

use crate::models::{Bn, Conv, Model, Ops, Params, Point};
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
    /// DDTB's gate logits (N×2) of the gated points while their static bounds are in force
    /// (`QuantPlan::gates_live` false), in forward order, for the stage-one loss.
    pub gate_logits: Vec<Tensor<B, 2>>,
    /// Record every active activation point's input and output in `points` (the QAT probe).
    pub record_points: bool,
    pub points: Vec<PointIo<B>>,
}

/// One active activation point as a forward saw it (`Capture::record_points`).
pub struct PointIo<B: Backend> {
    pub name: String,
    /// The point's input before its offsets (a ReLU's output where one feeds the point).
    pub raw: Tensor<B, 4>,
    /// The quantizer's input X (after offsets).
    pub input: Tensor<B, 4>,
    /// The quantizer's output q(X), as the forward used it (DDTB's gated bounds included).
    pub output: Tensor<B, 4>,
    /// DDTB's gate logits (N×2) where the gated bounds quantized X.
    pub logits: Option<Tensor<B, 2>>,
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
}

impl<B: Backend> Ops<B> for Fwd<'_, B> {
    /// Mark `x` as the body output (recorded when capturing); returns it unchanged.
    fn feature(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if let Some(cap) = self.capture {
            cap.borrow_mut().feature = Some(x.clone());
        }
        x
    }

    /// Activation quantization point `p`: see [`Fwd::point`].
    fn act(&self, p: &Point, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.point(&p.name, x)
    }

    /// `same`-padded convolution `c` with its bias, or a zero bias when it has none. If the plan
    /// quantizes the layer, its input activation (point `c.name`) and its weights go through the
    /// fake quantizers first.
    fn conv(&self, c: &Conv, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut w: Tensor<B, 4> = self.p.at(c.weight);
        let b: Tensor<B, 1> = match c.bias {
            Some(id) => self.p.at(id),
            None => Tensor::zeros([c.cout], &w.device()),
        };
        let name = c.name.as_str();
        let x = self.point(name, x);
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

    fn params(&self) -> &Params<B> {
        self.p
    }

    fn train(&self) -> bool {
        self.train
    }

    fn body_only(&self) -> bool {
        self.body_only
    }

    fn bn_batch(&self, bn: &Bn, mean: Tensor<B, 1>, var: Tensor<B, 1>) {
        if let Some(cap) = self.capture {
            cap.borrow_mut().bn_batch.push((bn.name.clone(), mean, var));
        }
    }
}

impl<B: Backend> Fwd<'_, B> {
    /// Activation point `name`: offsets, capture of the quantizer input, then the fake
    /// quantizer, when the plan quantizes an activation there; otherwise `x` unchanged.
    fn point(&self, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let Some(l) = self.plan.layer(name).filter(|l| l.has_act()) else {
            return x;
        };
        let raw = x.clone();
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
        if !l.active {
            return x;
        }
        // A gate runs when its bounds are live, or in the static stage to feed the logit loss
        // and its BatchNorm statistics (training passes capture; evaluation passes do not).
        if l.dynamic && (self.plan.gates_live || self.capture.is_some()) {
            let g = crate::quant::ddtb::gate(self.p, name, &x, self.train);
            if let Some(cap) = self.capture {
                let mut c = cap.borrow_mut();
                c.bn_batch.extend(g.batch_stats);
                if !self.plan.gates_live {
                    c.gate_logits.push(g.logits.clone());
                }
            }
            if self.plan.gates_live {
                let q =
                    crate::quant::ddtb::gated_quant(self.p, name, l, x.clone(), g.logits.clone());
                return self.record_point(name, raw, x, q, Some(g.logits));
            }
        }
        let q = fake_quant_act(self.p, name, l, x.clone());
        self.record_point(name, raw, x, q, None)
    }

    /// Record an active point's tensors when the capture asks for them; returns `output`.
    fn record_point(
        &self,
        name: &str,
        raw: Tensor<B, 4>,
        input: Tensor<B, 4>,
        output: Tensor<B, 4>,
        logits: Option<Tensor<B, 2>>,
    ) -> Tensor<B, 4> {
        if let Some(cap) = self.capture {
            let mut c = cap.borrow_mut();
            if c.record_points {
                c.points.push(PointIo {
                    name: name.to_string(),
                    raw,
                    input,
                    output: output.clone(),
                    logits,
                });
            }
        }
        output
    }
}

/// Run a full forward and return every planned point's activation-quantizer input, in forward
/// order (also in FP mode: `Capture::all_planned`). Used by range calibration and `inspect`; a
/// full pass, so that head/tail points see their real inputs.
pub fn planned_inputs<B: Backend>(
    model: &Model,
    p: &Params<B>,
    plan: &QuantPlan,
    x: Tensor<B, 4>,
    train: bool,
) -> Vec<(String, Tensor<B, 4>)> {
    let cap = RefCell::new(Capture {
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
    let _ = model.forward(&f, x);
    cap.into_inner().act_inputs
}
