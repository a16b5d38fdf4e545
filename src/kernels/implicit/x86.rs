//! The x86 register blocks of [`super`] (forward) and [`super::wgrad`] (weight gradient).
#![allow(clippy::needless_range_loop)] // register blocks indexed by vector and channel

use super::{Block, WBlock};
use std::arch::x86_64::*;

/// AVX2 + FMA: MV·8 pixels × NR channels in MV·NR ymm accumulators; per k, MV unaligned
/// loads of the padded input and NR broadcasts of the packed weights.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2<const MV: usize, const NR: usize>(b: &Block) {
    let mut acc = [[_mm256_setzero_ps(); MV]; NR];
    let mut w = b.w;
    for c in 0..b.ci {
        for a in 0..b.k {
            let r = b.x.add(c * b.plane + a * b.pitch);
            for t in 0..b.k {
                let mut v = [_mm256_setzero_ps(); MV];
                for m in 0..MV {
                    v[m] = _mm256_loadu_ps(r.add(t + 8 * m));
                }
                for j in 0..NR {
                    let s = _mm256_broadcast_ss(&*w.add(j));
                    for m in 0..MV {
                        acc[j][m] = _mm256_fmadd_ps(v[m], s, acc[j][m]);
                    }
                }
                w = w.add(NR);
            }
        }
    }
    for j in 0..b.ch {
        let bias = b.bias.map(|p| _mm256_set1_ps(*p.add(j)));
        for m in 0..MV {
            let v = match bias {
                Some(bv) => _mm256_add_ps(acc[j][m], bv),
                None => acc[j][m],
            };
            let dst = b.y.add(j * b.hw + 8 * m);
            let n = b.px.saturating_sub(8 * m).min(8);
            if n == 8 {
                _mm256_storeu_ps(dst, v);
            } else if n > 0 {
                let mut tmp = [0f32; 8];
                _mm256_storeu_ps(tmp.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), dst, n);
            }
        }
    }
}

/// AVX-512: MV·16 pixels × NR channels in MV·NR zmm accumulators, as [`avx2`].
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512<const MV: usize, const NR: usize>(b: &Block) {
    let mut acc = [[_mm512_setzero_ps(); MV]; NR];
    let mut w = b.w;
    for c in 0..b.ci {
        for a in 0..b.k {
            let r = b.x.add(c * b.plane + a * b.pitch);
            for t in 0..b.k {
                let mut v = [_mm512_setzero_ps(); MV];
                for m in 0..MV {
                    v[m] = _mm512_loadu_ps(r.add(t + 16 * m));
                }
                for j in 0..NR {
                    let s = _mm512_set1_ps(*w.add(j));
                    for m in 0..MV {
                        acc[j][m] = _mm512_fmadd_ps(v[m], s, acc[j][m]);
                    }
                }
                w = w.add(NR);
            }
        }
    }
    for j in 0..b.ch {
        let bias = b.bias.map(|p| _mm512_set1_ps(*p.add(j)));
        for m in 0..MV {
            let v = match bias {
                Some(bv) => _mm512_add_ps(acc[j][m], bv),
                None => acc[j][m],
            };
            let n = b.px.saturating_sub(16 * m).min(16);
            if n > 0 {
                let mask: __mmask16 = if n == 16 { 0xffff } else { (1u16 << n) - 1 };
                _mm512_mask_storeu_ps(b.y.add(j * b.hw + 16 * m), mask, v);
            }
        }
    }
}

