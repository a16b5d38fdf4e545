//! Declarative experiment specs (RON). One file declares one run, or a grid of runs.
//!
//! Every field has a documented default (see [`Spec`]); unknown fields are rejected. Later
//! concepts (quantizer, regularizer, gating, offsets) enter as new tagged-enum fields with
//! defaults, so older files keep their meaning.

mod grid;
pub use grid::MAX_POINTS;
pub mod limits;
pub mod load;
mod odm;
mod quant;
mod validate;
pub mod value;

pub use grid::{expand, Axis, AxisValue, Grid};
pub use load::{load_file, load_file_fields, load_file_with, LoadedSpec};
pub use odm::{
    CoopScope, GateParams, GateRule, Gating, OffsetPolicy, Regularizer, Residual, Select, VarScope,
    VarStat,
};
pub use quant::{
    BoundGrad, Family, InitFrom, Placement, Preset, QForm, QuantOpts, QuantSpec, RangeInit,
    WeightClip, WeightQ,
};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One experiment. Field defaults are given on each field.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Run name: letters, digits, `-`, `_`, `.`. Results go to `results/<name>-<hash>/`.
    pub name: String,
    /// Seed of every random stream (init, data order, crops, augmentation). Default 0.
    #[serde(default)]
    pub seed: u64,
    /// Upscaling factor: 2, 3 or 4.
    pub scale: usize,
    /// Where to train. Default `Cpu`.
    #[serde(default)]
    pub device: Device,
    /// The backbone.
    pub model: ModelSpec,
    /// Training and evaluation data.
    pub data: DataSpec,
    /// Quantizer preset. Default `Fp`.
    #[serde(default)]
    pub quant: QuantSpec,
    /// Regularizer on the quantizer inputs (ODM). Default `None`.
    #[serde(default)]
    pub regularizer: Regularizer,
    /// Cooperative gating of the regularizer's gradient. Default `(rule: Sign, params: All)`.
    #[serde(default)]
    pub gating: Gating,
    /// Distribution-offset policy. Default `None`.
    #[serde(default)]
    pub offsets: OffsetPolicy,
    /// Initial weights (a checkpoint or an FP experiment). Default: random init from `seed`.
    #[serde(default)]
    pub init_from: Option<InitFrom>,
    /// Optimizer. Default `Adam(lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8)`.
    #[serde(default)]
    pub optim: Optim,
    /// Iterations, learning-rate decay and gradient clipping.
    pub schedule: Schedule,
    /// Evaluate on `data.eval` every N iterations (0: only at the end). Default 0.
    #[serde(default)]
    pub eval_every: usize,
    /// Write a checkpoint every N iterations (0: only at the end). Default 0.
    #[serde(default)]
    pub checkpoint_every: usize,
    /// Record the training loss every N iterations. Default 10.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Prefixes of the parameter names that train (e.g. `["upsample", "tail"]`); every other
    /// parameter is frozen: no gradient, no Adam update. Default: everything trains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trainable: Option<Vec<String>>,
    /// Evaluation sets (by name, e.g. `["Set5"]`, from `data.eval`) also scored right after
    /// initialisation and calibration, before the first step: iteration 0 of `metrics.csv`, the
    /// drop QAT starts from. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval_at_start: Vec<String>,
    /// Boxes of evaluation images saved at the end of the run (SR, HR and bicubic PNGs under
    /// `crops/`, with their PSNR in `crops.json`) for the report's qualitative figure.
    /// Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crops: Vec<Crop>,
    /// Optional grid: expands this file into several runs (see [`Grid`]). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Grid>,
}

/// A box of one evaluation image in HR pixels (after the HR is cropped to a multiple of the
/// scale): top-left corner `x`, `y`, size `w` × `h`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// The evaluation set's name, e.g. "Urban100".
    pub set: String,
    /// The image's file stem, e.g. "img_092".
    pub image: String,
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

fn default_log_every() -> usize {
    10
}

/// Compute device. `Cuda(n)` needs a build with `--features cuda`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    Cuda(usize),
}

/// Backbone architecture (serde-tagged: `Edsr(...)`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// EDSR (Lim et al., CVPRW 2017). EDSR-baseline is 16 blocks, 64 features, res_scale 1.
    Edsr(EdsrSpec),
    /// RDN (Zhang et al., CVPR 2018). The quantization papers use D = 16, C = 8, G = G0 = 64.
    Rdn(RdnSpec),
    /// SRResNet (Ledig et al., CVPR 2017) in the BatchNorm form the quantization papers use.
    SrResNet(SrResNetSpec),
}

