//! A host-side f32 value of one image (C channels of h×w) and the elementwise operations of a
//! trace. The values are shared copy-on-write, so that a trace's `x.clone()` (a residual kept for
//! a later add) costs nothing until one of the two is changed. They are channel-major (C×h×w, as
//! burn and the float convs want them) or pixel-major (h×w×C, as the integer conv writes its
//! output and its quantizer reads its input): elementwise operations keep the layout, a binary one
//! meeting both turns the channel-major operand around, and the operations that need channel-major
//! values (float convs, pixel shuffle, concatenation, tensors) convert first.

use crate::backend::Cpu;
use crate::kernels::SendPtr;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::sync::Arc;

/// Elements per parallel task of an elementwise operation.
const CHUNK: usize = 1 << 14;

/// How a [`Host`]'s values are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// C×h×w.
    ChannelMajor,
    /// h×w×C.
    PixelMajor,
}

/// One image.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub layout: Layout,
    pub v: Arc<Vec<f32>>,
}

impl Host {
    /// C×h×w values, channel-major.
    pub fn new(c: usize, h: usize, w: usize, v: Vec<f32>) -> Self {
        Self::with_layout((c, h, w), Layout::ChannelMajor, v)
    }

    /// C×h×w values laid out as `layout` says.
    pub fn with_layout((c, h, w): (usize, usize, usize), layout: Layout, v: Vec<f32>) -> Self {
        assert_eq!(v.len(), c * h * w, "host value size");
        Self {
            c,
            h,
            w,
            layout,
            v: Arc::new(v),
        }
    }

    /// The values to change in place (copied first only when shared).
    fn values_mut(&mut self) -> &mut Vec<f32> {
        Arc::make_mut(&mut self.v)
    }

    /// The same image laid out as `layout` (a tiled transpose when it is not already).
    pub fn into_layout(self, layout: Layout) -> Self {
        if self.layout == layout {
            return self;
        }
        let (plane, c) = (self.h * self.w, self.c);
        let v = match layout {
            Layout::ChannelMajor => transpose(&self.v, plane, c),
            Layout::PixelMajor => transpose(&self.v, c, plane),
        };
        Self::with_layout((c, self.h, self.w), layout, v)
    }

    /// Channel-major.
    pub fn chw(self) -> Self {
        self.into_layout(Layout::ChannelMajor)
    }

    /// From a 1×C×H×W tensor.
    pub fn from_tensor(t: Tensor<Cpu, 4>) -> Self {
        let [_, c, h, w] = t.dims();
        Self::new(c, h, w, crate::models::params::host_values(t))
    }

    /// As a 1×C×H×W tensor.
    pub fn tensor(&self) -> Tensor<Cpu, 4> {
        let x = self.clone().chw();
        Tensor::from_data(
            TensorData::new(x.v.to_vec(), [1, x.c, x.h, x.w]),
            &Default::default(),
        )
    }

    /// f on every value (in parallel chunks: elementwise, so the same bits for any thread count).
    pub fn map(mut self, f: impl Fn(f32) -> f32 + Sync) -> Self {
        self.values_mut()
            .par_chunks_mut(CHUNK)
            .for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
        self
    }

    /// f on every pair of values (elementwise, in parallel chunks), laid out pixel-major when
    /// either operand is.
    pub fn zip(self, o: &Host, f: impl Fn(f32, f32) -> f32 + Sync) -> Self {
        assert_eq!(
            (self.c, self.h, self.w),
            (o.c, o.h, o.w),
            "shapes of an elementwise operation"
        );
        let pixel = self.layout == Layout::PixelMajor || o.layout == Layout::PixelMajor;
        let layout = if pixel {
            Layout::PixelMajor
        } else {
            Layout::ChannelMajor
        };
        let mut a = self.into_layout(layout);
        let b = o.clone().into_layout(layout);
        a.values_mut()
            .par_chunks_mut(CHUNK)
            .zip(b.v.par_chunks(CHUNK))
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x = f(*x, *y)));
        a
    }

    /// Concatenation along channels (channel-major).
    pub fn concat(xs: Vec<Host>) -> Host {
        let (h, w) = (xs[0].h, xs[0].w);
        let c = xs.iter().map(|x| x.c).sum();
        let mut v = Vec::with_capacity(c * h * w);
        for x in xs {
            assert_eq!((x.h, x.w), (h, w), "concatenated sizes");
            v.extend_from_slice(&x.chw().v);
        }
        Host::new(c, h, w, v)
    }

    /// f(x, c) on every value x of channel c, in either layout.
    fn per_channel(mut self, f: impl Fn(f32, usize) -> f32 + Sync) -> Self {
        let (plane, c) = (self.h * self.w, self.c);
        match self.layout {
            Layout::ChannelMajor => self
                .values_mut()
                .par_chunks_mut(plane)
                .enumerate()
                .for_each(|(ch, v)| v.iter_mut().for_each(|x| *x = f(*x, ch))),
            Layout::PixelMajor => self.values_mut().par_chunks_mut(c * 1024).for_each(|px| {
                for p in px.chunks_mut(c) {
                    p.iter_mut().enumerate().for_each(|(ch, x)| *x = f(*x, ch));
                }
            }),
        }
        self
    }

    /// x·scale[c] + shift[c] per channel.
    pub fn channel_affine(self, scale: &[f32], shift: &[f32]) -> Self {
        self.per_channel(|x, c| x * scale[c] + shift[c])
    }

    /// x·v[c] per channel.
    pub fn scale_channels(self, v: &[f32]) -> Self {
        self.per_channel(|x, c| x * v[c])
    }

    /// x + v[c] per channel.
    pub fn add_channels(self, v: &[f32]) -> Self {
        self.per_channel(|x, c| x + v[c])
    }

    /// PyTorch's `pixel_shuffle`: channel c·r² + i·r + j → (c, y·r + i, x·r + j); output rows in
    /// parallel; channel-major.
    pub fn pixel_shuffle(self, r: usize) -> Self {
        let x = self.chw();
        let (c, h, w) = (x.c / (r * r), x.h * r, x.w * r);
        let mut v = vec![0f32; c * h * w];
        let plane = x.h * x.w;
        v.par_chunks_mut(w).enumerate().for_each(|(row, dst)| {
            let (oc, yy) = (row / h, row % h);
            let (y, i) = (yy / r, yy % r);
            for j in 0..r {
                let ci = oc * r * r + i * r + j;
                let src = &x.v[ci * plane + y * x.w..ci * plane + (y + 1) * x.w];
                for (xo, &s) in src.iter().enumerate() {
                    dst[xo * r + j] = s;
                }
            }
        });
        Self::new(c, h, w, v)
    }
}

/// The transpose of a rows × cols matrix (out[j·rows + i] = src[i·cols + j]), in tiles of 16
/// source rows (one cache line per output row), output rows in parallel bands.
fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; rows * cols];
    let dst = SendPtr(out.as_mut_ptr());
    (0..rows.div_ceil(16)).into_par_iter().for_each(|t| {
        let (i0, i1) = (t * 16, (t * 16 + 16).min(rows));
        for j in 0..cols {
            for i in i0..i1 {
                // SAFETY: tile t writes out[j·rows + i] for its own i only.
                unsafe { *dst.at(j * rows + i) = src[i * cols + j] };
            }
        }
    });
    out
}
