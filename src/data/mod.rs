//! Data: image discovery and decoding, MATLAB-compatible bicubic LR synthesis, patch sampling,
//! the validation split held out of training.

pub mod images;
pub mod imresize;
pub mod sampler;
pub mod split;

pub use images::{load_set, load_set_as, set_name, unique_set_names, ImageSet, Pair, RgbImage};
pub use sampler::{Batch, Sampler};
