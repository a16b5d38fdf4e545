//! The forward of the same-padded stride-1 k×k convolution (k odd, padding p = k/2) on NCHW
//! `f32`, as an implicit GEMM: no im2col matrix. Each register block of MR consecutive output
//! pixels of one row × NR output channels reads its inputs in place from a zero-padded copy of
//! the band's input rows (one copy of the input instead of k² of them) and the weights from a
//! panel packed once per call (Chellapilla et al. 2006 give the im2col formulation this folds
//! away; the blocking follows Goto & van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication", ACM TOMS 2008).
//!
//! **One summation order on every path.** Every output is
//! y[o][p] = (Σ_{c, a, b} x[c][p + (a − p, b − p)] · w[o][c][a][b]) + bias[o]: one chain of fused
//! multiply-adds from zero, in the order c, then a, then b (the weights' memory order), the bias
//! added last. The vector paths only compute many such chains side by side (lanes are output
//! pixels, never partial sums), so the AVX-512, AVX2 and scalar paths give the same bits, and
//! the work split (image, band of output rows; a function of the shape only) makes them
//! independent of the thread count. [`reference`] writes the order out; the tests hold every
//! path to it bit for bit.

use super::geom::{Geom, SendPtr};
use super::path::{current, KernelPath};
use rayon::prelude::*;

/// The zero-padded input rows a band reads: ci planes of (rows + 2p) × pitch values, pitch = w +
/// 2p, plus [`SLACK`] trailing values that vector loads past the last row may touch (their
/// lanes are discarded).
struct Padded {
    data: Vec<f32>,
    pitch: usize,
    plane: usize,
}

/// Values past the padded rows that a block's vector loads may reach (its widest block is 32
/// pixels; loads start at most k − 1 past the block).
const SLACK: usize = 64;

impl Padded {
    /// Rows [r0 − p, r1 + p) of image `x` (ci × h × w), zero outside the image. `buf` is
    /// reused: every value is written (rows copied, borders and slack zeroed), none cleared twice.
    fn band(g: &Geom, x: &[f32], (r0, r1): (usize, usize), buf: Vec<f32>) -> Self {
        let p = g.k / 2;
        let pitch = g.w + 2 * p;
        let rows = r1 - r0 + 2 * p;
        let plane = rows * pitch;
        let mut data = buf;
        data.resize(g.ci * plane + SLACK.max(g.k), 0.0);
        for c in 0..g.ci {
            let src = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
            for r in 0..rows {
                // Padded row r holds image row r0 + r − p.
                let d = &mut data[c * plane + r * pitch..][..pitch];
                match (r0 + r).checked_sub(p).filter(|&iy| iy < g.h) {
                    Some(iy) => {
                        d[..p].fill(0.0);
                        d[p..p + g.w].copy_from_slice(&src[iy * g.w..(iy + 1) * g.w]);
                        d[p + g.w..].fill(0.0);
                    }
                    None => d.fill(0.0),
                }
            }
        }
        data[g.ci * plane..].fill(0.0);
        Padded { data, pitch, plane }
    }
}

/// The weights (co × ci·k², row-major) packed for blocks of `nr` output channels: block j holds,
/// for every k index in order, its nr channels' weights side by side (zero past co).
fn pack(wt: &[f32], co: usize, kk: usize, nr: usize) -> Vec<f32> {
    let blocks = co.div_ceil(nr);
    let mut out = vec![0.0f32; blocks * kk * nr];
    for o in 0..co {
        let (j, i) = (o / nr, o % nr);
        for (k, &v) in wt[o * kk..(o + 1) * kk].iter().enumerate() {
            out[(j * kk + k) * nr + i] = v;
        }
    }
    out
}

/// Output channels per register block on each path (its accumulators: MR/lanes × NR vectors).
fn nr(path: KernelPath) -> usize {
    match path {
        KernelPath::Avx512 => 12,
        KernelPath::Avx2 => 6,
        KernelPath::Scalar => 4,
    }
}

/// What one register block needs: the padded band, its first input value for output pixel
/// (row, x0) (tap (0, 0) of channel 0), the packed weights of its channel block, and where its
/// outputs go.
struct Block {
    /// Padded input at (channel 0, padded row = output row, column x0).
    x: *const f32,
    plane: usize,
    pitch: usize,
    ci: usize,
    k: usize,
    /// Packed weights of this block of channels: kk × NR.
    w: *const f32,
    /// Output at (channel o0, row, x0); channel stride `hw`.
    y: *mut f32,
    hw: usize,
    /// Bias of channels o0.. (None: no bias).
    bias: Option<*const f32>,
    /// Valid pixels (≤ the block's width) and valid channels (≤ NR).
    px: usize,
    ch: usize,
}

