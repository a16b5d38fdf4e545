//! The f32 GEMM under our convolutions: dst (m×n) = [dst +] lhs (m×k) · rhs (k×n) with the
//! `gemm` crate's packing and micro-kernels, on the path [`super::path::current`] names, with
//! one summation order over k on every path.
//!
//! gemm's micro-kernels keep one accumulator per output element and add the k products into it
//! by fused multiply-adds in k order, whatever the vector width (they vectorise across outputs).
//! Two things in gemm depend on the path: the depth at which it splits k into blocks (from the L1
//! cache and the kernel's MR: ≥ 512, e.g. 512 with its AVX-512 kernels and 1024 with its AVX2
//! ones on a 48 KiB 12-way L1), and its "horizontal" kernels for tiny products (m·n ≤ 256 with k
//! contiguous in both operands), which reduce across vector lanes. So here k is split into
//! ⌈k/512⌉ equal chunks (the last shorter), each one gemm call of depth ≤ 512 (one block on every
//! path) added to dst in order: dst = (…((dst + Σ₁) + Σ₂)…), Σⱼ the FMA chain over chunk j from
//! zero; and the horizontal kernels are not offered. Results are then the same bits on the
//! AVX-512 and AVX2 paths. Unlike `gemm::gemm`, which turns a product with a row-oriented
//! destination around (dstᵀ = rhsᵀ·lhsᵀ), the operands are taken as given: each call site picks
//! the orientation that runs faster (the sums are the same either way). (gemm's matrix–vector shortcuts for n ≤ 1 or m ≤ 1 and its k ≤ 2
//! path remain; the convolutions reach them only for 1-pixel-wide images or single channels.)

use super::path::{current, KernelPath};
use gemm_common::gemm::gemm_basic_generic;
use gemm_common::microkernel::MicroKernelFn;
use gemm_common::simd::MixedSimd;
pub use gemm_common::Parallelism;

/// The largest depth of one gemm call (every path's blocking depth is at least this).
pub const KC: usize = 512;

/// The chunks of a depth `k`: `(count, length)`, count = ⌈k/KC⌉, length = ⌈k/count⌉.
pub fn chunks(k: usize) -> (usize, usize) {
    let count = k.div_ceil(KC).max(1);
    (count, k.div_ceil(count))
}

/// Operand layout: a pointer with its (row, column) strides in elements.
#[derive(Clone, Copy)]
pub struct Mat<P> {
    pub ptr: P,
    pub rs: isize,
    pub cs: isize,
}

impl<P> Mat<P> {
    /// A row-major matrix with `cols` columns.
    pub fn row_major(ptr: P, cols: usize) -> Self {
        Mat {
            ptr,
            rs: cols as isize,
            cs: 1,
        }
    }

    /// A column-major matrix with `rows` rows.
    pub fn col_major(ptr: P, rows: usize) -> Self {
        Mat {
            ptr,
            rs: 1,
            cs: rows as isize,
        }
    }
}

/// dst = [dst if `acc`] + lhs · rhs (m×k times k×n), on [`current`]'s path, k in [`chunks`].
///
/// # Safety
/// The pointers with their strides must address m×n, m×k and k×n valid `f32`s, dst writable
/// and not overlapping the operands.
pub unsafe fn sgemm(
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    acc: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    par: Parallelism,
) {
    sgemm_on(current(), (m, n, k), dst, acc, lhs, rhs, par)
}

/// [`sgemm`] on `path` (which this CPU must support).
///
/// # Safety
/// As [`sgemm`]; `path` must be [`super::path::best`] or a narrower vector path.
pub unsafe fn sgemm_on(
    path: KernelPath,
    (m, n, k): (usize, usize, usize),
    dst: Mat<*mut f32>,
    acc: bool,
    lhs: Mat<*const f32>,
    rhs: Mat<*const f32>,
    par: Parallelism,
) {
    if k == 0 {
        if !acc {
            for i in 0..m {
                for j in 0..n {
                    *dst.ptr.offset(i as isize * dst.rs + j as isize * dst.cs) = 0.0;
                }
            }
        }
        return;
    }
    let (count, len) = chunks(k);
    for c in 0..count {
        let (k0, kb) = (c * len, len.min(k - c * len));
        let l = lhs.ptr.offset(k0 as isize * lhs.cs);
        let r = rhs.ptr.offset(k0 as isize * rhs.rs);
        block(path, (m, n, kb), dst, acc || c > 0, (l, lhs), (r, rhs), par);
    }
}