/// RDN hyper-parameters. Defaults are the papers' D = 16, C = 8, G = G0 = 64.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RdnSpec {
    /// Residual dense blocks D. Default 16.
    #[serde(default = "d_rdn_d")]
    pub d: usize,
    /// Conv layers per block C. Default 8.
    #[serde(default = "d_rdn_c")]
    pub c: usize,
    /// Growth rate G. Default 64.
    #[serde(default = "d_feats")]
    pub g: usize,
    /// Feature channels G0. Default 64.
    #[serde(default = "d_feats")]
    pub g0: usize,
    /// Pixel value range. Default 255.
    #[serde(default = "d_rgb_range")]
    pub rgb_range: f64,
}

fn d_rdn_d() -> usize {
    16
}
fn d_rdn_c() -> usize {
    8
}

impl Default for RdnSpec {
    fn default() -> Self {
        Self {
            d: d_rdn_d(),
            c: d_rdn_c(),
            g: d_feats(),
            g0: d_feats(),
            rgb_range: d_rgb_range(),
        }
    }
}

/// SRResNet hyper-parameters. Defaults: 16 blocks, 64 features, DDTB's layout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SrResNetSpec {
    /// Residual blocks. Default 16 (hard-coded in DDTB's `model/bnsrresnet.py`).
    #[serde(default = "d_resblocks")]
    pub n_resblocks: usize,
    /// Feature channels. Default 64 (hard-coded in DDTB's `model/bnsrresnet.py`).
    #[serde(default = "d_feats")]
    pub n_feats: usize,
    /// Pixel value range the network sees (raw pixels in [0, rgb_range]; neither layout applies
    /// a mean shift). Default 255.
    #[serde(default = "d_rgb_range")]
    pub rgb_range: f64,
    /// Whose public code the network's structure and state-dict keys follow exactly, so that
    /// its FP checkpoints load (see `models::srresnet`). Default `Ddtb`.
    #[serde(default)]
    pub layout: SrResNetLayout,
}

/// The SRResNet layout: module structure, biases, activations and state-dict keys of one public
/// implementation of the BatchNorm SRResNet.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SrResNetLayout {
    /// zysxmu/DDTB `model/bnsrresnet.py` (`DDTB_SRResNet`): no conv biases, one PReLU per block,
    /// keys `conv_input`, `relu`, `residual.{i}.{conv1,in1,relu,conv2,in2}`, `conv_mid`,
    /// `bn_mid`, `upscale.{j}`, `conv_output`.
    #[default]
    Ddtb,
    /// Cheeun/DAQ-pytorch `src/model/srresnet.py` with `common_srresnet.py`: a parameter-free
    /// ReLU in the blocks, biases (zero-initialised) on the two block convs only, EDSR-style
    /// keys `head.{0,1}`, `body.{i}.{conv1,bn1,conv2,bn2}`, `body.{n}`, `body.{n+1}`,
    /// `tail.0.{j}`, `tail.1`.
    Daq,
}

impl Default for SrResNetSpec {
    fn default() -> Self {
        Self {
            n_resblocks: d_resblocks(),
            n_feats: d_feats(),
            rgb_range: d_rgb_range(),
            layout: SrResNetLayout::default(),
        }
    }
}

/// EDSR hyper-parameters. Defaults are EDSR-baseline.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EdsrSpec {
    /// Residual blocks. Default 16.
    #[serde(default = "d_resblocks")]
    pub n_resblocks: usize,
    /// Feature channels. Default 64.
    #[serde(default = "d_feats")]
    pub n_feats: usize,
    /// Residual scaling. Default 1.0.
    #[serde(default = "d_one")]
    pub res_scale: f64,
    /// Pixel value range the network sees. Default 255 (EDSR-PyTorch).
    #[serde(default = "d_rgb_range")]
    pub rgb_range: f64,
    /// How pixels are normalised before the head and restored after the tail. Default
    /// `MeanShift` (EDSR-PyTorch).
    #[serde(default, skip_serializing_if = "InputNorm::is_default")]
    pub input_norm: InputNorm,
}

/// Pixel normalisation of a network's input (and its inverse at the output).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum InputNorm {
    /// EDSR-PyTorch `MeanShift`: x − rgb_range·(0.4488, 0.4371, 0.4040) (the DIV2K mean).
    #[default]
    MeanShift,
    /// LIIF's encoders: (x/rgb_range − 0.5)/0.5, so [0, rgb_range] maps to [−1, 1].
    Symmetric,
    /// x − rgb_range/2, and + rgb_range/2 at the output: `Symmetric` without its division,
    /// EDSR-PyTorch's mean shift with mean 0.5, so features are on the pixels' 0–255 scale.
    /// A `Symmetric` model's weights become a `Centered` model's exactly with every bias
    /// × rgb_range/2 (`init_from: Pretrained(..., from_input_norm: Symmetric)`).
    Centered,
}

