//! Cost accounting as the SR quantization papers report it (PAMS, DAQ, DDTB, ODM):
//! MACs of each convolution at a stated LR input size; BitOPs = MACs · b_w · b_a for quantized
//! layers and MACs · 32 · 32 for FP layers; storage = parameters · bits (weights at b_w, biases
//! kept at 32 bits). Mean shift, ReLU, pixel shuffle and additions are not counted.
//!
//! DAQ's dynamic activations: per image, every element of a quantized input takes part in its
//! channel's mean (one addition) and variance (one multiply-add), is normalised ((x − μ)·(1/σ),
//! one multiply-add) and de-normalised (q·σ + μ, one multiply-add): 4 FP32 operations per
//! element, counted at 32×32 BitOPs (`dynamic_ops`); the per-channel σ quantization (C values
//! per image) is negligible and not counted, and the weights' std is computed once, offline.
//!
//! DDTB's gates (`quant::ddtb`), per image and gated point with C input channels at H×W: the
//! average pool (C·H·W FP32 additions), the two 1×1 convs (32·C + 64 MACs at 2×2 bits: 2-bit
//! codes times ternary weights) and the BatchNorm (32 FP32 multiply-adds); the min/max
//! quantizers, sigmoid and bound rescaling (a few dozen scalars) are not counted. Parameters:
//! 32·C + 64 + 64 per gate (conv weights at 2 bits, BatchNorm at 32 in storage); DDTB builds a
//! gate in every quantizer but runs only the selected ones, so both counts are reported.
//!
//! Counts that grow with the input size (MACs, BitOPs, offset and DAQ operations, pooling
//! additions) are `u128`: at the largest LR side `odm cost` accepts (`spec::limits::MAX_SIDE`,
//! 65536) a wide backbone's MACs pass 2^64, and must not wrap around.
//!
//! ODM's distribution offsets: a channel-wise scale costs C FP multiplications per pixel of the
//! layer's input (counted as MACs at 32×32 bits) and C·32 bits of storage; a channel-wise shift
//! costs C·32 bits of storage and no BitOPs, because it folds into a per-channel zero point of the
//! activation quantizer (q(x + s) over [l, u] has the integer codes of x over [l − s, u − s]).

use super::QuantPlan;
use crate::models::Model;
use serde::{Deserialize, Serialize};

/// One convolution's cost.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LayerCost {
    pub layer: String,
    pub macs: u128,
    pub w_bits: u32,
    pub a_bits: u32,
    pub bitops: u128,
    pub params: u64,
    pub storage_bits: u64,
    /// FP multiplications of a channel-wise offset scale (0 without one).
    pub offset_macs: u128,
    /// FP32 operations of a dynamic quantizer's per-input statistics (DAQ), 0 for static ones.
    #[serde(default)]
    pub dynamic_ops: u128,
}

/// Per-layer costs, totals and the FP/quantized ratios.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CostReport {
    pub input_w: usize,
    pub input_h: usize,
    pub layers: Vec<LayerCost>,
    pub total_macs: u128,
    pub total_bitops: u128,
    pub total_params: u64,
    pub total_storage_bits: u64,
    pub fp_bitops: u128,
    pub fp_storage_bits: u64,
    /// FP BitOPs / quantized BitOPs.
    pub bitops_ratio: f64,
    /// FP storage / quantized storage.
    pub storage_ratio: f64,
    pub formula: String,
    /// DDTB's gates, when the plan has any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateCost>,
}

/// What DDTB's gates add per image (see the module documentation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GateCost {
    /// Gated points, of `points` activation points.
    pub gated: usize,
    pub points: usize,
    /// Trainable parameters of the gates that run.
    pub params_run: u64,
    /// Trainable parameters of a gate on every activation point (what DDTB's model stores).
    pub params_stored: u64,
    /// Storage of the gates that run: conv weights at 2 bits, BatchNorm at 32.
    pub storage_bits: u64,
    /// 2-bit MACs of the gates' convolutions.
    pub macs: u64,
    /// FP32 additions of the gates' average pooling.
    pub pool_adds: u128,
    /// (pool additions + BatchNorm) · 32·32 + MACs · 2·2.
    pub bitops: u128,
    /// False when counted from a spec on a backbone whose points differ in width (the
    /// selection is data-dependent): the widest points are counted, an upper bound.
    pub exact: bool,
}

