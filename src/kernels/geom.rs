//! The work split shared by the convolution paths ([`super::cpu_conv`], [`super::thin`]): the
//! shape, its bands of output rows (a function of the shape only, so results do not depend on the
//! thread count), a pointer that crosses threads for disjoint writes, and the ordered sum of
//! per-image weight gradients.

/// Shape of one convolution: batch, input and output channels, height, width, kernel side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geom {
    pub n: usize,
    pub ci: usize,
    pub co: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
}

/// Pixels per band: keeps an im2col band (ci·k²·band floats) near the L2 cache.
const BAND_PIXELS: usize = 384;

impl Geom {
    /// Rows of a (K = ci·k²) × band im2col matrix.
    pub(super) fn kk(&self) -> usize {
        self.ci * self.k * self.k
    }
    /// Output rows per band (a function of the shape only).
    fn band_rows(&self) -> usize {
        BAND_PIXELS.div_ceil(self.w).clamp(1, self.h)
    }
    pub(super) fn bands(&self) -> usize {
        self.h.div_ceil(self.band_rows())
    }
    /// Output rows [r0, r1) of band `i`.
    pub(super) fn band(&self, i: usize) -> (usize, usize) {
        let r = self.band_rows();
        (i * r, ((i + 1) * r).min(self.h))
    }
}

/// A raw pointer that may cross threads; every user writes a disjoint region.
#[derive(Clone, Copy)]
pub struct SendPtr<T = f32>(pub *mut T);
// SAFETY: every user writes a disjoint region (one band or row per task).
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer `i` elements on.
    ///
    /// # Safety
    /// `i` must lie inside the allocation.
    pub unsafe fn at(self, i: usize) -> *mut T {
        self.0.add(i)
    }
}

/// Per-image (dW, db) summed over the images in index order (independent of the thread count).
pub(super) fn sum_images(partial: Vec<(Vec<f32>, Vec<f32>)>) -> (Vec<f32>, Vec<f32>) {
    let mut it = partial.into_iter();
    let (mut dw, mut db) = it.next().expect("batch of at least one image");
    for (pw, pb) in it {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}
