//! Selective distribution offsets (ODM): channel statistics of each quantized layer's input on
//! FP calibration batches, the spreads M_σ = std_c(σ_c)/mean_c(σ_c) and
//! M_μ = std_c(μ_c)/mean_c(σ_c), and the layers the policy selects for a learned channel-wise
//! scale (large M_σ) and shift (large M_μ).

use crate::spec::{OffsetPolicy, Select};
use serde::Serialize;

/// Running per-channel sums of one layer's input.
#[derive(Clone, Debug, Default)]
pub struct ChannelStats {
    n: Vec<f64>,
    sum: Vec<f64>,
    sumsq: Vec<f64>,
}

impl ChannelStats {
    /// Add an NCHW batch (host data).
    pub fn add(&mut self, data: &[f32], [n, c, h, w]: [usize; 4]) {
        if self.n.is_empty() {
            *self = Self {
                n: vec![0.0; c],
                sum: vec![0.0; c],
                sumsq: vec![0.0; c],
            };
        }
        for b in 0..n {
            for ch in 0..c {
                let s = (b * c + ch) * h * w;
                let (mut a, mut q) = (0.0f64, 0.0f64);
                for &v in &data[s..s + h * w] {
                    a += v as f64;
                    q += v as f64 * v as f64;
                }
                self.n[ch] += (h * w) as f64;
                self.sum[ch] += a;
                self.sumsq[ch] += q;
            }
        }
    }

    /// Per-channel mean μ_c and standard deviation σ_c (population) over everything added.
    pub fn mean_std(&self) -> (Vec<f64>, Vec<f64>) {
        let mu: Vec<f64> = self.sum.iter().zip(&self.n).map(|(s, n)| s / n).collect();
        let sd = self
            .sumsq
            .iter()
            .zip(&self.n)
            .zip(&mu)
            .map(|((q, n), m)| (q / n - m * m).max(0.0).sqrt())
            .collect();
        (mu, sd)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn std(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// M_σ and M_μ of a layer from its channel means and standard deviations.
pub fn spreads(mu: &[f64], sd: &[f64]) -> (f64, f64) {
    let ms = mean(sd).max(1e-12);
    (std(sd) / ms, std(mu) / ms)
}

/// One row of the saved table.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct OffsetRow {
    pub layer: String,
    pub m_sigma: f64,
    pub m_mu: f64,
    pub scale: bool,
    pub shift: bool,
}

fn select(sel: Select, m: &[f64]) -> Vec<bool> {
    match sel {
        Select::Off => vec![false; m.len()],
        Select::Threshold(t) => m.iter().map(|&x| x > t).collect(),
        Select::TopFraction(f) => {
            let k = if f <= 0.0 {
                0
            } else {
                ((f * m.len() as f64).round() as usize).clamp(1, m.len())
            };
            let mut idx: Vec<usize> = (0..m.len()).collect();
            idx.sort_by(|&a, &b| m[b].total_cmp(&m[a]).then(a.cmp(&b)));
            let mut out = vec![false; m.len()];
            for &i in &idx[..k] {
                out[i] = true;
            }
            out
        }
    }
}

/// Decide scale/shift per layer from `(layer, M_σ, M_μ)`.
pub fn choose(policy: &OffsetPolicy, layers: &[(String, f64, f64)]) -> Vec<OffsetRow> {
    let n = layers.len();
    let ms: Vec<f64> = layers.iter().map(|l| l.1).collect();
    let mm: Vec<f64> = layers.iter().map(|l| l.2).collect();
    let (sc, sh) = match policy {
        OffsetPolicy::None => (vec![false; n], vec![false; n]),
        OffsetPolicy::AllScale => (vec![true; n], vec![false; n]),
        OffsetPolicy::AllShift => (vec![false; n], vec![true; n]),
        OffsetPolicy::AllBoth => (vec![true; n], vec![true; n]),
        OffsetPolicy::Selective { scale, shift } => (select(*scale, &ms), select(*shift, &mm)),
    };
    layers
        .iter()
        .enumerate()
        .map(|(i, (name, s, m))| OffsetRow {
            layer: name.clone(),
            m_sigma: *s,
            m_mu: *m,
            scale: sc[i],
            shift: sh[i],
        })
        .collect()
}
