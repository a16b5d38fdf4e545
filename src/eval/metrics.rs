//! Standard single-image super-resolution evaluation protocol (Y-channel
//! PSNR / SSIM), as used by EDSR, RCAN, SwinIR and BasicSR:
//!
//! 1. Convert both SR and HR 8-bit RGB images to the luma channel `Y` of
//!    ITU-R BT.601 YCbCr, exactly as MATLAB's `rgb2ycbcr` does for `[0, 1]`
//!    double input, expressed on the 0..255 scale and *not* rounded:
//!    `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255` with 8-bit `R, G, B`.
//! 2. Shave `scale` pixels from every border (the EDSR/BasicSR
//!    `crop_border = scale` convention).
//! 3. PSNR with peak 255 on the shaved Y planes.
//! 4. SSIM of Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment:
//!    from error visibility to structural similarity", IEEE TIP 2004, with the
//!    reference MATLAB parameters: 11x11 Gaussian window (sigma 1.5, normalised
//!    to sum 1), `K1 = 0.01`, `K2 = 0.03`, `L = 255`, 'valid' filtering, mean
//!    of the SSIM map.
//!
//! All arithmetic is `f64`. [`score_y`] works row by row (Y rows computed as needed, an 11-row
//! window of the SSIM filter), so scoring a large image holds no whole `f64` plane; its scores
//! are bit-identical to the whole-plane computation. This module is standalone (std only).

/// BT.601 luma coefficients of MATLAB `rgb2ycbcr` (first row of its matrix).
const KR: f64 = 65.481;
const KG: f64 = 128.553;
const KB: f64 = 24.966;

#[inline]
fn y_of(r: u8, g: u8, b: u8) -> f64 {
    16.0 + (KR * f64::from(r) + KG * f64::from(g) + KB * f64::from(b)) / 255.0
}

/// Luma `Y` (0..255 scale, unrounded) of an interleaved 8-bit RGB image
/// (`h x w x 3`), per MATLAB `rgb2ycbcr` on `[0, 1]` input (ITU-R BT.601):
/// `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`.
pub fn rgb_to_y(rgb: &[u8], h: usize, w: usize) -> Vec<f64> {
    assert_eq!(rgb.len(), h * w * 3, "rgb_to_y: buffer size mismatch");
    rgb.chunks_exact(3)
        .map(|p| y_of(p[0], p[1], p[2]))
        .collect()
}

/// Luma of an 8-bit `h x w x c` image with `c = 1` (grey, replicated to RGB,
/// i.e. the same formula with `R = G = B`) or `c = 3` (RGB).
pub fn gray_or_rgb_to_y(img: &[u8], h: usize, w: usize, c: usize) -> Vec<f64> {
    match c {
        3 => rgb_to_y(img, h, w),
        1 => {
            assert_eq!(img.len(), h * w, "gray_or_rgb_to_y: buffer size mismatch");
            img.iter().map(|&v| y_of(v, v, v)).collect()
        }
        _ => panic!("gray_or_rgb_to_y: unsupported channel count {c}"),
    }
}

/// Crop `border` pixels on every side of a row-major `h x w` plane (the
/// shave-by-scale convention of EDSR/BasicSR). Returns `(data, h', w')`;
/// if the border consumes the whole image the result is empty.
pub fn shave(y: &[f64], h: usize, w: usize, border: usize) -> (Vec<f64>, usize, usize) {
    assert_eq!(y.len(), h * w, "shave: buffer size mismatch");
    let nh = h.saturating_sub(2 * border);
    let nw = w.saturating_sub(2 * border);
    if nh == 0 || nw == 0 {
        return (Vec::new(), nh, nw);
    }
    let mut out = Vec::with_capacity(nh * nw);
    for row in y.chunks_exact(w).skip(border).take(nh) {
        out.extend_from_slice(&row[border..border + nw]);
    }
    (out, nh, nw)
}

/// Peak signal-to-noise ratio `10 log10(peak^2 / mse)` in dB. Identical
/// inputs give `f64::INFINITY`.
pub fn psnr(a: &[f64], b: &[f64], peak: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "psnr: length mismatch");
    assert!(!a.is_empty(), "psnr: empty input");
    let sse: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x - y;
            d * d
        })
        .sum();
    psnr_of_sse(sse, a.len(), peak)
}

