//! Integer `same`-padded k×k convolution on quantization codes: acc[o, y, x] =
//! Σ_{c, i, j} u[c, y+i−p, x+j−p] · w[o, c, i, j] over the taps inside the image, with unsigned
//! activation codes u (≤ 255) and signed weight codes w, accumulated exactly in 32 bits (|acc| ≤
//! 255·32767·C·k², far below 2^31 for the layers here). Exact integer sums do not depend on the
//! order, so every path and every thread count give the same bits.
//!
//! Paths, chosen at run time: AVX-512 VNNI `vpdpbusd` (64 u8×i8 products into 16 i32 per
//! instruction, no intermediate saturation), AVX2 `vpmaddubsw` + `vpmaddwd` (32 products; the
//! pairwise i16 sums saturate above 32767, so only when u ≤ 127 and |w| ≤ 127), and a scalar
//! loop (any codes). The patch of each output pixel is gathered into a zero-padded row of
//! ⌈C·k²/64⌉·64 bytes (a zero code adds nothing), one output row at a time, rows in parallel.

use rayon::prelude::*;

/// Which dot-product instructions a convolution uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IntPath {
    Vnni512,
    Avx2,
    Scalar,
}

/// Weights of one conv as codes, padded for the dot kernels.
pub struct IntWeights {
    pub cout: usize,
    pub cin: usize,
    pub k: usize,
    /// C_in·k² rounded up to 64.
    kpad: usize,
    /// C_out × kpad codes (zero padded), as i8 when every code fits, else none.
    w8: Option<Vec<i8>>,
    /// The same codes as i32, for the scalar path.
    w32: Vec<i32>,
    /// For VNNI: [kpad/4][C_out rounded up to 16][4] i8 (four consecutive taps of 16 output
    /// channels per 64-byte vector).
    wpack: Option<Vec<i8>>,
    cpad: usize,
}

impl IntWeights {
    /// Codes in PyTorch's C_out×C_in×k×k order.
    pub fn new(codes: &[i32], cout: usize, cin: usize, k: usize) -> Self {
        let kk = cin * k * k;
        let kpad = kk.div_ceil(64) * 64;
        // Reordered to (i, j, c) within a row, the order of an HWC patch.
        let mut w32 = vec![0i32; cout * kpad];
        for o in 0..cout {
            for c in 0..cin {
                for t in 0..k * k {
                    w32[o * kpad + t * cin + c] = codes[(o * cin + c) * k * k + t];
                }
            }
        }
        let fits = w32.iter().all(|&v| (-128..=127).contains(&v));
        let w8: Option<Vec<i8>> = fits.then(|| w32.iter().map(|&v| v as i8).collect());
        let cpad = cout.div_ceil(16) * 16;
        let wpack = w8.as_ref().map(|w8| {
            let mut p = vec![0i8; kpad * cpad];
            for q in 0..kpad / 4 {
                for o in 0..cout {
                    for t in 0..4 {
                        p[(q * cpad + o) * 4 + t] = w8[o * kpad + 4 * q + t];
                    }
                }
            }
            p
        });
        Self {
            cout,
            cin,
            k,
            kpad,
            w8,
            w32,
            wpack,
            cpad,
        }
    }

