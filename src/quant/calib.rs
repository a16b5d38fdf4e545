//! Activation-range initialisation from calibration batches (min–max, averaged percentiles,
//! PAMS's EMA of max|x|), per layer or per channel.

use super::ActForm;
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

/// Accumulates one layer's statistics over calibration batches.
#[derive(Clone, Debug)]
pub struct RangeAcc {
    init: RangeInit,
    form: ActForm,
    batches: usize,
    lo: Vec<f64>,
    hi: Vec<f64>,
}

impl RangeAcc {
    pub fn new(init: RangeInit, form: ActForm, groups: usize) -> Self {
        Self {
            init,
            form,
            batches: 0,
            lo: vec![0.0; groups],
            hi: vec![0.0; groups],
        }
    }

    /// Add one batch; `groups[g]` holds the values of group g (a channel, or everything).
    pub fn add(&mut self, groups: Vec<Vec<f32>>) {
        let first = self.batches == 0;
        for (g, mut v) in groups.into_iter().enumerate() {
            let (mn, mx) = v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                    (a.min(x as f64), b.max(x as f64))
                });
            match self.init {
                RangeInit::MinMax => {
                    self.lo[g] = if first { mn } else { self.lo[g].min(mn) };
                    self.hi[g] = if first { mx } else { self.hi[g].max(mx) };
                }
                RangeInit::Percentile { low, high } => {
                    self.lo[g] += percentile(&mut v, low);
                    self.hi[g] += percentile(&mut v, high);
                }
                RangeInit::EmaMax { decay } => {
                    let (l, h) = match self.form {
                        ActForm::Symmetric => {
                            let m = mn.abs().max(mx.abs());
                            (-m, m)
                        }
                        ActForm::Asymmetric => (mn, mx),
                    };
                    if first {
                        self.lo[g] = l;
                        self.hi[g] = h;
                    } else {
                        self.lo[g] = decay * self.lo[g] + (1.0 - decay) * l;
                        self.hi[g] = decay * self.hi[g] + (1.0 - decay) * h;
                    }
                }
            }
        }
        self.batches += 1;
    }

    /// (lo, hi) per group. Symmetric forms return hi = max(|lo|, |hi|) and lo = −hi. A range
    /// that collapsed (constant input) is widened to ±1e-3 around its value.
    pub fn bounds(&self) -> (Vec<f32>, Vec<f32>) {
        let k = if matches!(self.init, RangeInit::Percentile { .. }) {
            1.0 / self.batches.max(1) as f64
        } else {
            1.0
        };
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for g in 0..self.lo.len() {
            let (mut l, mut h) = (self.lo[g] * k, self.hi[g] * k);
            if self.form == ActForm::Symmetric {
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