/// One register block of the weight gradient: NR weights (k indices k0..k0 + nk) × one block
/// of output channels, over one band.
struct WBlock {
    /// Padded input of each of the block's k indices at output pixel (0, 0) of the band
    /// (indices past nk repeat the last; their sums are not stored).
    x: [*const f32; 12],
    pitch: usize,
    rows: usize,
    w: usize,
    /// Transposed dy of the band (pixels × `opad`), at the block's first channel.
    dy: *const f32,
    opad: usize,
    /// Running sums, transposed (k × `opad`), at (k0, the block's first channel).
    acc: *mut f32,
    nk: usize,
}

/// y = [`reference`]'s chains for one image band, on `path`.
///
/// # Safety
/// `yp` must address the image's co × h × w outputs; this band's rows are written only here.
unsafe fn band(
    path: KernelPath,
    g: &Geom,
    xb: &Padded,
    (r0, r1): (usize, usize),
    packed: &[f32],
    bias: Option<&[f32]>,
    yp: SendPtr,
) {
    let (kk, hw, nr) = (g.kk(), g.h * g.w, nr(path));
    for row in r0..r1 {
        let mut x0 = 0;
        while x0 < g.w {
            let width = block_width(path, g.w - x0);
            for (j, wj) in packed.chunks_exact(kk * nr).enumerate() {
                let o0 = j * nr;
                let b = Block {
                    x: xb.data.as_ptr().add((row - r0) * xb.pitch + x0),
                    plane: xb.plane,
                    pitch: xb.pitch,
                    ci: g.ci,
                    k: g.k,
                    w: wj.as_ptr(),
                    y: yp.at(o0 * hw + row * g.w + x0),
                    hw,
                    bias: bias.map(|b| b.as_ptr().add(o0)),
                    px: width.min(g.w - x0),
                    ch: nr.min(g.co - o0),
                };
                run_block(path, width, &b);
            }
            x0 += width;
        }
    }
}

/// The pixels of the next block on `path` when `left` remain in the row.
fn block_width(path: KernelPath, left: usize) -> usize {
    match path {
        KernelPath::Avx512 if left > 16 => 32,
        KernelPath::Avx512 => 16,
        KernelPath::Avx2 if left > 8 => 16,
        KernelPath::Avx2 => 8,
        KernelPath::Scalar => left.min(8),
    }
}

unsafe fn run_block(path: KernelPath, width: usize, b: &Block) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 if width == 32 => x86::avx512::<2, 12>(b),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::<1, 12>(b),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 if width == 16 => x86::avx2::<2, 6>(b),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => x86::avx2::<1, 6>(b),
        _ => scalar(b),
    }
}

/// The chains of one block with scalar fused multiply-adds (`f32::mul_add`, exact as the
/// vector FMA); the path of CPUs without AVX2 + FMA.
unsafe fn scalar(b: &Block) {
    let nr = nr(KernelPath::Scalar);
    for i in 0..b.px {
        for j in 0..b.ch {
            let mut s = 0f32;
            let mut w = b.w.add(j);
            for c in 0..b.ci {
                for a in 0..b.k {
                    let r = b.x.add(c * b.plane + a * b.pitch + i);
                    for t in 0..b.k {
                        s = (*r.add(t)).mul_add(*w, s);
                        w = w.add(nr);
                    }
                }
            }
            let s = match b.bias {
                Some(bp) => s + *bp.add(j),
                None => s,
            };
            *b.y.add(j * b.hw + i) = s;
        }
    }
}

mod wgrad;
#[cfg(target_arch = "x86_64")]
mod x86;
pub use wgrad::{grad_weight, grad_weight_on, grad_weight_reference};

/// Forward on [`current`]'s path: y (n×co×h×w) = conv(x, wt) + bias, `wt` co×ci×k×k.
pub fn forward(g: &Geom, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    forward_on(current(), g, x, wt, bias)
}

