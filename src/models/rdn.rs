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
//! Quantization: see [`Rdn::build`]. The sources differ: AdaBM (conv-input placement)
//! quantizes the dense convs, LFF and GFF; PAMS and DDTB (block placement) the same weights with
//! activation quantizers on the block input, the dense and LFF inputs and the GFF 1×1 input;
//! DAQ only the dense convs (its LFF and GFF stay FP; DAQ is not a preset here). Shallow feature
//! extraction, upsampler and tail stay FP in all of them.

use super::build::{Bias, Builder, Conv, Point, Q};
use super::layers::{pixel_shuffle, Ops};
use super::params::ParamId;
use super::trace::Trace;
use crate::spec::RdnSpec;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// One residual dense block: its input point, dense convs and local feature fusion.
#[derive(Clone, Debug)]
struct Rdb {
    input: Point,
    dense: Vec<Conv>,
    lff: Conv,
}

/// An RDN of a given configuration and scale, with its layer handles.
#[derive(Clone, Debug)]
pub struct Rdn {
    pub cfg: RdnSpec,
    pub scale: usize,
    sfe1: Conv,
    sfe2: Conv,
    blocks: Vec<Rdb>,
    gff: [Conv; 2],
    upsample: Vec<(Conv, usize)>,
    tail: Conv,
}

/// Upsampling-net stages as EDSR-PyTorch's RDN builds them: ×2 → [2], ×3 → [3], ×4 → [2, 2].
/// Other scales are not defined by the reference (the spec check refuses them).
fn stages(scale: usize) -> Vec<usize> {
    match scale {
        2 => vec![2],
        3 => vec![3],
        4 => vec![2, 2],
        s => panic!("RDN supports scales 2, 3 and 4 (got {s})"),
    }
}

