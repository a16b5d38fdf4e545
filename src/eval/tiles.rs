//! Tiled inference: a large LR image is super-resolved in tiles whose outputs are bit-identical
//! to the untiled forward.
//!
//! Overlap rule: an output pixel depends on the LR pixels within the receptive radius
//! r = ⌈Σ_convs ⌊k/2⌋ / res⌉ (`res`: the conv's output resolution relative to the LR input; a
//! pixel shuffle adds nothing). Each tile is a core block of LR pixels extended by r on every side
//! that is not an image border; the forward of the extended tile computes the core's outputs from
//! exactly the inputs, zero padding included, that the full forward uses, with per-pixel
//! arithmetic that does not depend on the tile's size (our convolution's reduction order is a
//! function of the channels and kernel only; BatchNorm in evaluation and the fake quantizers are
//! per channel or per layer). Only the core's outputs are kept. A dynamic quantizer (DAQ) takes its
//! statistics from the whole input, so a plan with one runs untiled. `tests/tiles.rs` checks the
//! equality for every backbone on odd sizes.

use crate::forward::Fwd;
use crate::models::{ConvInfo, Model, Params};
use crate::quant::QuantPlan;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use std::ops::Range;

/// The receptive radius in LR pixels (see the module documentation).
pub fn receptive_radius(convs: &[ConvInfo]) -> usize {
    // Sum exactly in units of 1/lcm(res) to avoid float rounding.
    let l = convs.iter().fold(1, |a, c| lcm(a, c.res));
    let units: usize = convs.iter().map(|c| (c.k / 2) * (l / c.res)).sum();
    units.div_ceil(l)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: usize, b: usize) -> usize {
    a / gcd(a, b) * b
}

/// Core tiles of side `t` over h×w: `(y0, y1, x0, x1)`, row-major.
pub fn cores(h: usize, w: usize, t: usize) -> Vec<(usize, usize, usize, usize)> {
    let t = t.max(1);
    let mut v = Vec::new();
    for y0 in (0..h).step_by(t) {
        for x0 in (0..w).step_by(t) {
            v.push((y0, (y0 + t).min(h), x0, (x0 + t).min(w)));
        }
    }
    v
}

/// The forward of `x` (1×3×h×w) in tiles of `t` LR pixels, assembled into the full 1×3×sh×sw
/// output; `None` runs it whole.
pub fn forward_tiled<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    x: Tensor<B, 4>,
    t: Option<usize>,
) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let input = |ys: Range<usize>, xs: Range<usize>| x.clone().slice([0..1, 0..3, ys, xs]);
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut last_y = None;
    forward_tiles(model, params, plan, [h, w], &input, t, &mut |p| {
        if last_y.is_some_and(|l| l != p.oy) {
            rows.push(Tensor::cat(std::mem::take(&mut row), 3));
        }
        last_y = Some(p.oy);
        row.push(p.y);
    });
    rows.push(Tensor::cat(row, 3));
    Tensor::cat(rows, 2)
}

/// One tile's share of a forward's output: the core's output and where it goes.
pub struct Piece<B: Backend> {
    /// The output position (row, column) of its top-left pixel.
    pub oy: usize,
    pub ox: usize,
    /// Output pixels per LR pixel (the model's scale).
    pub scale: usize,
    /// 1×3×…: the core's output.
    pub y: Tensor<B, 4>,
}

/// The forward of an h×w LR input (`hw`) in tiles of `t` LR pixels, handing each core's output
/// ([`Piece`]) to `visit`, tiles in row-major order. `input(rows, cols)` gives the 1×3×… input
/// tensor of a region, so the whole input need not exist as a tensor. Untiled (`None`, a tile not
/// smaller than the image, or a plan with a dynamic quantizer) it is one call with the whole
/// output at `(0, 0)`. A caller that consumes each piece as it comes (e.g. rounds it into an
/// 8-bit image) never holds the float output of the whole image.
pub fn forward_tiles<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    hw: [usize; 2],
    input: &dyn Fn(Range<usize>, Range<usize>) -> Tensor<B, 4>,
    t: Option<usize>,
    visit: &mut dyn FnMut(Piece<B>),
) {
    let f = Fwd::plain(params, plan);
    let [h, w] = hw;
    // DAQ normalises by statistics of the whole input and DDTB's gates pool over it: a tile
    // would see its own.
    let dynamic = plan
        .layers
        .iter()
        .any(|(_, l)| l.dynamic || matches!(l.form, crate::quant::QForm::Daq { .. }));
    let Some(t) = t.filter(|&t| t < h.max(w) && !dynamic) else {
        let y = model.forward(&f, input(0..h, 0..w));
        let scale = y.dims()[2] / h;
        return visit(Piece {
            oy: 0,
            ox: 0,
            scale,
            y,
        });
    };
    let r = receptive_radius(model.layers().convs.as_slice());
    for (y0, y1, x0, x1) in cores(h, w, t) {
        let (ey0, ey1) = (y0.saturating_sub(r), (y1 + r).min(h));
        let (ex0, ex1) = (x0.saturating_sub(r), (x1 + r).min(w));
        let y = model.forward(&f, input(ey0..ey1, ex0..ex1));
        let s = y.dims()[2] / (ey1 - ey0);
        let (cy, cx) = ((y0 - ey0) * s, (x0 - ex0) * s);
        visit(Piece {
            oy: y0 * s,
            ox: x0 * s,
            scale: s,
            y: y.slice([0..1, 0..3, cy..cy + (y1 - y0) * s, cx..cx + (x1 - x0) * s]),
        });
    }
}
