//! SRResNet (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
//! Adversarial Network", CVPR 2017): the generator of SRGAN trained with a pixel loss, in the
//! BatchNorm form the quantization papers use (DAQ, Hong et al., WACV 2022; DDTB, Zhong et al.,
//! ECCV 2022; ODM, Hong & Lee):
//!
//! - `head`: 9×9 conv 3→F, PReLU `head.prelu`;
//! - `n_resblocks` residual blocks `body.{i}`: `conv1` (3×3) → BN `bn1` → PReLU `prelu` →
//!   `conv2` (3×3) → BN `bn2`, plus the block input;
//! - `body_end` (3×3) → BN `body_end_bn`, plus the head output (global skip);
//! - upsampler: per ×2 stage `upsample.{k}` (F→4F, 3×3), pixel shuffle 2, PReLU
//!   `upsample.{k}.prelu` (×3: one F→9F conv, shuffle 3, PReLU);
//! - `tail`: 9×9 conv F→3.
//!
//! Every PReLU has one shared slope (PyTorch `nn.PReLU()`, init 0.25), as in SRGAN.
//!
//! Choices, documented:
//! - Input normalisation: the EDSR mean shift (subtract the DIV2K mean · `rgb_range` at the input,
//!   add it back at the output), so all backbones of the harness see the same input convention.
//! - Convs followed by BatchNorm keep their bias (as the DAQ code does). The bias is redundant
//!   under BN but harmless, and it keeps every conv's parameters `<name>.weight`/`<name>.bias`.
//! - BatchNorm `<name>`: `<name>.gamma` (1), `<name>.beta` (0) trainable; buffers
//!   `<name>.running_mean` (0) and `<name>.running_var` (1); ε = 1e-5 (PyTorch defaults). In
//!   training mode it normalises with the batch mean and biased batch variance over N, H, W and
//!   reports (mean, unbiased variance) through [`Capture::bn_batch`](super::fwd::Capture) for the
//!   trainer to fold into the running buffers; in evaluation mode it uses the running buffers.
//!
//! Quantizable body: the two convs of every residual block (`body.{i}.conv1`, `body.{i}.conv2`),
//! as in DAQ/DDTB; the 9×9 head, `body_end`, the upsampler and the tail stay in full precision.

use super::edsr::{mean_shift, up_stages};
use super::fwd::Fwd;
use super::layers::{block_points, conv_decls, pixel_shuffle, resnet_convs, ConvInfo};
use crate::quant::{Placement, QPoint};
use super::params::{Init, ParamDecl};
use crate::spec::SrResNetSpec;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// BatchNorm ε (PyTorch default).
pub const BN_EPS: f64 = 1e-5;

/// Initial PReLU slope (PyTorch default).
pub const PRELU_INIT: f32 = 0.25;

/// Declare BatchNorm `<name>`: `gamma`, `beta` (trainable) and `running_mean`, `running_var`
/// (buffers), all of shape `[c]`.
pub fn bn_decls(d: &mut Vec<ParamDecl>, name: &str, c: usize) {
    d.push(ParamDecl::new(
        format!("{name}.gamma"),
        vec![c],
        Init::Const(1.0),
    ));
    d.push(ParamDecl::new(
        format!("{name}.beta"),
        vec![c],
        Init::Const(0.0),
    ));
    d.push(ParamDecl::buffer(
        format!("{name}.running_mean"),
        vec![c],
        Init::Const(0.0),
    ));
    d.push(ParamDecl::buffer(
        format!("{name}.running_var"),
        vec![c],
        Init::Const(1.0),
    ));
}

/// BatchNorm2d `<name>` (Ioffe & Szegedy, ICML 2015) over N×C×H×W. Training mode (`f.train`):
/// batch mean and biased batch variance over N, H, W (gradients flow through both), and the
/// detached (mean, unbiased variance) are pushed into `capture.bn_batch` when capturing.
/// Evaluation mode: the running buffers.
pub fn batch_norm<B: Backend>(f: &Fwd<B>, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let gamma = f.get::<1>(&format!("{name}.gamma")).reshape([1, c, 1, 1]);
    let beta = f.get::<1>(&format!("{name}.beta")).reshape([1, c, 1, 1]);
    if f.train {
        let mean = x.clone().mean_dims(&[0, 2, 3]);
        let xc = x - mean.clone();
        let var = xc.clone().square().mean_dims(&[0, 2, 3]);
        if let Some(cap) = f.capture {
            let m = n * h * w;
            let unbiased = m as f64 / (m.max(2) - 1) as f64;
            cap.borrow_mut().bn_batch.push((
                name.to_string(),
                mean.detach().reshape([c]),
                var.clone().detach().mul_scalar(unbiased).reshape([c]),
            ));
        }
        xc / var.add_scalar(BN_EPS).sqrt() * gamma + beta
    } else {
        let rm = f
            .get::<1>(&format!("{name}.running_mean"))
            .reshape([1, c, 1, 1]);
        let rv = f
            .get::<1>(&format!("{name}.running_var"))
            .reshape([1, c, 1, 1]);
        let scale = gamma / rv.add_scalar(BN_EPS).sqrt();
        let shift = beta - rm * scale.clone();
        x * scale + shift
    }
}

/// PReLU with one shared slope `<name>` (shape [1]): `relu(x) − a·relu(−x)`.
pub fn prelu<B: Backend>(f: &Fwd<B>, name: &str, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let a = f.get::<1>(name).reshape([1, 1, 1, 1]);
    relu(x.clone()) - relu(x.neg()) * a
}

/// An SRResNet of a given configuration and scale.
#[derive(Clone, Debug)]
pub struct SrResNet {
    pub cfg: SrResNetSpec,
    pub scale: usize,
}

