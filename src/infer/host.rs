//! A host-side C×H×W f32 value (one image) and the elementwise operations of a trace. The
//! values are shared copy-on-write, so that a trace's `x.clone()` (a residual kept for a later
//! add) costs nothing until one of the two is changed.

use crate::backend::Cpu;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::sync::Arc;

/// Elements per parallel task of an elementwise operation.
const CHUNK: usize = 1 << 14;

/// One image, channel-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Host {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub v: Arc<Vec<f32>>,
}

impl Host {
    /// C×h×w values, channel-major.
    pub fn new(c: usize, h: usize, w: usize, v: Vec<f32>) -> Self {
        assert_eq!(v.len(), c * h * w, "host value size");
        Self {
            c,
            h,
            w,
            v: Arc::new(v),
        }
    }

    /// The values to change in place (copied first only when shared).
    fn values_mut(&mut self) -> &mut Vec<f32> {
        Arc::make_mut(&mut self.v)
    }

    /// From a 1×C×H×W tensor.
    pub fn from_tensor(t: Tensor<Cpu, 4>) -> Self {
        let [_, c, h, w] = t.dims();
        Self::new(c, h, w, crate::models::params::host_values(t))
    }

    /// As a 1×C×H×W tensor.
    pub fn tensor(&self) -> Tensor<Cpu, 4> {
        Tensor::from_data(
            TensorData::new(self.v.to_vec(), [1, self.c, self.h, self.w]),
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

    /// f on every pair of values (elementwise, in parallel chunks).
    pub fn zip(mut self, o: &Host, f: impl Fn(f32, f32) -> f32 + Sync) -> Self {
        assert_eq!(
            self.v.len(),
            o.v.len(),
            "shapes of an elementwise operation"
        );
        self.values_mut()
            .par_chunks_mut(CHUNK)
            .zip(o.v.par_chunks(CHUNK))
            .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x = f(*x, *y)));
        self
    }

    /// Concatenation along channels.
    pub fn concat(xs: Vec<Host>) -> Host {
        let (h, w) = (xs[0].h, xs[0].w);
        let c = xs.iter().map(|x| x.c).sum();
        let mut v = Vec::with_capacity(c * h * w);
        for x in xs {
            assert_eq!((x.h, x.w), (h, w), "concatenated sizes");
            v.extend_from_slice(&x.v);
        }
        Host::new(c, h, w, v)
    }

    /// x·scale[c] + shift[c] per channel.
    pub fn channel_affine(mut self, scale: &[f32], shift: &[f32]) -> Self {
        let plane = self.h * self.w;
        self.values_mut()
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(c, ch)| {
                ch.iter_mut().for_each(|x| *x = *x * scale[c] + shift[c]);
            });
        self
    }

    /// x·v[c] per channel.
    pub fn scale_channels(mut self, v: &[f32]) -> Self {
        let plane = self.h * self.w;
        self.values_mut()
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(c, ch)| ch.iter_mut().for_each(|x| *x *= v[c]));
        self
    }

    /// x + v[c] per channel.
    pub fn add_channels(mut self, v: &[f32]) -> Self {
        let plane = self.h * self.w;
        self.values_mut()
            .par_chunks_mut(plane)
            .enumerate()
            .for_each(|(c, ch)| ch.iter_mut().for_each(|x| *x += v[c]));
        self
    }

    /// PyTorch's `pixel_shuffle`: channel c·r² + i·r + j → (c, y·r + i, x·r + j); output rows in
    /// parallel.
    pub fn pixel_shuffle(&self, r: usize) -> Self {
        let (c, h, w) = (self.c / (r * r), self.h * r, self.w * r);
        let mut v = vec![0f32; c * h * w];
        let plane = self.h * self.w;
        v.par_chunks_mut(w).enumerate().for_each(|(row, dst)| {
            let (oc, yy) = (row / h, row % h);
            let (y, i) = (yy / r, yy % r);
            for j in 0..r {
                let ci = oc * r * r + i * r + j;
                let src = &self.v[ci * plane + y * self.w..ci * plane + (y + 1) * self.w];
                for (x, &s) in src.iter().enumerate() {
                    dst[x * r + j] = s;
                }
            }
        });
        Self::new(c, h, w, v)
    }
}
