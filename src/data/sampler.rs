//! Random training patches from a seeded stream (EDSR-PyTorch protocol: a random LR crop and the
//! aligned HR crop, then random horizontal flip, vertical flip and 90° rotation).

use super::images::ImageSet;
use crate::error::user;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A batch in NCHW order, values in [0, rgb_range].
pub struct Batch {
    pub n: usize,
    pub lr_side: usize,
    pub hr_side: usize,
    pub lr: Vec<f32>,
    pub hr: Vec<f32>,
}

/// The sampler's RNG position, for checkpoints.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SamplerState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

/// Draws patches uniformly over images, then over positions.
pub struct Sampler {
    sets: Vec<Arc<ImageSet>>,
    /// (set index, pair index) of every training image.
    index: Vec<(usize, usize)>,
    scale: usize,
    lr_patch: usize,
    batch: usize,
    augment: bool,
    value_scale: f32,
    rng: ChaCha8Rng,
}

/// RNG stream used for data sampling (weights use another stream of the same seed).
pub const DATA_STREAM: u64 = 2;

impl Sampler {
    /// Fails with the image's path if an image is smaller than one HR patch.
    pub fn new(
        sets: Vec<Arc<ImageSet>>,
        scale: usize,
        hr_patch: usize,
        batch: usize,
        augment: bool,
        rgb_range: f64,
        seed: u64,
    ) -> anyhow::Result<Self> {
        Self::with_small(
            sets, scale, hr_patch, batch, augment, rgb_range, seed, false,
        )
    }

    /// [`Sampler::new`], where `skip_small` leaves images smaller than one HR patch out (their
    /// count and names go to stderr) instead of failing; no image left is still an error.
    #[allow(clippy::too_many_arguments)]
    pub fn with_small(
        sets: Vec<Arc<ImageSet>>,
        scale: usize,
        hr_patch: usize,
        batch: usize,
        augment: bool,
        rgb_range: f64,
        seed: u64,
        skip_small: bool,
    ) -> anyhow::Result<Self> {
        let lr_patch = hr_patch / scale;
        let mut index = Vec::new();
        let mut skipped = Vec::new();
        for (si, s) in sets.iter().enumerate() {
            for (pi, p) in s.pairs.iter().enumerate() {
                let small = p.lr.h < lr_patch || p.lr.w < lr_patch;
                if small && skip_small {
                    skipped.push(format!("{}/{}", s.name, p.name));
                    continue;
                }
                if small {
                    return Err(user(format!(
                        "{}/{}: image is {}×{} after cropping to a multiple of {scale}, smaller than one {hr_patch}×{hr_patch} patch (lower data.patch_size or drop the image)",
                        s.dir.display(),
                        p.name,
                        p.hr.w,
                        p.hr.h
                    )));
                }
                index.push((si, pi));
            }
        }
        if !skipped.is_empty() {
            eprintln!(
                "odm: data.skip_small: {} training images smaller than one {hr_patch}×{hr_patch} patch left out: {}",
                skipped.len(),
                skipped.join(", ")
            );
        }
        if index.is_empty() {
            return Err(user(format!(
                "every training image is smaller than one {hr_patch}×{hr_patch} patch (lower data.patch_size)"
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(DATA_STREAM);
        Ok(Self {
            sets,
            index,
            scale,
            lr_patch,
            batch,
            augment,
            value_scale: (rgb_range / 255.0) as f32,
            rng,
        })
    }

    /// The sampler without the images at `held` ((set, image) positions of its sets, e.g. a
    /// validation split, `super::split`): they are never drawn. The RNG stream is unchanged; an
    /// empty `held` leaves the sampler as it was. No image left is an error.
    pub fn without(mut self, held: &[(usize, usize)]) -> anyhow::Result<Self> {
        self.index.retain(|i| !held.contains(i));
        if self.index.is_empty() {
            return Err(user(
                "data.validation holds out every training image; leave some to train on",
            ));
        }
        Ok(self)
    }

    /// Number of training images.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when there are no training images.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The RNG position.
    pub fn state(&self) -> SamplerState {
        SamplerState {
            seed: self.rng.get_seed(),
            stream: self.rng.get_stream(),
            word_pos: self.rng.get_word_pos(),
        }
    }

    /// Restore an RNG position saved by [`Sampler::state`].
    pub fn set_state(&mut self, s: &SamplerState) {
        let mut rng = ChaCha8Rng::from_seed(s.seed);
        rng.set_stream(s.stream);
        rng.set_word_pos(s.word_pos);
        self.rng = rng;
    }

    /// A sampler over the same images and patch size drawing `batch` patches per batch from
    /// another `stream` of the same seed: its draws never move this sampler's (the QAT probe
    /// batch, `train::diagnostics`).
    pub fn fork(&self, stream: u64, batch: usize) -> Self {
        let mut rng = ChaCha8Rng::from_seed(self.rng.get_seed());
        rng.set_stream(stream);
        Self {
            sets: self.sets.clone(),
            index: self.index.clone(),
            batch,
            rng,
            ..*self
        }
    }

    /// Next batch. Each patch draws, in order: image, x, y, hflip, vflip, rot90.
    pub fn next_batch(&mut self) -> Batch {
        let (lp, s) = (self.lr_patch, self.scale);
        let hp = lp * s;
        let mut lr = vec![0f32; self.batch * 3 * lp * lp];
        let mut hr = vec![0f32; self.batch * 3 * hp * hp];
        for b in 0..self.batch {
            let (si, pi) = self.index[self.rng.random_range(0..self.index.len())];
            let pair = &self.sets[si].pairs[pi];
            let x = self.rng.random_range(0..=pair.lr.w - lp);
            let y = self.rng.random_range(0..=pair.lr.h - lp);
            let (hf, vf, rot) = (
                self.rng.random::<bool>(),
                self.rng.random::<bool>(),
                self.rng.random::<bool>(),
            );
            let aug = if self.augment {
                (hf, vf, rot)
            } else {
                (false, false, false)
            };
            let k = self.value_scale;
            extract(
                &pair.lr.data,
                pair.lr.w,
                x,
                y,
                lp,
                aug,
                k,
                &mut lr[b * 3 * lp * lp..],
            );
            extract(
                &pair.hr.data,
                pair.hr.w,
                x * s,
                y * s,
                hp,
                aug,
                k,
                &mut hr[b * 3 * hp * hp..],
            );
        }
        Batch {
            n: self.batch,
            lr_side: lp,
            hr_side: hp,
            lr,
            hr,
        }
    }
}

/// Copy a p×p patch at (x, y) of an HWC image into CHW `out`, with the augmentation applied:
/// output (i, j) reads source (a, b) = rot ? (j, i) : (i, j), then b mirrored if hflip and a
/// mirrored if vflip. The same map on the LR and HR grids keeps the pair aligned.
#[allow(clippy::too_many_arguments)]
fn extract(
    src: &[u8],
    w: usize,
    x: usize,
    y: usize,
    p: usize,
    (hf, vf, rot): (bool, bool, bool),
    k: f32,
    out: &mut [f32],
) {
    for i in 0..p {
        for j in 0..p {
            let (mut a, mut b) = if rot { (j, i) } else { (i, j) };
            if hf {
                b = p - 1 - b;
            }
            if vf {
                a = p - 1 - a;
            }
            let base = ((y + a) * w + x + b) * 3;
            for c in 0..3 {
                out[c * p * p + i * p + j] = src[base + c] as f32 * k;
            }
        }
    }
}