/// Mark the ⌊n·ratio⌋ widest activation points of `plan` as gated (stable order), for a cost
/// count without calibration. True when every point has the same width (the count is exact).
pub fn mark_widest(plan: &mut QuantPlan, ratio: f64) -> bool {
    let acts: Vec<usize> = (0..plan.layers.len())
        .filter(|&i| plan.layers[i].1.has_act())
        .collect();
    let width = |i: &usize| plan.layers[*i].1.channels;
    let exact = acts.iter().map(width).min() == acts.iter().map(width).max();
    let mut order = acts.clone();
    order.sort_by_key(|i| std::cmp::Reverse(width(i)));
    let k = (acts.len() as f64 * ratio).floor() as usize;
    for i in order.into_iter().take(k) {
        plan.layers[i].1.dynamic = true;
    }
    exact
}

/// The gates' cost at LR `w`×`h`, or `None` without gated points.
fn gate_cost(model: &Model, plan: &QuantPlan, w: usize, h: usize, exact: bool) -> Option<GateCost> {
    let acts: Vec<&super::LayerQuant> = plan
        .layers
        .iter()
        .filter(|(_, l)| l.has_act())
        .map(|(_, l)| l)
        .collect();
    let gated: Vec<&(String, super::LayerQuant)> =
        plan.layers.iter().filter(|(_, l)| l.dynamic).collect();
    if gated.is_empty() {
        return None;
    }
    let convs = model.convs();
    let res = |n: &str| convs.iter().find(|c| c.name == n).map_or(1, |c| c.res);
    let hidden = super::ddtb::HIDDEN as u64;
    let (mut macs, mut pool, mut params_run, mut storage) = (0u64, 0u128, 0u64, 0u64);
    for (n, l) in &gated {
        let c = l.channels as u64;
        macs += hidden * c + 2 * hidden;
        pool += c as u128 * pixels(h, w, res(n));
        params_run += super::ddtb::gate_params(l.channels);
        storage += (hidden * c + 2 * hidden) * 2 + 2 * hidden * 32;
    }
    let bn = gated.len() as u64 * hidden;
    Some(GateCost {
        gated: gated.len(),
        points: acts.len(),
        params_run,
        params_stored: acts
            .iter()
            .map(|l| super::ddtb::gate_params(l.channels))
            .sum(),
        storage_bits: storage,
        macs,
        pool_adds: pool,
        bitops: (pool + bn as u128) * 1024 + macs as u128 * 4,
        exact,
    })
}

/// Pixels of a layer at `res` times an LR input of `w`×`h` (`u128`: no wrap-around).
fn pixels(h: usize, w: usize, res: usize) -> u128 {
    h as u128 * res as u128 * w as u128 * res as u128
}

/// Cost of `model` under `plan` for an LR input of `w`×`h`.
pub fn cost(model: &Model, plan: &QuantPlan, w: usize, h: usize) -> CostReport {
    cost_with(model, plan, w, h, true)
}

