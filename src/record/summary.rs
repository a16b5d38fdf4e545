//! `summary.json`: a finished run's final scores, written by `odm run` and read by the reports,
//! `odm table` and `odm export`. Fields are declared in alphabetical order, the order the file
//! has always had.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// One evaluation set's final scores (Y-channel PSNR/SSIM, ours and bicubic).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SetSummary {
    pub bicubic_psnr_y: f64,
    pub bicubic_ssim_y: f64,
    pub images: usize,
    pub psnr_y: f64,
    pub scale: usize,
    pub set: String,
    pub ssim_y: f64,
}

/// A finished run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Summary {
    /// One entry per evaluation set, in the spec's order.
    pub eval: Vec<SetSummary>,
    /// The last training loss (none for an evaluation-only run).
    pub final_loss: Option<f64>,
    pub iterations: usize,
    pub name: String,
}

impl Summary {
    /// Read `<run_dir>/summary.json`; a missing or malformed file is a user error naming it.
    pub fn read(run_dir: &Path) -> anyhow::Result<Self> {
        let p = run_dir.join("summary.json");
        let text = std::fs::read_to_string(&p).map_err(|e| {
            crate::error::user(format!(
                "{}: cannot read ({e}); the run has not finished",
                p.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            crate::error::user(format!(
                "{}: {e} (a damaged summary: rerun the experiment into a fresh results folder)",
                p.display()
            ))
        })
    }

    /// Write `<run_dir>/summary.json` atomically.
    pub fn write(&self, run_dir: &Path) -> anyhow::Result<()> {
        super::atomic_write(
            &run_dir.join("summary.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// The evaluation sets a run's spec names (`data.eval` of `spec.canonical.json`, else of
/// `spec.effective.ron`), or `None` when neither is readable.
fn spec_eval_count(run_dir: &Path) -> Option<usize> {
    if let Ok(text) = std::fs::read_to_string(run_dir.join("spec.canonical.json")) {
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        return v["data"]["eval"].as_array().map(Vec::len);
    }
    let p = run_dir.join("spec.effective.ron");
    let text = std::fs::read_to_string(&p).ok()?;
    let s = crate::spec::load::parse_str(&p.display().to_string(), &text).ok()?;
    Some(s.data.eval.len())
}

/// The summary of a finished run: `summary.json` readable and holding a score for every
/// evaluation set the spec names. A summary without them (written by an odm that resumed from a
/// final checkpoint without scoring) is not a finished run: `--resume` scores it again.
pub fn finished(run_dir: &Path) -> Option<Summary> {
    let text = std::fs::read_to_string(run_dir.join("summary.json")).ok()?;
    let s: Summary = serde_json::from_str(&text).ok()?;
    let want = spec_eval_count(run_dir)?;
    (s.eval.len() >= want).then_some(s)
}
