//! burn's CUDA backend, and the device facts recorded in provenance, read from the CUDA driver API
//! (cuInit, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute for the compute
//! capability, cuDeviceTotalMem, cuDriverGetVersion) through cudarc, which loads libcuda (and
//! checks for libnvrtc, which CubeCL compiles its kernels with) at run time: a build needs no
//! toolkit, and a machine without a driver, GPU or NVRTC gets a one-line error.

use super::GpuFacts;
use cudarc::driver::{result, sys};

/// GPU inference backend: burn-cuda with f32 floats and i32 ints (its defaults).
pub type Gpu = burn::backend::Cuda<f32, i32>;
/// GPU training backend.
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

/// The burn device of `Cuda(index)`.
pub fn gpu_device(index: usize) -> burn::backend::cuda::CudaDevice {
    burn::backend::cuda::CudaDevice::new(index)
}

/// The facts of `Cuda(index)`, or why it cannot be used here (one line, without the fix).
/// cudarc panics when libcuda or one of its symbols cannot be loaded; the probe catches that with
/// the panic hook silenced, so the user sees one line and no backtrace.
pub fn probe(index: usize) -> Result<GpuFacts, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    // SAFETY: only tries to open the library (dlopen), as cudarc's own loader does.
    let r = std::panic::catch_unwind(|| unsafe { sys::is_culib_present() }.then(|| query(index)));
    std::panic::set_hook(hook);
    match r {
        Ok(Some(facts)) => facts,
        Ok(None) => Err(format!(
            "Cuda({index}) asked, but no CUDA driver/GPU was found on this machine (libcuda.so not loadable)"
        )),
        Err(_) => Err(format!(
            "Cuda({index}) asked, but the CUDA driver on this machine is unusable (libcuda.so loads but lacks a function cudarc needs; driver too old?)"
        )),
    }
}

fn query(index: usize) -> Result<GpuFacts, String> {
    let failed = |what: &str, e: result::DriverError| {
        format!("Cuda({index}) asked, but the CUDA driver failed ({what}: {e})")
    };
    result::init().map_err(|e| failed("cuInit", e))?;
    let count = result::device::get_count().map_err(|e| failed("cuDeviceGetCount", e))?;
    if index >= count.max(0) as usize {
        return Err(format!(
            "Cuda({index}) asked, but this machine has {count} CUDA device(s){}",
            if count > 0 {
                format!(" (Cuda(0) to Cuda({}))", count - 1)
            } else {
                String::new()
            }
        ));
    }
    let dev = result::device::get(index as i32).map_err(|e| failed("cuDeviceGet", e))?;
    let name = result::device::get_name(dev).map_err(|e| failed("cuDeviceGetName", e))?;
    use sys::CUdevice_attribute::{
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR as MAJOR,
        CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR as MINOR,
    };
    // SAFETY: `dev` comes from cuDeviceGet.
    let (major, minor, mem) = unsafe {
        (
            result::device::get_attribute(dev, MAJOR),
            result::device::get_attribute(dev, MINOR),
            result::device::total_mem(dev),
        )
    };
    let attr = |e| failed("cuDeviceGetAttribute", e);
    let mut version = 0;
    // SAFETY: writes one int.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e| failed("cuDriverGetVersion", e))?;
    // SAFETY: only tries to open the library (dlopen).
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Err(format!(
            "Cuda({index}) is {name}, but libnvrtc (NVRTC, which compiles the GPU kernels at run time) was not found; add its folder (CUDA toolkit, or pip's nvidia/cuda_nvrtc/lib) to LD_LIBRARY_PATH"
        ));
    }
    Ok(GpuFacts {
        index,
        name,
        compute_capability: format!("{}.{}", major.map_err(attr)?, minor.map_err(attr)?),
        total_memory_bytes: mem.map_err(|e| failed("cuDeviceTotalMem", e))? as u64,
        driver_version: format!("{}.{}", version / 1000, (version % 1000) / 10),
    })
}
