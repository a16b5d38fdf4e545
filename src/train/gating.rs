//! Cooperative gating (ODM): the update is g = g_rec + λ·w ⊙ g_var, where w follows the rule in
//! the spec, so the regularizer acts only where it does not fight the reconstruction loss.

use crate::spec::GateRule;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::Serialize;

/// What the gate saw on one step (over the parameters in scope).
#[derive(Serialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct GateStats {
    /// Elements whose gradient signs disagree, over elements where both gradients are non-zero.
    pub conflict_ratio: f64,
    /// cos(g_rec, g_var) over all parameters in scope.
    pub cosine: f64,
    /// Mean of w over the elements in scope.
    pub gated_fraction: f64,
}

/// Per-tensor statistics: ⟨g_rec, g_var⟩, ‖g_rec‖², ‖g_var‖², #conflicting, #both non-zero,
/// #agreeing, #elements — fetched from the device in one transfer.
fn tensor_stats<B: Backend>(gr: &[Tensor<B, 1>], gv: &[Tensor<B, 1>]) -> Vec<[f64; 7]> {
    let mut parts = Vec::with_capacity(gr.len() * 7);
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
    all.chunks(7)
        .map(|c| {
            let mut a = [0.0; 7];
            for (o, v) in a.iter_mut().zip(c) {
                *o = *v as f64;
            }
            a
        })
        .collect()
}

/// Combine the gradients: g = g_rec + λ·w ⊙ g_var with w from `rule`; tensors outside `in_scope`
/// get w = 0. Returns the combined gradients and the gate's statistics.
pub fn combine<B: Backend>(
    rule: GateRule,
    in_scope: &[bool],
    g_rec: Vec<Tensor<B, 1>>,
    g_var: Vec<Tensor<B, 1>>,
    lambda: f64,
) -> (Vec<Tensor<B, 1>>, GateStats) {
    let st = tensor_stats(&g_rec, &g_var);
    let sum = |k: usize| -> f64 {
        st.iter()
            .zip(in_scope)
            .filter(|(_, &s)| s)
            .map(|(t, _)| t[k])
            .sum()
    };
    let (dot, nr, nv, conf, nz, n) = (sum(0), sum(1), sum(2), sum(3), sum(4), sum(6));
    let cos = |d: f64, a: f64, b: f64| {
        if a > 0.0 && b > 0.0 {
            d / (a.sqrt() * b.sqrt())
        } else {
            0.0
        }
    };
    let global_cos = cos(dot, nr, nv);
    let mut gated = 0.0;
    let mut out = Vec::with_capacity(g_rec.len());
    for (i, (r, v)) in g_rec.into_iter().zip(g_var).enumerate() {
        if !in_scope[i] || rule == GateRule::Never {
            out.push(r);
            continue;
        }
        let t = st[i];
        let w = match rule {
            GateRule::Never => Some(0.0),
            GateRule::Always => Some(1.0),
            GateRule::Sign => None,
            GateRule::TensorDot => Some(if t[0] > 0.0 { 1.0 } else { 0.0 }),
            GateRule::GlobalDot => Some(if dot > 0.0 { 1.0 } else { 0.0 }),
            GateRule::CosineSoft { per_tensor: true } => Some((cos(t[0], t[1], t[2]) + 1.0) / 2.0),
            GateRule::CosineSoft { per_tensor: false } => Some((global_cos + 1.0) / 2.0),
        };
        match w {
            Some(w) => {
                gated += w * t[6];
                out.push(if w == 0.0 {
                    r
                } else {
                    r + v.mul_scalar(lambda * w)
                });
            }
            None => {
                gated += t[5];
                let mask = (r.clone() * v.clone()).greater_elem(0.0).float();
                out.push(r + (v * mask).mul_scalar(lambda));
            }
        }
    }
    let stats = GateStats {
        conflict_ratio: if nz > 0.0 { conf / nz } else { 0.0 },
        cosine: global_cos,
        gated_fraction: if n > 0.0 { gated / n } else { 0.0 },
    };
    (out, stats)
}
