//! Same-padded stride-1 k×k convolution (k odd, padding k/2) on contiguous NCHW `f32` slices:
//! forward, input gradient and weight/bias gradients. At most [`THIN`] output channels go to
//! [`super::thin`]; the rest to the implicit GEMM of [`super::implicit`] (no im2col matrix).
//! The im2col + GEMM kernels they replaced (Chellapilla et al., "High Performance
//! Convolutional Neural Networks for Document Processing", 2006, with the `gemm` crate through
//! [`super::sgemm`]) stay as `*_gemm`, so that `odm bench` times both in one run.
//!
//! Work is split into units that do not depend on the thread count: forward and input gradient
//! into (image, band of output rows), each writing its own disjoint part of the output; the
//! weight gradient into one partial sum per image (bands accumulated in order), summed over
//! images in index order. So results are bit-identical for any number of threads.
//!
//! The input gradient of a same-padded stride-1 convolution is itself a same-padded convolution
//! of the output gradient with the transposed, spatially flipped kernel (W'[i][o][a][b] =
//! W[o][i][k−1−a][k−1−b]), so it reuses the forward path.

use rayon::prelude::*;

pub use super::geom::Geom;
use super::geom::{sum_images, SendPtr};
use super::sgemm::{sgemm, Mat, Parallelism};

/// im2col of image `x` (ci×h×w) for output rows [r0, r1): `col[(c·k² + a·k + b)·bp + (y−r0)·w + x]
/// = x[c][y + a − p][x + b − p]`, zero outside the image, with bp = (r1 − r0)·w.
fn im2col(g: &Geom, x: &[f32], r0: usize, r1: usize, col: &mut [f32]) {
    let (h, w, k) = (g.h, g.w, g.k);
    let p = k / 2;
    let bp = (r1 - r0) * w;
    for c in 0..g.ci {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for a in 0..k {
            for b in 0..k {
                let row = &mut col[((c * k + a) * k + b) * bp..][..bp];
                // Valid output columns: 0 ≤ x + b − p < w.
                let x0 = p.saturating_sub(b);
                let x1 = (w + p).saturating_sub(b).min(w);
                for y in r0..r1 {
                    let dst = &mut row[(y - r0) * w..(y - r0 + 1) * w];
                    let iy = y + a;
                    if iy < p || iy - p >= h || x0 >= x1 {
                        dst.fill(0.0);
                        continue;
                    }
                    let src = &plane[(iy - p) * w..(iy - p + 1) * w];
                    dst[..x0].fill(0.0);
                    dst[x0..x1].copy_from_slice(&src[x0 + b - p..x1 + b - p]);
                    dst[x1..].fill(0.0);
                }
            }
        }
    }
}

/// dst = [dst if `acc`] + lhs · rhs ((m, n, k) with each operand's layout), single-threaded
/// (callers parallelise over units), through [`super::sgemm`] (one summation order over k on
/// every kernel path, whatever the layouts).
unsafe fn gemm_f32(
    dims: (usize, usize, usize),
    dst: Mat<*mut f32>,
    acc: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
) {
    sgemm(dims, dst, acc, lhs, rhs, Parallelism::None)
}

/// Output channels up to which the forward and the weight gradient work on the image directly
/// instead of through an im2col matrix ([`super::thin`]): with so few GEMM rows, writing the
/// ci·k²-row column matrix costs more than the multiply-adds (the tail conv, 64 → 3).
pub const THIN: usize = 4;

/// Forward: y (n×co×h×w) = conv(x, wt) + bias; `wt` is co×ci×k×k: [`super::thin`] for at
/// most [`THIN`] output channels, else the implicit GEMM of [`super::implicit`].
pub fn forward(g: &Geom, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    if g.co <= THIN {
        return super::thin::forward(g, x, wt, bias);
    }
    super::implicit::forward(g, x, wt, bias)
}

