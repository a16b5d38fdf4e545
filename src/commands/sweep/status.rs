//! `odm sweep status DIR`: per point, finished, running or pending (from `squeue` when it is on
//! PATH), failed (`failed.json` in its run folder: with its cause; or a task log, no result,
//! nothing queued: with the log's last lines; resumable when a checkpoint exists), running (a
//! live lock on its run folder) or not started.

use super::manifest::{check_matches, entries, Manifest, FROZEN};
use super::Plan;
use crate::commands::run::{is_finished, run_dirs};
use crate::spec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Array task states from `squeue`, keyed by grid index (`<array job>_<index>` tasks of the
/// sweep's submissions); empty when squeue is absent or fails.
fn queued(m: &Manifest) -> HashMap<usize, String> {
    let jobs: Vec<&str> = m
        .submissions
        .iter()
        .filter_map(|s| s.array_job.as_deref())
        .collect();
    let mut out = HashMap::new();
    if jobs.is_empty() {
        return out;
    }
    let Ok(o) = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i %T", "-j", &jobs.join(",")])
        .output()
    else {
        return out;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let mut it = line.split_whitespace();
        if let (Some(id), Some(state)) = (it.next(), it.next()) {
            if let Some(i) = id.rsplit_once('_').and_then(|(_, i)| i.parse().ok()) {
                out.insert(i, state.to_lowercase());
            }
        }
    }
    out
}

/// The newest task log of point `i` (Slurm `<job>_<i>.out` or local `local-<i>.out`).
fn log_of(dir: &Path, m: &Manifest, i: usize) -> Option<PathBuf> {
    let mut c: Vec<PathBuf> = m
        .submissions
        .iter()
        .rev()
        .filter_map(|s| s.array_job.as_ref())
        .map(|j| dir.join("logs").join(format!("{j}_{i}.out")))
        .collect();
    c.push(dir.join("logs").join(format!("local-{i}.out")));
    c.into_iter().find(|p| p.is_file())
}

fn tail(p: &Path, n: usize) -> String {
    let t = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = t.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// The status table of a sweep folder.
pub fn status(dir: &Path) -> anyhow::Result<String> {
    let m = Manifest::read(dir)?;
    let frozen = dir.join(FROZEN);
    let loaded = spec::load_file_with(&frozen, &m.overrides)?;
    let plan = Plan {
        file: frozen,
        source: loaded.source,
        runs: loaded.runs,
        todo: Vec::new(),
        stages: Vec::new(),
        workdir: PathBuf::from(&m.workdir),
        results: PathBuf::from(&m.results),
    };
    check_matches(dir, &m, &entries(&plan))?;
    let q = queued(&m);
    let mut s = String::from("point\tstate\trun\tdetail\n");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (p, spec) in m.points.iter().zip(&plan.runs) {
        let dirs = run_dirs(&plan.results, spec);
        let (state, detail) = if dirs.iter().any(|d| is_finished(d)) {
            ("finished", String::new())
        } else if let Some(st) = q.get(&p.index) {
            (
                if st == "running" {
                    "running"
                } else {
                    "pending"
                },
                st.clone(),
            )
        } else if let Some((d, f)) = dirs
            .iter()
            .rev()
            .find_map(|d| crate::record::failure::Failure::read(d).map(|f| (d, f)))
        {
            let state = if d.join("checkpoint.safetensors").is_file() {
                "failed (resumable)"
            } else {
                "failed"
            };
            (
                state,
                format!("after iteration {}: {} ({})", f.step, f.cause, d.display()),
            )
        } else if let Some(h) = dirs
            .iter()
            .find_map(|d| crate::record::lock::live_holder(d))
        {
            ("running", format!("pid {} on {}", h.pid, h.host))
        } else if let Some(log) = log_of(dir, &m, p.index) {
            let resumable = dirs
                .iter()
                .any(|d| d.join("checkpoint.safetensors").is_file());
            let state = if resumable {
                "failed (resumable)"
            } else {
                "failed"
            };
            (state, format!("{}: {}", log.display(), tail(&log, 3)))
        } else {
            ("not started", String::new())
        };
        *counts.entry(state).or_default() += 1;
        s.push_str(&format!("{}\t{state}\t{}\t{detail}\n", p.index, p.name));
    }
    let mut c: Vec<_> = counts.into_iter().collect();
    c.sort();
    let summary: Vec<String> = c.iter().map(|(k, n)| format!("{n} {k}")).collect();
    s.push_str(&format!("# {}\n", summary.join(", ")));
    Ok(s)
}
