//! RDN (Zhang et al., "Residual Dense Network for Image Super-Resolution", CVPR 2018), structured
//! as EDSR-PyTorch's `rdn.py`:
//!
//! - shallow feature extraction: `sfe1` (3→G0, 3×3) and `sfe2` (G0→G0, 3×3);
//! - D residual dense blocks `rdb.{i}`: C conv layers `rdb.{i}.conv.{c}` (G0 + c·G → G, 3×3,
//!   each followed by ReLU, its output concatenated to its input: dense connectivity), then local
//!   feature fusion `rdb.{i}.lff` (1×1, G0 + C·G → G0) and a local residual (block input);
//! - global feature fusion: the D block outputs concatenated, `gff.0` (1×1, D·G0 → G0) and
//!   `gff.1` (3×3, G0 → G0), plus the `sfe1` output (global residual learning);
//! - upsampling net: ×2/×3: `upsample.0` (G0 → G·r², 3×3), pixel shuffle r, `tail` (G → 3);
//!   ×4: `upsample.0` (G0 → 4G), shuffle 2, `upsample.1` (G → 4G), shuffle 2, `tail` (G → 3).
//!
//! Input normalisation: none. EDSR-PyTorch's RDN has no mean shift (unlike its EDSR), and the
//! quantization papers' RDN code (DAQ, Hong et al., WACV 2022; DDTB, Zhong et al., ECCV 2022)
//! adds none either, so the network sees raw values in [0, `rgb_range`].
//!
//! Quantization: see [`Rdn::quant_points`]. The sources differ: AdaBM (conv-input placement)
//! quantizes the dense convs, LFF and GFF; PAMS and DDTB (block placement) the same weights with
//! activation quantizers on the block input, the dense and LFF inputs and the GFF 1×1 input;
//! DAQ only the dense convs (its LFF and GFF stay FP; DAQ is not a preset here). Shallow feature
//! extraction, upsampler and tail stay FP in all of them.

use super::fwd::Fwd;
use super::layers::{convs_decls, pixel_shuffle, ConvInfo};
use super::params::ParamDecl;
use crate::quant::{Placement, QPoint};
use crate::spec::RdnSpec;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// An RDN of a given configuration and scale.
#[derive(Clone, Debug)]
pub struct Rdn {
    pub cfg: RdnSpec,
    pub scale: usize,
}

impl Rdn {
    pub fn new(cfg: RdnSpec, scale: usize) -> Self {
        Self { cfg, scale }
    }

    /// Upsampling-net stages as EDSR-PyTorch's RDN builds them: ×2 → [2], ×3 → [3],
    /// ×4 → [2, 2]. Other scales are not defined by the reference.
    fn stages(&self) -> Vec<usize> {
        match self.scale {
            2 => vec![2],
            3 => vec![3],
            4 => vec![2, 2],
            s => panic!("RDN supports scales 2, 3 and 4 (got {s})"),
        }
    }

    /// Every convolution, in forward order.
    pub fn convs(&self) -> Vec<ConvInfo> {
        let RdnSpec { d, c, g, g0, .. } = self.cfg;
        let mut v = vec![
            ConvInfo::new("sfe1", 3, g0, 3, 1),
            ConvInfo::new("sfe2", g0, g0, 3, 1),
        ];
        for i in 0..d {
            for k in 0..c {
                v.push(ConvInfo::new(
                    format!("rdb.{i}.conv.{k}"),
                    g0 + k * g,
                    g,
                    3,
                    1,
                ));
            }
            v.push(ConvInfo::new(format!("rdb.{i}.lff"), g0 + c * g, g0, 1, 1));
        }
        v.push(ConvInfo::new("gff.0", d * g0, g0, 1, 1));
        v.push(ConvInfo::new("gff.1", g0, g0, 3, 1));
        let mut res = 1;
        let mut cin = g0;
        for (k, r) in self.stages().into_iter().enumerate() {
            v.push(ConvInfo::new(
                format!("upsample.{k}"),
                cin,
                g * r * r,
                3,
                res,
            ));
            res *= r;
            cin = g;
        }
        v.push(ConvInfo::new("tail", g, 3, 3, res));
        v
    }

