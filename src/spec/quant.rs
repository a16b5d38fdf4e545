//! Quantization presets (serde-tagged). `Fp` trains in full precision; the others are the
//! baselines ODM is compared with, all starting from an FP model.

use crate::quant::ActForm;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which quantizer a run uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum QuantSpec {
    /// Full precision.
    #[default]
    Fp,
    /// Static asymmetric activation bounds from min–max calibration, learned during QAT.
    MinMax(QuantOpts),
    /// PAMS (Li et al., ECCV 2020): symmetric activation bound α, learned, initialised from the
    /// EMA of max|x|; weights max-abs symmetric.
    Pams(QuantOpts),
    /// DDTB without its dynamic gate (Zhong et al., ECCV 2022): asymmetric learned bounds
    /// initialised from the averaged 1st/99th percentiles.
    DdtbStatic(QuantOpts),
}

/// Options shared by the quantized presets.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuantOpts {
    /// Weight bits: 2, 3, 4 or 8.
    pub w_bits: u32,
    /// Activation bits: 2, 3, 4 or 8.
    pub a_bits: u32,
    /// Per-channel activation bounds and weight ranges. Default false (layer-wise).
    #[serde(default)]
    pub per_channel: bool,
    /// Range initialisation; default: the preset's own (MinMax, EmaMax, Percentile).
    #[serde(default)]
    pub init: Option<RangeInit>,
    /// Calibration batches drawn from the training stream before QAT. Default 4.
    #[serde(default = "d_calib")]
    pub calib_batches: usize,
    /// Learning-rate multiplier of the activation bounds. Default 1.0.
    #[serde(default = "d_mult")]
    pub bound_lr_mult: f64,
    /// Also quantize the head and tail convolutions, at 8 bits. Default false.
    #[serde(default)]
    pub head_tail_8bit: bool,
    /// Weight range. Default `MaxAbs`.
    #[serde(default)]
    pub weight_clip: WeightClip,
}

/// The symmetric weight range [−u_w, u_w].
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum WeightClip {
    /// u_w = max|W| (per layer, or per output channel).
    #[default]
    MaxAbs,
    /// Weight-clipping correction (ODM, ECCV 2024): u_w = P_p(|W|)·γ with one learnable γ per
    /// layer, initialised to 1, the percentile recomputed from the current weights every step.
    Wcc {
        #[serde(default = "d_high")]
        percentile: f64,
    },
}

fn d_calib() -> usize {
    4
}
fn d_mult() -> f64 {
    1.0
}

/// How activation ranges are initialised from the calibration batches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum RangeInit {
    /// l = min over batches of min(x), u = max of max(x).
    MinMax,
    /// l, u = the `low`/`high` percentiles of x, averaged over the batches.
    Percentile {
        #[serde(default = "d_low")]
        low: f64,
        #[serde(default = "d_high")]
        high: f64,
    },
    /// PAMS: m ← decay·m + (1 − decay)·max|x| per batch, starting from the first batch's max.
    EmaMax {
        #[serde(default = "d_decay")]
        decay: f64,
    },
}

fn d_low() -> f64 {
    1.0
}
fn d_high() -> f64 {
    99.0
}
fn d_decay() -> f64 {
    0.9997
}

impl QuantSpec {
    /// The options and activation form, or `None` for `Fp`.
    pub fn opts_form(&self) -> Option<(&QuantOpts, ActForm)> {
        match self {
            QuantSpec::Fp => None,
            QuantSpec::MinMax(o) | QuantSpec::DdtbStatic(o) => Some((o, ActForm::Asymmetric)),
            QuantSpec::Pams(o) => Some((o, ActForm::Symmetric)),
        }
    }

    /// The range initialisation in force.
    pub fn range_init(&self) -> RangeInit {
        let preset = match self {
            QuantSpec::Fp | QuantSpec::MinMax(_) => RangeInit::MinMax,
            QuantSpec::Pams(_) => RangeInit::EmaMax { decay: d_decay() },
            QuantSpec::DdtbStatic(_) => RangeInit::Percentile {
                low: d_low(),
                high: d_high(),
            },
        };
        self.opts_form()
            .and_then(|(o, _)| o.init.clone())
            .unwrap_or(preset)
    }
}

/// Where a run's initial weights come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum InitFrom {
    /// A run folder (its `checkpoint.safetensors`), a `.safetensors` file, or an official
    /// EDSR-PyTorch `.pt` state dict.
    Checkpoint(PathBuf),
    /// An experiment file: its finished result is used, and it is run first if it has none.
    Experiment(PathBuf),
}
