//! SRResNet (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
//! Adversarial Network", CVPR 2017): the generator of SRGAN trained with a pixel loss, in the
//! BatchNorm form the quantization papers use (DAQ, Hong et al., WACV 2022; DDTB, Zhong et al.,
//! ECCV 2022; ODM, Hong & Lee), in the exact layout of one of two public codes, chosen by
//! [`SrResNetSpec::layout`], so that that code's FP checkpoints load one-to-one.
//!
//! Our parameter names are the same for both layouts (so the quantization points
//! `body.{i}.conv1` / `body.{i}.conv2` do not depend on the layout):
//!
//! - `head`: 9×9 conv 3→F (padding 4), then PReLU `head.prelu`;
//! - `n_resblocks` residual blocks `body.{i}`: `conv1` (3×3) → BN `bn1` → activation →
//!   `conv2` (3×3) → BN `bn2`, plus the block input;
//! - `body_end` (3×3) → BN `body_end_bn`, plus the head output after its PReLU (global skip);
//! - upsampler: per ×2 stage `upsample.{k}` (F→4F, 3×3), pixel shuffle 2, PReLU
//!   `upsample.{k}.prelu` (×3: one F→9F conv, shuffle 3, PReLU; neither source has a ×3
//!   model, this is the EDSR-PyTorch `Upsampler` convention);
//! - `tail`: 9×9 conv F→3 (padding 4).
//!
//! Every PReLU has one shared slope (PyTorch `nn.PReLU()`, init 0.25). Neither layout shifts by
//! the dataset mean: the network sees raw pixels in [0, `rgb_range`] and outputs pixels.
//!
//! **`Ddtb`** — zysxmu/DDTB `model/bnsrresnet.py` (`DDTB_SRResNet`, `_Residual_Block`; 16 blocks
//! and 64 features are hard-coded there, configurable here). No conv has a bias
//! (`bias=False` everywhere); the block activation is a PReLU per block `body.{i}.prelu`.
//! State-dict keys: `conv_input.weight`, `relu.weight` (head PReLU),
//! `residual.{i}.conv1.weight`, `residual.{i}.in1.*`, `residual.{i}.relu.weight`,
//! `residual.{i}.conv2.weight`, `residual.{i}.in2.*`, `conv_mid.weight`, `bn_mid.*`,
//! `upscale.{3k}.weight` (stage-k conv), `upscale.{3k+2}.weight` (stage-k PReLU),
//! `conv_output.weight`.
//!
//! **`Daq`** — Cheeun/DAQ-pytorch `src/model/srresnet.py` with `src/model/common_srresnet.py`.
//! The block activation is one parameter-free `nn.ReLU` shared by all blocks (`srresnet.py`
//! passes `act=nn.ReLU(True)` over `ResBlock`'s PReLU default). The two block convs carry a
//! bias: `quantize.Conv2d_Q` forwards its arguments positionally to `nn.Conv2d` in the order
//! `(…, padding, bias, dilation, groups)`, so `groups=1` lands on `bias`; `srresnet.py`
//! zero-initialises conv biases, and so do we. Every other conv is `bias=False`. State-dict
//! keys: `head.0.weight`, `head.1.weight` (PReLU), `body.{i}.conv1.{weight,bias}`,
//! `body.{i}.bn1.*`, `body.{i}.conv2.{weight,bias}`, `body.{i}.bn2.*`, `body.{n}.weight`
//! (`body_end`), `body.{n+1}.*` (its BN), `tail.0.{3k}.weight` (stage-k conv),
//! `tail.0.{3k+2}.weight` (stage-k PReLU), `tail.1.weight`. The checkpoint's
//! `sub_mean`/`add_mean` (`MeanShift`) tensors are never applied in DAQ's `forward`, and we
//! neither declare nor read them. (DAQ's `Upsampler` hard-codes two ×2 stages whatever the
//! scale; we build the stages of the requested scale.)
//!
//! BatchNorm `<name>` (both layouts): `<name>.gamma` (1) and `<name>.beta` (0) trainable, the
//! state dict's `weight` and `bias`; buffers `<name>.running_mean` (0) and
//! `<name>.running_var` (1), the same keys there; ε = 1e-5 (PyTorch defaults). The checkpoint's
//! `num_batches_tracked` is not used (momentum is fixed, as PyTorch's default). In training mode
//! it normalises with the batch mean and biased batch variance over N, H, W and reports (mean,
//! unbiased variance) through [`Capture::bn_batch`](super::fwd::Capture) for the trainer to fold
//! into the running buffers; in evaluation mode it uses the running buffers.
//!
//! Initialisation, documented choice: conv weights use PyTorch's default fan-in uniform (both
//! sources re-draw them from N(0, 2/(k²·C_out)); a loaded checkpoint overrides either), DAQ's
//! block biases 0, BN γ = 1, β = 0, PReLU slopes 0.25.
//!
//! Quantizable body: the two convs of every residual block (`body.{i}.conv1`, `body.{i}.conv2`),
//! weights and inputs, as in DAQ/DDTB (for every preset: DDTB's SRResNet has no shortcut or
//! block-output quantizer); the 9×9 head, `body_end`, the upsampler and the tail stay FP.

