//! Upper bounds on a spec's sizes and counts and on the CLI's image sizes, checked at validation
//! (issue 24: an absurd size is refused with its limit in one line, before anything is written,
//! instead of aborting on an allocation or wrapping around in an integer product).
//!
//! Each bound is far above what the papers use, so no real experiment meets it; within them the
//! products the code forms (a conv's weights, its MACs at the largest image side in `u128`) cannot
//! overflow. One training step's memory is bounded too, by a rough estimate
//! ([`step_bytes`]) against [`MAX_STEP_BYTES`].

use super::{ModelSpec, Spec};

/// Training iterations (and every interval counted in them: `eval_every`, `checkpoint_every`,
/// `log_every`, `gating.log_every`, `schedule.lr_decay.every`). The papers train 300K at most.
pub const MAX_ITERATIONS: usize = 10_000_000;
/// Patches per batch (EDSR uses 16).
pub const MAX_BATCH: usize = 4096;
/// HR patch side in pixels (EDSR uses 192 at ×4).
pub const MAX_PATCH: usize = 4096;
/// Calibration batches (the presets use 1 to a few dozen).
pub const MAX_CALIB_BATCHES: usize = 10_000;
/// Residual blocks of EDSR and SRResNet (EDSR uses 32).
pub const MAX_RESBLOCKS: usize = 1024;
/// Feature channels: EDSR's and SRResNet's `n_feats`, RDN's `g` and `g0` (EDSR uses 256).
pub const MAX_FEATS: usize = 4096;
/// RDN's residual dense blocks `d` (the papers use 16).
pub const MAX_RDN_BLOCKS: usize = 256;
/// RDN's conv layers per block `c` (the papers use 8).
pub const MAX_RDN_CONVS: usize = 64;
/// An image side in pixels: `odm cost --size`, `odm eval --tile`, a crop's corner.
pub const MAX_SIDE: usize = 65_536;
/// One training step's estimated memory ([`step_bytes`]): 1 TiB, past any one machine's.
pub const MAX_STEP_BYTES: f64 = (1u64 << 40) as f64;

/// `n` copies of a `cin`→`cout` convolution with `k`×`k` kernels whose output has `res` times
/// the LR input's side.
struct ConvShape {
    n: f64,
    cin: f64,
    cout: f64,
    k: f64,
    res: f64,
}

fn conv(n: usize, cin: usize, cout: usize, k: usize, res: usize) -> ConvShape {
    ConvShape {
        n: n as f64,
        cin: cin as f64,
        cout: cout as f64,
        k: k as f64,
        res: res as f64,
    }
}

/// The pixel-shuffle stages of ×`scale` (×4 is two ×2 stages), as `models` builds them.
fn stages(scale: usize) -> Vec<usize> {
    if scale == 3 {
        vec![3]
    } else {
        vec![2; scale.trailing_zeros() as usize]
    }
}

/// The convolutions `models::{edsr, srresnet, rdn}::build` declare for `m` at ×`scale`
/// (shapes only; f64, so no product overflows).
fn convs(m: &ModelSpec, scale: usize) -> Vec<ConvShape> {
    let up = |v: &mut Vec<ConvShape>, first: usize, f: usize| {
        let (mut cin, mut res) = (first, 1);
        for r in stages(scale) {
            v.push(conv(1, cin, r * r * f, 3, res));
            (cin, res) = (f, res * r);
        }
    };
    let mut v = Vec::new();
    match m {
        ModelSpec::Edsr(c) => {
            let f = c.n_feats;
            v.push(conv(1, 3, f, 3, 1));
            v.push(conv(2 * c.n_resblocks + 1, f, f, 3, 1));
            up(&mut v, f, f);
            v.push(conv(1, f, 3, 3, scale));
        }
        ModelSpec::SrResNet(c) => {
            let f = c.n_feats;
            v.push(conv(1, 3, f, 9, 1));
            v.push(conv(2 * c.n_resblocks + 1, f, f, 3, 1));
            up(&mut v, f, f);
            v.push(conv(1, f, 3, 9, scale));
        }
        ModelSpec::Rdn(c) => {
            v.push(conv(1, 3, c.g0, 3, 1));
            v.push(conv(1, c.g0, c.g0, 3, 1));
            for k in 0..c.c {
                v.push(conv(c.d, c.g0 + k * c.g, c.g, 3, 1));
            }
            v.push(conv(c.d, c.g0 + c.c * c.g, c.g0, 1, 1));
            v.push(conv(1, c.d * c.g0, c.g0, 1, 1));
            v.push(conv(1, c.g0, c.g0, 3, 1));
            up(&mut v, c.g0, c.g);
            v.push(conv(1, c.g, 3, 3, scale));
        }
    }
    v
}

/// A rough estimate of one training step's memory in bytes (f64: no overflow): 16 bytes per
/// weight (the weight, its gradient and Adam's two moments, f32) plus 16 bytes per conv output
/// value of the batch (the output and the activation or quantizer after it, each with its
/// gradient): batch_size · (patch_size / scale)² LR pixels times Σ cout·res² over the convs.
/// Biases, BatchNorm and quantizer parameters are left out. The backbone's size is checked
/// first, so the conv list is bounded.
pub fn step_bytes(s: &Spec) -> f64 {
    let cs = convs(&s.model, s.scale);
    let weights: f64 = cs.iter().map(|c| c.n * c.cin * c.cout * c.k * c.k).sum();
    let per_pixel: f64 = cs.iter().map(|c| c.n * c.cout * c.res * c.res).sum();
    let lr = (s.data.patch_size / s.scale) as f64;
    16.0 * weights + 16.0 * s.data.batch_size as f64 * lr * lr * per_pixel
}