    /// The quantization points of a placement, in forward order.
    /// - `ConvInput` (Cheeun/AdaBM `src/model/rdn.py`): every dense conv, every LFF and both GFF
    ///   convs, weights and inputs.
    /// - `Block` (colorjam/PAMS and zysxmu/DDTB `model/rdn.py`): the block input `rdb.{i}.in`
    ///   (`x = act1(x)`, which the local residual also adds), the inputs of the dense convs after
    ///   the first (the first reads the quantized block input), the LFF input and the GFF 1×1
    ///   input; weights of every dense conv, LFF and both GFF convs (the GFF 3×3 reads the 1×1's
    ///   output unquantized).
    pub fn quant_points(&self, placement: Placement) -> Vec<QPoint> {
        let RdnSpec { d, c, g, g0, .. } = self.cfg;
        let block = placement == Placement::Block;
        let mut v = Vec::new();
        for i in 0..d {
            if block {
                v.push(QPoint::new(format!("rdb.{i}.in"), false, true, g0));
            }
            for k in 0..c {
                let act = !block || k > 0;
                v.push(QPoint::new(
                    format!("rdb.{i}.conv.{k}"),
                    true,
                    act,
                    g0 + k * g,
                ));
            }
            v.push(QPoint::new(format!("rdb.{i}.lff"), true, true, g0 + c * g));
        }
        v.push(QPoint::new("gff.0", true, true, d * g0));
        v.push(QPoint::new("gff.1", true, !block, g0));
        v
    }

    /// Parameter declarations in a fixed order (the order of initialisation).
    pub fn decls(&self) -> Vec<ParamDecl> {
        convs_decls(&self.convs())
    }

    /// The EDSR-PyTorch (`rdn.py`) state-dict key of one of our parameter names.
    /// `UPNet` is one `nn.Sequential`: convs at even indices, pixel shuffles at odd ones, so
    /// ×2/×3 is `UPNet.0` (upsampler), `UPNet.2` (tail) and ×4 is `UPNet.0`, `UPNet.2`, `UPNet.4`.
    pub fn pytorch_key(&self, name: &str) -> String {
        let (layer, kind) = name.rsplit_once('.').unwrap_or((name, ""));
        let parts: Vec<&str> = layer.split('.').collect();
        let mapped = match parts.as_slice() {
            ["sfe1"] => "SFENet1".to_string(),
            ["sfe2"] => "SFENet2".to_string(),
            ["rdb", i, "conv", c] => format!("RDBs.{i}.convs.{c}.conv.0"),
            ["rdb", i, "lff"] => format!("RDBs.{i}.LFF"),
            ["gff", j] => format!("GFF.{j}"),
            ["upsample", k] => format!("UPNet.{}", k.parse::<usize>().unwrap_or(0) * 2),
            ["tail"] => format!("UPNet.{}", self.stages().len() * 2),
            _ => layer.to_string(),
        };
        format!("{mapped}.{kind}")
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, f: &Fwd<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let RdnSpec { d, c, .. } = self.cfg;
        let f1 = f.conv("sfe1", x);
        let mut h = f.conv("sfe2", f1.clone());
        let mut outs = Vec::with_capacity(d);
        for i in 0..d {
            let x = f.act(&format!("rdb.{i}.in"), h);
            let mut cat = x.clone();
            for k in 0..c {
                let y = relu(f.conv(&format!("rdb.{i}.conv.{k}"), cat.clone()));
                cat = Tensor::cat(vec![cat, y], 1);
            }
            h = f.conv(&format!("rdb.{i}.lff"), cat) + x;
            outs.push(h.clone());
        }
        let g = f.conv("gff.0", Tensor::cat(outs, 1));
        let mut y = f.feature(f.conv("gff.1", g) + f1);
        if f.body_only {
            return y;
        }
        for (k, r) in self.stages().into_iter().enumerate() {
            y = pixel_shuffle(f.conv(&format!("upsample.{k}"), y), r);
        }
        f.conv("tail", y)
    }
}
