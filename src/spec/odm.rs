//! The ODM method's switches, each a spec field so every ablation is a RON file:
//! the regularizer on quantizer inputs, the cooperative gating rule, and the distribution-offset
//! policy (Hong & Lee, "Overcoming Distribution Mismatch in Quantizing Image Super-Resolution
//! Networks").

use serde::{Deserialize, Serialize};

/// Regularizer on every quantized layer's activation-quantizer input X_i (B×C×H×W).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum Regularizer {
    #[default]
    None,
    /// L_var = mean over layers of the mean over images (and channels) of the variance (or
    /// standard deviation) of X_i over H×W (per channel) or over C×H×W (per tensor).
    Variance {
        lambda: f64,
        #[serde(default)]
        stat: VarStat,
        #[serde(default)]
        scope: VarScope,
    },
    /// Published variant: L_M = Σ_i ‖X_i − q(X_i)‖₂ (λ = 1e-5 for EDSR, 1e-6 for RDN), with
    /// the residual differentiated as `residual` says (default `Ste`, left out of the canonical
    /// spec at its default so no earlier run's hash changes).
    Mismatch {
        lambda: f64,
        #[serde(default, skip_serializing_if = "Residual::is_ste")]
        residual: Residual,
    },
}

/// How the mismatch regularizer's residual X − q(X) is differentiated; the paper does not say,
/// and both readings are defensible.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Residual {
    /// Through the quantizer's straight-through estimator: ∂q/∂X = 1 inside [l, u], so
    /// ∂L_M/∂X = 0 there; only clipped elements (∂L_M/∂X = (X − q)/‖X − q‖) and the bounds
    /// learn from it.
    #[default]
    Ste,
    /// q(X) held constant, ‖X − sg(q(X))‖: ∂L_M/∂X = (X − q(X))/‖X − q(X)‖ for every element,
    /// so the rounding residual pulls each element towards its level. A layer's bounds get
    /// nothing from its own term; they still reach later layers' X through the forward pass.
    Detached,
}

impl Residual {
    /// True for the default (`Ste`).
    pub fn is_ste(&self) -> bool {
        *self == Residual::Ste
    }
}

impl Regularizer {
    /// λ, or 0 without a regularizer.
    pub fn lambda(&self) -> f64 {
        match self {
            Regularizer::None => 0.0,
            Regularizer::Variance { lambda, .. } | Regularizer::Mismatch { lambda, .. } => *lambda,
        }
    }
}

/// Statistic of the variance regularizer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VarStat {
    #[default]
    Variance,
    Std,
}

/// Granularity of the variance regularizer.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VarScope {
    #[default]
    PerChannel,
    PerTensor,
}

/// How g_reg enters the update g = g_rec + λ·w ⊙ g_reg.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gating {
    /// The rule that sets w. Default `Sign`.
    #[serde(default)]
    pub rule: GateRule,
    /// Parameters that receive the regularizer's gradient and that the rule looks at; the others
    /// get w = 0. Default `All`.
    #[serde(default)]
    pub params: GateParams,
    /// Log conflict ratio, cosine and gated fraction, and per parameter group the gradient
    /// norms, their cosine and the mean weight, every N steps. Default 10.
    #[serde(default = "d_log")]
    pub log_every: usize,
    /// Which tensors' statistics the global rules (`GlobalDot`, `CosineSoft(per_tensor: false)`)
    /// decide on. Default `All`, left out of the canonical spec at its default.
    #[serde(default, skip_serializing_if = "CoopScope::is_all")]
    pub scope: CoopScope,
}

/// The cooperation scope: the tensors pooled into the cosine (or dot product) a global rule
/// decides on. The weight it gives still applies to every tensor in `params`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CoopScope {
    /// Every tensor in `params` (bounds, biases and layers the regularizer does not reach
    /// included).
    #[default]
    All,
    /// The conv weights in `params` only.
    ConvWeights,
    /// Each tensor its own: `CosineSoft(per_tensor: false)` then gives what `per_tensor: true`
    /// gives, `GlobalDot` what `TensorDot` gives.
    PerTensor,
}

impl CoopScope {
    /// True for the default (`All`).
    pub fn is_all(&self) -> bool {
        *self == CoopScope::All
    }
}

fn d_log() -> usize {
    10
}

impl Default for Gating {
    fn default() -> Self {
        Self {
            rule: GateRule::default(),
            params: GateParams::default(),
            log_every: d_log(),
            scope: CoopScope::default(),
        }
    }
}

/// The gating rule.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Default)]
pub enum GateRule {
    /// w = 0: the regularizer is ignored.
    Never,
    /// w = 1: plain joint training.
    Always,
    /// Per element: w = 1 where sign(g_reg) = sign(g_rec) (both non-zero), else 0.
    #[default]
    Sign,
    /// Per parameter tensor: w = 1 if ⟨g_rec, g_reg⟩ > 0.
    TensorDot,
    /// One decision over all parameters: w = 1 if Σ⟨g_rec, g_reg⟩ > 0.
    GlobalDot,
    /// w = (cos(g_rec, g_reg) + 1)/2, over all parameters or per tensor.
    CosineSoft { per_tensor: bool },
}

impl GateRule {
    /// The rule's name in method labels.
    pub fn label(self) -> &'static str {
        match self {
            GateRule::Never => "never",
            GateRule::Always => "always-on",
            GateRule::Sign => "sign-gated",
            GateRule::TensorDot => "tensor-dot-gated",
            GateRule::GlobalDot => "global-dot-gated",
            GateRule::CosineSoft { .. } => "cosine-weighted",
        }
    }
}

/// Which parameters the gate covers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GateParams {
    #[default]
    All,
    /// Convolution weights only (not biases, BatchNorm, PReLU slopes or quantizer parameters).
    WeightsOnly,
}

/// Selective distribution offsets, chosen from FP calibration statistics of each quantized
/// layer's input: M_σ = std_c(σ_c)/mean_c(σ_c), M_μ = std_c(μ_c)/mean_c(σ_c).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum OffsetPolicy {
    #[default]
    None,
    AllScale,
    AllShift,
    AllBoth,
    /// A learned channel-wise scale where M_σ is selected and a shift where M_μ is selected.
    Selective {
        scale: Select,
        shift: Select,
    },
}

/// How layers are selected by their M statistic.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
pub enum Select {
    Off,
    /// M > threshold.
    Threshold(f64),
    /// The top fraction of layers by M (at least one when the fraction is positive).
    TopFraction(f64),
}
