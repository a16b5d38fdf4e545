//! Backend choice. CPU training runs on burn's `flex` backend (rayon + SIMD) under `Autodiff`.

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
