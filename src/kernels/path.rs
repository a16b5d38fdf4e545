//! Which instruction path our kernels take: the best this CPU offers (AVX-512 where `avx512f`
//! is present, else AVX2 + FMA, else scalar), or the one `ODM_KERNEL_PATH` names (`avx2`, or
//! `auto` for the default), so one AVX-512 machine can measure and check both vector paths.
//! Read once per process; `main` rejects a value it cannot honour before anything runs
//! ([`check_env`]).

use std::sync::OnceLock;

/// The environment variable that forces a path.
pub const ENV: &str = "ODM_KERNEL_PATH";

/// An instruction path of the f32 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPath {
    /// 512-bit vectors (`avx512f`), gemm's x86-64-v4 micro-kernels.
    Avx512,
    /// 256-bit vectors with fused multiply-add (`avx2` + `fma`), gemm's x86-64-v3 micro-kernels.
    Avx2,
    /// No vector path (another architecture, or an x86-64 without AVX2 + FMA).
    Scalar,
}

impl KernelPath {
    /// Its name, as `ODM_KERNEL_PATH` and the bench print it.
    pub fn label(self) -> &'static str {
        match self {
            KernelPath::Avx512 => "AVX-512",
            KernelPath::Avx2 => "AVX2",
            KernelPath::Scalar => "scalar",
        }
    }
}

/// The best path this CPU offers.
pub fn best() -> KernelPath {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") {
            return KernelPath::Avx512;
        }
        if has!("avx2") && has!("fma") {
            return KernelPath::Avx2;
        }
    }
    KernelPath::Scalar
}

/// The path `value` asks for on this CPU, or why it cannot be taken.
fn resolve(value: Option<&str>) -> Result<KernelPath, String> {
    let b = best();
    match value.map(str::trim) {
        None | Some("") | Some("auto") => Ok(b),
        Some("avx2") if b == KernelPath::Scalar => Err(format!(
            "{ENV}=avx2: this CPU has no AVX2 + FMA; unset {ENV}"
        )),
        Some("avx2") => Ok(KernelPath::Avx2),
        Some(v) => Err(format!(
            "{ENV}={v:?} is not a kernel path; use avx2 or auto (the CPU's best, {})",
            b.label()
        )),
    }
}

/// The path the kernels take in this process: `ODM_KERNEL_PATH` if set and valid, else
/// [`best`].
pub fn current() -> KernelPath {
    static PATH: OnceLock<KernelPath> = OnceLock::new();
    *PATH.get_or_init(|| {
        let v = std::env::var(ENV).ok();
        resolve(v.as_deref()).unwrap_or_else(|_| best())
    })
}

/// A user error (exit code 2) when `ODM_KERNEL_PATH` names a path this CPU cannot take.
pub fn check_env() -> anyhow::Result<()> {
    let v = std::env::var(ENV).ok();
    resolve(v.as_deref())
        .map(|_| ())
        .map_err(crate::error::user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_resolve() {
        assert_eq!(resolve(None), Ok(best()));
        assert_eq!(resolve(Some("auto")), Ok(best()));
        assert!(resolve(Some("avx9")).unwrap_err().contains("avx2 or auto"));
        if best() != KernelPath::Scalar {
            assert_eq!(resolve(Some("avx2")), Ok(KernelPath::Avx2));
        }
    }
}
