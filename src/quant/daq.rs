//! DAQ (Hong et al., "DAQ: Channel-Wise Distribution-Aware Quantization for Deep Image
//! Super-Resolution Networks", WACV 2022) as Cheeun/DAQ-pytorch `src/model/quantize.py` codes it.
//!
//! Activations (`Quantization.forward`), per image and channel, nothing learned:
//! - If the whole input tensor's minimum is exactly 0 (the code's "after ReLU" test), the
//!   statistics skip the zeros: n = #(x > 0 over H×W) + 1, μ = Σx/n, σ = √(Σx²/n − μ²); the
//!   quantizer is a mid-rise grid offset by thr and is **not** clipped:
//!   q = ((round((x − thr)/s + ½) − ½)·s) + thr.
//! - Otherwise μ and σ are the mean and the unbiased standard deviation over H×W, and
//!   q = clip((round((x − μ)/s + ½) − ½)·s, −thr, thr) + μ.
//!
//! with s = g(b)·σ, thr = (2^b/2 − ½)·s, g(b) = `gaussian_steps[b − 1]` (the Gaussian-optimal
//! uniform step in units of σ), and a step of exactly 0 giving q = 0 + (thr or μ). σ itself is
//! quantized per image (`qq_bit` < 32, 8 in DAQ's training script): over the channels,
//! m = mean(σ), d = unbiased std(σ), s_σ = g(qq)·d, σ ← clip((round((σ − m)/s_σ + ½) − ½)·s_σ,
//! ±(2^qq/2 − ½)·s_σ) + m. μ and σ are detached; the gradient is the straight-through identity
//! (`quantized.detach() + x − x.detach()`), with no clip gradient.
//!
//! Weights (`Conv2d_Q`): σ_W = unbiased std of the whole tensor, s = g(b)·σ_W, the clipped
//! mid-rise grid around 0 (thr = (2^b/2 − ½)·s), straight-through gradient.
//!
//! **DAQ strict** (our option, `strict: true`; not in DAQ's code): the after-ReLU branch is
//! clipped like the other, y ← clip(y, −thr, thr) before adding thr, so that every activation
//! takes one of the b-bit grid's 2^b levels {0, s, …, (2^b − 1)·s} = {(k − ½)·s + thr}, k = 0 …
//! 2^b − 1 (at 2 bits {0, s, 2s, 3s}). As the code runs, the after-ReLU grid
//! (round((x − thr)/s + ½) − ½)·s + thr = j·s, j = round(x/s − 2^(b−1) + 1) + 2^(b−1) − 1 ≥ 0, is
//! unbounded above: a 2-bit point emits the codes 0, 1, 2, … up to ⌊max x/s⌉, in effect 4–5-bit
//! codes on EDSR's post-ReLU inputs (16 of its 32 quantized inputs). The gradient stays the
//! straight-through identity of DAQ's other branch (no clip gradient).
//!
//! One documented deviation: σ² = Σx²/n − μ² is clamped at 0 before the square root (float
//! rounding can make it slightly negative for a constant channel, where the code gives NaN).

use burn::tensor::backend::Backend;
use burn::tensor::ElementConversion;
use burn::tensor::Tensor;

/// `gaussian_steps` of `quantize.py`, indexed by bits − 1 (1 to 9 bits).
pub const GAUSSIAN_STEPS: [f64; 9] = [2.0, 1.596, 0.996, 0.586, 0.335, 0.188, 0.104, 0.057, 0.031];

/// The Gaussian step g(b) in units of σ for a `bits`-bit quantizer.
pub fn gaussian_step(bits: u32) -> f64 {
    GAUSSIAN_STEPS[(bits as usize).clamp(1, GAUSSIAN_STEPS.len()) - 1]
}

/// The mid-rise grid: ((round(v/s + ½) − ½)·s)·[s > 0], with s = −1 where s = 0 (so the result
/// is 0 there), as the code writes it.
fn midrise<B: Backend>(v: Tensor<B, 4>, step: Tensor<B, 4>) -> Tensor<B, 4> {
    let zero = step.clone().equal_elem(0.0).float();
    let positive = step.clone().greater_elem(0.0).float();
    let s = step - zero;
    ((v / s.clone()).add_scalar(0.5).round().sub_scalar(0.5) * s) * positive
}

/// `y` clipped to [−thr, thr] (`torch.min(y, thr)`, `torch.max(y, −thr)`).
fn clip<B: Backend>(y: Tensor<B, 4>, thr: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = y.shape();
    let t = thr.expand(shape);
    y.min_pair(t.clone()).max_pair(t.neg())
}

/// Unbiased standard deviation over `dims` (kept), as `torch.std`.
fn std<B: Backend>(x: Tensor<B, 4>, dims: &[usize]) -> Tensor<B, 4> {
    let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
    let mean = x.clone().mean_dims(dims);
    let ss = (x - mean).square().sum_dims(dims);
    ss.div_scalar((n.max(2) - 1) as f64).sqrt()
}

