//! MATLAB-compatible bicubic `imresize`, the resampler used throughout the
//! single-image super-resolution literature to synthesise LR inputs
//! (`imresize(HR, 1/s, 'bicubic')`).
//!
//! Protocol (following the behaviour of MATLAB's `imresize` with the default
//! `'bicubic'` method and `'Antialiasing', true`):
//!
//! * Keys' cubic convolution kernel with `a = -0.5`
//!   (`h(x) = 1.5|x|^3 - 2.5|x|^2 + 1` for `|x| <= 1`,
//!   `-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2` for `1 < |x| <= 2`, else `0`),
//!   kernel width 4.
//! * When downscaling (`scale < 1`) the kernel is stretched for antialiasing:
//!   `k(x) = scale * h(scale * x)` with width `4 / scale`.
//! * Output length is `ceil(in_len * scale)`.
//! * Per-output taps follow MATLAB's `contributions`: for 1-based output index
//!   `x`, `u = x/scale + 0.5 (1 - 1/scale)`, `left = floor(u - width/2)`,
//!   `P = ceil(width) + 2` taps `left, left+1, ..., left+P-1`, weights
//!   `k(u - index)` normalised to sum to one; out-of-range indices are folded
//!   with symmetric padding (`aux = [1..n, n..1]`, `aux[(i-1) mod 2n]`), and
//!   taps whose weight is zero for every output are dropped.
//! * All arithmetic is `f64`; rows (height) are resized first, then columns
//!   (MATLAB's order for equal scales).
//! * For 8-bit images the final `f64` result is rounded half away from zero
//!   and saturated to `0..=255` (MATLAB's `uint8` conversion).
//! * The work is streamed one output row at a time (the height pass of that
//!   row, then its width pass), so no whole-image `f64` intermediate exists;
//!   every value is computed by the same operations in the same order as the
//!   whole-image two-pass resize, hence bit-identical to it.
//!
//! This module is standalone (std only).

/// Keys' cubic convolution kernel with `a = -0.5` (MATLAB's `cubic`).
fn cubic(x: f64) -> f64 {
    let ax = x.abs();
    let ax2 = ax * ax;
    let ax3 = ax2 * ax;
    if ax <= 1.0 {
        1.5 * ax3 - 2.5 * ax2 + 1.0
    } else if ax <= 2.0 {
        -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    } else {
        0.0
    }
}

/// Output length for a given input length and scale (`ceil(in_len * scale)`).
fn output_len(in_len: usize, scale: f64) -> usize {
    (in_len as f64 * scale).ceil() as usize
}

/// Precomputed taps for one dimension.
///
/// Row `o` (0-based output index) occupies `indices[o*taps..(o+1)*taps]` and
/// `weights[o*taps..(o+1)*taps]`; indices are 0-based input positions (already
/// folded by symmetric padding) and each row of weights sums to one.
#[derive(Debug, Clone, PartialEq)]
pub struct Contributions {
    pub out_len: usize,
    pub taps: usize,
    pub indices: Vec<usize>, /* 0-based, out_len*taps */
    pub weights: Vec<f64>,
}