/// The forward as im2col + [`super::sgemm`] (the kernel before [`super::implicit`]; `odm bench`
/// times both in one run). Its sums differ from the implicit forward's in the last bits: k is
/// added in ⌈k/512⌉ chunks onto the bias, not in one chain with the bias last.
pub fn forward_gemm(g: &Geom, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (hw, kk) = (g.h * g.w, g.kk());
    assert_eq!(x.len(), g.n * g.ci * hw, "conv input size");
    assert_eq!(wt.len(), g.co * kk, "conv weight size");
    let mut y = vec![0.0f32; g.n * g.co * hw];
    let yp = SendPtr(y.as_mut_ptr());
    let bands = g.bands();
    (0..g.n * bands)
        .into_par_iter()
        .for_each_init(Vec::new, |col, u| {
            // Capture the whole `SendPtr` (Send), not its raw-pointer field (edition 2021
            // captures disjoint fields).
            #[allow(clippy::redundant_locals)]
            let yp = yp;
            let (img, (r0, r1)) = (u / bands, g.band(u % bands));
            let bp = (r1 - r0) * g.w;
            col.resize(kk * bp, 0.0);
            im2col(g, &x[img * g.ci * hw..(img + 1) * g.ci * hw], r0, r1, col);
            // SAFETY: unit (img, band) alone writes rows r0..r1 of every channel of image img.
            // The product is yᵀ (pixels × co) = colᵀ (pixels × kk) · wtᵀ (kk × co): pixels are the
            // GEMM's rows (what `gemm::gemm` made of y = wt · col by itself; see `sgemm`).
            unsafe {
                let dst = yp.0.add(img * g.co * hw + r0 * g.w);
                if let Some(b) = bias {
                    for (o, &bo) in b.iter().enumerate() {
                        std::slice::from_raw_parts_mut(dst.add(o * hw), bp).fill(bo);
                    }
                }
                gemm_f32(
                    (bp, g.co, kk),
                    Mat::col_major(dst, hw),
                    bias.is_some(),
                    Mat::col_major(col.as_ptr(), bp),
                    Mat::col_major(wt.as_ptr(), kk),
                );
            }
        });
    y
}

/// The transposed, spatially flipped kernel (ci×co×k×k) whose forward gives the input gradient.
fn flip_transpose(g: &Geom, wt: &[f32]) -> Vec<f32> {
    let k = g.k;
    let mut out = vec![0.0f32; wt.len()];
    for o in 0..g.co {
        for i in 0..g.ci {
            for a in 0..k {
                for b in 0..k {
                    out[((i * g.co + o) * k + a) * k + b] =
                        wt[((o * g.ci + i) * k + (k - 1 - a)) * k + (k - 1 - b)];
                }
            }
        }
    }
    out
}

/// Input gradient: dx (n×ci×h×w) from dy (n×co×h×w).
pub fn grad_input(g: &Geom, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    input_gradient_by(forward, g, dy, wt)
}

/// [`grad_input`] through [`forward_gemm`] (timed beside it by `odm bench`).
pub fn grad_input_gemm(g: &Geom, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    input_gradient_by(forward_gemm, g, dy, wt)
}

/// A forward kernel: (shape, input, weights, bias) → output.
type Forward = fn(&Geom, &[f32], &[f32], Option<&[f32]>) -> Vec<f32>;

/// The input gradient as the forward `fwd` of dy with the flipped, transposed kernel.
fn input_gradient_by(fwd: Forward, g: &Geom, dy: &[f32], wt: &[f32]) -> Vec<f32> {
    let t = Geom {
        ci: g.co,
        co: g.ci,
        ..*g
    };
    fwd(&t, dy, &flip_transpose(g, wt), None)
}

/// Weight and bias gradients: (dW co×ci×k×k, db co), each a sum over images in index order:
/// [`super::thin`] for at most [`THIN`] output channels, else [`super::implicit::grad_weight`].
pub fn grad_weight(g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    if g.co <= THIN {
        return super::thin::grad_weight(g, x, dy);
    }
    super::implicit::grad_weight(g, x, dy)
}

/// The weight gradient as im2col + [`super::sgemm`] (before [`super::implicit`]; timed beside
/// it by `odm bench`).
pub fn grad_weight_gemm(g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (hw, kk) = (g.h * g.w, g.kk());
    let partial: Vec<(Vec<f32>, Vec<f32>)> = (0..g.n)
        .into_par_iter()
        .map_init(Vec::new, |col, img| {
            let xi = &x[img * g.ci * hw..(img + 1) * g.ci * hw];
            let di = &dy[img * g.co * hw..(img + 1) * g.co * hw];
            let mut dw = vec![0.0f32; g.co * kk];
            for band in 0..g.bands() {
                let (r0, r1) = g.band(band);
                let bp = (r1 - r0) * g.w;
                col.resize(kk * bp, 0.0);
                im2col(g, xi, r0, r1, col);
                // SAFETY: dw is co×kk, dy's band is co×bp (row stride hw), col is kk×bp read
                // transposed as bp×kk. Output channels stay the GEMM's rows (`gemm::gemm` turned
                // this product around, 1.3–1.5× slower in a one-thread probe at EDSR sizes).
                unsafe {
                    gemm_f32(
                        (g.co, kk, bp),
                        Mat::row_major(dw.as_mut_ptr(), kk),
                        band > 0,
                        Mat {
                            ptr: di.as_ptr().add(r0 * g.w),
                            rs: hw as isize,
                            cs: 1,
                        },
                        Mat::col_major(col.as_ptr(), bp),
                    );
                }
            }
            let db = di.chunks(hw).map(|c| c.iter().sum::<f32>()).collect();
            (dw, db)
        })
        .collect();
    sum_images(partial)
}