use super::edsr::up_stages;
use super::fwd::Fwd;
use super::layers::{block_points, conv_decls_nobias, pixel_shuffle, resnet_convs, ConvInfo};
use super::params::{Init, ParamDecl};
use crate::quant::{Placement, QPoint};
use crate::spec::{SrResNetLayout, SrResNetSpec};
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

    /// The quantization points: the inputs and weights of both convs of every block, for every
    /// placement (DDTB's `model/bnsrresnet.py` quantizes `conv1(act1(x))` and `conv2(act2(·))`
    /// with the shortcut and block output FP, as DAQ's `common_srresnet.py` does).
    pub fn quant_points(&self, _placement: Placement) -> Vec<QPoint> {
        block_points(self.cfg.n_resblocks, self.cfg.n_feats, Placement::ConvInput)
    }

    /// Parameter (and buffer) declarations in forward order (the order of initialisation).
    /// Convs are declared without a bias, except DAQ's two block convs (bias initialised to 0).
    pub fn decls(&self) -> Vec<ParamDecl> {
        let f = self.cfg.n_feats;
        let daq = self.cfg.layout == SrResNetLayout::Daq;
        let prelu = |d: &mut Vec<ParamDecl>, name: String| {
            d.push(ParamDecl::new(name, vec![1], Init::Const(PRELU_INIT)))
        };
        let convs = self.convs();
        let conv = |d: &mut Vec<ParamDecl>, name: &str, bias: bool| {
            let c = convs
                .iter()
                .find(|c| c.name == name)
                .expect("declared conv");
            conv_decls_nobias(d, &c.name, c.cin, c.cout, c.k);
            if bias {
                d.push(ParamDecl::new(
                    format!("{name}.bias"),
                    vec![c.cout],
                    Init::Const(0.0),
                ));
            }
        };
        let mut d = Vec::new();
        conv(&mut d, "head", false);
        prelu(&mut d, "head.prelu".into());
        for i in 0..self.cfg.n_resblocks {
            conv(&mut d, &format!("body.{i}.conv1"), daq);
            bn_decls(&mut d, &format!("body.{i}.bn1"), f);
            if !daq {
                prelu(&mut d, format!("body.{i}.prelu"));
            }
            conv(&mut d, &format!("body.{i}.conv2"), daq);
            bn_decls(&mut d, &format!("body.{i}.bn2"), f);
        }
        conv(&mut d, "body_end", false);
        bn_decls(&mut d, "body_end_bn", f);
        for k in 0..up_stages(self.scale).len() {
            conv(&mut d, &format!("upsample.{k}"), false);
            prelu(&mut d, format!("upsample.{k}.prelu"));
        }
        conv(&mut d, "tail", false);
        d
    }

    /// State-dict key of one of our parameter names in the checkpoint layout of
    /// [`SrResNetSpec::layout`] (listed in the module documentation): BN `gamma`/`beta` become
    /// `weight`/`bias` and the running statistics keep their names; a PReLU slope is
    /// `<module>.weight`; upsampler stage k is the Sequential's entries 3k (conv), 3k+1
    /// (shuffle), 3k+2 (PReLU). Names outside the model are returned unchanged.
    pub fn pytorch_key(&self, name: &str) -> String {
        let n = self.cfg.n_resblocks;
        let parts: Vec<&str> = name.split('.').collect();
        let bn_kind = |k: &str| match k {
            "gamma" => "weight".to_string(),
            "beta" => "bias".to_string(),
            k => k.to_string(),
        };
        let up = |k: &str, off: usize| k.parse::<usize>().ok().map(|k| 3 * k + off);
        match self.cfg.layout {
            SrResNetLayout::Ddtb => match parts.as_slice() {
                ["head", "prelu"] => "relu.weight".to_string(),
                ["head", kind] => format!("conv_input.{kind}"),
                ["body", i, "conv1", kind] => format!("residual.{i}.conv1.{kind}"),
                ["body", i, "bn1", kind] => format!("residual.{i}.in1.{}", bn_kind(kind)),
                ["body", i, "prelu"] => format!("residual.{i}.relu.weight"),
                ["body", i, "conv2", kind] => format!("residual.{i}.conv2.{kind}"),
                ["body", i, "bn2", kind] => format!("residual.{i}.in2.{}", bn_kind(kind)),
                ["body_end", kind] => format!("conv_mid.{kind}"),
                ["body_end_bn", kind] => format!("bn_mid.{}", bn_kind(kind)),
                ["upsample", k, "prelu"] if up(k, 2).is_some() => {
                    format!("upscale.{}.weight", up(k, 2).unwrap())
                }
                ["upsample", k, kind] if up(k, 0).is_some() => {
                    format!("upscale.{}.{kind}", up(k, 0).unwrap())
                }
                ["tail", kind] => format!("conv_output.{kind}"),
                _ => name.to_string(),
            },
            SrResNetLayout::Daq => match parts.as_slice() {
                ["head", "prelu"] => "head.1.weight".to_string(),
                ["head", kind] => format!("head.0.{kind}"),
                ["body", i, conv @ ("conv1" | "conv2"), kind] => format!("body.{i}.{conv}.{kind}"),
                ["body", i, bn @ ("bn1" | "bn2"), kind] => {
                    format!("body.{i}.{bn}.{}", bn_kind(kind))
                }
                ["body_end", kind] => format!("body.{n}.{kind}"),
                ["body_end_bn", kind] => format!("body.{}.{}", n + 1, bn_kind(kind)),
                ["upsample", k, "prelu"] if up(k, 2).is_some() => {
                    format!("tail.0.{}.weight", up(k, 2).unwrap())
                }
                ["upsample", k, kind] if up(k, 0).is_some() => {
                    format!("tail.0.{}.{kind}", up(k, 0).unwrap())
                }
                ["tail", kind] => format!("tail.1.{kind}"),
                _ => name.to_string(),
            },
        }
    }

    /// LR (N×3×h×w, raw pixels in [0, rgb_range]) → SR (N×3×sh×sw), no mean shift.
    pub fn forward<B: Backend>(&self, f: &Fwd<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = prelu(f, "head.prelu", f.conv("head", x));
        let mut h = x.clone();
        for i in 0..self.cfg.n_resblocks {
            let r = f.conv(&format!("body.{i}.conv1"), h.clone());
            let r = batch_norm(f, &format!("body.{i}.bn1"), r);
            let r = match self.cfg.layout {
                SrResNetLayout::Ddtb => prelu(f, &format!("body.{i}.prelu"), r),
                SrResNetLayout::Daq => relu(r),
            };
            let r = f.conv(&format!("body.{i}.conv2"), r);
            h = h + batch_norm(f, &format!("body.{i}.bn2"), r);
        }
        if f.body_only {
            return h;
        }
        let mut y = f.feature(batch_norm(f, "body_end_bn", f.conv("body_end", h)) + x);
        for (k, r) in up_stages(self.scale).into_iter().enumerate() {
            let u = pixel_shuffle(f.conv(&format!("upsample.{k}"), y), r);
            y = prelu(f, &format!("upsample.{k}.prelu"), u);
        }
        f.conv("tail", y)
    }
}
