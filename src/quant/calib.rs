//! Activation-range initialisation from calibration batches (min–max, averaged percentiles,
//! PAMS's EMA of the per-image max|x|), per layer or per channel.

use crate::spec::RangeInit;

/// Percentile with linear interpolation between order statistics (numpy's default):
/// position p/100·(n − 1).
pub fn percentile(v: &mut [f32], p: f64) -> f64 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let pos = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (_, a, _) = v.select_nth_unstable_by(lo, |x, y| x.total_cmp(y));
    let a = *a as f64;
    if hi == lo {
        return a;
    }
    let (_, b, _) = v.select_nth_unstable_by(hi, |x, y| x.total_cmp(y));
    a + (pos - lo as f64) * (*b as f64 - a)
}

/// Accumulates one point's statistics over calibration batches.
#[derive(Clone, Debug)]
pub struct RangeAcc {
    init: RangeInit,
    symmetric: bool,
    per_channel: bool,
    batches: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

/// Mean over the images of a batch of max|x| per image (over the image's channels, or over one
/// channel), as PAMS's `_ema`: `mean(max(max(max(|x|, 1), 1), 1))`.
fn mean_image_absmax(data: &[f32], dims: [usize; 4], channel: Option<usize>) -> f64 {
    let [n, c, h, w] = dims;
    let plane = h * w;
    let mut total = 0.0;
    for b in 0..n {
        let img = &data[b * c * plane..(b + 1) * c * plane];
        let part = match channel {
            Some(ch) => &img[ch * plane..(ch + 1) * plane],
            None => img,
        };
        total += part.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    }
    total / n as f64
}

impl RangeAcc {
    pub fn new(init: RangeInit, symmetric: bool, per_channel: bool, channels: usize) -> Self {
        let groups = if per_channel { channels } else { 1 };
        Self {
            init,
            symmetric,
            per_channel,
            batches: 0,
            lo: vec![0.0; groups],
            hi: vec![0.0; groups],
        }
    }

    /// Add one batch (NCHW host data).
    pub fn add(&mut self, data: &[f32], dims: [usize; 4]) {
        let first = self.batches == 0;
        self.batches += 1;
        if let RangeInit::EmaMax { .. } | RangeInit::ImageMax = self.init {
            let decay = match self.init {
                RangeInit::EmaMax { decay } => decay,
                _ => 0.0,
            };
            for g in 0..self.hi.len() {
                let m = mean_image_absmax(data, dims, self.per_channel.then_some(g));
                self.hi[g] = if first {
                    m
                } else {
                    decay * self.hi[g] + (1.0 - decay) * m
                };
                self.lo[g] = -self.hi[g];
            }
            return;
        }
        for (g, mut v) in groups(data, dims, self.per_channel).into_iter().enumerate() {
            match self.init {
                RangeInit::MinMax => {
                    let (mn, mx) = v
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                            (a.min(x as f64), b.max(x as f64))
                        });
                    self.lo[g] = if first { mn } else { self.lo[g].min(mn) };
                    self.hi[g] = if first { mx } else { self.hi[g].max(mx) };
                }
                RangeInit::Percentile {
                    low,
                    high,
                    first_batch,
                } => {
                    if first || !first_batch {
                        self.lo[g] += percentile(&mut v, low);
                        self.hi[g] += percentile(&mut v, high);
                    }
                }
                RangeInit::Ema { low, high, beta } => {
                    let (l, h) = (percentile(&mut v, low), percentile(&mut v, high));
                    self.lo[g] = if first {
                        l
                    } else {
                        (1.0 - beta) * l + beta * self.lo[g]
                    };
                    self.hi[g] = if first {
                        h
                    } else {
                        (1.0 - beta) * h + beta * self.hi[g]
                    };
                }
                RangeInit::EmaMax { .. } | RangeInit::ImageMax => unreachable!("handled above"),
            }
        }
    }

    /// (lo, hi) per group. Symmetric forms return hi = max(|lo|, |hi|) and lo = −hi. A range
    /// that collapsed (constant input) is widened to ±1e-3 around its value.
    pub fn bounds(&self) -> (Vec<f32>, Vec<f32>) {
        let k = match self.init {
            RangeInit::Percentile {
                first_batch: false, ..
            } => 1.0 / self.batches.max(1) as f64,
            _ => 1.0,
        };
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for g in 0..self.lo.len() {
            let (mut l, mut h) = (self.lo[g] * k, self.hi[g] * k);
            if self.symmetric {
                h = l.abs().max(h.abs());
                l = -h;
            }
            if h - l < 1e-3 {
                l -= 1e-3;
                h += 1e-3;
            }
            lo.push(l as f32);
            hi.push(h as f32);
        }
        (lo, hi)
    }
}

/// Split an NCHW host buffer into per-channel groups, or one group.
pub fn groups(data: &[f32], dims: [usize; 4], per_channel: bool) -> Vec<Vec<f32>> {
    if !per_channel {
        return vec![data.to_vec()];
    }
    let [n, c, h, w] = dims;
    let mut out = vec![Vec::with_capacity(n * h * w); c];
    for b in 0..n {
        for (ch, o) in out.iter_mut().enumerate() {
            let s = (b * c + ch) * h * w;
            o.extend_from_slice(&data[s..s + h * w]);
        }
    }
    out
}
