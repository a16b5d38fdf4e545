//! DDTB's input-adaptive gate (Zhong et al., "Dynamic Dual Trainable Bounds for Ultra-low
//! Precision Super-Resolution Networks", ECCV 2022), as zysxmu/DDTB codes it (commit e21403d;
//! `model/quant_ops.py` = qo, `main_limitrange_incremental.py` = mli):
//!
//! - gate (qo:217–227, 297–354): context = avgpool(x.detach()) → 2-bit min/max quantizer over
//!   the whole tensor (`quant_activation`, qo:106–131, on a *detached* input) → 1×1 conv C → 32,
//!   no bias, ternary weights (`quant_weight` at 2 bits: round(W/m)·m, m = max|W| + 1e-8,
//!   qo:50–70) → BatchNorm(32) → ReLU → the 2-bit min/max quantizer again → 1×1 conv 32 → 2,
//!   ternary → logits c; the bounds of input n are u_n = 2σ(c_n0)·α_u and l_n = 2σ(c_n1)·α_l, and
//!   x_n is quantized with the static quantizer's formula on [l_n, u_n]. The second quantizer
//!   detaches, so only the last conv (and the bounds) learn; conv 1 and the BatchNorm affine stay
//!   at their initial values, the BatchNorm running statistics move.
//! - selection (mli:124–142): after an FP calibration pass that records every quantizer input's
//!   max and min per batch, the points are ranked by var(max) + var(min) (population variance,
//!   `np.var`) and the first ⌊n·dynamic_ratio⌋ get a gate.
//! - stages (mli:96–97, 197–205): before `first_stage_epoch` the gated points quantize with
//!   their static bounds and the loss adds mean over gated points of mean(c²) (`F.mse_loss(c, 0)`
//!   through forward hooks on `atten_c`), pulling the gate toward 2σ(0) = 1; afterwards the gated
//!   bounds are used and the term is dropped.

use super::{act_bounds, LayerQuant, QuantPlan, Quantizer};
use crate::models::params::{host_tensor, host_values};
use crate::models::Params;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Width of the gate's hidden layer (a constant 32 in `atten_c`).
pub const HIDDEN: usize = 32;
/// Bits of the gate's own activation and weight quantizers (`gate_bit = 2`).
pub const GATE_BITS: u32 = 2;
/// RNG stream of the gates' initial weights (the model's are stream 1, the data's 2).
pub const GATE_STREAM: u64 = 3;
/// BatchNorm2d's ε.
const BN_EPS: f32 = 1e-5;

/// Parameter names of a point's gate.
pub struct GateNames {
    pub conv1: String,
    pub bn: String,
    pub conv2: String,
}

impl GateNames {
    pub fn of(layer: &str) -> Self {
        Self {
            conv1: format!("{layer}.gate.conv1.weight"),
            bn: format!("{layer}.gate.bn"),
            conv2: format!("{layer}.gate.conv2.weight"),
        }
    }

    fn bn_part(&self, part: &str) -> String {
        format!("{}.{part}", self.bn)
    }
}

/// DDTB's `quant_activation` (qo:116–131) in place over all of `v`, in float32 as the source
/// computes it: s = n/(max − min), z = round(s·min) + 2^(b−1), q = (round(s·x − z) + z)/s with
/// n = 2^b − 1 and rounding half to even. A constant input (max = min, where the source divides
/// by zero) is left unchanged.
pub fn quant_minmax(v: &mut [f32], bits: u32) {
    let (mn, mx) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    if mx.is_nan() || mn.is_nan() || mx <= mn {
        return;
    }
    let s = ((1u32 << bits) - 1) as f32 / (mx - mn);
    let z = (s * mn).round_ties_even() + (1u32 << (bits - 1)) as f32;
    for x in v.iter_mut() {
        *x = ((s * *x - z).round_ties_even() + z) / s;
    }
}

/// DDTB's `quant_weight` (qo:61–70): m = max|W| + 1e-8, W_q = round(W·Q/m)·m/Q with
/// Q = 2^(b−1) − 1 (ternary at 2 bits).
pub fn quant_weight(w: &[f32], bits: u32) -> Vec<f32> {
    let q = ((1u32 << (bits - 1)) - 1) as f32;
    let m = w.iter().fold(0.0f32, |a, x| a.max(x.abs())) + 1e-8;
    w.iter()
        .map(|x| (x * q / m).round_ties_even() * m / q)
        .collect()
}

/// What a gate computes for a batch.
pub struct GateOut<B: Backend> {
    /// The logits c, N×2 (column 0 scales the upper bound, column 1 the lower).
    pub logits: Tensor<B, 2>,
    /// In training mode, the BatchNorm's batch mean and unbiased variance (for its running
    /// statistics, PyTorch's momentum 0.1), named by [`GateNames::bn`].
    pub batch_stats: Option<(String, Tensor<B, 1>, Tensor<B, 1>)>,
}

