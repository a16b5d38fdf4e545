//! Layers named once. A backbone is built by one pass over a [`Builder`]: each call declares a
//! layer's parameters (with their initialisation and their key in the official PyTorch state
//! dict), its convolution for cost accounting and its quantization points, and returns a typed
//! handle that `forward` uses. Declarations, convolutions, PyTorch keys and quantization points
//! all derive from that one pass (the pattern of candle's `VarBuilder`-built models).

use super::params::{Init, ParamDecl, ParamId};
use crate::spec::Placement;

/// Initial PReLU slope (PyTorch default).
pub const PRELU_INIT: f32 = 0.25;

/// A convolution as cost accounting sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvInfo {
    pub name: String,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    /// Output resolution relative to the LR input (1 for the body, 2 and 4 in the upsampler, …).
    pub res: usize,
}

impl ConvInfo {
    pub fn new(name: impl Into<String>, cin: usize, cout: usize, k: usize, res: usize) -> Self {
        Self {
            name: name.into(),
            cin,
            cout,
            k,
            res,
        }
    }

    /// Weight parameters (without bias).
    pub fn weights(&self) -> usize {
        self.cin * self.cout * self.k * self.k
    }

    /// Multiply-accumulates for an LR input of h×w: (h·res)(w·res)·cout·cin·k², in `u128`: exact
    /// for sides up to `spec::limits::MAX_SIDE` (2^16) on any backbone within the spec's limits
    /// (at most 2^16·2^16·4²·2^40, far below 2^128); larger sides are a caller's bug.
    pub fn macs(&self, h: usize, w: usize) -> u128 {
        [h, self.res, w, self.res, self.weights()]
            .into_iter()
            .try_fold(1u128, |a, b| a.checked_mul(b as u128))
            .expect("MACs within u128: image sides within spec::limits::MAX_SIDE")
    }
}

/// A convolution: its name (also its quantization point's), weight and optional bias.
#[derive(Clone, Debug)]
pub struct Conv {
    pub name: String,
    pub weight: ParamId,
    pub bias: Option<ParamId>,
    /// Output channels.
    pub cout: usize,
}

/// BatchNorm2d: γ, β (trainable) and the running mean and variance (buffers).
#[derive(Clone, Debug)]
pub struct Bn {
    pub name: String,
    pub gamma: ParamId,
    pub beta: ParamId,
    pub mean: ParamId,
    pub var: ParamId,
}

/// PReLU with one shared slope.
#[derive(Clone, Debug)]
pub struct PRelu {
    pub slope: ParamId,
}

/// An activation quantization point that is not a convolution's input (PAMS/DDTB's shortcut
/// and block output, RDN's block input).
#[derive(Clone, Debug)]
pub struct Point {
    pub name: String,
}

/// Which quantizers a point carries under one placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Q {
    pub weight: bool,
    pub act: bool,
}

impl Q {
    /// Not a quantization point under this placement.
    pub const NONE: Q = Q::new(false, false);
    /// Quantized weights only.
    pub const WEIGHT: Q = Q::new(true, false);
    /// A quantized activation only.
    pub const ACT: Q = Q::new(false, true);
    /// Quantized weights and input activation.
    pub const BOTH: Q = Q::new(true, true);

    pub const fn new(weight: bool, act: bool) -> Self {
        Self { weight, act }
    }
}

/// One quantization point a backbone offers for a placement.
#[derive(Clone, Debug, PartialEq)]
pub struct QPoint {
    pub name: String,
    /// A convolution whose weights are quantized.
    pub weight: bool,
    /// An activation quantizer at this point (for a conv: on its input).
    pub act: bool,
    /// Channels of the quantized activation.
    pub channels: usize,
}

impl QPoint {
    pub fn new(name: impl Into<String>, weight: bool, act: bool, channels: usize) -> Self {
        Self {
            name: name.into(),
            weight,
            act,
            channels,
        }
    }
}

/// How a convolution's bias is declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    /// PyTorch's default: U(−1/√fan_in, 1/√fan_in).
    Default,
    /// Initialised to 0 (DAQ's SRResNet block convs).
    Zero,
    /// `bias=False`: no parameter, a zero bias in the forward.
    None,
}

/// A point as declared: its roles under [`Placement::ConvInput`] and [`Placement::Block`].
#[derive(Clone, Debug)]
struct PointDecl {
    name: String,
    channels: usize,
    conv_input: Q,
    block: Q,
    /// DAQ's role where it differs from `conv_input`.
    daq: Option<Q>,
}

/// Everything a built backbone declares, in forward order.
#[derive(Clone, Debug, Default)]
pub struct Layers {
    /// Parameter (and buffer) declarations, in initialisation order.
    pub decls: Vec<ParamDecl>,
    /// The official PyTorch state-dict key of each declaration.
    keys: Vec<String>,
    /// Every convolution.
    pub convs: Vec<ConvInfo>,
    /// The convolutions' weights (not biases, norms or slopes), in declaration order.
    pub conv_weights: Vec<ParamId>,
    points: Vec<PointDecl>,
}

