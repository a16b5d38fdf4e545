//! Result folders: `results/<name>-<hash>/` with the spec as given, the effective spec,
//! provenance, metrics CSVs, a summary and the last checkpoint. Files are written atomically
//! (temporary file, then rename) and a folder is never reused.

pub mod checkpoint;
pub mod failure;
pub mod interrupt;
pub mod lock;
pub mod provenance;
pub mod summary;

pub use checkpoint::{read_safetensors, write_safetensors, NamedTensor};
pub use provenance::{GpuFacts, Provenance};
pub use summary::{finished, SetSummary, Summary};

use anyhow::Context;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use crate::digest::{hex, short_hash};

/// A write into a run folder that failed: the path it was for, how many bytes it needed and how
/// many the file system had free (when known). Its message is one line; a disk-full error names
/// both numbers.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub needed: u64,
    pub free: Option<u64>,
    pub source: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.source)?;
        if self.disk_full() {
            match self.free {
                Some(free) => write!(
                    f,
                    " (needs {} bytes, {free} free on that file system: free some space, or pass --out on another disk)",
                    self.needed
                )?,
                None => write!(f, " (needs {} bytes: free some space, or pass --out on another disk)", self.needed)?,
            }
        }
        Ok(())
    }
}

impl std::error::Error for WriteError {}

impl WriteError {
    /// ENOSPC or EDQUOT: the file system (or a quota) is full.
    pub fn disk_full(&self) -> bool {
        matches!(
            self.source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
    }
}

/// Bytes available to an unprivileged writer on the file system holding `dir` (statvfs(3)).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Bytes available on the file system holding `dir`: unknown on this platform.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

/// Make a rename in `dir` durable: fsync the directory entry (POSIX leaves it to the caller).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Write `bytes` to `path` atomically: a temporary file in the same folder, fsync, rename, fsync
/// of the folder. A failed write never replaces or truncates an earlier `path` and leaves no
/// temporary behind; its error is a [`WriteError`] naming `path`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Unique per process and call, also across hosts that share the folder.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(
        ".{}.tmp{}-{nanos}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    written.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(WriteError {
            path: path.to_path_buf(),
            needed: bytes.len() as u64,
            free: free_bytes(dir),
            source,
        })
    })
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
            Ok(()) => {
                sync_dir(root)?;
                return Ok(dir);
            }
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
    /// Gradient-gating rows: `REG_LOSS`, `CONFLICT_RATIO`, `COSINE`, `GATED_FRACTION` (set `-`),
    /// and per parameter group `GRAD_NORM_REC`, `GRAD_NORM_REG`, `COSINE`, `GATE_WEIGHT`.
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
    /// Per parameter group (set `conv_weights`, `bounds`, `other`), beside `COSINE`: ‖g_rec‖,
    /// ‖λ·w ⊙ g_reg‖ and the mean gate weight.
    pub const GRAD_NORM_REC: &str = "grad_norm_rec";
    pub const GRAD_NORM_REG: &str = "grad_norm_reg";
    pub const GATE_WEIGHT: &str = "gate_weight";
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

/// CSV text: the `head` row, then `rows`, as RFC 4180 describes it with `\n` line ends. A field
/// is quoted only where it must be (the `csv` crate's `QuoteStyle::Necessary`: it holds a comma,
/// a double quote, CR or LF; quotes inside are doubled), so a file of plain names and numbers
/// reads exactly as a comma-joined one. Every row has as many fields as `head`.
pub fn csv_text<R, F>(head: &[&str], rows: impl IntoIterator<Item = R>) -> String
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    let ok = "CSV rows as long as their header, written to memory";
    w.write_record(head).expect(ok);
    for r in rows {
        w.write_record(r).expect(ok);
    }
    String::from_utf8(w.into_inner().expect(ok)).expect("CSV of UTF-8 fields is UTF-8")
}

/// The records of CSV `text` below its header row (RFC 4180 quoting, as [`csv_text`] writes
/// it); every record must have the header's number of fields. Blank lines are skipped.
pub fn csv_records(text: &str) -> anyhow::Result<Vec<csv::StringRecord>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    Ok(r.records().collect::<Result<_, _>>()?)
}

/// Parse a `metrics.csv` written by [`metrics_csv`] (fields quoted as RFC 4180 says).
pub fn parse_metrics(text: &str) -> anyhow::Result<Vec<MetricRow>> {
    csv_records(text)?
        .iter()
        .map(|f| {
            anyhow::ensure!(f.len() == 5, "bad metrics row {:?}", f.as_slice());
            Ok(MetricRow::new(
                f[0].parse()?,
                &f[1],
                &f[2],
                &f[3],
                f[4].parse()?,
            ))
        })
        .collect()
}

/// Render metrics rows as CSV (`step,split,set,metric,value`; [`csv_text`] quotes a set name
/// with a comma). Floats use Rust's shortest round-trip form, so the file is exact.
pub fn metrics_csv(rows: &[MetricRow]) -> String {
    csv_text(
        &["step", "split", "set", "metric", "value"],
        rows.iter().map(|r| {
            [
                r.step.to_string(),
                r.split.clone(),
                r.set.clone(),
                r.metric.clone(),
                r.value.to_string(),
            ]
        }),
    )
}