impl Rdn {
    /// Declare every layer in forward order, with its EDSR-PyTorch (`rdn.py`) key: `SFENet1`,
    /// `SFENet2`, `RDBs.{i}.convs.{c}.conv.0`, `RDBs.{i}.LFF`, `GFF.{0,1}`; `UPNet` is one
    /// `nn.Sequential` with convs at even indices and pixel shuffles at odd ones, so ×2/×3 is
    /// `UPNet.0` (upsampler), `UPNet.2` (tail) and ×4 is `UPNet.0`, `UPNet.2`, `UPNet.4`.
    ///
    /// Quantization points, in forward order:
    /// - conv-input placement (Cheeun/AdaBM `src/model/rdn.py`): every dense conv, every LFF and
    ///   both GFF convs, weights and inputs;
    /// - block placement (colorjam/PAMS and zysxmu/DDTB `model/rdn.py`): the block input
    ///   `rdb.{i}.in` (`x = act1(x)`, which the local residual also adds), the inputs of the dense
    ///   convs after the first (the first reads the quantized block input), the LFF input and the
    ///   GFF 1×1 input; weights of every dense conv, LFF and both GFF convs (the GFF 3×3 reads the
    ///   1×1's output unquantized);
    /// - DAQ's placement (Cheeun/DAQ-pytorch `src/model/rdn.py`): the dense convs only, weights
    ///   and inputs (LFF and GFF stay FP).
    pub fn build(cfg: RdnSpec, scale: usize, b: &mut Builder) -> Self {
        let RdnSpec { d, g0, g, .. } = cfg;
        let sfe1 = b.conv("sfe1", "SFENet1", [3, g0, 3], Bias::Default);
        let sfe2 = b.conv("sfe2", "SFENet2", [g0, g0, 3], Bias::Default);
        let blocks = (0..d).map(|i| rdb(b, &cfg, i)).collect();
        let gff0 = b.conv("gff.0", "GFF.0", [d * g0, g0, 1], Bias::Default);
        b.quantize(&gff0, Q::BOTH, Q::BOTH);
        b.daq_role(Q::NONE);
        let gff1 = b.conv("gff.1", "GFF.1", [g0, g0, 3], Bias::Default);
        b.quantize(&gff1, Q::BOTH, Q::WEIGHT);
        b.daq_role(Q::NONE);
        let mut cin = g0;
        let st = stages(scale);
        let upsample = st
            .iter()
            .enumerate()
            .map(|(k, &r)| {
                let key = format!("UPNet.{}", 2 * k);
                let c = b.conv(
                    &format!("upsample.{k}"),
                    &key,
                    [cin, g * r * r, 3],
                    Bias::Default,
                );
                b.upscale(r);
                cin = g;
                (c, r)
            })
            .collect();
        let tail = b.conv(
            "tail",
            &format!("UPNet.{}", 2 * st.len()),
            [g, 3, 3],
            Bias::Default,
        );
        Self {
            cfg,
            scale,
            sfe1,
            sfe2,
            blocks,
            gff: [gff0, gff1],
            upsample,
            tail,
        }
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, f: &impl Ops<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let f1 = f.conv(&self.sfe1, x);
        let mut h = f.conv(&self.sfe2, f1.clone());
        let mut outs = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            let x = f.act(&blk.input, h);
            let mut cat = x.clone();
            for c in &blk.dense {
                let y = relu(f.conv(c, cat.clone()));
                cat = Tensor::cat(vec![cat, y], 1);
            }
            h = f.conv(&blk.lff, cat) + x;
            outs.push(h.clone());
        }
        let g = f.conv(&self.gff[0], Tensor::cat(outs, 1));
        let mut y = f.feature(f.conv(&self.gff[1], g) + f1);
        if f.body_only() {
            return y;
        }
        for (c, r) in &self.upsample {
            y = pixel_shuffle(f.conv(c, y), *r);
        }
        f.conv(&self.tail, y)
    }

    /// Feature rescaling by `c > 0` ([`super::rescale`]): `sfe1`'s weights and bias ×c make
    /// F₋₁ = c·F₋₁; every later conv up to the upsampler adds its bias onto a c-scaled feature,
    /// so each bias ×c (`sfe2`, the dense convs (ReLU(c·y) = c·ReLU(y), concatenation is
    /// linear), LFF, both GFF convs, the upsampler convs); the tail's weights ÷c. There is no
    /// input normalisation to keep.
    pub fn rescale_factors(&self, c: f64) -> Vec<(ParamId, f64)> {
        let mut v = vec![(self.sfe1.weight, c)];
        let biased = [&self.sfe1, &self.sfe2]
            .into_iter()
            .chain(
                self.blocks
                    .iter()
                    .flat_map(|b| b.dense.iter().chain(std::iter::once(&b.lff))),
            )
            .chain(self.gff.iter())
            .chain(self.upsample.iter().map(|(u, _)| u));
        v.extend(biased.filter_map(|conv| conv.bias).map(|b| (b, c)));
        v.push((self.tail.weight, 1.0 / c));
        v
    }

    /// [`Self::forward`] as a symbolic trace.
    pub fn trace<T: Trace>(&self, t: &mut T, x: T::V) -> T::V {
        let f1 = t.conv(&self.sfe1, x);
        let mut h = t.conv(&self.sfe2, f1.clone());
        let mut outs = Vec::with_capacity(self.blocks.len());
        for blk in &self.blocks {
            let x = t.act(&blk.input, h);
            let mut cat = x.clone();
            for c in &blk.dense {
                let y = t.conv(c, cat.clone());
                let y = t.relu(y);
                cat = t.concat(vec![cat, y]);
            }
            let l = t.conv(&blk.lff, cat);
            h = t.add(l, x);
            outs.push(h.clone());
        }
        let all = t.concat(outs);
        let g = t.conv(&self.gff[0], all);
        let g = t.conv(&self.gff[1], g);
        let mut y = t.add(g, f1);
        for (c, r) in &self.upsample {
            let z = t.conv(c, y);
            y = t.pixel_shuffle(z, *r);
        }
        t.conv(&self.tail, y)
    }
}

/// Residual dense block `i` (see [`Rdn::build`] for its quantization points).
fn rdb(b: &mut Builder, cfg: &RdnSpec, i: usize) -> Rdb {
    let RdnSpec { c, g, g0, .. } = *cfg;
    let input = b.point(&format!("rdb.{i}.in"), g0, Q::NONE, Q::ACT);
    let dense = (0..c)
        .map(|k| {
            let key = format!("RDBs.{i}.convs.{k}.conv.0");
            let conv = b.conv(
                &format!("rdb.{i}.conv.{k}"),
                &key,
                [g0 + k * g, g, 3],
                Bias::Default,
            );
            b.quantize(&conv, Q::BOTH, Q::new(true, k > 0));
            conv
        })
        .collect();
    let lff = b.conv(
        &format!("rdb.{i}.lff"),
        &format!("RDBs.{i}.LFF"),
        [g0 + c * g, g0, 1],
        Bias::Default,
    );
    b.quantize(&lff, Q::BOTH, Q::BOTH);
    b.daq_role(Q::NONE);
    Rdb { input, dense, lff }
}