/// Per-channel (mean, variance) on the host.
type Moments = (Vec<f32>, Vec<f32>);

/// The hidden layer's 2-bit codes, N×32: everything up to the gate's second quantizer, which
/// detaches (no gradient reaches conv 1 or the BatchNorm). Host float32. Returns the codes and,
/// in training mode, the batch mean and unbiased variance.
fn hidden<B: Backend>(
    p: &Params<B>,
    names: &GateNames,
    x: &Tensor<B, 4>,
    train: bool,
) -> (Vec<f32>, Option<Moments>) {
    let [n, c, h, w] = x.dims();
    let mut ctx = host_values(x.clone().detach().reshape([n, c, h * w]).mean_dim(2));
    quant_minmax(&mut ctx, GATE_BITS);
    let w1 = quant_weight(&host_values(p.get::<4>(&names.conv1)), GATE_BITS);
    let mut z = vec![0.0f32; n * HIDDEN];
    for (b, zr) in z.chunks_mut(HIDDEN).enumerate() {
        let xr = &ctx[b * c..(b + 1) * c];
        for (j, zj) in zr.iter_mut().enumerate() {
            *zj = xr
                .iter()
                .zip(&w1[j * c..(j + 1) * c])
                .map(|(a, w)| a * w)
                .sum();
        }
    }
    let gamma = host_values(p.get::<1>(&names.bn_part("weight")));
    let beta = host_values(p.get::<1>(&names.bn_part("bias")));
    let (mean, var, stats) = if train {
        let (m, v) = column_moments(&z, n);
        let unbiased = v.iter().map(|v| v * n as f32 / (n - 1) as f32).collect();
        (m.clone(), v, Some((m, unbiased)))
    } else {
        let m = host_values(p.get::<1>(&names.bn_part("running_mean")));
        let v = host_values(p.get::<1>(&names.bn_part("running_var")));
        (m, v, None)
    };
    for row in z.chunks_mut(HIDDEN) {
        for j in 0..HIDDEN {
            let y = (row[j] - mean[j]) / (var[j] + BN_EPS).sqrt() * gamma[j] + beta[j];
            row[j] = y.max(0.0);
        }
    }
    quant_minmax(&mut z, GATE_BITS);
    (z, stats)
}

/// Per-column mean and population variance of an N×32 row-major matrix (f64 sums).
fn column_moments(z: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
    let mut mean = vec![0.0f64; HIDDEN];
    for row in z.chunks(HIDDEN) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += *v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let mut var = vec![0.0f64; HIDDEN];
    for row in z.chunks(HIDDEN) {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (*v as f64 - m).powi(2);
        }
    }
    (
        mean.iter().map(|&m| m as f32).collect(),
        var.iter().map(|&v| (v / n as f64) as f32).collect(),
    )
}

/// Run point `layer`'s gate on its input `x` (N×C×H×W). The logits carry the gradient of the
/// last conv's weights (ternary, straight through).
pub fn gate<B: Backend>(p: &Params<B>, layer: &str, x: &Tensor<B, 4>, train: bool) -> GateOut<B> {
    let names = GateNames::of(layer);
    let n = x.dims()[0];
    let device = x.device();
    let (codes, stats) = hidden(p, &names, x, train);
    let codes = Tensor::<B, 2>::from_data(TensorData::new(codes, [n, HIDDEN]), &device);
    let w2: Tensor<B, 2> = p.get::<4>(&names.conv2).reshape([2, HIDDEN]);
    let wq = quant_weight(&host_values(w2.clone().detach()), GATE_BITS);
    let wq = Tensor::<B, 2>::from_data(TensorData::new(wq, [2, HIDDEN]), &device);
    let w2 = w2.clone() + (wq - w2.detach());
    let batch_stats =
        stats.map(|(m, v)| (names.bn, host_tensor(&m, &device), host_tensor(&v, &device)));
    // logits = codes · w2ᵀ as a broadcast product summed over the hidden units, not `matmul`:
    // burn-flex's matmul dispatches on the CPU's vector width at run time; these sums add in
    // one order on every machine (README, "One summation order on every kernel path").
    let logits = (codes.unsqueeze_dim::<3>(1) * w2.unsqueeze_dim::<3>(0))
        .sum_dim(2)
        .reshape([n, 2]);
    GateOut {
        logits,
        batch_stats,
    }
}