/// Compute MATLAB-style `contributions` for resizing a dimension of length
/// `in_len` to `out_len` with the given `scale` (output / input).
///
/// Uses the antialiased (stretched) kernel when `scale < 1`. Panics if
/// `in_len == 0` or `scale` is not finite and positive.
pub fn contributions(in_len: usize, out_len: usize, scale: f64) -> Contributions {
    assert!(in_len > 0, "contributions: in_len must be positive");
    assert!(
        scale.is_finite() && scale > 0.0,
        "contributions: scale must be finite and positive"
    );
    let antialias = scale < 1.0;
    let kernel_width = if antialias { 4.0 / scale } else { 4.0 };
    let kernel = |x: f64| {
        if antialias {
            scale * cubic(scale * x)
        } else {
            cubic(x)
        }
    };
    let p = kernel_width.ceil() as usize + 2;

    // Full (undropped) table, then fold indices and drop all-zero columns.
    let mut raw_idx = vec![0usize; out_len * p];
    let mut raw_w = vec![0.0f64; out_len * p];
    let period = 2 * in_len as i64;
    for o in 0..out_len {
        let x = (o + 1) as f64;
        let u = x / scale + 0.5 * (1.0 - 1.0 / scale);
        let left = (u - kernel_width / 2.0).floor() as i64;
        let row_w = &mut raw_w[o * p..(o + 1) * p];
        let mut sum = 0.0;
        for (j, w) in row_w.iter_mut().enumerate() {
            let idx = left + j as i64;
            *w = kernel(u - idx as f64);
            sum += *w;
        }
        for w in row_w.iter_mut() {
            *w /= sum;
        }
        for (j, slot) in raw_idx[o * p..(o + 1) * p].iter_mut().enumerate() {
            // 1-based index -> position in aux = [1..n, n..1].
            let m = (left + j as i64 - 1).rem_euclid(period);
            let n = in_len as i64;
            let one_based = if m < n { m + 1 } else { period - m };
            *slot = (one_based - 1) as usize;
        }
    }

    let keep: Vec<usize> = (0..p)
        .filter(|&j| (0..out_len).any(|o| raw_w[o * p + j] != 0.0))
        .collect();
    let taps = keep.len();
    let mut indices = Vec::with_capacity(out_len * taps);
    let mut weights = Vec::with_capacity(out_len * taps);
    for o in 0..out_len {
        for &j in &keep {
            indices.push(raw_idx[o * p + j]);
            weights.push(raw_w[o * p + j]);
        }
    }
    Contributions {
        out_len,
        taps,
        indices,
        weights,
    }
}

/// Resize an interleaved `h x w x c` image, rows (height) first, handing each output row
/// (`out_w * c` values, interleaved) to `emit` in order; returns `(out_h, out_w)`.
///
/// The work is streamed: one height-resized row (`w * c` values) and one output row are held at
/// a time, never a whole-image intermediate. Every output value is computed by exactly the
/// operations of the two-pass protocol above, in the same order (`0.0`, then `+= weight * value`
/// over the height taps; `0.0`, then `+= weight * value` over the width taps), so the results are
/// bit-identical to resizing the whole image along the height and then along the width.
fn resize_streamed<T: Copy>(
    src: &[T],
    h: usize,
    w: usize,
    c: usize,
    scale: f64,
    to_f64: impl Fn(T) -> f64,
    mut emit: impl FnMut(&[f64]),
) -> (usize, usize) {
    assert_eq!(src.len(), h * w * c, "imresize: buffer size mismatch");
    assert!(h > 0 && w > 0 && c > 0, "imresize: empty image");
    let out_h = output_len(h, scale);
    let out_w = output_len(w, scale);
    let ch = contributions(h, out_h, scale);
    let cw = contributions(w, out_w, scale);
    let row = w * c;
    let mut tmp = vec![0.0f64; row];
    let mut out = vec![0.0f64; out_w * c];
    for o in 0..out_h {
        // Height pass for output row `o`.
        tmp.fill(0.0);
        let idx = &ch.indices[o * ch.taps..(o + 1) * ch.taps];
        let wts = &ch.weights[o * ch.taps..(o + 1) * ch.taps];
        for (&i, &wt) in idx.iter().zip(wts) {
            let s = &src[i * row..(i + 1) * row];
            for (d, &v) in tmp.iter_mut().zip(s) {
                *d += wt * to_f64(v);
            }
        }
        // Width pass of that row.
        out.fill(0.0);
        for (ox, px) in out.chunks_exact_mut(c).enumerate() {
            let idx = &cw.indices[ox * cw.taps..(ox + 1) * cw.taps];
            let wts = &cw.weights[ox * cw.taps..(ox + 1) * cw.taps];
            for (&i, &wt) in idx.iter().zip(wts) {
                let sp = &tmp[i * c..(i + 1) * c];
                for (d, &v) in px.iter_mut().zip(sp) {
                    *d += wt * v;
                }
            }
        }
        emit(&out);
    }
    (out_h, out_w)
}

