//! Cooperative gating (ODM): the update is g = g_rec + λ·w ⊙ g_reg, where g_reg is the
//! regularizer's gradient and w follows the rule in the spec, so the regularizer acts only where
//! it does not fight the reconstruction loss.

use crate::spec::{CoopScope, GateRule};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::Serialize;

/// What the gate saw on one step (over the parameters in scope).
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct GateStats {
    /// Elements whose gradient signs disagree, over elements where both gradients are non-zero.
    pub conflict_ratio: f64,
    /// cos(g_rec, g_reg) over all parameters in scope.
    pub cosine: f64,
    /// Mean of w over the elements in scope.
    pub gated_fraction: f64,
    /// Per parameter group, in [`Group::ALL`]'s order.
    pub groups: [GroupStats; 3],
}

/// A parameter group of the gate's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Convolution weights.
    ConvWeights,
    /// The quantizers' learned bounds (activation l, u or α; weight u_w; WCC's γ).
    Bounds,
    /// Every other trainable tensor (biases, BatchNorm, PReLU slopes, offsets, DDTB's gates).
    Other,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::ConvWeights, Group::Bounds, Group::Other];

    /// The `set` of its rows in `metrics.csv`.
    pub fn key(self) -> &'static str {
        match self {
            Group::ConvWeights => "conv_weights",
            Group::Bounds => "bounds",
            Group::Other => "other",
        }
    }
}

/// One group's gradients on one step.
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct GroupStats {
    /// ‖g_rec‖.
    pub norm_rec: f64,
    /// ‖λ·w ⊙ g_reg‖: the regularizer's part of the update as applied.
    pub norm_reg: f64,
    /// cos(g_rec, g_reg) over the group.
    pub cosine: f64,
    /// Mean of w over the group's elements (0 outside the gate's parameters).
    pub weight: f64,
}

/// Sums over the elements of one tensor (or of several, see [`PairStats::total`]) of a pair of
/// gradients g_rec, g_reg.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PairStats {
    /// ⟨g_rec, g_reg⟩.
    pub dot: f64,
    /// ‖g_rec‖².
    pub rec_sq: f64,
    /// ‖g_reg‖².
    pub reg_sq: f64,
    /// Elements with g_rec·g_reg < 0.
    pub conflicting: f64,
    /// Elements with g_rec·g_reg ≠ 0.
    pub both_nonzero: f64,
    /// Elements with g_rec·g_reg > 0.
    pub agreeing: f64,
    /// Elements.
    pub elements: f64,
    /// ‖g_reg‖² over the agreeing elements.
    pub reg_sq_agreeing: f64,
}

impl PairStats {
    /// Field by field sums over `parts`.
    pub fn total<'a>(parts: impl Iterator<Item = &'a PairStats> + Clone) -> Self {
        let sum = |f: fn(&PairStats) -> f64| parts.clone().map(f).sum::<f64>();
        Self {
            dot: sum(|t| t.dot),
            rec_sq: sum(|t| t.rec_sq),
            reg_sq: sum(|t| t.reg_sq),
            conflicting: sum(|t| t.conflicting),
            both_nonzero: sum(|t| t.both_nonzero),
            agreeing: sum(|t| t.agreeing),
            elements: sum(|t| t.elements),
            reg_sq_agreeing: sum(|t| t.reg_sq_agreeing),
        }
    }

    /// cos(g_rec, g_reg), 0 when either gradient is zero.
    pub fn cosine(&self) -> f64 {
        if self.rec_sq > 0.0 && self.reg_sq > 0.0 {
            self.dot / (self.rec_sq.sqrt() * self.reg_sq.sqrt())
        } else {
            0.0
        }
    }
}

/// The gate's weight on one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weight {
    /// One w for the whole tensor.
    Scalar(f64),
    /// Per element: w = 1 where g_rec·g_reg > 0, else 0.
    Agreeing,
}

impl Weight {
    /// Σ w over the tensor's elements and ‖w ⊙ g_reg‖².
    fn sums(self, t: &PairStats) -> (f64, f64) {
        match self {
            Weight::Scalar(w) => (w * t.elements, w * w * t.reg_sq),
            Weight::Agreeing => (t.agreeing, t.reg_sq_agreeing),
        }
    }
}

impl GateRule {
    /// The weight the rule gives a tensor with statistics `own`, where `pooled` are the
    /// statistics the global rules decide on (the tensors [`CoopScope`] pools for it).
    pub fn weight(self, own: &PairStats, pooled: &PairStats) -> Weight {
        let on = |dot: f64| if dot > 0.0 { 1.0 } else { 0.0 };
        match self {
            GateRule::Never => Weight::Scalar(0.0),
            GateRule::Always => Weight::Scalar(1.0),
            GateRule::Sign => Weight::Agreeing,
            GateRule::TensorDot => Weight::Scalar(on(own.dot)),
            GateRule::GlobalDot => Weight::Scalar(on(pooled.dot)),
            GateRule::CosineSoft { per_tensor: true } => Weight::Scalar((own.cosine() + 1.0) / 2.0),
            GateRule::CosineSoft { per_tensor: false } => {
                Weight::Scalar((pooled.cosine() + 1.0) / 2.0)
            }
        }
    }
}