/// [`forward`] on `path` (which this CPU must support: [`super::path::best`] or narrower).
pub fn forward_on(
    path: KernelPath,
    g: &Geom,
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let (hw, kk) = (g.h * g.w, g.kk());
    assert_eq!(x.len(), g.n * g.ci * hw, "conv input size");
    assert_eq!(wt.len(), g.co * kk, "conv weight size");
    let packed = pack(wt, g.co, kk, nr(path));
    let mut y = vec![0.0f32; g.n * g.co * hw];
    let yp = SendPtr(y.as_mut_ptr());
    let bands = g.bands();
    (0..g.n * bands)
        .into_par_iter()
        .for_each_init(Vec::new, |buf, u| {
            #[allow(clippy::redundant_locals)]
            let yp = yp;
            let (img, rows) = (u / bands, g.band(u % bands));
            let xi = &x[img * g.ci * hw..(img + 1) * g.ci * hw];
            let xb = Padded::band(g, xi, rows, std::mem::take(buf));
            // SAFETY: unit (img, band) alone writes rows r0..r1 of every channel of image img;
            // the padded band holds every value its blocks read (SLACK past the last row).
            unsafe {
                band(
                    path,
                    g,
                    &xb,
                    rows,
                    &packed,
                    bias,
                    SendPtr(yp.at(img * g.co * hw)),
                )
            };
            *buf = xb.data;
        });
    y
}

/// Input value of image n, channel c at padded coordinates (y, x) (image row y − p, column
/// x − p; zero outside the image), for the plainly written references.
fn input_at(g: &Geom, x: &[f32], (n, c): (usize, usize), (y, xx): (isize, isize)) -> f32 {
    let (p, h, w) = ((g.k / 2) as isize, g.h as isize, g.w as isize);
    let (iy, ix) = (y - p, xx - p);
    if iy < 0 || iy >= h || ix < 0 || ix >= w {
        return 0.0;
    }
    x[(n * g.ci + c) * g.h * g.w + (iy * w + ix) as usize]
}

/// The documented chains, written out plainly (the tests' reference).
pub fn reference(g: &Geom, x: &[f32], wt: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (h, w, k, hw) = (g.h as isize, g.w as isize, g.k, g.h * g.w);
    let mut y = vec![0.0f32; g.n * g.co * hw];
    for n in 0..g.n {
        for o in 0..g.co {
            for py in 0..h {
                for px in 0..w {
                    let mut s = 0f32;
                    for c in 0..g.ci {
                        for a in 0..k {
                            for b in 0..k {
                                let v = input_at(g, x, (n, c), (py + a as isize, px + b as isize));
                                s = v.mul_add(wt[((o * g.ci + c) * k + a) * k + b], s);
                            }
                        }
                    }
                    let s = bias.map_or(s, |b| s + b[o]);
                    y[(n * g.co + o) * hw + (py * w + px) as usize] = s;
                }
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::path::best;
    use crate::kernels::test_noise as noise;

    fn paths() -> Vec<KernelPath> {
        let mut p = vec![KernelPath::Scalar];
        if best() != KernelPath::Scalar {
            p.push(KernelPath::Avx2);
        }
        if best() == KernelPath::Avx512 {
            p.push(KernelPath::Avx512);
        }
        p
    }

    #[test]
    fn every_path_gives_the_documented_chains_bit_for_bit() {
        // (n, ci, co, h, w, k): widths on both sides of every block width, odd channel counts,
        // k = 1, 3 and 5.
        let shapes = [
            (2, 5, 13, 7, 9, 3),
            (1, 3, 7, 5, 33, 3),
            (1, 8, 6, 4, 16, 1),
            (1, 4, 17, 6, 20, 5),
            (2, 16, 24, 9, 48, 3),
            (1, 2, 5, 3, 1, 3),
            // Two bands of 32 rows (the weight gradient's sums carried across), 40 channels.
            (1, 3, 40, 40, 12, 3),
        ];
        for (n, ci, co, h, w, k) in shapes {
            let g = Geom { n, ci, co, h, w, k };
            let x = noise(n * ci * h * w, 1);
            let wt = noise(co * ci * k * k, 2);
            let b = noise(co, 3);
            for bias in [None, Some(&b[..])] {
                let want = reference(&g, &x, &wt, bias);
                for p in paths() {
                    let got = forward_on(p, &g, &x, &wt, bias);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{p:?} {g:?} (bias: {}) is not the documented order",
                        bias.is_some()
                    );
                }
            }
            let dy = noise(n * co * h * w, 4);
            let (want_w, want_b) = grad_weight_reference(&g, &x, &dy);
            for p in paths() {
                let (dw, db) = grad_weight_on(p, &g, &x, &dy);
                let bits =
                    |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    bits(&dw, &want_w) && bits(&db, &want_b),
                    "{p:?} {g:?}: weight gradient is not the documented order"
                );
            }
        }
    }
}