/// Core: resize an interleaved `h x w x c` f64 image, rows first.
fn resize_hwc(src: &[f64], h: usize, w: usize, c: usize, scale: f64) -> (Vec<f64>, usize, usize) {
    let mut out = Vec::with_capacity(output_len(h, scale) * output_len(w, scale) * c);
    let (oh, ow) = resize_streamed(src, h, w, c, scale, |v| v, |r| out.extend_from_slice(r));
    (out, oh, ow)
}

/// Resize a planar f64 image (one channel, row-major h*w) by `scale`; returns (data, out_h, out_w).
pub fn imresize_plane(src: &[f64], h: usize, w: usize, scale: f64) -> (Vec<f64>, usize, usize) {
    resize_hwc(src, h, w, 1, scale)
}

/// Resize an interleaved 8-bit image (HWC, c channels) in float64, round half away from zero and
/// clamp to 0..=255 (MATLAB uint8 conversion); returns (data, out_h, out_w). Streams row by row
/// (see [`resize_streamed`]): besides the 8-bit output it holds two rows of `f64`, so synthesising
/// the LR of a large HR image costs no whole-image float copy.
pub fn imresize_u8(
    src: &[u8],
    h: usize,
    w: usize,
    c: usize,
    scale: f64,
) -> (Vec<u8>, usize, usize) {
    let mut q = Vec::with_capacity(output_len(h, scale) * output_len(w, scale) * c);
    // `f64::round` rounds half away from zero; `as u8` would saturate too,
    // but clamp explicitly for clarity.
    let (oh, ow) = resize_streamed(src, h, w, c, scale, f64::from, |r| {
        q.extend(r.iter().map(|&v| v.round().clamp(0.0, 255.0) as u8))
    });
    (q, oh, ow)
}

