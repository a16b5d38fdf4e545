//! glibc's allocator, tuned once at start-up (`odm`'s `main`). By default glibc serves blocks
//! above a dynamic threshold with fresh `mmap`s and returns freed heap tops to the system, so a
//! training step or an inference that allocates the same multi-megabyte buffers layer after
//! layer pays a page fault for every 4 KiB of each, every time: on the 2-core CI machine a 3×3
//! conv forward + backward at EDSR size took 42 ms that way against 28 ms with freed memory kept
//! (`odm bench`). Results do not change: allocation has no effect on the arithmetic.

/// Serve blocks up to 32 MiB (glibc's largest mmap threshold) from the heap and keep up to
/// 2 GiB of freed heap instead of trimming it. A no-op off glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
