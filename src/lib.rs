//! odm: quantization-aware training of super-resolution networks, reproducing
//! "Overcoming Distribution Mismatch in Quantizing Image Super-Resolution Networks" (Hong & Lee).
//!
//! One folder per concept: [`spec`] (declarative RON experiments), [`data`] (images, bicubic LR,
//! patch sampling), [`models`] (EDSR, RDN and SRResNet, their parameters and quantization
//! points), [`quant`] (fake quantizers, the per-layer plan, cost), [`kernels`] (our CPU
//! convolution and fused fake-quant kernels), [`train`] (loop, Adam, calibration, regularizers,
//! gating, SKT), [`eval`] (Y-channel PSNR/SSIM protocol, activation statistics, crops),
//! [`record`] (result folders, checkpoints, provenance), [`report`] (tables, figures, verify),
//! [`commands`] (the CLI's subcommands), [`bench`] (timings).

pub mod backend;
pub mod bench;
pub mod commands;
pub mod data;
pub mod digest;
pub mod error;
pub mod eval;
pub mod export;
pub mod forward;
pub mod infer;
pub mod kernels;
pub mod models;
pub mod quant;
pub mod record;
pub mod report;
pub mod spec;
pub mod train;

pub use error::{user, UserError};
