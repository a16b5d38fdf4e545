//! The ODM regularizers on the activation-quantizer inputs X_i (B×C×H×W) of the quantized layers.

use crate::models::Params;
use crate::quant::{fake_quant_act, QuantPlan};
use crate::spec::{Regularizer, Residual, VarScope, VarStat};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Population variance of each row of a 2-D tensor (mean of squared deviations).
fn row_var<B: Backend>(x: Tensor<B, 2>) -> Tensor<B, 1> {
    let m = x.clone().mean_dim(1);
    let d = x - m;
    let [r, _] = d.dims();
    (d.clone() * d).mean_dim(1).reshape([r])
}

/// Variance regularizer: mean over layers of the mean over images (and channels) of the
/// variance — or standard deviation √(var + 1e-8) — of X over H×W (per channel) or over C×H×W
/// (per tensor).
pub fn variance_loss<B: Backend>(
    acts: &[Tensor<B, 4>],
    stat: VarStat,
    scope: VarScope,
) -> Tensor<B, 1> {
    let mut total: Option<Tensor<B, 1>> = None;
    for x in acts {
        let [b, c, h, w] = x.dims();
        let rows = match scope {
            VarScope::PerChannel => x.clone().reshape([b * c, h * w]),
            VarScope::PerTensor => x.clone().reshape([b, c * h * w]),
        };
        let v = row_var(rows);
        let v = match stat {
            VarStat::Variance => v,
            VarStat::Std => v.add_scalar(1e-8).sqrt(),
        };
        let l = v.mean();
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    total
        .expect("at least one quantized layer")
        .div_scalar(acts.len() as f64)
}

/// Mismatch regularizer (published ODM): L_M = Σ_i ‖X_i − q(X_i)‖₂ over the whole batch, with
/// q(X_i) differentiated through the quantizer (`Ste`) or held constant (`Detached`, q(X_i)
/// detached: ∂L_M/∂X_i = (X_i − q(X_i))/‖X_i − q(X_i)‖).
pub fn mismatch_loss<B: Backend>(
    p: &Params<B>,
    plan: &QuantPlan,
    acts: &[(String, Tensor<B, 4>)],
    residual: Residual,
) -> Tensor<B, 1> {
    let mut total: Option<Tensor<B, 1>> = None;
    for (name, x) in acts {
        let lq = plan.layer(name).expect("captured layers are planned");
        let q = fake_quant_act(p, name, lq, x.clone());
        let q = match residual {
            Residual::Ste => q,
            Residual::Detached => q.detach(),
        };
        let d = x.clone() - q;
        let l = (d.clone() * d).sum().sqrt();
        total = Some(match total {
            Some(t) => t + l,
            None => l,
        });
    }
    total.expect("at least one quantized layer")
}

/// The regularizer's loss (without λ), or `None` when there is none.
pub fn reg_loss<B: Backend>(
    reg: &Regularizer,
    p: &Params<B>,
    plan: &QuantPlan,
    acts: &[(String, Tensor<B, 4>)],
) -> Option<Tensor<B, 1>> {
    if acts.is_empty() {
        return None;
    }
    match reg {
        Regularizer::None => None,
        Regularizer::Variance { stat, scope, .. } => {
            let xs: Vec<Tensor<B, 4>> = acts.iter().map(|(_, x)| x.clone()).collect();
            Some(variance_loss(&xs, *stat, *scope))
        }
        Regularizer::Mismatch { residual, .. } => Some(mismatch_loss(p, plan, acts, *residual)),
    }
}