    /// Σ of output channel `o`'s codes over the taps (i, j) with i in `rows`, j in `cols`.
    pub fn tap_sum(
        &self,
        o: usize,
        rows: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> i64 {
        let k = self.k;
        let mut s = 0i64;
        for c in 0..self.cin {
            for i in rows.clone() {
                for j in cols.clone() {
                    s += self.w32[o * self.kpad + (i * k + j) * self.cin + c] as i64;
                }
            }
        }
        s
    }
}

/// The path for codes up to `umax` and these weights on this CPU.
pub fn pick(umax: u32, w: &IntWeights) -> IntPath {
    #[cfg(target_arch = "x86_64")]
    {
        if w.w8.is_some()
            && umax <= 255
            && std::arch::is_x86_feature_detected!("avx512vnni")
            && std::arch::is_x86_feature_detected!("avx512f")
        {
            return IntPath::Vnni512;
        }
        let small = w.w32.iter().all(|v| v.abs() <= 127);
        if w.w8.is_some() && umax <= 127 && small && std::arch::is_x86_feature_detected!("avx2") {
            return IntPath::Avx2;
        }
    }
    IntPath::Scalar
}

/// acc (H × W × C_out, pixel-major) of codes `u` (C_in × H × W) with weights `w`, on `path`
/// (see [`pick`]).
pub fn conv(u: &[u8], h: usize, wd: usize, w: &IntWeights, path: IntPath) -> Vec<i32> {
    let (k, p, kp, ci) = (w.k, w.k / 2, w.kpad, w.cin);
    // HWC codes, so that a tap's C_in codes are one contiguous copy.
    let plane = h * wd;
    let mut hwc_in = vec![0u8; u.len()];
    hwc_in
        .par_chunks_mut(wd * ci)
        .enumerate()
        .for_each(|(y, row)| {
            for (x, px) in row.chunks_mut(ci).enumerate() {
                for (c, v) in px.iter_mut().enumerate() {
                    *v = u[c * plane + y * wd + x];
                }
            }
        });
    let mut hwc = vec![0i32; h * wd * w.cout];
    hwc.par_chunks_mut(wd * w.cout).enumerate().for_each_init(
        || vec![0u8; wd * kp],
        |patch, (y, out)| {
            for x in 0..wd {
                let row = &mut patch[x * kp..(x + 1) * kp];
                for i in 0..k {
                    let yy = y as isize + i as isize - p as isize;
                    for j in 0..k {
                        let xx = x as isize + j as isize - p as isize;
                        let dst = &mut row[(i * k + j) * ci..(i * k + j + 1) * ci];
                        if yy < 0 || yy as usize >= h || xx < 0 || xx as usize >= wd {
                            dst.fill(0); // zero padding: a zero code adds nothing
                        } else {
                            let src = (yy as usize * wd + xx as usize) * ci;
                            dst.copy_from_slice(&hwc_in[src..src + ci]);
                        }
                    }
                }
            }
            dots(patch, w, path, out);
        },
    );
    hwc
}

/// out[x·C_out + o] = Σ_k patch[x, k]·w[o, k] for every pixel x of a row and output channel o.
fn dots(patch: &[u8], w: &IntWeights, path: IntPath, out: &mut [i32]) {
    let kp = w.kpad;
    match path {
        #[cfg(target_arch = "x86_64")]
        IntPath::Vnni512 => unsafe {
            x86::dots_vnni(
                patch,
                w.wpack.as_ref().expect("i8 codes"),
                kp,
                w.cout,
                w.cpad,
                out,
            )
        },
        #[cfg(target_arch = "x86_64")]
        IntPath::Avx2 => {
            for (px, o) in patch.chunks(kp).zip(out.chunks_mut(w.cout)) {
                unsafe { x86::dots_avx2(px, w.w8.as_ref().expect("i8 codes"), kp, o) }
            }
        }
        _ => {
            for (px, o) in patch.chunks(kp).zip(out.chunks_mut(w.cout)) {
                for (oc, v) in o.iter_mut().enumerate() {
                    let row = &w.w32[oc * kp..(oc + 1) * kp];
                    *v = px.iter().zip(row).map(|(&a, &b)| a as i32 * b).sum();
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // register blocks indexed by pixel and channel
mod x86 {
    use std::arch::x86_64::*;

    /// AVX-512 VNNI: per block of up to 4 pixels × 64 output channels, 16 accumulators of 16
    /// channels; per four taps one broadcast of each pixel's 4 codes and one 64-byte load of
    /// the packed weights per 16 channels feed `vpdpbusd` (no horizontal sums).
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dots_vnni(
        patch: &[u8],
        wp: &[i8],
        kp: usize,
        cout: usize,
        cpad: usize,
        out: &mut [i32],
    ) {
        let npx = patch.len() / kp;
        let mut x0 = 0;
        while x0 < npx {
            let nx = (npx - x0).min(4);
            let mut o0 = 0;
            while o0 < cout {
                let nb = ((cout - o0).div_ceil(16)).min(4);
                let mut acc = [[_mm512_setzero_si512(); 4]; 4];
                for q in 0..kp / 4 {
                    let mut wv = [_mm512_setzero_si512(); 4];
                    for (b, v) in wv.iter_mut().enumerate().take(nb) {
                        *v = _mm512_loadu_si512(
                            wp.as_ptr().add((q * cpad + o0 + 16 * b) * 4) as *const _
                        );
                    }
                    for p in 0..nx {
                        let xi = std::ptr::read_unaligned(
                            patch.as_ptr().add((x0 + p) * kp + 4 * q) as *const i32,
                        );
                        let xb = _mm512_set1_epi32(xi);
                        for b in 0..nb {
                            acc[p][b] = _mm512_dpbusd_epi32(acc[p][b], xb, wv[b]);
                        }
                    }
                }
                for p in 0..nx {
                    for b in 0..nb {
                        let o = o0 + 16 * b;
                        let left = (cout - o).min(16);
                        let mask: __mmask16 = if left == 16 {
                            0xffff
                        } else {
                            (1u16 << left) - 1
                        };
                        _mm512_mask_storeu_epi32(
                            out.as_mut_ptr().add((x0 + p) * cout + o),
                            mask,
                            acc[p][b],
                        );
                    }
                }
                o0 += 16 * nb;
            }
            x0 += nx;
        }
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
}
