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

/// A method's family, in the order the main table lists them (the report groups runs by it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    Fp32,
    MinMax,
    Pams,
    DdtbStatic,
    /// DDTB with its input-adaptive gate (dynamic bounds on part of the layers).
    Ddtb,
    /// DAQ (dynamic, per-input activation statistics).
    Daq,
    /// DAQ with its after-ReLU activations clipped to the b-bit grid (`strict`).
    DaqStrict,
    /// The ODM quantizer, or any method with a regularizer, offsets or WCC.
    Odm,
}

impl Family {
    /// The name tables, figures and `expected.ron` use.
    pub fn label(self) -> &'static str {
        match self {
            Family::Fp32 => "FP32",
            Family::MinMax => "MinMax",
            Family::Pams => "PAMS",
            Family::DdtbStatic => "DDTB-static",
            Family::Ddtb => "DDTB",
            Family::Daq => "DAQ",
            Family::DaqStrict => "DAQ strict",
            Family::Odm => "ODM",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// What a preset is, declared once per [`QuantSpec`] arm right below: everything that differs
/// between presets apart from their options. A new preset is one arm, one descriptor and one
/// line in [`QuantSpec::preset`].
#[derive(Clone, Debug, PartialEq)]
pub struct Preset {
    /// The name as the sources spell it.
    pub label: &'static str,
    /// The family its runs are grouped under (with a regularizer, offsets or WCC: `Odm`).
    pub family: Family,
    /// The activation (and weight) quantizer function; DAQ's σ bits come from `sigma_bits`.
    pub form: QForm,
    /// Where its sources put the quantizers.
    pub placement: Placement,
    /// The SKT weight when `skt` is unset (0: off).
    pub skt: f64,
    /// The bounds' learning-rate multiplier when `bound_lr_mult` is unset.
    pub bound_lr_mult: f64,
    /// The activation range initialisation when `init` is unset, and on RDN where the source
    /// calibrates it differently.
    pub range_init: RangeInit,
    pub rdn_range_init: Option<RangeInit>,
    /// The weight range under `weight_clip: Preset`, and on RDN where the source differs.
    pub weights: WeightQ,
    pub rdn_weights: Option<WeightQ>,
}

/// AdaBM's `init_qparams_a` EMA of per-batch percentiles (β = 0.9).
const fn ema(low: f64, high: f64) -> RangeInit {
    RangeInit::Ema {
        low,
        high,
        beta: 0.9,
    }
}

/// DDTB calibrates on its first batch: 1st/99th percentiles, 5th/95th on RDN (`M=95` in its
/// `model/rdn.py`); its weights clip at their 1st/99th percentiles, min–max on RDN
/// (`QuantConv2d_asym` in its `model/rdn.py`).
const fn ddtb(label: &'static str, family: Family) -> Preset {
    Preset {
        label,
        family,
        form: QForm::ZeroPoint,
        placement: Placement::Block,
        // DDTB's `main_limitrange_incremental.py`: w_at = 1e3; α at lr 1e-2 against 1e-4.
        skt: 1e3,
        bound_lr_mult: 100.0,
        range_init: RangeInit::Percentile {
            low: 1.0,
            high: 99.0,
            first_batch: true,
        },
        rdn_range_init: Some(RangeInit::Percentile {
            low: 5.0,
            high: 95.0,
            first_batch: true,
        }),
        weights: WeightQ::Percentile {
            low: 1.0,
            high: 99.0,
        },
        rdn_weights: Some(WeightQ::Percentile {
            low: 0.0,
            high: 100.0,
        }),
    }
}

/// The AdaBM quantizer on conv inputs with a learned weight bound (MinMax, ODM; FP's entry is
/// never used for quantization).
const fn adabm(label: &'static str, family: Family, range_init: RangeInit) -> Preset {
    Preset {
        label,
        family,
        form: QForm::Affine,
        placement: Placement::ConvInput,
        skt: 0.0,
        bound_lr_mult: 1.0,
        range_init,
        rdn_range_init: None,
        weights: WeightQ::Learned,
        rdn_weights: None,
    }
}

static FP: Preset = adabm("FP", Family::Fp32, ema(0.0, 100.0));
static MIN_MAX: Preset = adabm("MinMax", Family::MinMax, ema(0.0, 100.0));
static PAMS: Preset = Preset {
    label: "PAMS",
    family: Family::Pams,
    form: QForm::SymZero,
    placement: Placement::Block,
    // PAMS README commands: w_at = 1e3; α at lr 1e-2 against a base 1e-4.
    skt: 1e3,
    bound_lr_mult: 100.0,
    range_init: RangeInit::ImageMax,
    rdn_range_init: None,
    weights: WeightQ::MaxAbs,
    rdn_weights: None,
};
static DDTB_STATIC: Preset = ddtb("DDTB-static", Family::DdtbStatic);
static DDTB: Preset = ddtb("DDTB", Family::Ddtb);
static DAQ: Preset = Preset {
    label: "DAQ",
    family: Family::Daq,
    form: QForm::Daq {
        sigma_bits: 8,
        strict: false,
    },
    placement: Placement::Daq,
    skt: 0.0,
    bound_lr_mult: 1.0,
    // DAQ calibrates nothing (its statistics are per input); never used.
    range_init: ema(1.0, 99.0),
    rdn_range_init: None,
    weights: WeightQ::Daq,
    rdn_weights: None,
};
static ODM: Preset = adabm("ODM", Family::Odm, ema(1.0, 99.0));

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
    /// DAQ only: clip the after-ReLU activations to the b-bit grid too ("DAQ strict", 2^b
    /// levels; see `quant::daq`). Default false: DAQ as its code runs (unclipped there). Left
    /// out of the canonical spec when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
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
            strict: false,
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
    /// The preset's descriptor.
    pub fn preset(&self) -> &'static Preset {
        match self {
            QuantSpec::Fp => &FP,
            QuantSpec::MinMax(_) => &MIN_MAX,
            QuantSpec::Pams(_) => &PAMS,
            QuantSpec::DdtbStatic(_) => &DDTB_STATIC,
            QuantSpec::Ddtb(_) => &DDTB,
            QuantSpec::Daq(_) => &DAQ,
            QuantSpec::Odm(_) => &ODM,
        }
    }

