//! Quantization presets (serde-tagged). `Fp` trains in full precision; the others are the
//! baselines ODM is compared with, all starting from an FP model. Each preset is the quantizer,
//! range initialisation and placement of the public code whose name it carries (README, "QAT").

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which quantizer a run uses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum QuantSpec {
    /// Full precision.
    #[default]
    Fp,
    /// The AdaBM/DAQ quantizer (Cheeun/AdaBM `src/model/quantize.py`, `QConv2d`) on every
    /// quantized conv's input, activation bounds from min–max calibration.
    MinMax(QuantOpts),
    /// PAMS (Li et al., ECCV 2020; colorjam/PAMS `model/quant_ops.py`): symmetric learned α with
    /// a zero level, initialised from the EMA of the per-image max|x|; weights by max|W|; three
    /// activation quantizers per residual block.
    Pams(QuantOpts),
    /// DDTB without its dynamic gate (Zhong et al., ECCV 2022; zysxmu/DDTB
    /// `model/quant_ops.py`): asymmetric learned bounds with a rounded zero point, initialised
    /// from the 1st/99th percentiles of the first batch; weights clipped at their 1st/99th
    /// percentiles; PAMS's placement.
    DdtbStatic(QuantOpts),
    /// DDTB in full (Zhong et al., ECCV 2022; zysxmu/DDTB `model/quant_ops.py`,
    /// `main_limitrange_incremental.py`): `DdtbStatic`'s quantizer, weights, initialisation and
    /// placement, plus the input-adaptive gate on the `dynamic_ratio` of the activation points
    /// whose calibration max/min vary most, rescaling the bounds per input from iteration
    /// `dynamic_from` on (before it, an MSE pull of the gate's logits to 0). See `quant::ddtb`.
    Ddtb(QuantOpts),
    /// DAQ (Hong et al., WACV 2022; Cheeun/DAQ-pytorch `src/model/quantize.py`): channel-wise
    /// distribution-aware activations, normalised per image and channel by their own mean and
    /// standard deviation and quantized with the Gaussian-optimal step (nothing learned, no
    /// calibration); weights on a grid of g(b)·std(W). Conv-input placement (the two convs of
    /// every residual block). See `quant::daq`.
    Daq(QuantOpts),
    /// The quantizer the published ODM describes (Hong & Lee, ECCV 2024), which is AdaBM's:
    /// learned asymmetric activation bounds on conv inputs from averaged 1st/99th percentiles,
    /// learned symmetric weight bound (or WCC).
    Odm(QuantOpts),
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
    /// Learning-rate multiplier of the activation bounds and of a learned weight bound. Default:
    /// the preset's (PAMS and DDTB train α at 1e-2 against a base 1e-4: 100; MinMax, Odm: 1).
    #[serde(default)]
    pub bound_lr_mult: Option<f64>,
    /// Also quantize the head and tail convolutions, at 8 bits. Default false.
    #[serde(default)]
    pub head_tail_8bit: bool,
    /// Weight range. Default `Preset` (the preset's own).
    #[serde(default)]
    pub weight_clip: WeightClip,
    /// Gradient of the learned bounds. Default `Full` (through the step size, as every source).
    #[serde(default)]
    pub bound_grad: BoundGrad,
    /// DAQ only: bits of the per-channel σ (`qq_bit`; 32 leaves σ unquantized). Default 8, as
    /// DAQ's training script (`--quantize_quantization 8`). Left out of the canonical spec when
    /// unset, so that it changes no earlier run's hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_bits: Option<u32>,
    /// DDTB only: the fraction of activation points that get a gate (`--dynamic_ratio`).
    /// Default: DDTB's `run.sh`, 0.3 on EDSR, 0.5 on RDN, 0.1 on SRResNet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_ratio: Option<f64>,
    /// DDTB only: the iteration from which the gated bounds are used (DDTB's
    /// `first_stage_epoch = 6`: after 4 of its 59 training epochs). Default: 4/59 of the
    /// schedule's iterations, rounded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_from: Option<usize>,
    /// Weight of PAMS's structured knowledge transfer (the FP model's attention map of the body
    /// output as a teacher, `w_at`); 0 switches it off. Default: the preset's (PAMS 1000, others 0).
    #[serde(default)]
    pub skt: Option<f64>,
}

impl QuantOpts {
    /// `w_bits`/`a_bits` with every other option at its default (as a spec that names only the
    /// bits gets).
    pub fn bits(w_bits: u32, a_bits: u32) -> Self {
        Self {
            w_bits,
            a_bits,
            per_channel: false,
            init: None,
            calib_batches: d_calib(),
            bound_lr_mult: None,
            head_tail_8bit: false,
            weight_clip: WeightClip::default(),
            bound_grad: BoundGrad::default(),
            sigma_bits: None,
            dynamic_ratio: None,
            dynamic_from: None,
            skt: None,
        }
    }
}

/// What the learned quantizer bounds are differentiated through.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BoundGrad {
    /// Through the clip and the step size s(l, u), as PAMS, DDTB and AdaBM backpropagate
    /// (LSQ-like term (q(x) − clip(x))/(u − l) for every element).
    #[default]
    Full,
    /// Through the clip only (PACT): ∂q/∂u = 1[x > u], ∂q/∂l = 1[x < l]. An ablation.
    ClipOnly,
}

