//! Backend choice. CPU training runs on burn's `flex` backend (rayon + SIMD) under `Autodiff`;
//! with the `cuda` feature, `Cuda(n)` runs on burn's CUDA backend (CubeCL) under `Autodiff`.
//! [`pick`] checks a spec's device before anything is written; [`with_backend!`] runs code
//! generic over the training backend on the device it picked.

#[cfg(feature = "cuda")]
mod cuda;
mod malloc;
#[cfg(feature = "cuda")]
pub use cuda::{gpu_device, Gpu, GpuTrain};
pub use malloc::keep_freed_memory;

use crate::spec::Device;

/// CPU inference backend.
pub type Cpu = burn_flex::Flex;
/// CPU training backend.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;

/// Size rayon's global pool (burn-flex's conv/gemm run on it). `None` = all cores.
/// Returns the thread count in force. The pool can be sized once per process.
pub fn set_threads(n: Option<usize>) -> usize {
    let want = n.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(want)
        .build_global();
    rayon::current_num_threads()
}

/// A human-readable device string for provenance.
pub fn cpu_device_string(threads: usize) -> String {
    format!(
        "cpu (burn-flex {} threads, {})",
        threads,
        std::env::consts::ARCH
    )
}

pub use crate::record::GpuFacts;

/// A device that was checked to exist on this machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Picked {
    Cpu,
    #[cfg(feature = "cuda")]
    Cuda(GpuFacts),
}

impl Picked {
    /// The provenance string: [`cpu_device_string`] or [`GpuFacts::describe`].
    pub fn describe(&self, threads: usize) -> String {
        match self {
            Picked::Cpu => cpu_device_string(threads),
            #[cfg(feature = "cuda")]
            Picked::Cuda(f) => f.describe(),
        }
    }

    /// The GPU's facts, `None` on CPU.
    pub fn gpu(&self) -> Option<GpuFacts> {
        match self {
            Picked::Cpu => None,
            #[cfg(feature = "cuda")]
            Picked::Cuda(f) => Some(f.clone()),
        }
    }
}

/// Check that `device` can run here. The error is the middle of a one-line message (the caller
/// names the field or flag and the fix), e.g. "Cuda(0) asked, but no CUDA driver/GPU was found
/// on this machine (libcuda.so not loadable)".
pub fn pick(device: Device) -> Result<Picked, String> {
    match device {
        Device::Cpu => Ok(Picked::Cpu),
        #[cfg(feature = "cuda")]
        Device::Cuda(n) => cuda::probe(n).map(Picked::Cuda),
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(n) => Err(format!(
            "Cuda({n}) needs a build with the `cuda` feature (cargo build --release --features cuda)"
        )),
    }
}

/// Parse a `--device` value: `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
pub fn parse_device(s: &str) -> Option<Device> {
    match s.to_ascii_lowercase().as_str() {
        "cpu" => Some(Device::Cpu),
        "cuda" => Some(Device::Cuda(0)),
        other => other
            .strip_prefix("cuda:")
            .and_then(|n| n.parse().ok())
            .map(Device::Cuda),
    }
}

/// `with_backend!(picked, |AB, dev| body)`: evaluates `body` with the type `AB` bound to the
/// autodiff training backend of a [`Picked`] device and `dev` to its burn device (the inner
/// backend's, as the trainer takes it).
macro_rules! with_backend {
    ($picked:expr, |$ab:ident, $dev:ident| $body:expr) => {
        match $picked {
            $crate::backend::Picked::Cpu => {
                type $ab = $crate::backend::CpuTrain;
                let $dev = <burn::tensor::Device<$crate::backend::Cpu>>::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::Picked::Cuda(f) => {
                type $ab = $crate::backend::GpuTrain;
                let $dev = $crate::backend::gpu_device(f.index);
                $body
            }
        }
    };
}
pub(crate) use with_backend;