/// Same but returns unrounded f64 HWC (values not clamped).
pub fn imresize_f64(
    src: &[f64],
    h: usize,
    w: usize,
    c: usize,
    scale: f64,
) -> (Vec<f64>, usize, usize) {
    resize_hwc(src, h, w, c, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-image two-pass resize (the implementation before streaming): all rows along
    /// the height into an `out_h x w x c` intermediate, then along the width.
    fn reference_resize(
        src: &[f64],
        h: usize,
        w: usize,
        c: usize,
        scale: f64,
    ) -> (Vec<f64>, usize, usize) {
        let (out_h, out_w) = (output_len(h, scale), output_len(w, scale));
        let (ch, cw) = (
            contributions(h, out_h, scale),
            contributions(w, out_w, scale),
        );
        let row = w * c;
        let mut tmp = vec![0.0f64; out_h * row];
        for (o, dst) in tmp.chunks_exact_mut(row).enumerate() {
            for t in 0..ch.taps {
                let (i, wt) = (ch.indices[o * ch.taps + t], ch.weights[o * ch.taps + t]);
                for (d, &v) in dst.iter_mut().zip(&src[i * row..(i + 1) * row]) {
                    *d += wt * v;
                }
            }
        }
        let out_row = out_w * c;
        let mut out = vec![0.0f64; out_h * out_row];
        for (s, dst) in tmp.chunks_exact(row).zip(out.chunks_exact_mut(out_row)) {
            for (o, px) in dst.chunks_exact_mut(c).enumerate() {
                for t in 0..cw.taps {
                    let (i, wt) = (cw.indices[o * cw.taps + t], cw.weights[o * cw.taps + t]);
                    for (d, &v) in px.iter_mut().zip(&s[i * c..(i + 1) * c]) {
                        *d += wt * v;
                    }
                }
            }
        }
        (out, out_h, out_w)
    }

    #[test]
    fn streamed_equals_whole_image_two_pass_bit_for_bit() {
        let mut seed = 5u64;
        for &(h, w, c, s) in &[
            (37usize, 29usize, 3usize, 0.25f64),
            (36, 28, 3, 0.5),
            (33, 30, 3, 1.0 / 3.0),
            (9, 11, 3, 4.0),
            (10, 7, 3, 2.0),
            (12, 13, 1, 3.0),
            (1, 5, 3, 0.5),
        ] {
            let img: Vec<u8> = (0..h * w * c)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 56) as u8
                })
                .collect();
            let f: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
            let (want, wh, ww) = reference_resize(&f, h, w, c, s);
            let (got, gh, gw) = imresize_f64(&f, h, w, c, s);
            assert_eq!((gh, gw), (wh, ww));
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{h}x{w}x{c} scale {s}");
            let (q, _, _) = imresize_u8(&img, h, w, c, s);
            let want_q: Vec<u8> = want
                .iter()
                .map(|&v| v.round().clamp(0.0, 255.0) as u8)
                .collect();
            assert_eq!(q, want_q, "u8 {h}x{w}x{c} scale {s}");
        }
    }

    #[test]
    fn kernel_values() {
        // Hand computed from the piecewise formula.
        assert_eq!(cubic(0.0), 1.0);
        assert_eq!(cubic(1.0), 0.0);
        assert_eq!(cubic(-1.0), 0.0);
        assert_eq!(cubic(2.0), 0.0);
        assert_eq!(cubic(2.5), 0.0);
        // 1.5/8 - 2.5/4 + 1 = 0.1875 - 0.625 + 1
        assert_eq!(cubic(0.5), 0.5625);
        assert_eq!(cubic(-0.5), 0.5625);
        // -0.5*3.375 + 2.5*2.25 - 6 + 2 = -1.6875 + 5.625 - 4
        assert_eq!(cubic(1.5), -0.0625);
    }

    #[test]
    fn output_sizes() {
        let img = vec![0.0; 7 * 5];
        let (_, oh, ow) = imresize_plane(&img, 7, 5, 0.5);
        assert_eq!((oh, ow), (4, 3));

        let img = vec![0u8; 100 * 61 * 3];
        let (out, oh, ow) = imresize_u8(&img, 100, 61, 3, 1.0 / 3.0);
        assert_eq!((oh, ow), (34, 21));
        assert_eq!(out.len(), 34 * 21 * 3);

        let img = vec![1.0; 3 * 3];
        let (out, oh, ow) = imresize_f64(&img, 3, 3, 1, 4.0);
        assert_eq!((oh, ow), (12, 12));
        assert_eq!(out.len(), 144);

        let img = vec![0u8; 40 * 24];
        let (_, oh, ow) = imresize_u8(&img, 40, 24, 1, 0.25);
        assert_eq!((oh, ow), (10, 6));
    }

    #[test]
    fn constant_stays_constant() {
        for &scale in &[0.25, 0.5, 1.0 / 3.0, 2.0, 4.0] {
            let (h, w, c) = (13, 9, 3);
            let img = vec![123u8; h * w * c];
            let (out, oh, ow) = imresize_u8(&img, h, w, c, scale);
            assert_eq!(out.len(), oh * ow * c);
            assert!(out.iter().all(|&v| v == 123), "u8 scale {scale}");

            let imgf = vec![0.7123; h * w * c];
            let (outf, _, _) = imresize_f64(&imgf, h, w, c, scale);
            assert!(
                outf.iter().all(|&v| (v - 0.7123).abs() < 1e-12),
                "f64 scale {scale}"
            );
        }
    }

    #[test]
    fn contribution_border_case_by_hand() {
        // in_len = 4, out_len = 8, scale = 2 (no antialias, width 4, P = 6).
        // Output x = 1: u = 1/2 + 0.5*(1 - 1/2) = 0.75,
        // left = floor(0.75 - 2) = -2, 1-based indices -2..=3,
        // distances u - idx = 2.75, 1.75, 0.75, -0.25, -1.25, -2.25:
        //   h(2.75) = 0
        //   h(1.75) = -0.5*5.359375 + 2.5*3.0625 - 7 + 2 = -0.0234375
        //   h(0.75) = 1.5*0.421875 - 2.5*0.5625 + 1     =  0.2265625
        //   h(0.25) = 1.5*0.015625 - 2.5*0.0625 + 1     =  0.8671875
        //   h(1.25) = -0.5*1.953125 + 2.5*1.5625 - 5 + 2 = -0.0703125
        //   h(2.25) = 0
        // (sum is exactly 1). aux = [1,2,3,4,4,3,2,1]:
        //   -2 -> aux[(-3) mod 8 = 5] = 3, -1 -> aux[6] = 2, 0 -> aux[7] = 1,
        //    1 -> 1, 2 -> 2, 3 -> 3  (1-based), i.e. 0-based [2,1,0,0,1,2].
        // Non-zero taps (0-based index, weight):
        let expected = [
            (1usize, -0.0234375),
            (0, 0.2265625),
            (0, 0.8671875),
            (1, -0.0703125),
        ];
        let con = contributions(4, 8, 2.0);
        assert_eq!(con.out_len, 8);
        assert!(con.taps <= 6);
        assert_eq!(con.indices.len(), 8 * con.taps);
        assert_eq!(con.weights.len(), 8 * con.taps);
        let got: Vec<(usize, f64)> = con.indices[..con.taps]
            .iter()
            .zip(&con.weights[..con.taps])
            .filter(|(_, &w)| w != 0.0)
            .map(|(&i, &w)| (i, w))
            .collect();
        assert_eq!(got.len(), expected.len());
        for ((gi, gw), (ei, ew)) in got.iter().zip(expected.iter()) {
            assert_eq!(gi, ei);
            assert!((gw - ew).abs() < 1e-15, "{gw} vs {ew}");
        }
        // For scale 2 the first and last of the 6 raw taps are always at
        // distance >= 2, so exactly 4 taps survive the dropping step.
        assert_eq!(con.taps, 4);

        // Mirror case at the far end: output x = 8, u = 4.25, left = 2,
        // indices 2..=7 -> distances 2.25, 1.25, 0.25, -0.75, -1.75, -2.75,
        // indices 5, 6 fold to 4, 3 (1-based) -> 0-based 3, 2.
        let last = &con.indices[7 * con.taps..];
        let lw = &con.weights[7 * con.taps..];
        let got: Vec<(usize, f64)> = last
            .iter()
            .zip(lw)
            .filter(|(_, &w)| w != 0.0)
            .map(|(&i, &w)| (i, w))
            .collect();
        let expected = [
            (2usize, -0.0703125),
            (3, 0.8671875),
            (3, 0.2265625),
            (2, -0.0234375),
        ];
        assert_eq!(got.len(), expected.len());
        for ((gi, gw), (ei, ew)) in got.iter().zip(expected.iter()) {
            assert_eq!(gi, ei);
            assert!((gw - ew).abs() < 1e-15, "{gw} vs {ew}");
        }
    }

    #[test]
    fn contribution_weights_sum_to_one_and_indices_in_range() {
        let cases = [
            (4usize, 8usize, 2.0f64),
            (100, 34, 1.0 / 3.0),
            (7, 4, 0.5),
            (1000, 250, 0.25),
            (3, 12, 4.0),
            (1, 4, 4.0),
            (9, 9, 1.0),
        ];
        for &(n, m, s) in &cases {
            let con = contributions(n, m, s);
            assert_eq!(con.indices.len(), m * con.taps);
            assert!(con.indices.iter().all(|&i| i < n));
            for o in 0..m {
                let sum: f64 = con.weights[o * con.taps..(o + 1) * con.taps].iter().sum();
                assert!((sum - 1.0).abs() < 1e-12, "case {n}->{m} out {o}: {sum}");
            }
        }
    }

    #[test]
    fn identity_scale_is_identity() {
        let (h, w) = (6, 5);
        let img: Vec<f64> = (0..h * w).map(|i| (i * 7 % 11) as f64).collect();
        let (out, oh, ow) = imresize_plane(&img, h, w, 1.0);
        assert_eq!((oh, ow), (h, w));
        for (a, b) in out.iter().zip(&img) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn down_then_up_linear_ramp() {
        // The a = -0.5 cubic kernel (and its stretched antialias version,
        // sampled at half-integer spacing) reproduces linear functions, and
        // the pixel-centre mapping u = x/s + (1 - 1/s)/2 is exact, so away
        // from the symmetric-padding border zone a linear ramp must survive
        // x2 down followed by x2 up to within 1e-9 (rounding only).
        let (h, w) = (40usize, 48usize);
        let f = |y: usize, x: usize| 0.5 * x as f64 + 0.25 * y as f64 + 3.0;
        let img: Vec<f64> = (0..h * w).map(|i| f(i / w, i % w)).collect();
        let (lr, lh, lw) = imresize_plane(&img, h, w, 0.5);
        assert_eq!((lh, lw), (20, 24));
        let (sr, sh, sw) = imresize_plane(&lr, lh, lw, 2.0);
        assert_eq!((sh, sw), (h, w));
        let margin = 12;
        let mut max_err: f64 = 0.0;
        for y in margin..h - margin {
            for x in margin..w - margin {
                max_err = max_err.max((sr[y * w + x] - f(y, x)).abs());
            }
        }
        assert!(max_err < 1e-9, "max interior error {max_err}");

        // Same check for x4 / x3 on a larger image with a looser margin, and
        // multichannel f64 path (each channel a different ramp).
        for &s in &[4usize, 3] {
            let (h, w, c) = (96usize, 72usize, 3usize);
            let g = |y: usize, x: usize, k: usize| {
                (k as f64 + 1.0) * 0.3 * x as f64 - 0.2 * y as f64 + 10.0 * k as f64
            };
            let img: Vec<f64> = (0..h * w * c)
                .map(|i| g(i / (w * c), (i / c) % w, i % c))
                .collect();
            let (lr, lh, lw) = imresize_f64(&img, h, w, c, 1.0 / s as f64);
            let (sr, sh, sw) = imresize_f64(&lr, lh, lw, c, s as f64);
            assert_eq!((sh, sw), (h, w));
            let margin = 6 * s;
            let mut max_err: f64 = 0.0;
            for y in margin..h - margin {
                for x in margin..w - margin {
                    for k in 0..c {
                        max_err = max_err.max((sr[(y * w + x) * c + k] - g(y, x, k)).abs());
                    }
                }
            }
            assert!(max_err < 1e-9, "scale {s}: max interior error {max_err}");
        }
    }

    #[test]
    fn u8_rounding_and_clamp() {
        // A sharp 0/255 step overshoots with the negative kernel lobes when
        // upscaling; the u8 path must clamp into range while the f64 path
        // keeps the overshoot.
        let (h, w) = (4usize, 8usize);
        let img: Vec<u8> = (0..h * w)
            .map(|i| if i % w < 4 { 0 } else { 255 })
            .collect();
        let imgf: Vec<f64> = img.iter().map(|&v| f64::from(v)).collect();
        let (outf, _, _) = imresize_f64(&imgf, h, w, 1, 2.0);
        let (out, _, _) = imresize_u8(&img, h, w, 1, 2.0);
        assert!(outf.iter().any(|&v| v < 0.0));
        assert!(outf.iter().any(|&v| v > 255.0));
        for (&q, &v) in out.iter().zip(&outf) {
            let expect = v.round().clamp(0.0, 255.0);
            assert_eq!(f64::from(q), expect);
        }
        // Half away from zero.
        assert_eq!(2.5f64.round(), 3.0);
    }
}
