//! Weight and bias gradients of [`super`]'s convolution without an im2col matrix:
//! dW[o][c][a][b] = Σ_y Σ_x dy[o][y][x] · x[c][y + a − p][x + b − p] (zero outside the image),
//! db[o] = Σ_y Σ_x dy[o][y][x].
//!
//! **One summation order on every path.** Per image, each dW element is one chain of fused
//! multiply-adds from zero over the pixels in row-major order (band after band; a band's
//! running sums are stored and reloaded exactly between bands); db per image is the plain
//! left-to-right sum of dy's plane; the images' partials are then added in index order. Lanes
//! are output channels (dy is transposed once per band so that 16 or 32 of them load as one
//! vector) and each register holds NR of the ci·k² weights, so no vector width enters a sum:
//! every path gives [`grad_weight_reference`]'s bits for any thread count (the work split is
//! one unit per image).

use super::super::geom::{sum_images, Geom};
use super::super::path::{current, KernelPath};
use super::{Padded, WBlock};
use rayon::prelude::*;

/// Output channels are padded to a multiple of this in the transposed buffers (the widest
/// block, 2 AVX-512 vectors).
const OPAD: usize = 32;

/// k indices and output channels per register block on `path` ((NR, channels)).
fn tile(path: KernelPath) -> (usize, usize) {
    match path {
        KernelPath::Avx512 => (12, 32),
        KernelPath::Avx2 => (6, 16),
        KernelPath::Scalar => (4, 1),
    }
}

/// dy's band rows [r0, r1) transposed: out[(y − r0)·w + x][o] = dy[o][y][x], zero for o ≥ co.
fn transpose_band(g: &Geom, dy: &[f32], (r0, r1): (usize, usize), opad: usize, out: &mut Vec<f32>) {
    let (hw, bp) = (g.h * g.w, (r1 - r0) * g.w);
    out.clear();
    out.resize(bp * opad, 0.0);
    let src = |o: usize| &dy[o * hw + r0 * g.w..o * hw + r1 * g.w];
    let mut o = 0;
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        while o + 8 <= g.co {
            let rows: [&[f32]; 8] = std::array::from_fn(|u| src(o + u));
            // SAFETY: AVX2 is present; 8 source rows of bp values, out holds bp × opad.
            unsafe { super::x86::transpose8(&rows, &mut out[o..], opad) };
            o += 8;
        }
    }
    for o in o..g.co {
        for (i, &v) in src(o).iter().enumerate() {
            out[i * opad + o] = v;
        }
    }
}

/// The chains of one block with scalar fused multiply-adds (one channel, nk weights).
unsafe fn scalar(b: &WBlock) {
    for j in 0..b.nk {
        let mut s = *b.acc.add(j * b.opad);
        for y in 0..b.rows {
            for x in 0..b.w {
                let v = *b.x[j].add(y * b.pitch + x);
                s = v.mul_add(*b.dy.add((y * b.w + x) * b.opad), s);
            }
        }
        *b.acc.add(j * b.opad) = s;
    }
}

unsafe fn run_block(path: KernelPath, b: &WBlock) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => super::x86::wgrad_avx512::<2, 12>(b),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => super::x86::wgrad_avx2::<2, 6>(b),
        _ => scalar(b),
    }
}