/// AVX2 + FMA weight gradient: MV·8 output channels (lanes) × NR weights in MV·NR ymm
/// accumulators; per pixel, MV loads of the transposed dy and NR broadcasts of the inputs.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn wgrad_avx2<const MV: usize, const NR: usize>(b: &WBlock) {
    let mut acc = [[_mm256_setzero_ps(); MV]; NR];
    for j in 0..b.nk {
        for m in 0..MV {
            acc[j][m] = _mm256_loadu_ps(b.acc.add(j * b.opad + 8 * m));
        }
    }
    for y in 0..b.rows {
        let d = b.dy.add(y * b.w * b.opad);
        let mut xs = [std::ptr::null::<f32>(); NR];
        for j in 0..NR {
            xs[j] = b.x[j].add(y * b.pitch);
        }
        for x in 0..b.w {
            let mut v = [_mm256_setzero_ps(); MV];
            for m in 0..MV {
                v[m] = _mm256_loadu_ps(d.add(x * b.opad + 8 * m));
            }
            for j in 0..NR {
                let s = _mm256_broadcast_ss(&*xs[j].add(x));
                for m in 0..MV {
                    acc[j][m] = _mm256_fmadd_ps(s, v[m], acc[j][m]);
                }
            }
        }
    }
    for j in 0..b.nk {
        for m in 0..MV {
            _mm256_storeu_ps(b.acc.add(j * b.opad + 8 * m), acc[j][m]);
        }
    }
}

/// AVX-512 weight gradient: MV·16 output channels × NR weights, as [`wgrad_avx2`].
#[target_feature(enable = "avx512f")]
pub unsafe fn wgrad_avx512<const MV: usize, const NR: usize>(b: &WBlock) {
    let mut acc = [[_mm512_setzero_ps(); MV]; NR];
    for j in 0..b.nk {
        for m in 0..MV {
            acc[j][m] = _mm512_loadu_ps(b.acc.add(j * b.opad + 16 * m));
        }
    }
    for y in 0..b.rows {
        let d = b.dy.add(y * b.w * b.opad);
        let mut xs = [std::ptr::null::<f32>(); NR];
        for j in 0..NR {
            xs[j] = b.x[j].add(y * b.pitch);
        }
        for x in 0..b.w {
            let mut v = [_mm512_setzero_ps(); MV];
            for m in 0..MV {
                v[m] = _mm512_loadu_ps(d.add(x * b.opad + 16 * m));
            }
            for j in 0..NR {
                let s = _mm512_set1_ps(*xs[j].add(x));
                for m in 0..MV {
                    acc[j][m] = _mm512_fmadd_ps(s, v[m], acc[j][m]);
                }
            }
        }
    }
    for j in 0..b.nk {
        for m in 0..MV {
            _mm512_storeu_ps(b.acc.add(j * b.opad + 16 * m), acc[j][m]);
        }
    }
}

/// out[i·stride + u] = rows[u][i] for u < 8 and every i (8×8 register transposes, the last
/// pixels one by one): eight channels of dy to pixel-major rows.
#[target_feature(enable = "avx2")]
pub unsafe fn transpose8(rows: &[&[f32]; 8], out: &mut [f32], stride: usize) {
    let n = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == n) && (n == 0 || out.len() >= (n - 1) * stride + 8));
    let mut i = 0;
    while i + 8 <= n {
        let r: [__m256; 8] = std::array::from_fn(|u| _mm256_loadu_ps(rows[u].as_ptr().add(i)));
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        let c = [
            _mm256_permute2f128_ps::<0x20>(s0, s4),
            _mm256_permute2f128_ps::<0x20>(s1, s5),
            _mm256_permute2f128_ps::<0x20>(s2, s6),
            _mm256_permute2f128_ps::<0x20>(s3, s7),
            _mm256_permute2f128_ps::<0x31>(s0, s4),
            _mm256_permute2f128_ps::<0x31>(s1, s5),
            _mm256_permute2f128_ps::<0x31>(s2, s6),
            _mm256_permute2f128_ps::<0x31>(s3, s7),
        ];
        for (t, v) in c.iter().enumerate() {
            _mm256_storeu_ps(out.as_mut_ptr().add((i + t) * stride), *v);
        }
        i += 8;
    }
    for i in i..n {
        for u in 0..8 {
            out[i * stride + u] = rows[u][i];
        }
    }
}