impl SrResNet {
    pub fn new(cfg: SrResNetSpec, scale: usize) -> Self {
        Self { cfg, scale }
    }

    /// Every convolution, in forward order.
    pub fn convs(&self) -> Vec<ConvInfo> {
        resnet_convs(self.cfg.n_resblocks, self.cfg.n_feats, self.scale, 9)
    }

    /// The quantization points of a placement (see [`block_points`]).
    pub fn quant_points(&self, placement: Placement) -> Vec<QPoint> {
        block_points(self.cfg.n_resblocks, self.cfg.n_feats, placement)
    }

    /// Parameter (and buffer) declarations in forward order (the order of initialisation).
    pub fn decls(&self) -> Vec<ParamDecl> {
        let f = self.cfg.n_feats;
        let prelu = |d: &mut Vec<ParamDecl>, name: String| {
            d.push(ParamDecl::new(name, vec![1], Init::Const(PRELU_INIT)))
        };
        let convs = self.convs();
        let conv = |d: &mut Vec<ParamDecl>, name: &str| {
            let c = convs
                .iter()
                .find(|c| c.name == name)
                .expect("declared conv");
            conv_decls(d, &c.name, c.cin, c.cout, c.k);
        };
        let mut d = Vec::new();
        conv(&mut d, "head");
        prelu(&mut d, "head.prelu".into());
        for i in 0..self.cfg.n_resblocks {
            conv(&mut d, &format!("body.{i}.conv1"));
            bn_decls(&mut d, &format!("body.{i}.bn1"), f);
            prelu(&mut d, format!("body.{i}.prelu"));
            conv(&mut d, &format!("body.{i}.conv2"));
            bn_decls(&mut d, &format!("body.{i}.bn2"), f);
        }
        conv(&mut d, "body_end");
        bn_decls(&mut d, "body_end_bn", f);
        for k in 0..up_stages(self.scale).len() {
            conv(&mut d, &format!("upsample.{k}"));
            prelu(&mut d, format!("upsample.{k}.prelu"));
        }
        conv(&mut d, "tail");
        d
    }

    /// State-dict key of one of our parameter names in an SRResNet laid out like EDSR-PyTorch's
    /// `edsr.py` (head / body / tail `nn.Sequential`s). There is no single official SRResNet
    /// checkpoint layout; this is our convention, chosen so that an EDSR-style PyTorch port maps
    /// one-to-one: `head` = `[conv, PReLU]`; each `body.{i}.body` = `[conv1, bn1, PReLU, conv2,
    /// bn2]`; `body.{n}` = `body_end`, `body.{n+1}` = its BN; `tail.0` = the upsampler, per stage
    /// `[conv, shuffle, PReLU]` (indices 3k, 3k+1, 3k+2); `tail.1` = the last conv. BN
    /// `gamma`/`beta` become `weight`/`bias`; a PReLU slope is `weight`.
    pub fn pytorch_key(&self, name: &str) -> String {
        let n = self.cfg.n_resblocks;
        let parts: Vec<&str> = name.split('.').collect();
        let bn_kind = |k: &str| match k {
            "gamma" => "weight".to_string(),
            "beta" => "bias".to_string(),
            k => k.to_string(),
        };
        let up = |k: &str, off: usize| 3 * k.parse::<usize>().unwrap_or(0) + off;
        match parts.as_slice() {
            ["head", "prelu"] => "head.1.weight".to_string(),
            ["head", kind] => format!("head.0.{kind}"),
            ["body", i, "conv1", kind] => format!("body.{i}.body.0.{kind}"),
            ["body", i, "bn1", kind] => format!("body.{i}.body.1.{}", bn_kind(kind)),
            ["body", i, "prelu"] => format!("body.{i}.body.2.weight"),
            ["body", i, "conv2", kind] => format!("body.{i}.body.3.{kind}"),
            ["body", i, "bn2", kind] => format!("body.{i}.body.4.{}", bn_kind(kind)),
            ["body_end", kind] => format!("body.{n}.{kind}"),
            ["body_end_bn", kind] => format!("body.{}.{}", n + 1, bn_kind(kind)),
            ["upsample", k, "prelu"] => format!("tail.0.{}.weight", up(k, 2)),
            ["upsample", k, kind] => format!("tail.0.{}.{kind}", up(k, 0)),
            ["tail", kind] => format!("tail.1.{kind}"),
            _ => name.to_string(),
        }
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, f: &Fwd<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mean = mean_shift::<B>(self.cfg.rgb_range, &x.device());
        let x = prelu(f, "head.prelu", f.conv("head", x - mean.clone()));
        let mut h = x.clone();
        for i in 0..self.cfg.n_resblocks {
            let skip = f.act(&format!("body.{i}.skip"), h.clone());
            let r = f.conv(&format!("body.{i}.conv1"), h);
            let r = batch_norm(f, &format!("body.{i}.bn1"), r);
            let r = prelu(f, &format!("body.{i}.prelu"), r);
            let r = f.conv(&format!("body.{i}.conv2"), r);
            let r = batch_norm(f, &format!("body.{i}.bn2"), r);
            h = skip + f.act(&format!("body.{i}.res"), r);
        }
        if f.body_only {
            return h;
        }
        let mut y = batch_norm(f, "body_end_bn", f.conv("body_end", h)) + x;
        for (k, r) in up_stages(self.scale).into_iter().enumerate() {
            let u = pixel_shuffle(f.conv(&format!("upsample.{k}"), y), r);
            y = prelu(f, &format!("upsample.{k}.prelu"), u);
        }
        f.conv("tail", y) + mean
    }
}
