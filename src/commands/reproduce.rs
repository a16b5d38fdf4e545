//! `odm reproduce RUN_DIR [--until STEP]`: a reviewer's re-run. The run's recorded effective
//! spec is executed again, with the thread count it ran with, into a temporary folder, up to
//! STEP; its initial weights must hash as recorded. Then the metrics up to STEP are compared row
//! by row with the recorded `metrics.csv`: identical, or the first row that differs with its
//! relative difference. The kernel paths and builds of both sides are printed beside it, since
//! bits are promised for one build and one kernel path.

use super::run::{run, RunOpts};
use crate::error::user;
use crate::record::provenance::{Build, Machine};
use crate::record::{parse_metrics, MetricRow, Provenance};
use std::path::{Path, PathBuf};

/// What a re-run found.
#[derive(Debug)]
pub struct Reproduction {
    /// The iteration compared up to.
    pub until: usize,
    /// Rows compared (recorded rows with step ≤ `until`).
    pub rows: usize,
    /// The first row that differs: the recorded row and the re-run's (`None`: missing there).
    pub first_difference: Option<(MetricRow, Option<MetricRow>)>,
    /// Lines naming the builds and kernel paths of both sides.
    pub sides: Vec<String>,
}

impl Reproduction {
    /// The verdict and the two sides, one line each.
    pub fn describe(&self) -> String {
        let mut s = match &self.first_difference {
            None => format!(
                "identical: {} metrics rows up to iteration {} match bit for bit\n",
                self.rows, self.until
            ),
            Some((a, None)) => format!(
                "DIFFERENT: the re-run has no row step {}, {}, {}, {} (recorded {})\n",
                a.step, a.split, a.set, a.metric, a.value
            ),
            Some((a, Some(b))) => format!(
                "DIFFERENT: first at step {}, {}, {}, {}: recorded {}, re-run {} (relative difference {:.3e})\n",
                a.step,
                a.split,
                a.set,
                a.metric,
                a.value,
                b.value,
                ((a.value - b.value) / a.value.abs().max(f64::MIN_POSITIVE)).abs()
            ),
        };
        for l in &self.sides {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

fn read_text(p: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(p).map_err(|e| {
        user(format!(
            "{}: cannot read ({e}); name a run folder of the ledger, results/<name>-<hash>",
            p.display()
        ))
    })
}

fn metrics(dir: &Path) -> anyhow::Result<Vec<MetricRow>> {
    let p = dir.join("metrics.csv");
    parse_metrics(&read_text(&p)?)
        .map_err(|e| user(format!("{}: {e:#} (a damaged metrics file)", p.display())))
}

/// One side's build and kernel paths, as recorded (or unknown for an older run).
fn side(label: &str, b: Option<&Build>, m: Option<&Machine>, threads: usize) -> String {
    let build = b.map_or("build not recorded".to_string(), |b| {
        format!(
            "binary {} (commit {}, modified: {})",
            &b.binary_sha256[..12.min(b.binary_sha256.len())],
            b.commit,
            b.dirty
        )
    });
    let machine = m.map_or("kernel paths not recorded".to_string(), |m| {
        format!("{}; {}", m.cpu, m.kernel_paths)
    });
    format!("{label}: {build}; {threads} threads; {machine}")
}

/// A temporary folder for the re-run, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Re-run the run in `run_dir` up to `until` (default: its last iteration) and compare.
pub fn reproduce(run_dir: &Path, until: Option<usize>) -> anyhow::Result<Reproduction> {
    let effective = run_dir.join("spec.effective.ron");
    let spec_text = read_text(&effective)?;
    let spec = crate::spec::load::parse_str(&effective.display().to_string(), &spec_text)?;
    let was = Provenance::read(run_dir)?;
    let recorded = metrics(run_dir)?;
    let iters = spec.schedule.iterations;
    let until = until.unwrap_or(iters).min(iters);
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "odm-reproduce-{}-{}",
        std::process::id(),
        crate::record::provenance::now().replace(':', "")
    )));
    std::fs::create_dir_all(&scratch.0)?;
    let file = scratch.0.join("spec.ron");
    std::fs::write(&file, &spec_text)?;
    let opts = RunOpts {
        out: scratch.0.join("results"),
        threads: Some(was.threads.max(1)),
        progress: false,
        until: (until < iters).then_some(until),
        ..Default::default()
    };
    let dir = run(&file, &opts)?.remove(0);
    let now = Provenance::read(&dir)?;
    if let (Some(a), Some(b)) = (&was.init, &now.init) {
        if a.sha256 != b.sha256 {
            return Err(user(format!(
                "{}: the initial weights ({}) hash {}…, the run started from {}…; restore the file it started from",
                run_dir.display(),
                was.init_from,
                &b.sha256[..12.min(b.sha256.len())],
                &a.sha256[..12.min(a.sha256.len())]
            )));
        }
    }
    let fresh = metrics(&dir)?;
    let want: Vec<&MetricRow> = recorded.iter().filter(|r| r.step <= until).collect();
    let key = |r: &MetricRow| (r.step, r.split.clone(), r.set.clone(), r.metric.clone());
    let first_difference =
        want.iter()
            .find_map(|a| match fresh.iter().find(|b| key(b) == key(a)) {
                None => Some(((*a).clone(), None)),
                Some(b) if b.value.to_bits() != a.value.to_bits() => {
                    Some(((*a).clone(), Some(b.clone())))
                }
                Some(_) => None,
            });
    let sides = vec![
        side(
            "recorded",
            was.build.as_ref(),
            was.machine.as_ref(),
            was.threads,
        ),
        side(
            "re-run  ",
            now.build.as_ref(),
            now.machine.as_ref(),
            now.threads,
        ),
    ];
    Ok(Reproduction {
        until,
        rows: want.len(),
        first_difference,
        sides,
    })
}