/// PSNR from the sum of squared differences over `n` values.
fn psnr_of_sse(sse: f64, n: usize, peak: f64) -> f64 {
    let mse = sse / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (peak * peak / mse).log10()
    }
}

const SSIM_WIN: usize = 11;
const SSIM_SIGMA: f64 = 1.5;

/// Normalised 1-D Gaussian of length 11, sigma 1.5. Its outer product with
/// itself equals MATLAB `fspecial('gaussian', 11, 1.5)`.
fn gaussian_1d() -> [f64; SSIM_WIN] {
    let mut g = [0.0; SSIM_WIN];
    let c = (SSIM_WIN / 2) as f64;
    for (i, v) in g.iter_mut().enumerate() {
        let x = i as f64 - c;
        *v = (-(x * x) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let s: f64 = g.iter().sum();
    for v in g.iter_mut() {
        *v /= s;
    }
    g
}

/// Mean SSIM (Wang et al. 2004) of two planes fed row by row: the separable 'valid' Gaussian
/// filtering of the five statistics (x, y, x², y², xy) keeps the horizontal pass of the last 11
/// rows only, so the memory is `O(w)` whatever the height.
///
/// Bit-identical to filtering whole planes: each horizontal value is `0.0 + Σ_k g_k·v` in tap
/// order, each vertical value `0.0 + Σ_k g_k·h_{r+k}` in tap order, and the map is summed in
/// row-major order: the operations, and their order, of the whole-plane two-pass filter (kept as
/// the reference in this module's tests).
struct SsimRows {
    g: [f64; SSIM_WIN],
    w: usize,
    ow: usize,
    /// Rows pushed so far.
    rows: usize,
    /// Horizontal pass of the last `SSIM_WIN` rows, row `r` in slot `r % SSIM_WIN`: five
    /// statistics of `ow` values each, `[stat][slot * ow + x]`.
    ring: [Vec<f64>; 5],
    /// The vertical pass of one output row.
    col: [Vec<f64>; 5],
    total: f64,
    n: usize,
}

impl SsimRows {
    fn new(w: usize) -> Self {
        assert!(
            w >= SSIM_WIN,
            "ssim: image width {w} smaller than the 11x11 window"
        );
        let ow = w - (SSIM_WIN - 1);
        Self {
            g: gaussian_1d(),
            w,
            ow,
            rows: 0,
            ring: std::array::from_fn(|_| vec![0.0; SSIM_WIN * ow]),
            col: std::array::from_fn(|_| vec![0.0; ow]),
            total: 0.0,
            n: 0,
        }
    }

    /// Feed the next row of both planes (`w` values each).
    fn push(&mut self, ra: &[f64], rb: &[f64]) {
        assert!(
            ra.len() == self.w && rb.len() == self.w,
            "ssim: row length mismatch"
        );
        let (g, ow) = (&self.g, self.ow);
        let slot = (self.rows % SSIM_WIN) * ow;
        for x in 0..ow {
            let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for (k, &gk) in g.iter().enumerate() {
                let u = ra[x + k];
                let v = rb[x + k];
                sx += gk * u;
                sy += gk * v;
                sxx += gk * (u * u);
                syy += gk * (v * v);
                sxy += gk * (u * v);
            }
            let o = slot + x;
            self.ring[0][o] = sx;
            self.ring[1][o] = sy;
            self.ring[2][o] = sxx;
            self.ring[3][o] = syy;
            self.ring[4][o] = sxy;
        }
        self.rows += 1;
        if self.rows < SSIM_WIN {
            return;
        }
        // Output row r = rows - 11 filters rows r..r+11 vertically.
        let r = self.rows - SSIM_WIN;
        for (src, dst) in self.ring.iter().zip(self.col.iter_mut()) {
            dst.fill(0.0);
            for (k, &gk) in g.iter().enumerate() {
                let s = ((r + k) % SSIM_WIN) * ow;
                for (d, &v) in dst.iter_mut().zip(&src[s..s + ow]) {
                    *d += gk * v;
                }
            }
        }
        const L: f64 = 255.0;
        let c1 = (0.01 * L) * (0.01 * L);
        let c2 = (0.03 * L) * (0.03 * L);
        let [mx, my, exx, eyy, exy] = &self.col;
        for i in 0..ow {
            let (mux, muy) = (mx[i], my[i]);
            let mux2 = mux * mux;
            let muy2 = muy * muy;
            let muxy = mux * muy;
            let sx2 = exx[i] - mux2;
            let sy2 = eyy[i] - muy2;
            let sxy = exy[i] - muxy;
            self.total +=
                ((2.0 * muxy + c1) * (2.0 * sxy + c2)) / ((mux2 + muy2 + c1) * (sx2 + sy2 + c2));
        }
        self.n += ow;
    }

    /// The mean of the SSIM map.
    fn finish(self) -> f64 {
        assert!(
            self.rows >= SSIM_WIN,
            "ssim: image height {} smaller than the 11x11 window",
            self.rows
        );
        self.total / self.n as f64
    }
}

/// Mean SSIM (Wang et al. 2004) of two row-major `h x w` planes on the
/// 0..255 scale: 11x11 Gaussian window (sigma 1.5), `K1 = 0.01`,
/// `K2 = 0.03`, `L = 255`, 'valid' filtering (map of size
/// `(h-10) x (w-10)`), `sigma^2 = E[x^2] - mu^2`, `sigma_xy = E[xy] - mu_x mu_y`,
/// as in the reference MATLAB code and BasicSR. Panics if `h` or `w` < 11.
pub fn ssim(a: &[f64], b: &[f64], h: usize, w: usize) -> f64 {
    assert_eq!(a.len(), h * w, "ssim: buffer size mismatch");
    assert_eq!(b.len(), h * w, "ssim: buffer size mismatch");
    assert!(
        h >= SSIM_WIN && w >= SSIM_WIN,
        "ssim: image {h}x{w} smaller than the 11x11 window"
    );
    let mut acc = SsimRows::new(w);
    for (ra, rb) in a.chunks_exact(w).zip(b.chunks_exact(w)) {
        acc.push(ra, rb);
    }
    acc.finish()
}

/// Y-channel PSNR (dB, peak 255) and SSIM of an SR result against its HR
/// reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YScore {
    pub psnr: f64,
    pub ssim: f64,
}

/// Luma (as [`gray_or_rgb_to_y`]) of `out.len()` pixels from column `x0` of row `r` of an 8-bit
/// `h x w x c` image (`c` = 1 or 3), into `out`.
fn y_row(img: &[u8], w: usize, c: usize, r: usize, x0: usize, out: &mut [f64]) {
    let px = &img[(r * w + x0) * c..(r * w + x0 + out.len()) * c];
    match c {
        3 => {
            for (o, p) in out.iter_mut().zip(px.chunks_exact(3)) {
                *o = y_of(p[0], p[1], p[2]);
            }
        }
        1 => {
            for (o, &v) in out.iter_mut().zip(px) {
                *o = y_of(v, v, v);
            }
        }
        _ => panic!("score_y: unsupported channel count {c}"),
    }
}

/// Score an SR image against HR by the standard protocol: both are 8-bit
/// `h x w x c` (`c` = 1 or 3), converted to BT.601 Y (MATLAB `rgb2ycbcr`),
/// shaved by `scale` pixels on every side (EDSR/BasicSR convention), then
/// PSNR (peak 255) and SSIM (Wang et al. 2004) on the Y planes.
///
/// Streamed row by row: the Y rows are computed as they are needed and fed to the PSNR sum (in
/// row-major order) and to [`SsimRows`], so scoring holds `O(w)` floats, not whole `f64` planes;
/// the scores are bit-identical to converting, shaving and scoring whole planes
/// ([`gray_or_rgb_to_y`], [`shave`], [`psnr`], [`ssim`]).
pub fn score_y(sr: &[u8], hr: &[u8], h: usize, w: usize, c: usize, scale: usize) -> YScore {
    assert_eq!(sr.len(), hr.len(), "score_y: SR/HR size mismatch");
    assert_eq!(sr.len(), h * w * c, "score_y: buffer size mismatch");
    let sh = h.saturating_sub(2 * scale);
    let sw = w.saturating_sub(2 * scale);
    assert!(sh > 0 && sw > 0, "psnr: empty input");
    assert!(
        sh >= SSIM_WIN && sw >= SSIM_WIN,
        "ssim: image {sh}x{sw} smaller than the 11x11 window"
    );
    let (mut ys, mut yh) = (vec![0.0; sw], vec![0.0; sw]);
    let mut sse = 0.0;
    let mut acc = SsimRows::new(sw);
    for r in scale..scale + sh {
        y_row(sr, w, c, r, scale, &mut ys);
        y_row(hr, w, c, r, scale, &mut yh);
        for (&x, &y) in ys.iter().zip(&yh) {
            let d = x - y;
            sse += d * d;
        }
        acc.push(&ys, &yh);
    }
    YScore {
        psnr: psnr_of_sse(sse, sh * sw, 255.0),
        ssim: acc.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small deterministic LCG in [0, 1).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    fn noise_plane(h: usize, w: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..h * w).map(|_| (lcg(&mut s) * 255.0).floor()).collect()
    }

    /// The whole-plane SSIM (the implementation before streaming): horizontal pass of all rows,
    /// vertical pass of all five statistics, then the mean of the map.
    fn reference_ssim(a: &[f64], b: &[f64], h: usize, w: usize) -> f64 {
        let g = gaussian_1d();
        let (oh, ow) = (h - 10, w - 10);
        let mut hp: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; h * ow]);
        for r in 0..h {
            for x in 0..ow {
                let (mut sx, mut sy, mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for (k, &gk) in g.iter().enumerate() {
                    let (u, v) = (a[r * w + x + k], b[r * w + x + k]);
                    sx += gk * u;
                    sy += gk * v;
                    sxx += gk * (u * u);
                    syy += gk * (v * v);
                    sxy += gk * (u * v);
                }
                for (p, v) in hp.iter_mut().zip([sx, sy, sxx, syy, sxy]) {
                    p[r * ow + x] = v;
                }
            }
        }
        let mut out: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; oh * ow]);
        for (src, dst) in hp.iter().zip(out.iter_mut()) {
            for (r, drow) in dst.chunks_exact_mut(ow).enumerate() {
                for (k, &gk) in g.iter().enumerate() {
                    for (d, &s) in drow.iter_mut().zip(&src[(r + k) * ow..(r + k + 1) * ow]) {
                        *d += gk * s;
                    }
                }
            }
        }
        let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
        let [mx, my, exx, eyy, exy] = out;
        let mut total = 0.0;
        for i in 0..mx.len() {
            let (mux, muy) = (mx[i], my[i]);
            let (mux2, muy2, muxy) = (mux * mux, muy * muy, mux * muy);
            let (sx2, sy2, sxy) = (exx[i] - mux2, eyy[i] - muy2, exy[i] - muxy);
            total +=
                ((2.0 * muxy + c1) * (2.0 * sxy + c2)) / ((mux2 + muy2 + c1) * (sx2 + sy2 + c2));
        }
        total / mx.len() as f64
    }

    #[test]
    fn streamed_scores_equal_whole_plane_scores_bit_for_bit() {
        let mut s = 17u64;
        for &(h, w, c, scale) in &[
            (40usize, 37usize, 3usize, 4usize),
            (23, 31, 3, 2),
            (11, 11, 1, 0),
            (29, 50, 1, 3),
        ] {
            let hr: Vec<u8> = (0..h * w * c)
                .map(|_| (lcg(&mut s) * 256.0) as u8)
                .collect();
            let sr: Vec<u8> = hr
                .iter()
                .map(|&v| v.saturating_add((lcg(&mut s) * 20.0) as u8))
                .collect();
            let ys = gray_or_rgb_to_y(&sr, h, w, c);
            let yh = gray_or_rgb_to_y(&hr, h, w, c);
            let (ys, sh, sw) = shave(&ys, h, w, scale);
            let (yh, _, _) = shave(&yh, h, w, scale);
            let want_ssim = reference_ssim(&ys, &yh, sh, sw);
            assert_eq!(ssim(&ys, &yh, sh, sw).to_bits(), want_ssim.to_bits());
            let got = score_y(&sr, &hr, h, w, c, scale);
            assert_eq!(got.psnr.to_bits(), psnr(&ys, &yh, 255.0).to_bits());
            assert_eq!(got.ssim.to_bits(), want_ssim.to_bits());
        }
    }

    #[test]
    fn rgb_to_y_known_values() {
        let px = [255u8, 255, 255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255];
        let y = rgb_to_y(&px, 1, 5);
        // 65.481 + 128.553 + 24.966 = 219 -> white = 16 + 219 = 235.
        assert!((y[0] - 235.0).abs() < 1e-9);
        assert_eq!(y[1], 16.0);
        assert!((y[2] - (16.0 + 65.481)).abs() < 1e-12);
        assert!((y[3] - (16.0 + 128.553)).abs() < 1e-12);
        assert!((y[4] - (16.0 + 24.966)).abs() < 1e-12);

        // Grey path equals RGB path with R = G = B.
        let grey = [0u8, 17, 128, 255];
        let rgb: Vec<u8> = grey.iter().flat_map(|&v| [v, v, v]).collect();
        let yg = gray_or_rgb_to_y(&grey, 2, 2, 1);
        let yr = gray_or_rgb_to_y(&rgb, 2, 2, 3);
        assert_eq!(yg, yr);
        // 128: 16 + 219*128/255 (not rounded).
        assert!((yg[2] - (16.0 + 219.0 * 128.0 / 255.0)).abs() < 1e-9);
    }

    #[test]
    fn psnr_identical_is_infinite() {
        let a = noise_plane(8, 8, 1);
        assert_eq!(psnr(&a, &a, 255.0), f64::INFINITY);
    }

    #[test]
    fn psnr_constant_offset() {
        // Y planes differing by a constant d everywhere: mse = d^2,
        // PSNR = 10 log10(255^2 / d^2) = 20 log10(255 / d).
        let a = noise_plane(16, 16, 2);
        for &d in &[1.0, 3.0, 10.0, 0.5] {
            let b: Vec<f64> = a.iter().map(|v| v + d).collect();
            let p = psnr(&a, &b, 255.0);
            let expect = 20.0 * (255.0f64 / d).log10();
            assert!((p - expect).abs() < 1e-9, "d={d}: {p} vs {expect}");
        }
        // d = 3: 20 log10(85) = 38.588378514285...
        let b: Vec<f64> = a.iter().map(|v| v + 3.0).collect();
        assert!((psnr(&a, &b, 255.0) - 38.588_378_514_285_86).abs() < 1e-9);
    }

    #[test]
    fn psnr_single_pixel() {
        // One pixel off by 10 in a 16x16 plane: mse = 100/256,
        // PSNR = 10 log10(65025 * 256 / 100) = 10 log10(166464)
        //      = 52.213203261797...
        let n = 16;
        let a = vec![100.0; n * n];
        let mut b = a.clone();
        b[37] += 10.0;
        let p = psnr(&a, &b, 255.0);
        assert!((p - 52.213_203_261_797_6).abs() < 1e-9, "{p}");
    }

    #[test]
    fn shave_crops_and_excludes_border() {
        let (h, w) = (6, 7);
        let y: Vec<f64> = (0..h * w).map(|i| i as f64).collect();
        let (s, sh, sw) = shave(&y, h, w, 2);
        assert_eq!((sh, sw), (2, 3));
        // Rows 2..4, cols 2..5 of the index image.
        assert_eq!(s, vec![16.0, 17.0, 18.0, 23.0, 24.0, 25.0]);
        let (e, eh, ew) = shave(&y, h, w, 3);
        assert_eq!((eh, ew), (0, 1));
        assert!(e.is_empty());

        // A difference planted only inside the shaved border leaves PSNR
        // infinite and SSIM 1.
        let (h, w, c, scale) = (24usize, 26usize, 3usize, 4usize);
        let mut s = 7u64;
        let hr: Vec<u8> = (0..h * w * c)
            .map(|_| (lcg(&mut s) * 256.0) as u8)
            .collect();
        let mut sr = hr.clone();
        for y in 0..h {
            for x in 0..w {
                let inside = y >= scale && y < h - scale && x >= scale && x < w - scale;
                if !inside {
                    for k in 0..c {
                        let v = &mut sr[(y * w + x) * c + k];
                        *v = v.wrapping_add(50);
                    }
                }
            }
        }
        let sc = score_y(&sr, &hr, h, w, c, scale);
        assert_eq!(sc.psnr, f64::INFINITY);
        assert!((sc.ssim - 1.0).abs() < 1e-12);
        // Without shaving the difference is seen.
        let sc0 = score_y(&sr, &hr, h, w, c, 0);
        assert!(sc0.psnr.is_finite());
    }

    #[test]
    fn ssim_identical_is_one() {
        let a = noise_plane(23, 31, 3);
        let s = ssim(&a, &a, 23, 31);
        assert!((s - 1.0).abs() < 1e-12, "{s}");
        let hr: Vec<u8> = a.iter().map(|&v| v as u8).collect();
        let sc = score_y(&hr, &hr, 23, 31, 1, 2);
        assert_eq!(sc.psnr, f64::INFINITY);
        assert!((sc.ssim - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ssim_constant_offset_closed_form() {
        // Constants a and b: sigma_x = sigma_y = sigma_xy = 0, so the map is
        // ((2ab + C1) * C2) / ((a^2 + b^2 + C1) * C2) = (2ab + C1)/(a^2 + b^2 + C1)
        // with C1 = (0.01*255)^2 = 6.5025.
        let (h, w) = (15, 13);
        for &(a, b) in &[(100.0, 110.0), (16.0, 235.0), (0.0, 1.0), (50.0, 50.0)] {
            let pa = vec![a; h * w];
            let pb = vec![b; h * w];
            let c1 = 6.5025;
            let expect = (2.0 * a * b + c1) / (a * a + b * b + c1);
            let s = ssim(&pa, &pb, h, w);
            assert!((s - expect).abs() < 1e-9, "({a},{b}): {s} vs {expect}");
        }
        // Worked example: a = 100, b = 110:
        // (22000 + 6.5025) / (22100 + 6.5025) = 22006.5025 / 22106.5025.
        let s = ssim(&vec![100.0; h * w], &vec![110.0; h * w], h, w);
        assert!((s - 22006.5025 / 22106.5025).abs() < 1e-9);
    }

    #[test]
    fn ssim_symmetric_and_below_one_for_noise() {
        let (h, w) = (32, 29);
        let a = noise_plane(h, w, 11);
        let mut s = 99u64;
        let b: Vec<f64> = a.iter().map(|&v| v + (lcg(&mut s) - 0.5) * 40.0).collect();
        let s_ab = ssim(&a, &b, h, w);
        let s_ba = ssim(&b, &a, h, w);
        assert!((s_ab - s_ba).abs() < 1e-12);
        assert!(s_ab < 1.0 && s_ab > -1.0, "{s_ab}");
        // Unrelated noise images: clearly below 1.
        let c = noise_plane(h, w, 12);
        assert!(ssim(&a, &c, h, w) < 0.5);
    }

    #[test]
    fn ssim_matches_direct_2d_window() {
        // Independent check of the separable filter: a brute-force 11x11
        // 2-D window (fspecial-style outer Gaussian, normalised over 121
        // taps) over the 'valid' region.
        let (h, w) = (17, 14);
        let a = noise_plane(h, w, 21);
        let b = noise_plane(h, w, 22);
        let mut win = [[0.0f64; 11]; 11];
        let mut tot = 0.0;
        for (i, row) in win.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                let (y, x) = (i as f64 - 5.0, j as f64 - 5.0);
                *v = (-(x * x + y * y) / (2.0 * 1.5 * 1.5)).exp();
                tot += *v;
            }
        }
        let (c1, c2) = (6.5025, 58.5225);
        let mut acc = 0.0;
        let (oh, ow) = (h - 10, w - 10);
        for r in 0..oh {
            for q in 0..ow {
                let (mut mx, mut my, mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0, 0.0, 0.0);
                for (i, row) in win.iter().enumerate() {
                    for (j, &g) in row.iter().enumerate() {
                        let g = g / tot;
                        let u = a[(r + i) * w + q + j];
                        let v = b[(r + i) * w + q + j];
                        mx += g * u;
                        my += g * v;
                        xx += g * u * u;
                        yy += g * v * v;
                        xy += g * u * v;
                    }
                }
                let sx = xx - mx * mx;
                let sy = yy - my * my;
                let sxy = xy - mx * my;
                acc += ((2.0 * mx * my + c1) * (2.0 * sxy + c2))
                    / ((mx * mx + my * my + c1) * (sx + sy + c2));
            }
        }
        let expect = acc / (oh * ow) as f64;
        let got = ssim(&a, &b, h, w);
        assert!((got - expect).abs() < 1e-10, "{got} vs {expect}");
    }
}
