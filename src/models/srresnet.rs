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
//! unbiased variance) through [`Ops::bn_batch`] for the trainer to fold
//! into the running buffers; in evaluation mode it uses the running buffers.
//!
//! Initialisation, documented choice: conv weights use PyTorch's default fan-in uniform (both
//! sources re-draw them from N(0, 2/(k²·C_out)); a loaded checkpoint overrides either), DAQ's
//! block biases 0, BN γ = 1, β = 0, PReLU slopes 0.25.
//!
//! Quantizable body: the two convs of every residual block (`body.{i}.conv1`, `body.{i}.conv2`),
//! weights and inputs, as in DAQ/DDTB (for every preset: DDTB's SRResNet has no shortcut or
//! block-output quantizer); the 9×9 head, `body_end`, the upsampler and the tail stay FP.

use super::build::{Bias, Bn, Builder, Conv, PRelu, Q};
use super::edsr::up_stages;
use super::layers::{batch_norm, pixel_shuffle, prelu, Ops};
use super::params::ParamId;
use super::trace::Trace;
use crate::spec::{SrResNetLayout, SrResNetSpec};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// One residual block: conv → BN → activation → conv → BN.
#[derive(Clone, Debug)]
struct Block {
    conv1: Conv,
    bn1: Bn,
    /// The block's PReLU (DDTB layout); `None`: the shared parameter-free ReLU (DAQ layout).
    act: Option<PRelu>,
    conv2: Conv,
    bn2: Bn,
}

/// An SRResNet of a given configuration and scale, with its layer handles.
#[derive(Clone, Debug)]
pub struct SrResNet {
    pub cfg: SrResNetSpec,
    pub scale: usize,
    head: Conv,
    head_act: PRelu,
    blocks: Vec<Block>,
    body_end: Conv,
    body_end_bn: Bn,
    upsample: Vec<(Conv, PRelu, usize)>,
    tail: Conv,
}

/// The state-dict keys of one layout (listed in the module documentation).
struct Keys {
    daq: bool,
    n: usize,
}

impl Keys {
    fn head(&self) -> (&'static str, &'static str) {
        if self.daq {
            ("head.0", "head.1.weight")
        } else {
            ("conv_input", "relu.weight")
        }
    }

    /// Block `i`'s conv `k` (1 or 2) and its BN.
    fn block(&self, i: usize, k: usize) -> (String, String) {
        if self.daq {
            (format!("body.{i}.conv{k}"), format!("body.{i}.bn{k}"))
        } else {
            (
                format!("residual.{i}.conv{k}"),
                format!("residual.{i}.in{k}"),
            )
        }
    }

    fn body_end(&self) -> (String, String) {
        if self.daq {
            (format!("body.{}", self.n), format!("body.{}", self.n + 1))
        } else {
            ("conv_mid".into(), "bn_mid".into())
        }
    }

    /// Upsampler stage k: the Sequential's entries 3k (conv) and 3k+2 (PReLU).
    fn upsample(&self, k: usize) -> (String, String) {
        let p = if self.daq { "tail.0" } else { "upscale" };
        (
            format!("{p}.{}", 3 * k),
            format!("{p}.{}.weight", 3 * k + 2),
        )
    }

    fn tail(&self) -> &'static str {
        if self.daq {
            "tail.1"
        } else {
            "conv_output"
        }
    }
}

impl SrResNet {
    /// Declare every layer in forward order (the order of initialisation) with its key in the
    /// checkpoint layout of [`SrResNetSpec::layout`]. Convs have no bias, except DAQ's two block
    /// convs (bias initialised to 0). Quantization points: the inputs and weights of both convs
    /// of every block, for every placement (DDTB's `model/bnsrresnet.py` quantizes
    /// `conv1(act1(x))` and `conv2(act2(·))` with the shortcut and block output FP, as DAQ's
    /// `common_srresnet.py` does).
    pub fn build(cfg: SrResNetSpec, scale: usize, b: &mut Builder) -> Self {
        let (f, n) = (cfg.n_feats, cfg.n_resblocks);
        let keys = Keys {
            daq: cfg.layout == SrResNetLayout::Daq,
            n,
        };
        let (hk, hp) = keys.head();
        let head = b.conv("head", hk, [3, f, 9], Bias::None);
        let head_act = b.prelu("head.prelu", hp);
        let blocks = (0..n).map(|i| block(b, &keys, i, f)).collect();
        let (ek, ebk) = keys.body_end();
        let body_end = b.conv("body_end", &ek, [f, f, 3], Bias::None);
        let body_end_bn = b.bn("body_end_bn", &ebk, f);
        let upsample = up_stages(scale)
            .into_iter()
            .enumerate()
            .map(|(k, r)| {
                let (ck, pk) = keys.upsample(k);
                let c = b.conv(&format!("upsample.{k}"), &ck, [f, r * r * f, 3], Bias::None);
                let p = b.prelu(&format!("upsample.{k}.prelu"), &pk);
                b.upscale(r);
                (c, p, r)
            })
            .collect();
        let tail = b.conv("tail", keys.tail(), [f, 3, 9], Bias::None);
        Self {
            cfg,
            scale,
            head,
            head_act,
            blocks,
            body_end,
            body_end_bn,
            upsample,
            tail,
        }
    }

