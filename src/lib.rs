//! odm: quantization-aware training of super-resolution networks, reproducing
//! "Overcoming Distribution Mismatch in Quantizing Image Super-Resolution Networks" (Hong & Lee).
//!
//! One folder per concept: [`spec`] (declarative RON experiments), [`data`] (images, bicubic LR,
//! patch sampling), [`models`] (EDSR and its parameters), [`train`] (loop, Adam, schedule),
//! [`eval`] (Y-channel PSNR/SSIM protocol), [`record`] (result folders, checkpoints, provenance).

pub mod backend;
pub mod bench;
pub mod commands;
pub mod data;
pub mod error;
pub mod eval;
pub mod kernels;
pub mod models;
pub mod quant;
pub mod record;
pub mod report;
pub mod spec;
pub mod train;

pub use error::{user, UserError};