/// Quantize `x` with the bounds the gate's `logits` give each input: u_n = 2σ(c_n0)·α_u,
/// l_n = 2σ(c_n1)·α_l, in the static quantizer's form (qo:336–349). The N inputs go through the
/// fused kernel as the N channels of one 1×N×(C·H)×W tensor, so that per-input bounds are its
/// per-channel bounds.
pub fn gated_quant<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    x: Tensor<B, 4>,
    logits: Tensor<B, 2>,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let g = sigmoid(logits).mul_scalar(2.0);
    let gu = g.clone().slice([0..n, 0..1]).reshape([n]);
    let gl = g.slice([0..n, 1..2]).reshape([n]);
    let (lo, hi) = act_bounds(p, layer, lq);
    let (lo, hi) = (gl * lo.expand([n]), gu * hi.expand([n]));
    let y = crate::kernels::fake_quant_channels(
        x.reshape([1, n, c * h, w]),
        lo,
        hi,
        Quantizer::act(lq),
    );
    y.reshape([n, c, h, w])
}

/// DDTB's stage-one loss: the mean over gated points of mean(c²) (`F.mse_loss(c, 0)`), or
/// `None` without gated points.
pub fn logit_loss<B: Backend>(logits: &[Tensor<B, 2>]) -> Option<Tensor<B, 1>> {
    let total = logits
        .iter()
        .map(|c| (c.clone() * c.clone()).mean())
        .reduce(|a, b| a + b)?;
    Some(total.div_scalar(logits.len() as f64))
}

/// Per-batch max and min of each calibrated point's input (DDTB's `fp_max_list` /
/// `fp_min_list`), for the ranking that chooses the gated points.
#[derive(Default)]
pub struct Ranking {
    ext: Vec<(Vec<f64>, Vec<f64>)>,
}

fn pop_var(v: &[f64]) -> f64 {
    let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64
}

impl Ranking {
    /// Record one batch of point `k`'s input.
    pub fn add(&mut self, k: usize, data: &[f32]) {
        if self.ext.len() <= k {
            self.ext.resize(k + 1, Default::default());
        }
        let (mn, mx) = data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        self.ext[k].0.push(mx as f64);
        self.ext[k].1.push(mn as f64);
    }

    /// var(max) + var(min) of every point, in the order they were added.
    pub fn scores(&self) -> Vec<f64> {
        self.ext
            .iter()
            .map(|(mx, mn)| pop_var(mx) + pop_var(mn))
            .collect()
    }

    /// Which points get a gate: the first ⌊n·ratio⌋ by descending score (a stable sort, as
    /// Python's `list.sort(reverse=True)`).
    pub fn select(&self, ratio: f64) -> Vec<bool> {
        let s = self.scores();
        let mut order: Vec<usize> = (0..s.len()).collect();
        order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
        let k = (s.len() as f64 * ratio).floor() as usize;
        let mut chosen = vec![false; s.len()];
        for &i in order.iter().take(k) {
            chosen[i] = true;
        }
        chosen
    }
}

/// Append the gates of the plan's dynamic points to `params`, in plan order: conv 1 and conv 2
/// from U(±1/√fan_in) (`QuantConv2d.reset_parameters`, qo:446–453) on the seed's gate stream,
/// BatchNorm γ = 1, β = 0, running mean 0 and variance 1 (buffers). All learn at the base rate
/// (DDTB's `arch_param` group), though only conv 2 receives a gradient.
pub fn push_gates<B: Backend>(
    params: &mut Params<B>,
    plan: &QuantPlan,
    seed: u64,
    device: &B::Device,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(GATE_STREAM);
    let mut uniform = |n: usize, fan_in: usize| -> Vec<f32> {
        let b = 1.0 / (fan_in as f64).sqrt();
        (0..n).map(|_| rng.random_range(-b..b) as f32).collect()
    };
    for (name, l) in plan.layers.iter().filter(|(_, l)| l.dynamic) {
        let g = GateNames::of(name);
        let c = l.channels;
        let w1 = uniform(HIDDEN * c, c);
        params.push(
            &g.conv1,
            vec![HIDDEN, c, 1, 1],
            host_tensor(&w1, device),
            1.0,
        );
        for (part, v, mult) in [
            ("weight", 1.0, 1.0),
            ("bias", 0.0, 1.0),
            ("running_mean", 0.0, 0.0),
            ("running_var", 1.0, 0.0),
        ] {
            let t = host_tensor(&[v; HIDDEN], device);
            params.push(&g.bn_part(part), vec![HIDDEN], t, mult);
        }
        let w2 = uniform(2 * HIDDEN, HIDDEN);
        params.push(
            &g.conv2,
            vec![2, HIDDEN, 1, 1],
            host_tensor(&w2, device),
            1.0,
        );
    }
}

/// Trainable parameters of one gate on a C-channel input (conv 1, BatchNorm γ and β, conv 2):
/// 32·C + 64 + 64, 2,176 at C = 64.
pub fn gate_params(c: usize) -> u64 {
    (HIDDEN * c + 2 * HIDDEN + 2 * HIDDEN) as u64
}
