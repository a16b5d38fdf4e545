//! The rescale of an integer convolution's accumulators to floats: for input codes u with real
//! values a·u + o and weight codes c with w = s_w·c,
//! y = (a·s_w)·acc + (o·s_w)·Σ_valid c + b, where Σ_valid c sums the codes of the taps inside
//! the image (the real input is zero-padded, the codes' border is zero). Σ_valid c depends only
//! on which taps fall outside: one class per distinct row range and column range (at most 3 × 3
//! per channel for a 3×3 conv). The op order is fixed (two products, then two sums), so every
//! path gives the same bits.

use super::IntWeights;
use std::mem::MaybeUninit;

/// The constants of one conv's rescale at one input size.
pub struct Rescale {
    /// Per output channel: a·s_w, o·s_w and b.
    pub ka: Vec<f32>,
    pub ko: Vec<f32>,
    pub b: Vec<f32>,
    /// Σ_valid c per (row class, column class), C_out each.
    sums: Vec<f32>,
    ncx: usize,
    /// The class of each row and column.
    ry: Vec<usize>,
    cx: Vec<usize>,
}

/// Each index's range of valid taps (k taps, padding k/2, n positions), as class indices and
/// the distinct ranges.
fn classes(n: usize, k: usize) -> (Vec<std::ops::Range<usize>>, Vec<usize>) {
    let pad = k / 2;
    let mut r: Vec<std::ops::Range<usize>> = Vec::new();
    let idx = (0..n)
        .map(|i| {
            let g = pad.saturating_sub(i)..k.min(n + pad - i);
            r.iter().position(|x| *x == g).unwrap_or_else(|| {
                r.push(g);
                r.len() - 1
            })
        })
        .collect();
    (r, idx)
}

impl Rescale {
    /// For weights `w` with scales `sw` (one, or one per output channel) and bias `bias`, input
    /// codes with real values a·u + o, and an h × wd input.
    pub fn new(
        w: &IntWeights,
        sw: &[f32],
        bias: Option<&[f32]>,
        (a, o): (f32, f32),
        (h, wd): (usize, usize),
    ) -> Self {
        let co = w.cout;
        let ((rows, ry), (cols, cx)) = (classes(h, w.k), classes(wd, w.k));
        let mut sums = Vec::with_capacity(rows.len() * cols.len() * co);
        for r in &rows {
            for c in &cols {
                sums.extend((0..co).map(|oc| w.tap_sum(oc, r.clone(), c.clone()) as f32));
            }
        }
        let s = |oc: usize| if sw.len() == 1 { sw[0] } else { sw[oc] };
        Self {
            ka: (0..co).map(|oc| a * s(oc)).collect(),
            ko: (0..co).map(|oc| o * s(oc)).collect(),
            b: (0..co).map(|oc| bias.map_or(0.0, |b| b[oc])).collect(),
            sums,
            ncx: cols.len(),
            ry,
            cx,
        }
    }

    /// Σ_valid c of pixel (y, x), one per output channel.
    pub fn sums(&self, y: usize, x: usize) -> &[f32] {
        let co = self.ka.len();
        let i = (self.ry[y] * self.ncx + self.cx[x]) * co;
        &self.sums[i..i + co]
    }

    /// Output row y (pixel-major) from its accumulators (pixel-major).
    pub fn row(&self, y: usize, acc: &[i32], t: &mut [MaybeUninit<f32>]) {
        let co = self.ka.len();
        for (x, (tx, ax)) in t.chunks_mut(co).zip(acc.chunks(co)).enumerate() {
            let s = self.sums(y, x);
            for oc in 0..co {
                tx[oc].write(self.ka[oc] * ax[oc] as f32 + self.ko[oc] * s[oc] + self.b[oc]);
            }
        }
    }
}