/// The weight range.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum WeightClip {
    /// The preset's own: PAMS max|W| (zero level), DDTB the 1st/99th percentiles of W (rounded
    /// zero point), MinMax/Odm a learned u_w initialised from max(W) (AdaBM).
    #[default]
    Preset,
    /// The preset's weight form with u_w = max|W| recomputed every step (not learned).
    MaxAbs,
    /// Weight-clipping correction (ODM, ECCV 2024): u_w = P_p(|W|)·γ with one learnable γ per
    /// layer, initialised to 1, the percentile recomputed from the current weights every step.
    /// On the AdaBM weight quantizer (MinMax, Odm).
    Wcc {
        #[serde(default = "d_high")]
        percentile: f64,
    },
}

fn d_calib() -> usize {
    4
}

/// How activation ranges are initialised from the calibration batches.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum RangeInit {
    /// l = min over batches of min(x), u = max of max(x).
    MinMax,
    /// l, u = the `low`/`high` percentiles of x over the whole tensor, averaged over the
    /// calibration batches, or from the first batch only (`first_batch`, as DDTB calibrates).
    Percentile {
        #[serde(default = "d_low")]
        low: f64,
        #[serde(default = "d_high")]
        high: f64,
        #[serde(default)]
        first_batch: bool,
    },
    /// m = mean over the batch's images of max|x| per image; α ← decay·α + (1 − decay)·m per
    /// batch, starting from the first batch's m.
    EmaMax {
        #[serde(default = "d_decay")]
        decay: f64,
    },
    /// PAMS as its code runs: during its first epoch `_ema` overwrites α with every batch's m
    /// (`if self.epoch == 1: self.max_val = max_val`), so α is the last calibration batch's m.
    ImageMax,
    /// AdaBM `init_qparams_a`: per batch the `low`/`high` percentiles of x (0/100 are min/max),
    /// the first batch's value then v ← (1 − beta)·batch + beta·v.
    Ema {
        #[serde(default)]
        low: f64,
        #[serde(default = "d_hundred")]
        high: f64,
        #[serde(default = "d_beta")]
        beta: f64,
    },
}

