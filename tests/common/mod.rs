//! Shared helpers for integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared data root (`ODM_DATA`, else `../shared/data`), or `None` with a printed reason.
pub fn data_root() -> Option<PathBuf> {
    let root = odm::spec::data_root();
    if root.join("benchmark").is_dir() {
        Some(root)
    } else {
        eprintln!(
            "SKIP: shared data not found at {} (set ODM_DATA to the folder holding benchmark/ and train/)",
            root.display()
        );
        None
    }
}

/// The repository root (tests run with the package root as working directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The compiled `odm` binary.
pub fn odm_bin() -> &'static str {
    env!("CARGO_BIN_EXE_odm")
}

/// A toy spec: a tiny EDSR trained for a few iterations on the committed CC0 photos.
pub fn toy_spec(name: &str, seed: u64, iterations: usize, extra: &str) -> String {
    let train = repo().join("assets/cc0/train");
    let eval = repo().join("assets/cc0/holdout");
    format!(
        r#"(
    name: "{name}",
    seed: {seed},
    scale: 2,
    model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["{}"], eval: ["{}"], patch_size: 32, batch_size: 2),
    optim: Adam(lr: 1e-3),
    schedule: (iterations: {iterations}),
    log_every: 1,
    checkpoint_every: 2,
    {extra}
)"#,
        train.display(),
        eval.display()
    )
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Loss values (metric `l1`) from a run's metrics.csv, in step order.
pub fn losses(run_dir: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(run_dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[3] == "l1").then(|| (f[0].parse().unwrap(), f[4].to_string()))
        })
        .collect()
}
