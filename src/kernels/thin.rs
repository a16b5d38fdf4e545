//! The convolution for few output channels (≤ [`THIN`](super::cpu_conv::THIN), e.g. the
//! 64 → 3 tail at the HR resolution), computed on the image directly: no im2col matrix, whose
//! ci·k² rows per pixel would cost more memory traffic than the co·ci·k² multiply-adds.
//!
//! Forward: y[o] = b[o] + Σ_c Σ_a Σ_b w[o][c][a][b] · x[c] shifted by (a − p, b − p), accumulated
//! in that order (c, then a, then b) into each output row of a band, zero outside the image.
//! Weight gradient: dW[o][c][a][b] = Σ_y Σ_x dy[o][y][x] · x[c][y + a − p][x + b − p], each row's
//! dot product over 16 fixed lanes summed in lane order, rows summed in order, per image, then
//! images summed in index order. Multiplies and adds are separate operations (no fused
//! multiply-add), so the SSE2 and AVX2 paths, chosen at run time, give the same bits. The work
//! split (image, band of rows) is a function of the shape only: results do not depend on the
//! thread count.

use super::geom::{sum_images, Geom, SendPtr};
use rayon::prelude::*;

/// Valid output columns [x0, x1) for kernel column `b` (0 ≤ x + b − p < w).
fn cols(w: usize, b: usize, p: usize) -> (usize, usize) {
    (p.saturating_sub(b), (w + p).saturating_sub(b).min(w))
}

/// d += v·s, element-wise.
#[inline(always)]
fn axpy_body(d: &mut [f32], v: f32, s: &[f32]) {
    for (d, s) in d.iter_mut().zip(s) {
        *d += v * s;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(d: &mut [f32], v: f32, s: &[f32]) {
    axpy_body(d, v, s)
}

fn axpy(d: &mut [f32], v: f32, s: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present.
        return unsafe { axpy_avx2(d, v, s) };
    }
    axpy_body(d, v, s)
}

/// Σ a·b over 16 lanes (lane i takes elements i, i + 16, …), lanes summed in order, then the
/// tail in order.
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = 0f32;
    for v in acc {
        s += v;
    }
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_body(a, b)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present.
        return unsafe { dot_avx2(a, b) };
    }
    dot_body(a, b)
}

/// Accumulate conv(x, wt) of output channel `o`, rows [r0, r1), into `dst` ((r1 − r0)·w).
fn channel_rows(
    g: &Geom,
    x: &[f32],
    wt: &[f32],
    o: usize,
    (r0, r1): (usize, usize),
    dst: &mut [f32],
) {
    let (h, w, k) = (g.h, g.w, g.k);
    let p = k / 2;
    for c in 0..g.ci {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for a in 0..k {
            for b in 0..k {
                let v = wt[((o * g.ci + c) * k + a) * k + b];
                let (x0, x1) = cols(w, b, p);
                if x0 >= x1 {
                    continue;
                }
                for y in r0..r1 {
                    let iy = y + a;
                    if iy < p || iy - p >= h {
                        continue;
                    }
                    let src = &plane[(iy - p) * w + x0 + b - p..(iy - p) * w + x1 + b - p];
                    axpy(&mut dst[(y - r0) * w + x0..(y - r0) * w + x1], v, src);
                }
            }
        }
    }
}

/// Forward: y (n×co×h×w) = conv(x, wt) + bias.
pub fn forward(g: &Geom, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let hw = g.h * g.w;
    let mut y = vec![0.0f32; g.n * g.co * hw];
    let yp = SendPtr(y.as_mut_ptr());
    let bands = g.bands();
    (0..g.n * bands).into_par_iter().for_each(|u| {
        #[allow(clippy::redundant_locals)]
        let yp = yp;
        let (img, (r0, r1)) = (u / bands, g.band(u % bands));
        let xi = &x[img * g.ci * hw..(img + 1) * g.ci * hw];
        for o in 0..g.co {
            // SAFETY: unit (img, band) alone writes rows r0..r1 of every channel of image img.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(
                    yp.0.add((img * g.co + o) * hw + r0 * g.w),
                    (r1 - r0) * g.w,
                )
            };
            dst.fill(bias.map_or(0.0, |b| b[o]));
            channel_rows(g, xi, wt, o, (r0, r1), dst);
        }
    });
    y
}

/// dW of one image (co×ci×k×k).
fn image_grad(g: &Geom, xi: &[f32], di: &[f32]) -> Vec<f32> {
    let (h, w, k) = (g.h, g.w, g.k);
    let p = k / 2;
    let mut dw = vec![0f32; g.co * g.kk()];
    for o in 0..g.co {
        let d = &di[o * h * w..(o + 1) * h * w];
        for c in 0..g.ci {
            let plane = &xi[c * h * w..(c + 1) * h * w];
            for a in 0..k {
                for b in 0..k {
                    let (x0, x1) = cols(w, b, p);
                    let mut s = 0f32;
                    for y in 0..h {
                        let iy = y + a;
                        if x0 >= x1 || iy < p || iy - p >= h {
                            continue;
                        }
                        let src = &plane[(iy - p) * w + x0 + b - p..(iy - p) * w + x1 + b - p];
                        s += dot(&d[y * w + x0..y * w + x1], src);
                    }
                    dw[((o * g.ci + c) * k + a) * k + b] = s;
                }
            }
        }
    }
    dw
}

/// Weight and bias gradients (dW co×ci×k×k, db co), each a sum over images in index order.
pub fn grad_weight(g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let hw = g.h * g.w;
    let partial: Vec<(Vec<f32>, Vec<f32>)> = (0..g.n)
        .into_par_iter()
        .map(|img| {
            let xi = &x[img * g.ci * hw..(img + 1) * g.ci * hw];
            let di = &dy[img * g.co * hw..(img + 1) * g.co * hw];
            let db = di.chunks(hw).map(|c| c.iter().sum::<f32>()).collect();
            (image_grad(g, xi, di), db)
        })
        .collect();
    sum_images(partial)
}