impl InputNorm {
    pub fn is_default(&self) -> bool {
        *self == InputNorm::MeanShift
    }
}

fn d_resblocks() -> usize {
    16
}
fn d_feats() -> usize {
    64
}
fn d_one() -> f64 {
    1.0
}
fn d_rgb_range() -> f64 {
    255.0
}

impl Default for EdsrSpec {
    fn default() -> Self {
        Self {
            n_resblocks: d_resblocks(),
            n_feats: d_feats(),
            res_scale: d_one(),
            rgb_range: d_rgb_range(),
            input_norm: InputNorm::MeanShift,
        }
    }
}

/// Data folders. Paths are relative to the working directory; a leading `$ODM_DATA` expands to
/// the `ODM_DATA` environment variable, or `../shared/data` when it is unset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// Training folders of HR images (plain, EDSR-PyTorch or BasicSR layout).
    pub train: Vec<PathBuf>,
    /// Evaluation folders (one benchmark set each). Default none.
    #[serde(default)]
    pub eval: Vec<PathBuf>,
    /// HR patch side in pixels (LR patch = patch_size / scale). Default 192 (EDSR-PyTorch ×4).
    #[serde(default = "d_patch")]
    pub patch_size: usize,
    /// Patches per batch. Default 16.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Random horizontal/vertical flips and rot90. Default true.
    #[serde(default = "d_true")]
    pub augment: bool,
    /// Leave out training images smaller than one patch (listed on stderr) instead of failing,
    /// e.g. T91's small images with 192 patches. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_small: bool,
    /// A validation split: a list file of training images (one file stem a line) that the
    /// sampler never draws and that is scored as one more evaluation set, named after the
    /// file's stem (`data::split`), e.g. `"experiments/splits/bsd200_val.txt"`. Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<PathBuf>,
}

fn d_patch() -> usize {
    192
}
fn d_batch() -> usize {
    16
}
fn d_true() -> bool {
    true
}

/// Optimizer (serde-tagged).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Optim {
    /// Adam (Kingma & Ba 2015), no weight decay.
    Adam {
        #[serde(default = "d_lr")]
        lr: f64,
        #[serde(default = "d_b1")]
        beta1: f64,
        #[serde(default = "d_b2")]
        beta2: f64,
        #[serde(default = "d_eps")]
        eps: f64,
    },
}

fn d_lr() -> f64 {
    1e-4
}
fn d_b1() -> f64 {
    0.9
}
fn d_b2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}

impl Default for Optim {
    fn default() -> Self {
        Optim::Adam {
            lr: d_lr(),
            beta1: d_b1(),
            beta2: d_b2(),
            eps: d_eps(),
        }
    }
}

impl Optim {
    /// Base learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            Optim::Adam { lr, .. } => *lr,
        }
    }
}

/// Iterations and learning-rate schedule.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Training iterations (optimizer steps), at least 1.
    pub iterations: usize,
    /// Learning-rate decay. Default `Constant`.
    #[serde(default)]
    pub lr_decay: LrDecay,
    /// Clip the global L2 norm of the gradient to this value. Default none.
    #[serde(default)]
    pub grad_clip: Option<f64>,
}

/// Learning-rate decay (serde-tagged).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub enum LrDecay {
    #[default]
    Constant,
    /// lr · gamma^floor(iteration / every), as EDSR-PyTorch's `StepLR` (ODM: every 15K, gamma 0.5).
    Step { every: usize, gamma: f64 },
    /// lr · gamma^(number of milestones ≤ iteration), as PyTorch's `MultiStepLR` (BasicSR's
    /// schedules; e.g. milestones [1000, 1500], gamma 0.5 halves the rate at 1,000 and 1,500).
    /// Milestones are 0-based iterations, strictly increasing.
    MultiStep { milestones: Vec<usize>, gamma: f64 },
}

impl LrDecay {
    /// Learning rate at (0-based) iteration `it`.
    pub fn lr_at(&self, base: f64, it: usize) -> f64 {
        match self {
            LrDecay::Constant => base,
            LrDecay::Step { every, gamma } => base * gamma.powi((it / every.max(&1)) as i32),
            LrDecay::MultiStep { milestones, gamma } => {
                base * gamma.powi(milestones.iter().filter(|&&m| m <= it).count() as i32)
            }
        }
    }
}

/// Resolve a spec path: `$ODM_DATA/...` expands to the data root.
pub fn resolve_path(p: &std::path::Path) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix("$ODM_DATA") {
        let root = data_root();
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            root
        } else {
            root.join(rest)
        }
    } else {
        p.to_path_buf()
    }
}

/// The shared data root: `ODM_DATA`, falling back to `../shared/data`.
pub fn data_root() -> PathBuf {
    std::env::var_os("ODM_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("../shared/data"))
}