/// [`PairStats`] of each tensor pair, fetched from the device in one transfer.
fn tensor_stats<B: Backend>(gr: &[Tensor<B, 1>], gv: &[Tensor<B, 1>]) -> Vec<PairStats> {
    const K: usize = 8;
    let mut parts = Vec::with_capacity(gr.len() * K);
    for (r, v) in gr.iter().zip(gv) {
        let prod = r.clone() * v.clone();
        let n = r.dims()[0] as f64;
        let agree = prod.clone().greater_elem(0.0).float();
        parts.push(prod.clone().sum());
        parts.push((r.clone() * r.clone()).sum());
        parts.push((v.clone() * v.clone()).sum());
        parts.push(prod.clone().lower_elem(0.0).float().sum());
        parts.push(prod.not_equal_elem(0.0).float().sum());
        parts.push(agree.clone().sum());
        parts.push(r.zeros_like().narrow(0, 0, 1).add_scalar(n));
        parts.push((v.clone() * v.clone() * agree).sum());
    }
    let all: Vec<f32> = Tensor::cat(parts, 0)
        .to_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32");
    all.chunks(K)
        .map(|c| {
            let f = |k: usize| c[k] as f64;
            PairStats {
                dot: f(0),
                rec_sq: f(1),
                reg_sq: f(2),
                conflicting: f(3),
                both_nonzero: f(4),
                agreeing: f(5),
                elements: f(6),
                reg_sq_agreeing: f(7),
            }
        })
        .collect()
}

/// The gate of one run: its rule, cooperation scope and λ, and per parameter tensor whether the
/// regularizer reaches it (`in_scope`; the others get w = 0) and its group in the log (`None`:
/// frozen, left out of the log).
pub struct Gate<'a> {
    pub rule: GateRule,
    pub scope: CoopScope,
    pub lambda: f64,
    pub in_scope: &'a [bool],
    pub groups: &'a [Option<Group>],
}

impl Gate<'_> {
    /// The statistics the global rules decide on for tensor `i`: those of every tensor in scope
    /// (`All`), of the conv weights in scope (`ConvWeights`), or of tensor `i` alone
    /// (`PerTensor`).
    fn pooled(&self, st: &[PairStats], all: &PairStats, convs: &PairStats, i: usize) -> PairStats {
        match self.scope {
            CoopScope::All => *all,
            CoopScope::ConvWeights => *convs,
            CoopScope::PerTensor => st[i],
        }
    }

    /// Combine the gradients: g = g_rec + λ·w ⊙ g_reg. Returns the combined gradients and the
    /// gate's statistics.
    pub fn combine<B: Backend>(
        &self,
        g_rec: Vec<Tensor<B, 1>>,
        g_reg: Vec<Tensor<B, 1>>,
    ) -> (Vec<Tensor<B, 1>>, GateStats) {
        let st = tensor_stats(&g_rec, &g_reg);
        let among = |keep: &dyn Fn(usize) -> bool| {
            PairStats::total((0..st.len()).filter(|&i| keep(i)).map(|i| &st[i]))
        };
        let all = among(&|i| self.in_scope[i]);
        let convs = among(&|i| self.in_scope[i] && self.groups[i] == Some(Group::ConvWeights));
        let mut w_sum = vec![(0.0, 0.0); st.len()];
        let mut out = Vec::with_capacity(g_rec.len());
        for (i, (r, v)) in g_rec.into_iter().zip(g_reg).enumerate() {
            if !self.in_scope[i] || self.rule == GateRule::Never {
                out.push(r);
                continue;
            }
            let w = self.rule.weight(&st[i], &self.pooled(&st, &all, &convs, i));
            w_sum[i] = w.sums(&st[i]);
            out.push(match w {
                Weight::Scalar(0.0) => r,
                Weight::Scalar(w) => r + v.mul_scalar(self.lambda * w),
                Weight::Agreeing => {
                    let mask = (r.clone() * v.clone()).greater_elem(0.0).float();
                    r + (v * mask).mul_scalar(self.lambda)
                }
            });
        }
        let gated: f64 = w_sum.iter().map(|s| s.0).sum();
        let stats = GateStats {
            conflict_ratio: ratio(all.conflicting, all.both_nonzero),
            cosine: all.cosine(),
            gated_fraction: ratio(gated, all.elements),
            groups: Group::ALL.map(|g| self.group_stats(g, &st, &w_sum)),
        };
        (out, stats)
    }

    /// [`GroupStats`] of group `g` from the tensors' statistics and (Σ w, ‖w ⊙ g_reg‖²).
    fn group_stats(&self, g: Group, st: &[PairStats], w_sum: &[(f64, f64)]) -> GroupStats {
        let members: Vec<usize> = (0..st.len())
            .filter(|&i| self.groups[i] == Some(g))
            .collect();
        let t = PairStats::total(members.iter().map(|&i| &st[i]));
        let (w, applied): (f64, f64) = members
            .iter()
            .fold((0.0, 0.0), |(a, b), &i| (a + w_sum[i].0, b + w_sum[i].1));
        GroupStats {
            norm_rec: t.rec_sq.sqrt(),
            norm_reg: self.lambda.abs() * applied.sqrt(),
            cosine: t.cosine(),
            weight: ratio(w, t.elements),
        }
    }
}

/// a/b, 0 when b is not positive.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}
