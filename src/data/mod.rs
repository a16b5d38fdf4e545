//! Data: image discovery and decoding, MATLAB-compatible bicubic LR synthesis, patch sampling.

pub mod images;
pub mod imresize;
pub mod sampler;

pub use images::{load_set, set_name, ImageSet, Pair, RgbImage};
pub use sampler::{Batch, Sampler};