    /// LR (N×3×h×w, raw pixels in [0, rgb_range]) → SR (N×3×sh×sw), no mean shift.
    pub fn forward<B: Backend>(&self, f: &impl Ops<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = prelu(f, &self.head_act, f.conv(&self.head, x));
        let mut h = x.clone();
        for blk in &self.blocks {
            let r = batch_norm(f, &blk.bn1, f.conv(&blk.conv1, h.clone()));
            let r = match &blk.act {
                Some(p) => prelu(f, p, r),
                None => relu(r),
            };
            h = h + batch_norm(f, &blk.bn2, f.conv(&blk.conv2, r));
        }
        if f.body_only() {
            return h;
        }
        let e = batch_norm(f, &self.body_end_bn, f.conv(&self.body_end, h));
        let mut y = f.feature(e + x);
        for (c, p, r) in &self.upsample {
            y = prelu(f, p, pixel_shuffle(f.conv(c, y), *r));
        }
        f.conv(&self.tail, y)
    }

    /// Feature rescaling by `c > 0` ([`super::rescale`]). The head has no bias: its weights ×c
    /// and PReLU(c·y) = c·PReLU(y) make the head output c·x. A conv followed by BatchNorm takes
    /// its weights ÷c, so that on a c-scaled input its output (bias included) is exactly the
    /// original and the BN's batch and running statistics are unchanged; that BN's γ and β ×c
    /// then scale its output by c. Scaling the BN's running mean and variance instead would be
    /// exact only up to ε and never in training mode, where BN reads batch statistics. So: block
    /// `conv1`/`conv2` and `body_end` weights ÷c, their BNs' γ, β ×c (block output
    /// h + c·BN₂ stays c×, the activation between is homogeneous); the upsampler convs (no
    /// bias) and PReLUs pass the scale on unchanged; the tail's weights ÷c.
    pub fn rescale_factors(&self, c: f64) -> Vec<(ParamId, f64)> {
        let mut v = vec![(self.head.weight, c)];
        let with_bn = self
            .blocks
            .iter()
            .flat_map(|b| [(&b.conv1, &b.bn1), (&b.conv2, &b.bn2)])
            .chain(std::iter::once((&self.body_end, &self.body_end_bn)));
        for (conv, bn) in with_bn {
            v.extend([(conv.weight, 1.0 / c), (bn.gamma, c), (bn.beta, c)]);
        }
        v.push((self.tail.weight, 1.0 / c));
        v
    }

    /// [`Self::forward`] as a symbolic trace (evaluation mode).
    pub fn trace<T: Trace>(&self, t: &mut T, x: T::V) -> T::V {
        let x = t.conv(&self.head, x);
        let x = t.prelu_layer(&self.head_act, x);
        let mut h = x.clone();
        for blk in &self.blocks {
            let r = t.conv(&blk.conv1, h.clone());
            let r = t.batch_norm(&blk.bn1, r);
            let r = match &blk.act {
                Some(p) => t.prelu_layer(p, r),
                None => t.relu(r),
            };
            let r = t.conv(&blk.conv2, r);
            let r = t.batch_norm(&blk.bn2, r);
            h = t.add(h, r);
        }
        let e = t.conv(&self.body_end, h);
        let e = t.batch_norm(&self.body_end_bn, e);
        let mut y = t.add(e, x);
        for (c, p, r) in &self.upsample {
            let z = t.conv(c, y);
            let z = t.pixel_shuffle(z, *r);
            y = t.prelu_layer(p, z);
        }
        t.conv(&self.tail, y)
    }
}

/// Residual block `i` of `f` features in the layout of `keys`.
fn block(b: &mut Builder, keys: &Keys, i: usize, f: usize) -> Block {
    let bias = if keys.daq { Bias::Zero } else { Bias::None };
    let (c1, n1) = keys.block(i, 1);
    let conv1 = b.conv(&format!("body.{i}.conv1"), &c1, [f, f, 3], bias);
    b.quantize(&conv1, Q::BOTH, Q::BOTH);
    let bn1 = b.bn(&format!("body.{i}.bn1"), &n1, f);
    let act = (!keys.daq).then(|| {
        b.prelu(
            &format!("body.{i}.prelu"),
            &format!("residual.{i}.relu.weight"),
        )
    });
    let (c2, n2) = keys.block(i, 2);
    let conv2 = b.conv(&format!("body.{i}.conv2"), &c2, [f, f, 3], bias);
    b.quantize(&conv2, Q::BOTH, Q::BOTH);
    let bn2 = b.bn(&format!("body.{i}.bn2"), &n2, f);
    Block {
        conv1,
        bn1,
        act,
        conv2,
        bn2,
    }
}
