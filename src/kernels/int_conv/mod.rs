//! Integer `same`-padded k×k convolution on quantization codes: acc[o, y, x] =
//! Σ_{c, i, j} u[c, y+i−p, x+j−p] · w[o, c, i, j] over the taps inside the image, with unsigned
//! activation codes u (≤ 255) and signed weight codes w, accumulated exactly in 32 bits (|acc| ≤
//! 255·32767·C·k², far below 2^31 for the layers here). Exact integer sums do not depend on the
//! order, so every path and every thread count give the same bits.
//!
//! The codes sit in a [`Padded`] buffer: pixel-major (HWC), channels rounded up to 4, with a
//! border of p zero pixels (a zero code adds nothing; the caller accounts for the real padding
//! value through Σ_valid w). Paths, chosen at run time: AVX-512 VNNI `vpdpbusd` (64 u8×i8
//! products into 16 i32 per instruction, no intermediate saturation) reading the taps straight
//! from the buffer (implicit GEMM, no patch copy), AVX2 `vpmaddubsw` + `vpmaddwd` (32 products;
//! the pairwise i16 sums saturate above 32767, so only when u ≤ 127 and |w| ≤ 127) and a scalar
//! loop (any codes), both on a row of patches gathered from the buffer. Rows run in parallel;
//! each output row's accumulators are handed to the caller while they are in cache.

use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Codes of one image, pixel-major with a zero border: (h + 2p) × (w + 2p) pixels of `cp` bytes
/// (the channels, rounded up to 4, the extra ones zero).
pub struct Padded {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub p: usize,
    pub cp: usize,
    pub data: Vec<u8>,
}

impl Padded {
    /// A buffer for C×h×w codes with border `p`, each interior row filled by `row(y, dst)`
    /// (dst: w pixels of `cp` bytes, zeroed), rows in parallel.
    pub fn build(
        (c, h, w): (usize, usize, usize),
        p: usize,
        row: impl Fn(usize, &mut [u8]) + Sync,
    ) -> Self {
        let cp = c.div_ceil(4) * 4;
        let wp = w + 2 * p;
        let mut data = vec![0u8; (h + 2 * p) * wp * cp];
        data.par_chunks_mut(wp * cp)
            .skip(p)
            .take(h)
            .enumerate()
            .for_each(|(y, r)| row(y, &mut r[p * cp..(p + w) * cp]));
        Self {
            c,
            h,
            w,
            p,
            cp,
            data,
        }
    }

    /// From channel-major codes (C × h × w).
    pub fn from_chw(u: &[u8], (c, h, w): (usize, usize, usize), p: usize) -> Self {
        let cp = c.div_ceil(4) * 4;
        Self::build((c, h, w), p, |y, dst| {
            for ch in 0..c {
                let src = &u[(ch * h + y) * w..(ch * h + y + 1) * w];
                for (x, &v) in src.iter().enumerate() {
                    dst[x * cp + ch] = v;
                }
            }
        })
    }

    /// Back to channel-major codes.
    pub fn to_chw(&self) -> Vec<u8> {
        let (wp, plane) = (self.w + 2 * self.p, self.h * self.w);
        let mut u = vec![0u8; self.c * plane];
        for ch in 0..self.c {
            for y in 0..self.h {
                for x in 0..self.w {
                    u[ch * plane + y * self.w + x] =
                        self.data[((y + self.p) * wp + x + self.p) * self.cp + ch];
                }
            }
        }
        u
    }

    /// The largest code.
    pub fn max(&self) -> u8 {
        self.data.par_iter().copied().max().unwrap_or(0)
    }
}

/// Which dot-product instructions a convolution uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum IntPath {
    Vnni512,
    Avx2,
    Scalar,
}

/// Weights of one conv as codes, laid out for the dot kernels.
pub struct IntWeights {
    pub cout: usize,
    pub cin: usize,
    pub k: usize,
    /// C_in rounded up to 4 (the channels of a [`Padded`] pixel).
    cp: usize,
    /// k²·cp rounded up to 64: the length of a gathered patch.
    kpad: usize,
    /// C_out × kpad codes in patch order (tap-major, then channel; zero padded), as i8 when
    /// every code fits, else none.
    w8: Option<Vec<i8>>,
    /// The same codes as i32, for the scalar path.
    w32: Vec<i32>,
    /// For VNNI: [k²·cp/4][C_out rounded up to 16][4] i8 (four consecutive channels of one tap
    /// for 16 output channels per 64-byte vector).
    wpack: Option<Vec<i8>>,
    cpad: usize,
}

impl IntWeights {
    /// Codes in PyTorch's C_out×C_in×k×k order.
    pub fn new(codes: &[i32], cout: usize, cin: usize, k: usize) -> Self {
        let cp = cin.div_ceil(4) * 4;
        let kpad = (k * k * cp).div_ceil(64) * 64;
        let mut w32 = vec![0i32; cout * kpad];
        for o in 0..cout {
            for c in 0..cin {
                for t in 0..k * k {
                    w32[o * kpad + t * cp + c] = codes[(o * cin + c) * k * k + t];
                }
            }
        }
        let fits = w32.iter().all(|&v| (-128..=127).contains(&v));
        let w8: Option<Vec<i8>> = fits.then(|| w32.iter().map(|&v| v as i8).collect());
        let cpad = cout.div_ceil(16) * 16;
        let groups = k * k * cp / 4;
        let wpack = w8.as_ref().map(|w8| {
            let mut p = vec![0i8; groups * cpad * 4];
            for g in 0..groups {
                for o in 0..cout {
                    for t in 0..4 {
                        p[(g * cpad + o) * 4 + t] = w8[o * kpad + 4 * g + t];
                    }
                }
            }
            p
        });
        Self {
            cout,
            cin,
            k,
            cp,
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
                    s += self.w32[o * self.kpad + (i * k + j) * self.cp + c] as i64;
                }
            }
        }
        s
    }
}

