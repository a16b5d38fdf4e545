//! The time a run has cost across its resumed segments. It is kept beside the checkpoint in
//! `timing.json`, never inside it: the checkpoint's bytes must not depend on the clock (a resumed
//! run ends byte-identical to an uninterrupted one). Work redone after an interruption (the
//! steps past the last checkpoint) is counted once, as the uninterrupted run would have spent it.

use crate::record::atomic_write;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

const FILE: &str = "timing.json";

/// Seconds spent on iterations `from_step..at_step`, summed over the segments that ran them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Wall-clock seconds, including initialisation and evaluation.
    pub wall_seconds: f64,
    /// Seconds inside training iterations only.
    pub train_seconds: f64,
    /// The first iteration counted: 0 unless the run resumed from a checkpoint written without
    /// `timing.json` (by an older odm), whose earlier segments' time is unknown.
    pub from_step: usize,
    /// The iteration of the checkpoint this timing belongs to.
    pub at_step: usize,
}

impl Timing {
    /// The timing recorded with the checkpoint at iteration `step` of `run_dir`; when it is
    /// missing, unreadable or of another checkpoint, counting starts afresh at `step`.
    pub fn resumed(run_dir: &Path, step: usize) -> Timing {
        let stored = std::fs::read_to_string(run_dir.join(FILE))
            .ok()
            .and_then(|t| serde_json::from_str::<Timing>(&t).ok())
            .filter(|t| t.at_step == step);
        stored.unwrap_or(Timing {
            from_step: step,
            at_step: step,
            ..Timing::default()
        })
    }

    /// This timing plus a segment started at `started` that spent `train_seconds` in iterations
    /// and has reached iteration `step`.
    pub fn plus(&self, started: Instant, train_seconds: f64, step: usize) -> Timing {
        Timing {
            wall_seconds: self.wall_seconds + started.elapsed().as_secs_f64(),
            train_seconds: self.train_seconds + train_seconds,
            from_step: self.from_step,
            at_step: step,
        }
    }

    /// Write `timing.json` into `run_dir` (atomically, beside the checkpoint).
    pub fn save(&self, run_dir: &Path) -> anyhow::Result<()> {
        atomic_write(
            &run_dir.join(FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    /// Remove `timing.json` once the totals are in `provenance.json`.
    pub fn remove(run_dir: &Path) {
        let _ = std::fs::remove_file(run_dir.join(FILE));
    }

    /// Training iterations per second over the counted iterations.
    pub fn iterations_per_second(&self) -> f64 {
        (self.at_step - self.from_step) as f64 / self.train_seconds.max(1e-9)
    }
}
