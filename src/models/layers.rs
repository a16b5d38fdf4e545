//! Shared layer pieces: convolution declarations, layer descriptions for cost accounting, and the
//! pixel shuffle.

use super::params::{Init, ParamDecl};
use crate::quant::{Placement, QPoint};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Declare `<name>.weight` (cout×cin×k×k) and `<name>.bias` (cout) with PyTorch's default init.
pub fn conv_decls(d: &mut Vec<ParamDecl>, name: &str, cin: usize, cout: usize, k: usize) {
    let fan_in = cin * k * k;
    d.push(ParamDecl::new(
        format!("{name}.weight"),
        vec![cout, cin, k, k],
        Init::UniformFanIn(fan_in),
    ));
    d.push(ParamDecl::new(
        format!("{name}.bias"),
        vec![cout],
        Init::UniformFanIn(fan_in),
    ));
}

/// Declare only `<name>.weight` (cout×cin×k×k, PyTorch's default init) for a convolution built
/// with `bias=False`; [`Fwd::conv`](super::fwd::Fwd::conv) then adds no bias.
pub fn conv_decls_nobias(d: &mut Vec<ParamDecl>, name: &str, cin: usize, cout: usize, k: usize) {
    d.push(ParamDecl::new(
        format!("{name}.weight"),
        vec![cout, cin, k, k],
        Init::UniformFanIn(cin * k * k),
    ));
}

/// The weight and bias declarations of every convolution, in order.
pub fn convs_decls(convs: &[ConvInfo]) -> Vec<ParamDecl> {
    let mut d = Vec::new();
    for c in convs {
        conv_decls(&mut d, &c.name, c.cin, c.cout, c.k);
    }
    d
}

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

    /// Multiply-accumulates for an LR input of h×w: (h·res)(w·res)·cout·cin·k².
    pub fn macs(&self, h: usize, w: usize) -> u64 {
        (h * self.res * w * self.res) as u64 * self.weights() as u64
    }
}

/// The convolutions of an EDSR-style residual network in forward order: a k×k head, two 3×3
/// convs per residual block, a last body conv, the pixel-shuffle upsampler (EDSR-PyTorch
/// `Upsampler` stages) and a k×k tail. EDSR uses k = 3, SRResNet k = 9.
pub fn resnet_convs(blocks: usize, f: usize, scale: usize, k: usize) -> Vec<ConvInfo> {
    let mut v = vec![ConvInfo::new("head", 3, f, k, 1)];
    for i in 0..blocks {
        v.push(ConvInfo::new(format!("body.{i}.conv1"), f, f, 3, 1));
        v.push(ConvInfo::new(format!("body.{i}.conv2"), f, f, 3, 1));
    }
    v.push(ConvInfo::new("body_end", f, f, 3, 1));
    let mut res = 1;
    for (s, r) in super::edsr::up_stages(scale).into_iter().enumerate() {
        v.push(ConvInfo::new(format!("upsample.{s}"), f, r * r * f, 3, res));
        res *= r;
    }
    v.push(ConvInfo::new("tail", f, 3, k, res));
    v
}

/// The quantization points of an EDSR-style residual body (`blocks` blocks of `f` features) for
/// a placement, in forward order: both convs of every block, and their inputs (DAQ, AdaBM, ODM),
/// or PAMS/DDTB's shortcut `body.{i}.skip`, the second conv's (post-activation) input and the
/// block output `body.{i}.res` (colorjam/PAMS and zysxmu/DDTB `model/edsr.py`, `*_ResBlock`).
pub fn block_points(blocks: usize, f: usize, placement: Placement) -> Vec<QPoint> {
    let mut v = Vec::new();
    for i in 0..blocks {
        let b = format!("body.{i}");
        match placement {
            Placement::ConvInput => {
                v.push(QPoint::new(format!("{b}.conv1"), true, true, f));
                v.push(QPoint::new(format!("{b}.conv2"), true, true, f));
            }
            Placement::Block => {
                v.push(QPoint::new(format!("{b}.skip"), false, true, f));
                v.push(QPoint::new(format!("{b}.conv1"), true, false, f));
                v.push(QPoint::new(format!("{b}.conv2"), true, true, f));
                v.push(QPoint::new(format!("{b}.res"), false, true, f));
            }
        }
    }
    v
}

/// Sub-pixel convolution's shuffle (Shi et al., CVPR 2016), PyTorch `pixel_shuffle` order:
/// input channel c·r² + i·r + j goes to output channel c at (h·r + i, w·r + j).
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let co = c / (r * r);
    x.reshape([n * co, r, r, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([n, co, h * r, w * r])
}
