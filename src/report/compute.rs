//! What each experiment cost and which builds and machines ran it, from its finished runs'
//! `provenance.json`: CPU time as wall seconds × threads (summed over a resumed run's segments
//! by odm's timing record, at the threads of its last segment), the builds ([`super::runs::build_of`])
//! and the CPU models and kernel paths the runs recorded. A study's verdicts assume one build.

use super::runs::build_of;
use super::tables::{csv, latex, md, tex, Fmt, Table};
use super::Run;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct Prov {
    #[serde(default)]
    wall_seconds: f64,
    #[serde(default)]
    threads: usize,
    #[serde(default)]
    timed_from_step: usize,
    #[serde(default)]
    machine: Machine,
    #[serde(default)]
    resumed: bool,
    /// Present since odm timed every segment (`train::timing`); a resumed run without it counted
    /// only its last segment.
    #[serde(default)]
    segments: Option<Vec<serde_json::Value>>,
}

impl Prov {
    /// Whether `wall_seconds` misses earlier segments of the run.
    fn partial(&self) -> bool {
        self.timed_from_step > 0 || (self.resumed && self.segments.is_none())
    }
}

#[derive(Deserialize, Default)]
struct Machine {
    #[serde(default)]
    cpu: String,
    #[serde(default)]
    kernel_paths: String,
}

/// One experiment's totals.
struct Row {
    experiment: String,
    runs: usize,
    iterations: Vec<usize>,
    core_hours: f64,
    /// Runs whose earliest segments' time is unknown (resumed from an older odm's checkpoint).
    partial: usize,
    median_core_min: f64,
    builds: Vec<String>,
    machines: Vec<String>,
}

fn distinct(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

fn row(experiment: &str, runs: &[&Run]) -> Row {
    let provs: Vec<Prov> = runs
        .iter()
        .map(|r| {
            std::fs::read_to_string(r.dir.join("provenance.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default()
        })
        .collect();
    let mut core: Vec<f64> = provs
        .iter()
        .map(|p| p.wall_seconds * p.threads.max(1) as f64)
        .collect();
    let total = core.iter().sum::<f64>() / 3600.0;
    core.sort_by(f64::total_cmp);
    let median = match core.len() {
        0 => 0.0,
        n if n % 2 == 1 => core[n / 2],
        n => 0.5 * (core[n / 2 - 1] + core[n / 2]),
    };
    let mut iterations: Vec<usize> = runs.iter().map(|r| r.spec.schedule.iterations).collect();
    iterations.sort_unstable();
    iterations.dedup();
    Row {
        experiment: experiment.to_string(),
        runs: runs.len(),
        iterations,
        core_hours: total,
        partial: provs.iter().filter(|p| p.partial()).count(),
        median_core_min: median / 60.0,
        builds: distinct(runs.iter().map(|r| build_of(&r.dir)).collect()),
        machines: distinct(
            provs
                .iter()
                .filter(|p| !p.machine.cpu.is_empty())
                .map(|p| format!("{} ({})", p.machine.cpu, p.machine.kernel_paths))
                .collect(),
        ),
    }
}

fn rows(runs: &[Run]) -> Vec<Row> {
    let exps = distinct(runs.iter().map(|r| r.experiment.clone()).collect());
    exps.iter()
        .map(|e| {
            let members: Vec<&Run> = runs.iter().filter(|r| &r.experiment == e).collect();
            row(e, &members)
        })
        .collect()
}

fn cells(r: &Row, fm: Fmt) -> Vec<String> {
    let t = |s: &str| {
        if fm == Fmt::Tex {
            tex(s)
        } else {
            s.to_string()
        }
    };
    let list = |v: &[String]| match v.is_empty() {
        true => "– (not recorded)".to_string(),
        false => t(&v.join("; ")),
    };
    let iters: Vec<String> = r.iterations.iter().map(|i| i.to_string()).collect();
    vec![
        t(&r.experiment),
        r.runs.to_string(),
        iters.join(", "),
        format!(
            "{}{:.2}",
            if r.partial > 0 { "≥ " } else { "" },
            r.core_hours
        ),
        format!("{:.1}", r.median_core_min),
        r.builds.len().to_string(),
        list(&r.builds),
        list(&r.machines),
    ]
}

const CAPTION: &str = "Compute per experiment, from its finished runs' provenance.json: CPU time = wall-clock seconds × threads (initialisation, training and evaluation; a resumed run's segments summed, at its last segment's threads; \"≥\" where a run resumed from a checkpoint without a timing record, or was resumed by an odm that timed only the last segment, so its earlier time is unknown), in core-hours in all and core-minutes for the median run; the builds the runs name (binary SHA-256 and commit; a study whose verdicts pair runs should show one); the CPU models with the kernel paths they ran (recorded since provenance named the machine).";

/// The compute table; `None` without runs.
pub fn table(runs: &[Run]) -> Option<Table> {
    let rs = rows(runs);
    if rs.is_empty() {
        return None;
    }
    let head: Vec<String> = [
        "Experiment",
        "Runs",
        "Iterations",
        "CPU core-hours",
        "Median run (core-min)",
        "Builds",
        "Build(s)",
        "Machine(s)",
    ]
    .iter()
    .map(|h| h.to_string())
    .collect();
    let body = |fm: Fmt| rs.iter().map(|r| cells(r, fm)).collect::<Vec<_>>();
    Some(Table {
        md: format!("# Compute\n\n{CAPTION}\n\n{}", md(&head, &body(Fmt::Md))),
        tex: latex(&head, &body(Fmt::Tex), CAPTION, "tab:compute"),
        csv: csv(
            &[
                "experiment",
                "runs",
                "iterations",
                "core_hours",
                "median_core_minutes",
                "n_builds",
                "builds",
                "machines",
            ],
            &body(Fmt::Md),
        ),
        caption: CAPTION.to_string(),
    })
}