fn d_hundred() -> f64 {
    100.0
}
fn d_beta() -> f64 {
    0.9
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
    /// The options and the activation quantizer form, or `None` for `Fp`.
    pub fn opts_form(&self) -> Option<(&QuantOpts, QForm)> {
        match self {
            QuantSpec::Fp => None,
            QuantSpec::MinMax(o) | QuantSpec::Odm(o) => Some((o, QForm::Affine)),
            QuantSpec::Pams(o) => Some((o, QForm::SymZero)),
            QuantSpec::DdtbStatic(o) | QuantSpec::Ddtb(o) => Some((o, QForm::ZeroPoint)),
            QuantSpec::Daq(o) => Some((
                o,
                QForm::Daq {
                    sigma_bits: o.sigma_bits.unwrap_or(8),
                },
            )),
        }
    }

    /// Where the preset's sources put their quantizers.
    pub fn placement(&self) -> Placement {
        match self {
            QuantSpec::Pams(_) | QuantSpec::DdtbStatic(_) | QuantSpec::Ddtb(_) => Placement::Block,
            QuantSpec::Daq(_) => Placement::Daq,
            _ => Placement::ConvInput,
        }
    }

    /// The preset's name as the sources spell it.
    pub fn label(&self) -> &'static str {
        match self {
            QuantSpec::Fp => "FP",
            QuantSpec::MinMax(_) => "MinMax",
            QuantSpec::Pams(_) => "PAMS",
            QuantSpec::DdtbStatic(_) => "DDTB-static",
            QuantSpec::Ddtb(_) => "DDTB",
            QuantSpec::Odm(_) => "ODM",
            QuantSpec::Daq(_) => "DAQ",
        }
    }

    /// DDTB's gating in force: the fraction of activation points gated (its `run.sh`: 0.3 on
    /// EDSR, 0.5 on RDN, 0.1 on SRResNet) and the first iteration that uses the gated bounds
    /// (4/59 of `iterations`: DDTB's static epochs 2–5 of 60, after its calibration epoch).
    /// `None` for every other preset.
    pub fn dynamic(&self, model: &super::ModelSpec, iterations: usize) -> Option<(f64, usize)> {
        let QuantSpec::Ddtb(o) = self else {
            return None;
        };
        let ratio = o.dynamic_ratio.unwrap_or(match model {
            super::ModelSpec::Edsr(_) => 0.3,
            super::ModelSpec::Rdn(_) => 0.5,
            super::ModelSpec::SrResNet(_) => 0.1,
        });
        let from = o
            .dynamic_from
            .unwrap_or((iterations as f64 * 4.0 / 59.0).round() as usize);
        Some((ratio, from))
    }

    /// The SKT weight in force.
    pub fn skt_weight(&self) -> f64 {
        match self {
            QuantSpec::Fp => 0.0,
            // PAMS README commands and DDTB's `main_limitrange_incremental.py`: w_at = 1e3.
            QuantSpec::Pams(o) | QuantSpec::DdtbStatic(o) | QuantSpec::Ddtb(o) => {
                o.skt.unwrap_or(1e3)
            }
            QuantSpec::MinMax(o) | QuantSpec::Odm(o) | QuantSpec::Daq(o) => o.skt.unwrap_or(0.0),
        }
    }

    /// The bound learning-rate multiplier in force.
    pub fn bound_lr_mult(&self) -> f64 {
        let preset = match self {
            QuantSpec::Pams(_) | QuantSpec::DdtbStatic(_) | QuantSpec::Ddtb(_) => 100.0,
            _ => 1.0,
        };
        self.opts_form()
            .and_then(|(o, _)| o.bound_lr_mult)
            .unwrap_or(preset)
    }

    /// The range initialisation in force for a backbone (DDTB calibrates RDN at the 5th/95th
    /// percentiles, `M=95` in its `model/rdn.py`; EDSR and SRResNet at the 1st/99th).
    pub fn range_init(&self, model: &super::ModelSpec) -> RangeInit {
        match (self, model) {
            (QuantSpec::DdtbStatic(o) | QuantSpec::Ddtb(o), super::ModelSpec::Rdn(_))
                if o.init.is_none() =>
            {
                RangeInit::Percentile {
                    low: 5.0,
                    high: 95.0,
                    first_batch: true,
                }
            }
            _ => self.preset_range_init(),
        }
    }

    fn preset_range_init(&self) -> RangeInit {
        let preset = match self {
            QuantSpec::Fp | QuantSpec::MinMax(_) => RangeInit::Ema {
                low: 0.0,
                high: 100.0,
                beta: d_beta(),
            },
            QuantSpec::Pams(_) => RangeInit::ImageMax,
            QuantSpec::DdtbStatic(_) | QuantSpec::Ddtb(_) => RangeInit::Percentile {
                low: d_low(),
                high: d_high(),
                first_batch: true,
            },
            // DAQ calibrates nothing (its statistics are per input); never used.
            QuantSpec::Odm(_) | QuantSpec::Daq(_) => RangeInit::Ema {
                low: d_low(),
                high: d_high(),
                beta: d_beta(),
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
    /// A PyTorch checkpoint whose state dict sits under a dotted `key` (e.g. `"model.sd"`), with
    /// `strip_prefix` removed from its keys (e.g. `"encoder."`), as BasicSR's `param_key` and
    /// `strict_load` do. With `strict: false` parameters it lacks keep their initial values;
    /// the run lists loaded, left-at-init and unused keys on stderr and in `provenance.json`.
    /// Also takes our own `.safetensors` files (then `key` is not used).
    Pretrained {
        path: PathBuf,
        #[serde(default)]
        key: Option<String>,
        #[serde(default)]
        strip_prefix: Option<String>,
        #[serde(default = "d_strict")]
        strict: bool,
        /// Multiply the network's internal features by c > 0 while computing the same function
        /// (`models::rescale`; e.g. 127.5 takes LIIF's [−1, 1]-input EDSR to EDSR-PyTorch's
        /// 0–255 feature scale). Needs every parameter loaded (strict). Default none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        feature_scale: Option<f64>,
        /// The input normalisation the weights were trained with, when the model's differs:
        /// `Symmetric` weights into an `Edsr(input_norm: Centered)` (every bias × rgb_range/2,
        /// exact; `models::rescale::recentre`). Needs a strict load. Default none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from_input_norm: Option<super::InputNorm>,
    },
}

fn d_strict() -> bool {
    true
}

/// The quantizer function, each as its source writes it (README, "QAT"); n = 2^b − 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum QForm {
    /// AdaBM/DAQ: q = round((clamp(x, l, u) − l)/(u − l)·n)/n·(u − l) + l (2^b levels).
    Affine,
    /// PAMS: [−α, α], q = round(clip(x)·Q/α)·α/Q with Q = 2^(b−1) − 1 (2^b − 1 levels, one at 0).
    SymZero,
    /// DDTB: s = n/(u − l), z = round(s·l) + 2^(b−1), q = (round(s·clip(x) − z) + z)/s, so that
    /// 0 is exactly representable.
    ZeroPoint,
    /// DAQ: per image and channel, (x − μ)/σ on the Gaussian-optimal grid, σ itself quantized
    /// at `sigma_bits` (`quant::daq`); no bounds.
    Daq { sigma_bits: u32 },
}

impl QForm {
    /// One learned bound (α) instead of two.
    pub fn symmetric(self) -> bool {
        self == QForm::SymZero
    }
}

/// Where a preset's sources quantize activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Placement {
    /// The input of every quantized conv (DAQ, AdaBM, ODM).
    ConvInput,
    /// PAMS/DDTB's residual block: the shortcut (block input), the post-ReLU feature (the second
    /// conv's input) and the block output before the add; the first conv's input stays FP.
    Block,
    /// DAQ's: conv inputs and weights as `ConvInput`, except where DAQ's code keeps a conv FP
    /// (RDN's local and global feature fusion).
    Daq,
}
