//! Result folders: `results/<name>-<hash>/` with the spec as given, the effective spec,
//! provenance, metrics CSVs, a summary and the last checkpoint. Files are written atomically
//! (temporary file, then rename) and a folder is never reused.

pub mod checkpoint;
pub mod provenance;
pub mod summary;

pub use checkpoint::{read_safetensors, write_safetensors, NamedTensor};
pub use provenance::{GpuFacts, Provenance};
pub use summary::{SetSummary, Summary};

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::digest::{hex, short_hash};

/// Write `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // Unique per process and call, also across hosts that share the folder.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp{}-{nanos}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    {
        let mut f = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Remove the temporary files of [`atomic_write`] that a killed process left in `dir` (a
/// resumed run's folder has no other writer).
pub fn remove_stale_temps(dir: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let n = e.file_name().to_string_lossy().to_string();
        if n.starts_with('.') && n.contains(".tmp") && e.path().is_file() {
            std::fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

/// Create a fresh run folder `<root>/<name>-<hash>`, or `<name>-<hash>-2`, `-3`, … when taken.
pub fn create_run_dir(root: &Path, name: &str, hash: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create results folder {}", root.display()))?;
    for k in 1.. {
        let dir = if k == 1 {
            root.join(format!("{name}-{hash}"))
        } else {
            root.join(format!("{name}-{hash}-{k}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    unreachable!("an unbounded loop returns")
}

/// The split and metric names of `metrics.csv`, shared by the trainer that writes them and the
/// reports that read them.
pub mod keys {
    /// Training rows: `L1`, `LR` (set `-`).
    pub const TRAIN: &str = "train";
    /// Gradient-gating rows: `REG_LOSS`, `CONFLICT_RATIO`, `COSINE`, `GATED_FRACTION` (set `-`).
    pub const GATE: &str = "gate";
    /// Evaluation rows: `PSNR_Y`, `SSIM_Y`, one per evaluation set.
    pub const EVAL: &str = "eval";
    pub const L1: &str = "l1";
    pub const LR: &str = "lr";
    pub const REG_LOSS: &str = "reg_loss";
    /// DDTB's stage-one loss on its gates' logits (a `train` row while it is in force).
    pub const GATE_LOGIT: &str = "gate_logit_mse";
    pub const CONFLICT_RATIO: &str = "conflict_ratio";
    pub const COSINE: &str = "cosine";
    pub const GATED_FRACTION: &str = "gated_fraction";
    pub const PSNR_Y: &str = "psnr_y";
    pub const SSIM_Y: &str = "ssim_y";
}

/// One row of `metrics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricRow {
    pub step: usize,
    pub split: String,
    pub set: String,
    pub metric: String,
    pub value: f64,
}

impl MetricRow {
    pub fn new(step: usize, split: &str, set: &str, metric: &str, value: f64) -> Self {
        Self {
            step,
            split: split.into(),
            set: set.into(),
            metric: metric.into(),
            value,
        }
    }
}

/// Parse a `metrics.csv` written by [`metrics_csv`].
pub fn parse_metrics(text: &str) -> anyhow::Result<Vec<MetricRow>> {
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            anyhow::ensure!(f.len() == 5, "bad metrics row {l:?}");
            Ok(MetricRow::new(
                f[0].parse()?,
                f[1],
                f[2],
                f[3],
                f[4].parse()?,
            ))
        })
        .collect()
}

/// Render metrics rows as CSV (`step,split,set,metric,value`). Floats use Rust's shortest
/// round-trip form, so the file is exact.
pub fn metrics_csv(rows: &[MetricRow]) -> String {
    let mut s = String::from("step,split,set,metric,value\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{}\n",
            r.step, r.split, r.set, r.metric, r.value
        ));
    }
    s
}
