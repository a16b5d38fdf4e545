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
    pub wall_seconds: f64,
    pub iterations: usize,
    pub iterations_per_second: f64,
    pub patches_per_second: f64,
    /// The weights the run started from, if not random.
    pub init_from: String,
    /// True when this run was continued from a checkpoint.
    pub resumed: bool,
    /// The CUDA device's facts (name, compute capability, memory, driver); absent on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::backend::GpuFacts>,
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
