//! Cooperative gating (ODM): the update is g = g_rec + λ·w ⊙ g_reg, where g_reg is the
//! regularizer's gradient and w follows the rule in the spec, so the regularizer acts only where
//! it does not fight the reconstruction loss.

use crate::spec::GateRule;
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

impl GateRule {
    /// The weight the rule gives a tensor with statistics `own`, where `pooled` are the
    /// statistics the global rules decide on (every tensor in scope).
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
    const K: usize = 7;
    let mut parts = Vec::with_capacity(gr.len() * K);
    for (r, v) in gr.iter().zip(gv) {
        let prod = r.clone() * v.clone();
        let n = r.dims()[0] as f64;
        parts.push(prod.clone().sum());
        parts.push((r.clone() * r.clone()).sum());
        parts.push((v.clone() * v.clone()).sum());
        parts.push(prod.clone().lower_elem(0.0).float().sum());
        parts.push(prod.clone().not_equal_elem(0.0).float().sum());
        parts.push(prod.greater_elem(0.0).float().sum());
        parts.push(r.zeros_like().narrow(0, 0, 1).add_scalar(n));
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
            }
        })
        .collect()
}

/// Combine the gradients: g = g_rec + λ·w ⊙ g_reg with w from `rule`; tensors outside `in_scope`
/// get w = 0. Returns the combined gradients and the gate's statistics.
pub fn combine<B: Backend>(
    rule: GateRule,
    in_scope: &[bool],
    g_rec: Vec<Tensor<B, 1>>,
    g_reg: Vec<Tensor<B, 1>>,
    lambda: f64,
) -> (Vec<Tensor<B, 1>>, GateStats) {
    let st = tensor_stats(&g_rec, &g_reg);
    let pooled = PairStats::total(st.iter().zip(in_scope).filter(|(_, &s)| s).map(|(t, _)| t));
    let mut gated = 0.0;
    let mut out = Vec::with_capacity(g_rec.len());
    for (i, (r, v)) in g_rec.into_iter().zip(g_reg).enumerate() {
        if !in_scope[i] || rule == GateRule::Never {
            out.push(r);
            continue;
        }
        let t = &st[i];
        match rule.weight(t, &pooled) {
            Weight::Scalar(w) => {
                gated += w * t.elements;
                out.push(if w == 0.0 {
                    r
                } else {
                    r + v.mul_scalar(lambda * w)
                });
            }
            Weight::Agreeing => {
                gated += t.agreeing;
                let mask = (r.clone() * v.clone()).greater_elem(0.0).float();
                out.push(r + (v * mask).mul_scalar(lambda));
            }
        }
    }
    let stats = GateStats {
        conflict_ratio: if pooled.both_nonzero > 0.0 {
            pooled.conflicting / pooled.both_nonzero
        } else {
            0.0
        },
        cosine: pooled.cosine(),
        gated_fraction: if pooled.elements > 0.0 {
            gated / pooled.elements
        } else {
            0.0
        },
    };
    (out, stats)
}
