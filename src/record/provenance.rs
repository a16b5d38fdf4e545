//! `provenance.json`: what produced a run, so a reviewer can tell two runs apart.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// Provenance of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Provenance {
    pub git_commit: String,
    pub git_dirty: bool,
    pub cargo_lock_sha256: String,
    pub crate_version: String,
    pub threads: usize,
    pub device: String,
    pub seed: u64,
    pub spec_hash: String,
    pub started: String,
    pub finished: String,
    /// Seconds from start to finish, summed over the segments of a resumed run.
    pub wall_seconds: f64,
    /// The first iteration that `wall_seconds` and the rates count: 0 unless the run resumed
    /// from a checkpoint that had no `timing.json` beside it (written by an older odm).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timed_from_step: usize,
    pub iterations: usize,
    pub iterations_per_second: f64,
    pub patches_per_second: f64,
    /// The weights the run started from, if not random.
    pub init_from: String,
    /// The initial weights' SHA-256 and what was loaded from them, left at init, or unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<LoadReport>,
    /// Fingerprint of the training and evaluation data: every image file the run read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<DataFolder>,
    /// True when this run was continued from a checkpoint.
    pub resumed: bool,
    /// The CUDA device's facts (name, compute capability, memory, driver); absent on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<GpuFacts>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A CUDA device as the driver reports it (recorded in `provenance.json`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct GpuFacts {
    /// The ordinal `n` of `Cuda(n)`.
    pub index: usize,
    pub name: String,
    /// `major.minor`, e.g. `9.0` for an H100.
    pub compute_capability: String,
    pub total_memory_bytes: u64,
    /// The driver's CUDA version, `major.minor` (cuDriverGetVersion).
    pub driver_version: String,
}

impl GpuFacts {
    /// One line: ordinal, name, compute capability, memory, driver.
    pub fn describe(&self) -> String {
        format!(
            "cuda:{} ({}, compute capability {}, {:.1} GiB, driver CUDA {}; burn-cuda)",
            self.index,
            self.name,
            self.compute_capability,
            self.total_memory_bytes as f64 / (1u64 << 30) as f64,
            self.driver_version
        )
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl Provenance {
    /// Fill in the static facts: git state, Cargo.lock hash (embedded at build time), version.
    pub fn start(threads: usize, device: &str, seed: u64, spec_hash: &str) -> Self {
        let lock = include_bytes!("../../Cargo.lock");
        Self {
            git_commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"])
                .map(|s| !s.is_empty())
                .unwrap_or(false),
            cargo_lock_sha256: super::hex(&<sha2::Sha256 as sha2::Digest>::digest(lock)),
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            threads,
            device: device.to_string(),
            seed,
            spec_hash: spec_hash.to_string(),
            started: now(),
            ..Default::default()
        }
    }
}

/// The current UTC time, RFC 3339.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// What a load took from the file and what it left.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// Our parameter names loaded from the file.
    pub loaded: Vec<String>,
    /// Declared trainable parameters the file lacks (left at their initial values).
    pub left_at_init: Vec<String>,
    /// Keys of the file (after `key` and `strip_prefix`) that no parameter used.
    pub unused: Vec<String>,
}

impl LoadReport {
    /// One line per list for stderr.
    pub fn describe(&self) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(", ")
            }
        };
        format!(
            "odm: init weights sha256 {}\nodm: loaded {} tensors: {}\nodm: left at init ({}): {}\nodm: unused keys ({}): {}\n",
            self.sha256,
            self.loaded.len(),
            list(&self.loaded),
            self.left_at_init.len(),
            list(&self.left_at_init),
            self.unused.len(),
            list(&self.unused)
        )
    }
}

/// One data folder of a run: its image files (path relative to the folder), sizes and SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DataFolder {
    /// The folder as the spec resolves it.
    pub folder: String,
    pub files: Vec<DataFile>,
}

/// One image file of a data folder.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct DataFile {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

impl DataFolder {
    /// Hash the files of `folder` (as listed by the data loader).
    pub fn hash(folder: &std::path::Path, files: &[std::path::PathBuf]) -> std::io::Result<Self> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let bytes = std::fs::read(f)?;
            let name = f.strip_prefix(folder).unwrap_or(f).display().to_string();
            out.push(DataFile {
                name,
                bytes: bytes.len() as u64,
                sha256: super::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            });
        }
        Ok(Self {
            folder: folder.display().to_string(),
            files: out,
        })
    }
}
