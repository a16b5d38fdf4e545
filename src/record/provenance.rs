//! `provenance.json`: what produced a run, so a reviewer can tell two runs apart.

use serde::{Deserialize, Serialize};
use std::process::Command;

/// Provenance of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Provenance {
    /// The working folder's HEAD when the run started (may differ from the binary's commit).
    pub git_commit: String,
    /// Whether the working folder had changes then, untracked files included.
    pub git_dirty: bool,
    /// The build: the commit the binary was built from, whether its sources differed from it,
    /// the binary's path and SHA-256, the compiler (see [`Build`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// The machine: CPU model, the kernel paths it dispatches to, the OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<Machine>,
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
    /// Every segment after the first of a resumed run: when and with what it continued. The
    /// fields above describe the first segment (its start, initial weights and data).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Segment>,
    /// Failures the run recovered from (`failed.json` of each, moved here on resume).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<super::failure::Failure>,
}

/// The binary that ran: what it was built from and its own hash, so two runs can be told to
/// come from one build or not.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Build {
    /// The commit the binary was built from (embedded at build time by build.rs).
    pub commit: String,
    /// "true" when the binary's sources (src/, Cargo.toml, Cargo.lock, build.rs; untracked files
    /// included) differed from that commit, "false", or "unknown" (built outside git).
    pub dirty: String,
    pub binary: String,
    pub binary_sha256: String,
    pub rustc: String,
}

impl Build {
    /// This process's build.
    pub fn current() -> Build {
        let exe = std::env::current_exe().ok();
        let sha = exe
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| super::hex(&<sha2::Sha256 as sha2::Digest>::digest(&b)))
            .unwrap_or_else(|| "unknown".into());
        Build {
            commit: env!("ODM_BUILD_COMMIT").to_string(),
            dirty: env!("ODM_BUILD_DIRTY").to_string(),
            binary: exe.map(|p| p.display().to_string()).unwrap_or_default(),
            binary_sha256: sha,
            rustc: env!("ODM_RUSTC_VERSION").to_string(),
        }
    }

    /// Whether two builds are the same binary (by hash, else by a clean commit).
    pub fn same_as(&self, other: &Build) -> bool {
        self.binary_sha256 == other.binary_sha256
    }
}

/// The machine a run ran on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// `/proc/cpuinfo`'s model name (or the architecture).
    pub cpu: String,
    /// The instruction paths the kernels dispatch to on it (`kernels::dispatch_paths`).
    pub kernel_paths: String,
    /// OS and its release (`/etc/os-release`'s PRETTY_NAME).
    pub os: String,
}

impl Machine {
    /// This machine.
    pub fn current() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let release = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            });
        let os = match release {
            Some(r) => format!("{} ({r})", std::env::consts::OS),
            None => std::env::consts::OS.to_string(),
        };
        Machine {
            cpu,
            kernel_paths: crate::kernels::dispatch_paths(),
            os,
        }
    }
}

/// One resumed segment of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Segment {
    pub started: String,
    /// The iteration of the checkpoint it continued from.
    pub from_step: usize,
    pub git_commit: String,
    pub git_dirty: bool,
    /// The binary of this segment (see [`Build`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// Seconds from this segment's start to the run's end (set when it finishes the run).
    #[serde(default)]
    pub wall_seconds: f64,
    pub threads: usize,
    pub device: String,
    /// SHA-256 over the data fingerprint this segment read.
    pub data_sha256: String,
    /// The data as this segment found it, when it differed from the first segment's (possible
    /// only with `--allow-data-change`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data_changed: Vec<DataFolder>,
    /// True when `--allow-data-change` let it continue on changed data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allowed_data_change: bool,
}

/// SHA-256 over a data fingerprint (its JSON form).
pub fn data_digest(data: &[DataFolder]) -> String {
    let json = serde_json::to_vec(data).expect("fingerprint serializes");
    super::hex(&<sha2::Sha256 as sha2::Digest>::digest(&json))
}

/// The first difference between two data fingerprints, in words (`None`: the same data).
pub fn data_difference(was: &[DataFolder], now: &[DataFolder]) -> Option<String> {
    for (a, b) in was.iter().zip(now) {
        if a.folder != b.folder {
            return Some(format!("data folder {} is now {}", a.folder, b.folder));
        }
        for f in &a.files {
            match b.files.iter().find(|g| g.name == f.name) {
                None => return Some(format!("{}/{} was removed", a.folder, f.name)),
                Some(g) if g.sha256 != f.sha256 => {
                    return Some(format!(
                        "{}/{} changed (SHA-256 {}… → {}…)",
                        a.folder,
                        f.name,
                        &f.sha256[..12.min(f.sha256.len())],
                        &g.sha256[..12.min(g.sha256.len())]
                    ))
                }
                _ => {}
            }
        }
        if let Some(g) = b
            .files
            .iter()
            .find(|g| !a.files.iter().any(|f| f.name == g.name))
        {
            return Some(format!("{}/{} was added", b.folder, g.name));
        }
    }
    (was.len() != now.len()).then(|| "the list of data folders changed".to_string())
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
            git_dirty: git(&["status", "--porcelain", "--untracked-files=normal"])
                .map(|s| !s.is_empty())
                .unwrap_or(false),
            build: Some(Build::current()),
            machine: Some(Machine::current()),
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

impl Provenance {
    /// The `provenance.json` of run folder `dir`; a missing or damaged file is a user error
    /// naming it.
    pub fn read(dir: &std::path::Path) -> anyhow::Result<Provenance> {
        let p = dir.join("provenance.json");
        let text = std::fs::read_to_string(&p)
            .map_err(|e| crate::error::user(format!("{}: cannot read ({e})", p.display())))?;
        serde_json::from_str(&text).map_err(|e| {
            crate::error::user(format!("{}: {e} (a damaged provenance file)", p.display()))
        })
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