/// σ quantized per image over its channels with `bits` (see the module documentation).
fn quantize_sigma<B: Backend>(sigma: Tensor<B, 4>, bits: u32) -> Tensor<B, 4> {
    let m = sigma.clone().mean_dims(&[1]);
    let d = std(sigma.clone(), &[1]);
    let step = d.mul_scalar(gaussian_step(bits));
    let thr = step.clone().mul_scalar((1u64 << bits) as f64 / 2.0 - 0.5);
    let y = midrise(sigma - m.clone(), step);
    clip(y, thr) + m
}

/// DAQ's activation quantizer on N×C×H×W `x` at `bits`, σ quantized at `sigma_bits` (32: not),
/// as its code runs (after ReLU unclipped).
pub fn act<B: Backend>(x: Tensor<B, 4>, bits: u32, sigma_bits: u32) -> Tensor<B, 4> {
    quantize_act(x, bits, sigma_bits, false)
}

/// Per image and channel statistics of one input (N×C×1×1 each, detached), see the module
/// documentation: the centre the grid is laid around (μ, or thr after ReLU), the step s and the
/// half-range thr, and whether the input took the code's "after ReLU" branch.
pub struct Grid<B: Backend> {
    pub centre: Tensor<B, 4>,
    pub step: Tensor<B, 4>,
    pub thr: Tensor<B, 4>,
    pub after_relu: bool,
}

/// The grid DAQ lays over `x` (detached) at `bits`, σ quantized at `sigma_bits`.
pub fn grid<B: Backend>(x: &Tensor<B, 4>, bits: u32, sigma_bits: u32) -> Grid<B> {
    let xd = x.clone().detach();
    let after_relu = xd.clone().min().into_scalar().elem::<f64>() == 0.0;
    let (mu, sigma) = if after_relu {
        let n = xd
            .clone()
            .greater_elem(0.0)
            .float()
            .sum_dims(&[2, 3])
            .add_scalar(1.0);
        let mu = xd.clone().sum_dims(&[2, 3]) / n.clone();
        let x2 = xd.clone().square().sum_dims(&[2, 3]) / n;
        let var = (x2 - mu.clone().square()).clamp_min(0.0);
        (mu, var.sqrt())
    } else {
        (xd.clone().mean_dims(&[2, 3]), std(xd, &[2, 3]))
    };
    let sigma = if sigma_bits < 32 {
        quantize_sigma(sigma, sigma_bits)
    } else {
        sigma
    };
    let step = sigma.mul_scalar(gaussian_step(bits));
    let thr = step.clone().mul_scalar((1u64 << bits) as f64 / 2.0 - 0.5);
    let centre = if after_relu { thr.clone() } else { mu };
    Grid {
        centre,
        step,
        thr,
        after_relu,
    }
}

/// The interval [lo, hi] (N×C×1×1 each) DAQ clips `x` to: centre ± thr, except after ReLU as
/// the code runs ([0, +∞): never clipped); `strict` clips there too, to [0, 2·thr].
pub fn clip_range<B: Backend>(
    x: &Tensor<B, 4>,
    bits: u32,
    sigma_bits: u32,
    strict: bool,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let g = grid(x, bits, sigma_bits);
    let lo = g.centre.clone() - g.thr.clone();
    let hi = if g.after_relu && !strict {
        g.centre.ones_like().mul_scalar(f32::INFINITY)
    } else {
        g.centre + g.thr
    };
    (lo, hi)
}

/// DAQ's activation quantizer; `strict` clips the after-ReLU branch to the b-bit grid too
/// (DAQ strict, see the module documentation).
pub fn quantize_act<B: Backend>(
    x: Tensor<B, 4>,
    bits: u32,
    sigma_bits: u32,
    strict: bool,
) -> Tensor<B, 4> {
    let xd = x.clone().detach();
    let g = grid(&xd, bits, sigma_bits);
    let shape = xd.shape();
    let y = midrise(
        xd - g.centre.clone().expand(shape.clone()),
        g.step.expand(shape),
    );
    let y = if g.after_relu && !strict {
        y
    } else {
        clip(y, g.thr)
    };
    y + g.centre + x.clone() - x.detach()
}

/// DAQ's weight quantizer on a co×ci×k×k tensor at `bits`.
pub fn weight<B: Backend>(w: Tensor<B, 4>, bits: u32) -> Tensor<B, 4> {
    let wd = w.clone().detach();
    let sigma = std(wd.clone(), &[0, 1, 2, 3]);
    let step = sigma.mul_scalar(gaussian_step(bits));
    let thr = step.clone().mul_scalar((1u64 << bits) as f64 / 2.0 - 0.5);
    let shape = wd.shape();
    let y = midrise(wd, step.expand(shape));
    clip(y, thr) + w.clone() - w.detach()
}