/// [`cost`], with DDTB's gated points marked by [`mark_widest`] (`exact`: its answer).
pub fn cost_with(model: &Model, plan: &QuantPlan, w: usize, h: usize, exact: bool) -> CostReport {
    let decls = model.decls();
    // Biases of a conv (0 where the backbone declares none, e.g. DDTB's SRResNet).
    let biases = |c: &crate::models::ConvInfo| {
        let n = format!("{}.bias", c.name);
        if decls.iter().any(|d| d.name == n) {
            c.cout
        } else {
            0
        }
    };
    let layers: Vec<LayerCost> = model
        .convs()
        .iter()
        .map(|c| {
            let (wb, ab) = plan
                .layer(&c.name)
                .map(|l| (l.w_bits, l.a_bits))
                .unwrap_or((32, 32));
            let macs = c.macs(h, w);
            let l = plan.layer(&c.name);
            let (scale, shift) = l.map(|l| (l.scale, l.shift)).unwrap_or((false, false));
            let pixels = pixels(h, w, c.res);
            let offset_macs = if scale { pixels * c.cin as u128 } else { 0 };
            let dynamic =
                l.is_some_and(|l| l.has_act() && matches!(l.form, super::QForm::Daq { .. }));
            let dynamic_ops = if dynamic {
                4 * pixels * c.cin as u128
            } else {
                0
            };
            let offset_params = (scale as u64 + shift as u64) * c.cin as u64;
            LayerCost {
                layer: c.name.clone(),
                macs,
                w_bits: wb,
                a_bits: ab,
                bitops: macs * wb as u128 * ab as u128 + (offset_macs + dynamic_ops) * 1024,
                params: (c.weights() + biases(c)) as u64 + offset_params,
                storage_bits: c.weights() as u64 * wb as u64
                    + biases(c) as u64 * 32
                    + offset_params * 32,
                offset_macs,
                dynamic_ops,
            }
        })
        .collect();
    let gates = gate_cost(model, plan, w, h, exact);
    let (g_bitops, g_params, g_storage) = gates
        .as_ref()
        .map_or((0, 0, 0), |g| (g.bitops, g.params_run, g.storage_bits));
    let total_macs = layers.iter().map(|l| l.macs).sum::<u128>();
    let total_bitops = layers.iter().map(|l| l.bitops).sum::<u128>() + g_bitops;
    let total_params = layers.iter().map(|l| l.params).sum::<u64>() + g_params;
    let total_storage_bits = layers.iter().map(|l| l.storage_bits).sum::<u64>() + g_storage;
    let fp_bitops = total_macs * 1024;
    let offset_params: u64 = layers.iter().map(|l| l.params).sum::<u64>() + g_params
        - model
            .convs()
            .iter()
            .map(|c| (c.weights() + biases(c)) as u64)
            .sum::<u64>();
    let fp_storage_bits = (total_params - offset_params) * 32;
    CostReport {
        input_w: w,
        input_h: h,
        layers,
        total_macs,
        total_bitops,
        total_params,
        total_storage_bits,
        fp_bitops,
        fp_storage_bits,
        bitops_ratio: fp_bitops as f64 / total_bitops as f64,
        storage_ratio: fp_storage_bits as f64 / total_storage_bits as f64,
        formula: formula(gates.is_some()),
        gates,
    }
}

/// The cost formula in words; DDTB's gate terms only where there are gates.
fn formula(gates: bool) -> String {
    let mut f = String::from("MACs = H_out·W_out·C_out·C_in·k²; BitOPs = MACs·b_w·b_a (FP: b = 32) + (offset-scale MACs + DAQ's 4 FP32 ops per quantized input element)·32·32; storage = weights·b_w + (biases + offsets)·32; shifts fold into zero points");
    if gates {
        f.push_str("; DDTB gates: + (pooling additions + BatchNorm)·32·32 + gate MACs·2·2 BitOPs, + gate weights·2 + BatchNorm·32 storage bits");
    }
    f
}

impl CostReport {
    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "cost at LR input {}×{} (output ×scale)\n{:<22} {:>16} {:>4} {:>4} {:>22} {:>10} {:>12}\n",
            self.input_w, self.input_h, "layer", "MACs", "W", "A", "BitOPs", "params", "storage b"
        );
        for l in &self.layers {
            s.push_str(&format!(
                "{:<22} {:>16} {:>4} {:>4} {:>22} {:>10} {:>12}\n",
                l.layer, l.macs, l.w_bits, l.a_bits, l.bitops, l.params, l.storage_bits
            ));
        }
        s.push_str(&format!(
            "{:<22} {:>16} {:>9} {:>22} {:>10} {:>12}\n",
            "total",
            self.total_macs,
            "",
            self.total_bitops,
            self.total_params,
            self.total_storage_bits
        ));
        if let Some(g) = &self.gates {
            s.push_str(&format!(
                "DDTB gates: {} of {} points{}: {} parameters run ({} stored), {} 2-bit MACs, {} FP32 pooling additions, {} BitOPs\n",
                g.gated,
                g.points,
                if g.exact { "" } else { " (widest points; selection is data-dependent: an upper bound)" },
                g.params_run,
                g.params_stored,
                g.macs,
                g.pool_adds,
                g.bitops
            ));
        }
        s.push_str(&format!(
            "FP: BitOPs {} storage {} bits; FP/quantized: BitOPs ×{:.3}, storage ×{:.3}\nformula: {}\n",
            self.fp_bitops, self.fp_storage_bits, self.bitops_ratio, self.storage_ratio, self.formula
        ));
        s
    }
}