    /// The method family: the preset's, except DAQ with `strict`, a family of its own (a claim
    /// about "DAQ" never pools both kinds of run).
    pub fn family(&self) -> Family {
        match self {
            QuantSpec::Daq(o) if o.strict => Family::DaqStrict,
            _ => self.preset().family,
        }
    }

    /// The options, or `None` for `Fp`.
    pub fn opts(&self) -> Option<&QuantOpts> {
        match self {
            QuantSpec::Fp => None,
            QuantSpec::MinMax(o)
            | QuantSpec::Pams(o)
            | QuantSpec::DdtbStatic(o)
            | QuantSpec::Ddtb(o)
            | QuantSpec::Daq(o)
            | QuantSpec::Odm(o) => Some(o),
        }
    }

    /// The options and the activation quantizer form, or `None` for `Fp`.
    pub fn opts_form(&self) -> Option<(&QuantOpts, QForm)> {
        let o = self.opts()?;
        let form = match self.preset().form {
            QForm::Daq { sigma_bits, .. } => QForm::Daq {
                sigma_bits: o.sigma_bits.unwrap_or(sigma_bits),
                strict: o.strict,
            },
            f => f,
        };
        Some((o, form))
    }

    /// Where the preset's sources put their quantizers.
    pub fn placement(&self) -> Placement {
        self.preset().placement
    }

    /// The preset's name as the sources spell it.
    pub fn label(&self) -> &'static str {
        match self {
            QuantSpec::Daq(o) if o.strict => "DAQ strict",
            _ => self.preset().label,
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
        self.opts().and_then(|o| o.skt).unwrap_or(self.preset().skt)
    }

    /// The bound learning-rate multiplier in force.
    pub fn bound_lr_mult(&self) -> f64 {
        self.opts()
            .and_then(|o| o.bound_lr_mult)
            .unwrap_or(self.preset().bound_lr_mult)
    }

    /// The range initialisation in force for a backbone: the spec's `init`, else the preset's
    /// (its RDN entry on RDN).
    pub fn range_init(&self, model: &super::ModelSpec) -> RangeInit {
        let p = self.preset();
        let rdn = matches!(model, super::ModelSpec::Rdn(_));
        self.opts()
            .and_then(|o| o.init.clone())
            .or_else(|| p.rdn_range_init.clone().filter(|_| rdn))
            .unwrap_or_else(|| p.range_init.clone())
    }

    /// The weight range in force: `weight_clip`'s, or under `Preset` the preset's (its RDN
    /// entry on RDN).
    pub fn weight_range(&self, rdn: bool) -> WeightQ {
        let p = self.preset();
        match self.opts().map(|o| &o.weight_clip) {
            Some(WeightClip::Wcc { percentile }) => WeightQ::Wcc {
                percentile: *percentile,
            },
            Some(WeightClip::MaxAbs) => WeightQ::MaxAbs,
            Some(WeightClip::Preset) | None => p
                .rdn_weights
                .clone()
                .filter(|_| rdn)
                .unwrap_or_else(|| p.weights.clone()),
        }
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
    /// at `sigma_bits` (`quant::daq`); no bounds. `strict`: after-ReLU inputs clipped to the
    /// grid too (left out of `quant_map.json` when false).
    Daq {
        sigma_bits: u32,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        strict: bool,
    },
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

/// The weight range.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum WeightQ {
    /// u = max|W| + 1e-8, detached, symmetric (PAMS `quant_max`).
    MaxAbs,
    /// [P_low(W), P_high(W)] over the whole tensor, detached (DDTB `quant_weight_asym99`).
    Percentile { low: f64, high: f64 },
    /// A learned u_w, initialised from max(W) (AdaBM `upper_w`).
    Learned,
    /// u_w = P_p(|W|)·γ with a learned γ (ODM's weight-clipping correction).
    Wcc { percentile: f64 },
    /// DAQ's grid of g(b)·std(W) around 0 (`quant::daq::weight`).
    Daq,
}