/// One gemm call of depth `kb` ≤ [`KC`] on `path`.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    path: KernelPath,
    dims: (usize, usize, usize),
    dst: Mat<*mut f32>,
    read: bool,
    l: (*const f32, Mat<*const f32>),
    r: (*const f32, Mat<*const f32>),
    par: Parallelism,
) {
    #[cfg(target_arch = "x86_64")]
    {
        use gemm_common::simd::{V3, V4};
        use gemm_f32::microkernel::{avx512f::f32 as v4, fma::f32 as v3};
        match path {
            KernelPath::Avx512 => {
                let s = V4::try_new().expect("AVX-512 checked by kernels::path");
                return run::<_, 16, { v4::MR_DIV_N * 16 }, { v4::NR }, { v4::MR_DIV_N }>(
                    s,
                    &v4::UKR,
                    dims,
                    dst,
                    read,
                    l,
                    r,
                    par,
                );
            }
            KernelPath::Avx2 => {
                let s = V3::try_new().expect("AVX2 + FMA checked by kernels::path");
                return run::<_, 8, { v3::MR_DIV_N * 8 }, { v3::NR }, { v3::MR_DIV_N }>(
                    s,
                    &v3::UKR,
                    dims,
                    dst,
                    read,
                    l,
                    r,
                    par,
                );
            }
            KernelPath::Scalar => {}
        }
    }
    let _ = path;
    use gemm_f32::microkernel::scalar::f32 as sc;
    run::<_, 1, { sc::MR_DIV_N }, { sc::NR }, { sc::MR_DIV_N }>(
        gemm_common::simd::Scalar,
        &sc::UKR,
        dims,
        dst,
        read,
        l,
        r,
        par,
    )
}

/// gemm's generic driver with the micro-kernels `ukr` (N lanes, MR = MR_DIV_N·N rows, NR
/// columns), alpha = beta = 1, and no horizontal kernels.
#[allow(clippy::too_many_arguments)]
unsafe fn run<S, const N: usize, const MR: usize, const NR: usize, const MRN: usize>(
    simd: S,
    ukr: &[[MicroKernelFn<f32>; NR]; MRN],
    (m, n, kb): (usize, usize, usize),
    dst: Mat<*mut f32>,
    read: bool,
    (l, lm): (*const f32, Mat<*const f32>),
    (r, rm): (*const f32, Mat<*const f32>),
    par: Parallelism,
) where
    S: MixedSimd<f32, f32, f32, f32>,
{
    gemm_basic_generic::<S, f32, N, MR, NR, MRN, 0, 0>(
        simd,
        m,
        n,
        kb,
        dst.ptr,
        dst.cs,
        dst.rs,
        read,
        l,
        lm.cs,
        lm.rs,
        r,
        rm.cs,
        rm.rs,
        1.0,
        1.0,
        false,
        false,
        false,
        |a, b, c| a * b + c,
        ukr,
        &[],
        false,
        par,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::path::best;
    use crate::kernels::test_noise as noise;

    /// The documented order, written out: per element, over each chunk an FMA chain from zero,
    /// added to dst in chunk order.
    fn reference(m: usize, n: usize, k: usize, d0: &[f32], a: &[f32], b: &[f32]) -> Vec<f32> {
        let (count, len) = chunks(k);
        let mut d = d0.to_vec();
        for i in 0..m {
            for j in 0..n {
                for c in 0..count {
                    let mut s = 0f32;
                    for p in c * len..((c + 1) * len).min(k) {
                        s = a[i * k + p].mul_add(b[p * n + j], s);
                    }
                    d[i * n + j] += s;
                }
            }
        }
        d
    }

    fn product(path: KernelPath, (m, n, k): (usize, usize, usize), rhs_t: bool) -> Vec<f32> {
        let (a, b) = (noise(m * k, 1), noise(k * n, 2));
        let mut d = noise(m * n, 3);
        // rhs stored k×n row-major, or the same values stored transposed (n×k).
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let (rp, rs, cs) = if rhs_t {
            (bt.as_ptr(), 1, k as isize)
        } else {
            (b.as_ptr(), n as isize, 1)
        };
        // SAFETY: the buffers hold m×n, m×k and k×n values with these strides.
        unsafe {
            sgemm_on(
                path,
                (m, n, k),
                Mat {
                    ptr: d.as_mut_ptr(),
                    rs: n as isize,
                    cs: 1,
                },
                true,
                Mat {
                    ptr: a.as_ptr(),
                    rs: k as isize,
                    cs: 1,
                },
                Mat { ptr: rp, rs, cs },
                Parallelism::None,
            )
        };
        let want = reference(m, n, k, &noise(m * n, 3), &a, &b);
        assert!(
            d.iter().zip(&want).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{path:?} {m}×{n}×{k} (rhs transposed: {rhs_t}) is not the documented order"
        );
        d
    }

    const SHAPES: [(usize, usize, usize); 6] = [
        (64, 384, 576),
        (64, 576, 384),
        (8, 27, 100),
        (5, 9, 1100),
        (70, 33, 513),
        (3, 7, 40),
    ];

    #[test]
    fn chunks_split_evenly() {
        assert_eq!(chunks(512), (1, 512));
        assert_eq!(chunks(576), (2, 288));
        assert_eq!(chunks(1100), (3, 367));
        assert_eq!(chunks(1), (1, 1));
    }

    #[test]
    fn every_path_sums_in_the_documented_order() {
        let mut paths = vec![best()];
        if best() == KernelPath::Avx512 {
            paths.push(KernelPath::Avx2);
        }
        for p in paths {
            for s in SHAPES {
                product(p, s, false);
                product(p, s, true);
            }
        }
    }
}