/// The path for codes up to `umax` and these weights on this CPU (never VNNI while
/// `ODM_KERNEL_PATH` forces the AVX2 path, see [`super::path`]).
pub fn pick(umax: u32, w: &IntWeights) -> IntPath {
    #[cfg(target_arch = "x86_64")]
    {
        if w.w8.is_some()
            && umax <= 255
            && super::path::current() == super::path::KernelPath::Avx512
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
    let x = Padded::from_chw(u, (w.cin, h, wd), w.k / 2);
    let co = w.cout;
    let mut acc = vec![0i32; h * wd * co];
    let out = super::SendPtr(acc.as_mut_ptr());
    conv_rows(&x, w, path, |y, row| {
        // SAFETY: each output row y is handed over once and writes only its own range.
        let dst = unsafe { std::slice::from_raw_parts_mut(out.at(y * wd * co), wd * co) };
        dst.copy_from_slice(row);
    });
    acc
}

/// Where a row's results go: the accumulators, or their rescale to floats.
pub(crate) enum Out<'a> {
    Acc(&'a mut [i32]),
    Scaled(&'a Rescale, &'a mut [MaybeUninit<f32>]),
}

/// The convolution of `x` (border p = k/2) with `w` on `path`: for every output row y, in
/// parallel, `f(y, acc)` with acc the row's w × C_out accumulators, pixel-major.
pub fn conv_rows(x: &Padded, w: &IntWeights, path: IntPath, f: impl Fn(usize, &[i32]) + Sync) {
    assert_eq!((x.cp, x.p), (w.cp, w.k / 2), "codes laid out for this conv");
    let (wd, co) = (x.w, w.cout);
    (0..x.h).into_par_iter().for_each_init(
        || (vec![0i32; wd * co], Vec::<u8>::new()),
        |(acc, patch), y| {
            row(x, y, w, path, patch, &mut Out::Acc(acc));
            f(y, acc);
        },
    );
}

/// The convolution of `x` with `w` on `path`, rescaled by `rs` into `out` (h × w × C_out,
/// pixel-major; every value written). The VNNI path rescales each register block in registers;
/// the others rescale each row's accumulators.
pub fn conv_rescaled(
    x: &Padded,
    w: &IntWeights,
    path: IntPath,
    rs: &Rescale,
    out: &mut [MaybeUninit<f32>],
) {
    assert_eq!((x.cp, x.p), (w.cp, w.k / 2), "codes laid out for this conv");
    let (wd, co) = (x.w, w.cout);
    assert_eq!(out.len(), x.h * wd * co, "output size");
    out.par_chunks_mut(wd * co).enumerate().for_each_init(
        || (vec![0i32; wd * co], Vec::<u8>::new()),
        |(acc, patch), (y, dst)| {
            if path == IntPath::Vnni512 {
                row(x, y, w, path, patch, &mut Out::Scaled(rs, dst));
            } else {
                row(x, y, w, path, patch, &mut Out::Acc(acc));
                rs.row(y, acc, dst);
            }
        },
    );
}

/// Output row y of the convolution into `out`.
fn row(x: &Padded, y: usize, w: &IntWeights, path: IntPath, patch: &mut Vec<u8>, out: &mut Out) {
    match (path, out) {
        #[cfg(target_arch = "x86_64")]
        (IntPath::Vnni512, out) => unsafe { x86::row_vnni(x, y, w, out) },
        (_, Out::Acc(acc)) => {
            gather(x, y, w, patch);
            dots(patch, w, path, acc);
        }
        (_, Out::Scaled(..)) => unreachable!("only the VNNI path rescales in registers"),
    }
}

/// The patches of output row y, one zero-padded row of `kpad` bytes per pixel.
fn gather(x: &Padded, y: usize, w: &IntWeights, patch: &mut Vec<u8>) {
    let (k, cp, kp) = (w.k, x.cp, w.kpad);
    let wp = x.w + 2 * x.p;
    patch.clear();
    patch.resize(x.w * kp, 0);
    for (xo, row) in patch.chunks_mut(kp).enumerate() {
        for i in 0..k {
            for j in 0..k {
                let src = ((y + i) * wp + xo + j) * cp;
                let t = i * k + j;
                row[t * cp..(t + 1) * cp].copy_from_slice(&x.data[src..src + cp]);
            }
        }
    }
}

/// out[x·C_out + o] = Σ_k patch[x, k]·w[o, k] for every pixel x of a row and output channel o.
fn dots(patch: &[u8], w: &IntWeights, path: IntPath, out: &mut [i32]) {
    let kp = w.kpad;
    match path {
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

mod rescale;
#[cfg(target_arch = "x86_64")]
mod x86;
pub use rescale::Rescale;

/// The `vpdpbusd` peak of this CPU in G MAC/s on every pool thread: each runs `iters` rounds of
/// 24 independent register-only `vpdpbusd` (64 u8×i8 products each); `None` without AVX-512
/// VNNI. The roof the integer convolution is measured against (`odm bench`).
pub fn vnni_peak_gmacs(iters: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("avx512f")
    {
        let threads = rayon::current_num_threads();
        let t = std::time::Instant::now();
        let sink: i64 = (0..threads)
            .into_par_iter()
            .map(|_| unsafe { x86::spin_vnni(iters) })
            .sum();
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        return Some((threads * iters * 24 * 64) as f64 / s / 1e9);
    }
    let _ = iters;
    None
}
