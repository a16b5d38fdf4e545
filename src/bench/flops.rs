//! Analytic FLOPs of the benchmark's training steps, counted on the convolutions only.
//!
//! A conv with C_in inputs, C_out outputs, a k×k kernel and an H_out×W_out output over a batch of
//! N does MACs = N·H_out·W_out·C_in·C_out·k² multiply-adds, 2·MACs FLOPs, in each of its forward,
//! its input gradient and its weight gradient. A training step counts all three for every conv
//! except the head's input gradient (the LR input needs none, and the kernel skips it): 6·MACs
//! per conv, 4·MACs for the head. Not counted: biases, ReLU, residual adds, pixel shuffle, fake
//! quantizers, the loss, Adam.
//!
//! The gated step's regularizer pass replays the forward's conv outputs (no conv FLOPs) and runs
//! the regularizer's backward: its floor is the weight and input gradients (4·MACs) of every
//! quantized conv but the last in forward order (whose output reaches no regularized input) and
//! of every unquantized conv before that one, the head's weight gradient only (2·MACs).

use crate::models::{ConvInfo, Model};
use crate::quant::QuantPlan;

/// The formula, as the bench prints it.
pub const FORMULA: &str = "conv FLOPs only: MACs = N·H_out·W_out·C_in·C_out·k² per conv; step = Σ 6·MACs (forward, input and weight gradients; 4·MACs for the head, whose input needs no gradient); replay-pass floor = Σ 4·MACs over the convs before the last quantized one (2·MACs for the head), the forward being replayed";

/// MACs of `c` on a batch of `n` LR inputs of side `side`.
pub fn macs(c: &ConvInfo, n: usize, side: usize) -> f64 {
    let s = (side * c.res) as f64;
    n as f64 * s * s * (c.cin * c.cout * c.k * c.k) as f64
}

/// FLOPs of one forward of `model` on LR inputs of `pixels` pixels in all (2·MACs per conv).
pub fn forward_flops(model: &Model, pixels: usize) -> f64 {
    let per_pixel: f64 = model.convs().iter().map(|c| 2.0 * macs(c, 1, 1)).sum();
    per_pixel * pixels as f64
}

/// FLOPs of one training step of `model` on `n` LR patches of side `side` (see the module
/// documentation).
pub fn step_flops(model: &Model, n: usize, side: usize) -> f64 {
    model
        .convs()
        .iter()
        .enumerate()
        .map(|(i, c)| if i == 0 { 4.0 } else { 6.0 } * macs(c, n, side))
        .sum()
}

/// The FLOP floor of the gated step's extra regularizer pass (see the module documentation):
/// 0 when the plan quantizes no conv.
pub fn replay_floor_flops(model: &Model, plan: &QuantPlan, n: usize, side: usize) -> f64 {
    let convs = model.convs();
    let Some(last) = convs
        .iter()
        .rposition(|c| plan.layers.iter().any(|(name, _)| *name == c.name))
    else {
        return 0.0;
    };
    convs[..last]
        .iter()
        .enumerate()
        .map(|(i, c)| if i == 0 { 2.0 } else { 4.0 } * macs(c, n, side))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edsr_baseline_step_flops_by_hand() {
        let spec = super::super::bench_spec(super::super::Size::Full, super::super::StepKind::Fp);
        let model = Model::from_spec(&spec.model, spec.scale);
        // EDSR-baseline ×4, batch 16, 48×48 LR: head 3→64, 33 body convs 64→64 (32 in blocks,
        // body end), upsampler 64→256 at ×1 and ×2, tail 64→3 at ×4, all 3×3.
        let px = 16.0 * 48.0 * 48.0;
        let head = px * 3.0 * 64.0 * 9.0;
        let body = 33.0 * px * 64.0 * 64.0 * 9.0;
        let up = px * 64.0 * 256.0 * 9.0 * (1.0 + 4.0);
        let tail = 16.0 * px * 64.0 * 3.0 * 9.0;
        let want = 4.0 * head + 6.0 * (body + up + tail);
        assert_eq!(step_flops(&model, 16, 48), want);
        // One LR pixel's forward: 1728 + 33·36 864 + 147 456 + 4·147 456 + 16·1728 MACs.
        assert_eq!(forward_flops(&model, 1), 2.0 * 1_983_168.0);
    }
}
