//! `failed.json`: why a run stopped before its end. A run folder whose training had started is
//! kept on any failure, with its last good checkpoint and `metrics.csv`; this file says what
//! went wrong, where, when, and the command that continues the run. A resumed run moves it into
//! its provenance (`failures`), so the history stays with the result.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// The file's name inside a run folder.
pub const FAILED: &str = "failed.json";

/// One failure of a run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Failure {
    /// The error, on one line.
    pub cause: String,
    /// The last iteration completed before the failure.
    pub step: usize,
    /// The iteration of the checkpoint a resume starts from (`None`: no checkpoint yet).
    pub checkpoint_step: Option<usize>,
    /// When it failed (UTC, RFC 3339).
    pub time: String,
    /// The file whose write failed, when the cause was a write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The command that continues the run.
    pub resume: String,
}

impl Failure {
    /// Write `failed.json` into `dir` (atomically).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        super::atomic_write(
            &dir.join(FAILED),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    /// The failure recorded in `dir`, if any (an unreadable file counts as a failure too).
    pub fn read(dir: &Path) -> Option<Failure> {
        let text = std::fs::read_to_string(dir.join(FAILED)).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| Failure {
            cause: format!("{}: unreadable ({e})", dir.join(FAILED).display()),
            ..Failure::default()
        }))
    }
}