impl Layers {
    /// The quantization points of a placement, in forward order.
    pub fn quant_points(&self, placement: Placement) -> Vec<QPoint> {
        self.points
            .iter()
            .filter_map(|p| {
                let q = match placement {
                    Placement::ConvInput => p.conv_input,
                    Placement::Block => p.block,
                    Placement::Daq => p.daq.unwrap_or(p.conv_input),
                };
                (q != Q::NONE).then(|| QPoint::new(&p.name, q.weight, q.act, p.channels))
            })
            .collect()
    }

    /// The official PyTorch state-dict key of one of our parameter names (a name outside the
    /// model is returned unchanged).
    pub fn pytorch_key(&self, name: &str) -> String {
        self.decls
            .iter()
            .position(|d| d.name == name)
            .map_or_else(|| name.to_string(), |i| self.keys[i].clone())
    }
}

/// Records layers as a backbone declares them, in forward order.
#[derive(Debug)]
pub struct Builder {
    layers: Layers,
    /// Output resolution of the next convolution relative to the LR input.
    res: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Self {
            layers: Layers::default(),
            res: 1,
        }
    }

    /// The declarations so far.
    pub fn finish(self) -> Layers {
        self.layers
    }

    /// Later convolutions run at `r` times the current resolution (after a pixel shuffle).
    pub fn upscale(&mut self, r: usize) {
        self.res *= r;
    }

    fn param(&mut self, decl: ParamDecl, key: String) -> ParamId {
        self.layers.decls.push(decl);
        self.layers.keys.push(key);
        ParamId(self.layers.decls.len() - 1)
    }

    /// A k×k `same` convolution `name` (cin → cout) stored under PyTorch key `key`
    /// (`<key>.weight`, `<key>.bias`); the weight has PyTorch's default fan-in uniform init.
    pub fn conv(&mut self, name: &str, key: &str, [cin, cout, k]: [usize; 3], bias: Bias) -> Conv {
        let fan_in = cin * k * k;
        let weight = self.param(
            ParamDecl::new(
                format!("{name}.weight"),
                vec![cout, cin, k, k],
                Init::UniformFanIn(fan_in),
            ),
            format!("{key}.weight"),
        );
        let init = match bias {
            Bias::Default => Some(Init::UniformFanIn(fan_in)),
            Bias::Zero => Some(Init::Const(0.0)),
            Bias::None => None,
        };
        let bias = init.map(|i| {
            self.param(
                ParamDecl::new(format!("{name}.bias"), vec![cout], i),
                format!("{key}.bias"),
            )
        });
        let info = ConvInfo::new(name, cin, cout, k, self.res);
        self.layers.convs.push(info);
        self.layers.conv_weights.push(weight);
        Conv {
            name: name.to_string(),
            weight,
            bias,
            cout,
        }
    }

    /// Make convolution `c` a quantization point (its weights and/or its input) under each
    /// placement.
    pub fn quantize(&mut self, c: &Conv, conv_input: Q, block: Q) {
        let cin = self.layers.convs.iter().rev().find(|i| i.name == c.name);
        let channels = cin.expect("a convolution of this builder").cin;
        self.push_point(&c.name, channels, conv_input, block);
    }

    /// An activation point `name` of `channels` channels that is not a convolution's input.
    pub fn point(&mut self, name: &str, channels: usize, conv_input: Q, block: Q) -> Point {
        self.push_point(name, channels, conv_input, block);
        Point {
            name: name.to_string(),
        }
    }

    fn push_point(&mut self, name: &str, channels: usize, conv_input: Q, block: Q) {
        self.layers.points.push(PointDecl {
            name: name.to_string(),
            channels,
            conv_input,
            block,
            daq: None,
        });
    }

    /// Give the point just declared a different role under DAQ's placement.
    pub fn daq_role(&mut self, q: Q) {
        if let Some(p) = self.layers.points.last_mut() {
            p.daq = Some(q);
        }
    }

    /// BatchNorm2d `name` over `c` channels: `<name>.gamma` (1) and `<name>.beta` (0) trainable,
    /// buffers `<name>.running_mean` (0) and `<name>.running_var` (1); PyTorch keys `<key>.weight`,
    /// `<key>.bias`, `<key>.running_mean`, `<key>.running_var`.
    pub fn bn(&mut self, name: &str, key: &str, c: usize) -> Bn {
        let mut one = |ours: &str, theirs: &str, init: f32, buffer: bool| {
            let n = format!("{name}.{ours}");
            let d = if buffer {
                ParamDecl::buffer(n, vec![c], Init::Const(init))
            } else {
                ParamDecl::new(n, vec![c], Init::Const(init))
            };
            self.param(d, format!("{key}.{theirs}"))
        };
        Bn {
            name: name.to_string(),
            gamma: one("gamma", "weight", 1.0, false),
            beta: one("beta", "bias", 0.0, false),
            mean: one("running_mean", "running_mean", 0.0, true),
            var: one("running_var", "running_var", 1.0, true),
        }
    }

    /// A PReLU `name` with one shared slope (init 0.25, PyTorch's default), PyTorch key `key`.
    pub fn prelu(&mut self, name: &str, key: &str) -> PRelu {
        let d = ParamDecl::new(name, vec![1], Init::Const(PRELU_INIT));
        PRelu {
            slope: self.param(d, key.to_string()),
        }
    }
}