/// One image's dW, transposed (kk × opad), on `path`.
fn image(
    path: KernelPath,
    g: &Geom,
    x: &[f32],
    dy: &[f32],
    bufs: &mut (Vec<f32>, Vec<f32>),
) -> Vec<f32> {
    let (kk, k) = (g.kk(), g.k);
    let (nr, ob) = tile(path);
    let opad = g.co.div_ceil(OPAD) * OPAD;
    let mut acc = vec![0.0f32; kk * opad];
    for band in 0..g.bands() {
        let rows = g.band(band);
        let xb = Padded::band(g, x, rows, std::mem::take(&mut bufs.0));
        transpose_band(g, dy, rows, opad, &mut bufs.1);
        for o0 in (0..g.co).step_by(ob) {
            for k0 in (0..kk).step_by(nr) {
                let nk = nr.min(kk - k0);
                let mut ptrs = [std::ptr::null::<f32>(); 12];
                for (j, p) in ptrs.iter_mut().enumerate().take(nr) {
                    let kj = k0 + j.min(nk - 1);
                    let (c, a, b) = (kj / (k * k), kj / k % k, kj % k);
                    // SAFETY: (c, a, b) lies inside the padded band.
                    *p = unsafe { xb.data.as_ptr().add(c * xb.plane + a * xb.pitch + b) };
                }
                let blk = WBlock {
                    x: ptrs,
                    pitch: xb.pitch,
                    rows: rows.1 - rows.0,
                    w: g.w,
                    // SAFETY: o0 < co ≤ opad and k0 < kk index inside both buffers.
                    dy: unsafe { bufs.1.as_ptr().add(o0) },
                    opad,
                    acc: unsafe { acc.as_mut_ptr().add(k0 * opad + o0) },
                    nk,
                };
                // SAFETY: the block reads rows × w pixels of its nk inputs (inside the padded
                // band) and of dy's opad-wide rows, and writes nk × its channels of acc.
                unsafe { run_block(path, &blk) };
            }
        }
        bufs.0 = xb.data;
    }
    acc
}

/// (dW co×ci×k×k, db co) on [`current`]'s path.
pub fn grad_weight(g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    grad_weight_on(current(), g, x, dy)
}

/// [`grad_weight`] on `path` (which this CPU must support).
pub fn grad_weight_on(path: KernelPath, g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (hw, kk) = (g.h * g.w, g.kk());
    assert_eq!(x.len(), g.n * g.ci * hw, "conv input size");
    assert_eq!(dy.len(), g.n * g.co * hw, "conv output gradient size");
    let opad = g.co.div_ceil(OPAD) * OPAD;
    let partial: Vec<(Vec<f32>, Vec<f32>)> = (0..g.n)
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |bufs, img| {
                let xi = &x[img * g.ci * hw..(img + 1) * g.ci * hw];
                let di = &dy[img * g.co * hw..(img + 1) * g.co * hw];
                let t = image(path, g, xi, di, bufs);
                let db = di.chunks(hw).map(|c| c.iter().sum::<f32>()).collect();
                (t, db)
            },
        )
        .collect();
    // Summed over images while still transposed (element-wise, so the same sums), then
    // transposed once.
    let (t, db) = sum_images(partial);
    let mut dw = vec![0.0f32; g.co * kk];
    for (k, row) in t.chunks_exact(opad).enumerate() {
        for o in 0..g.co {
            dw[o * kk + k] = row[o];
        }
    }
    (dw, db)
}

/// The documented chains, written out plainly (the tests' reference).
pub fn grad_weight_reference(g: &Geom, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (h, w, k, hw) = (g.h as isize, g.w as isize, g.k, g.h * g.w);
    let partial = (0..g.n)
        .map(|n| {
            let mut dw = vec![0.0f32; g.co * g.kk()];
            for o in 0..g.co {
                for c in 0..g.ci {
                    for a in 0..k {
                        for b in 0..k {
                            let mut s = 0f32;
                            for py in 0..h {
                                for px in 0..w {
                                    let v = super::input_at(
                                        g,
                                        x,
                                        (n, c),
                                        (py + a as isize, px + b as isize),
                                    );
                                    let d = dy[(n * g.co + o) * hw + (py * w + px) as usize];
                                    s = v.mul_add(d, s);
                                }
                            }
                            dw[((o * g.ci + c) * k + a) * k + b] = s;
                        }
                    }
                }
            }
            let di = &dy[n * g.co * hw..(n + 1) * g.co * hw];
            (dw, di.chunks(hw).map(|c| c.iter().sum::<f32>()).collect())
        })
        .collect();
    sum_images(partial)
}
