//! The x86 dot-product kernels of [`super`]: AVX-512 VNNI (implicit GEMM on the padded codes,
//! with the rescale to floats in registers when asked) and AVX2.
#![allow(clippy::needless_range_loop)] // register blocks indexed by pixel and channel

use super::{Out, Padded};
use std::arch::x86_64::*;

/// Pixels per VNNI register block: NX × 4 accumulators of 16 channels, 4 weight vectors
/// and a broadcast stay in the 32 zmm registers.
const NX: usize = 6;

/// AVX-512 VNNI, output row y: blocks of up to [`NX`] pixels × 64 output channels (see
/// [`block`]).
#[target_feature(enable = "avx512f,avx512vnni")]
pub unsafe fn row_vnni(x: &Padded, y: usize, w: &super::IntWeights, out: &mut Out) {
    let mut x0 = 0;
    while x0 < x.w {
        let nx = (x.w - x0).min(NX);
        let mut o0 = 0;
        while o0 < w.cout {
            let nb = ((w.cout - o0).div_ceil(16)).min(4);
            macro_rules! arms {
                ($($a:literal $b:literal),*) => {
                    match (nx, nb) {
                        $(($a, $b) => block::<$a, $b>(x, y, w, (x0, o0), out),)*
                        _ => unreachable!("block sizes"),
                    }
                };
            }
            arms!(6 4, 6 3, 6 2, 6 1, 5 4, 5 3, 5 2, 5 1, 4 4, 4 3, 4 2, 4 1,
                  3 4, 3 3, 3 2, 3 1, 2 4, 2 3, 2 2, 2 1, 1 4, 1 3, 1 2, 1 1);
            o0 += 16 * nb;
        }
        x0 += nx;
    }
}

/// One register block: P pixels from x0 × B·16 output channels from o0. Per tap and four
/// input channels: one broadcast of each pixel's 4 codes (read in place from the padded
/// buffer), one 64-byte load of the packed weights per 16 channels, P·B `vpdpbusd` (no
/// horizontal sums). P and B are constants so that the accumulators live in registers.
#[target_feature(enable = "avx512f,avx512vnni")]
#[inline]
unsafe fn block<const P: usize, const B: usize>(
    x: &Padded,
    y: usize,
    w: &super::IntWeights,
    (x0, o0): (usize, usize),
    out: &mut Out,
) {
    let wp = w.wpack.as_ref().expect("i8 codes");
    let (k, cp, cout, cpad) = (w.k, x.cp, w.cout, w.cpad);
    let q4 = cp / 4;
    let xw = x.w + 2 * x.p;
    let mut acc = [[_mm512_setzero_si512(); B]; P];
    for i in 0..k {
        for j in 0..k {
            let base = x.data.as_ptr().add(((y + i) * xw + x0 + j) * cp);
            let wt = wp.as_ptr().add(((i * k + j) * q4 * cpad + o0) * 4);
            for q in 0..q4 {
                let mut wv = [_mm512_setzero_si512(); B];
                for (b, v) in wv.iter_mut().enumerate() {
                    *v = _mm512_loadu_si512(wt.add((q * cpad + 16 * b) * 4) as *const _);
                }
                for (p, a) in acc.iter_mut().enumerate() {
                    let xi = std::ptr::read_unaligned(base.add(p * cp + 4 * q) as *const i32);
                    let xb = _mm512_set1_epi32(xi);
                    for b in 0..B {
                        a[b] = _mm512_dpbusd_epi32(a[b], xb, wv[b]);
                    }
                }
            }
        }
    }
    for (p, a) in acc.iter().enumerate() {
        for (b, v) in a.iter().enumerate() {
            let o = o0 + 16 * b;
            let left = (cout - o).min(16);
            let mask: __mmask16 = if left == 16 {
                0xffff
            } else {
                (1u16 << left) - 1
            };
            let at = (x0 + p) * cout + o;
            match out {
                Out::Acc(dst) => _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(at), mask, *v),
                // (a·s_w)·acc + (o·s_w)·Σ_valid c + b, in `Rescale::row`'s op order.
                Out::Scaled(rs, dst) => {
                    let ld = |v: &[f32]| _mm512_maskz_loadu_ps(mask, v.as_ptr().add(o));
                    let s = rs.sums(y, x0 + p);
                    let t1 = _mm512_mul_ps(ld(&rs.ka), _mm512_cvtepi32_ps(*v));
                    let t2 = _mm512_mul_ps(ld(&rs.ko), ld(s));
                    let r = _mm512_add_ps(_mm512_add_ps(t1, t2), ld(&rs.b));
                    _mm512_mask_storeu_ps(dst.as_mut_ptr().add(at) as *mut f32, mask, r);
                }
            }
        }
    }
}

/// `iters` rounds of 24 independent `vpdpbusd` on registers (see `vnni_peak_gmacs`).
#[target_feature(enable = "avx512f,avx512vnni")]
pub unsafe fn spin_vnni(iters: usize) -> i64 {
    let a = _mm512_set1_epi32(std::hint::black_box(0x0101_0101));
    let b = _mm512_set1_epi32(std::hint::black_box(0x0102_0304));
    let mut acc = [_mm512_setzero_si512(); 24];
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = _mm512_dpbusd_epi32(*v, a, b);
        }
    }
    let mut s = _mm512_setzero_si512();
    for v in acc {
        s = _mm512_add_epi32(s, v);
    }
    _mm512_reduce_add_epi32(s) as i64
}

/// AVX2: `vpmaddubsw` (u8×i8 pairs into i16) then `vpmaddwd` with ones into i32.
#[target_feature(enable = "avx2")]
pub unsafe fn dots_avx2(px: &[u8], w: &[i8], kp: usize, out: &mut [i32]) {
    let ones = _mm256_set1_epi16(1);
    let n = out.len();
    let mut o = 0;
    while o < n {
        let m = (n - o).min(4);
        let mut acc = [_mm256_setzero_si256(); 4];
        for c in (0..kp).step_by(32) {
            let x = _mm256_loadu_si256(px.as_ptr().add(c) as *const _);
            for (r, a) in acc.iter_mut().enumerate().take(m) {
                let wv = _mm256_loadu_si256(w.as_ptr().add((o + r) * kp + c) as *const _);
                let p16 = _mm256_maddubs_epi16(x, wv);
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(p16, ones));
            }
        }
        for r in 0..m {
            let v = acc[r];
            let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
            out[o + r] = _mm_cvtsi128_si32(s);
        }
        o += m;
    }
}
