//! The sweep folder's `manifest.json`: the frozen spec's digest and overrides, the results root
//! and working directory the tasks use, every grid point (index → run name → spec hash), the
//! stages, and each submission. Written atomically, and only after a submission succeeded.

use super::Plan;
use crate::error::user;
use crate::record::{self, atomic_write};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The frozen copy of the spec file inside the sweep folder (what the tasks run).
pub const FROZEN: &str = "spec.ron";
const FILE: &str = "manifest.json";

/// One grid point.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PointEntry {
    pub index: usize,
    pub name: String,
    pub hash: String,
}

/// An experiment that must finish before the points that start from it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageEntry {
    /// The experiment file, resolved.
    pub file: String,
    pub name: String,
    pub hash: String,
}

/// One `odm sweep` call that started work.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Submission {
    /// `slurm` or `local`.
    pub kind: String,
    pub submitted: String,
    /// Grid indices it started.
    pub points: Vec<usize>,
    /// Slurm job ids of the stages, in order (empty for local runs).
    pub stage_jobs: Vec<String>,
    /// Slurm job id of the array (none for local runs, or when no point was left).
    pub array_job: Option<String>,
    /// The sbatch script of the array, relative to the sweep folder.
    pub script: Option<String>,
}

/// `manifest.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The spec file as given on the command line.
    pub spec_file: String,
    /// SHA-256 of the frozen copy.
    pub spec_sha256: String,
    pub overrides: Vec<String>,
    /// Absolute working directory and results root of the tasks.
    pub workdir: String,
    pub results: String,
    pub points: Vec<PointEntry>,
    pub stages: Vec<StageEntry>,
    pub submissions: Vec<Submission>,
}

impl Manifest {
    /// Read a sweep folder's manifest; a missing or malformed one is a user error.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let p = dir.join(FILE);
        let text = std::fs::read_to_string(&p).map_err(|e| {
            user(format!(
                "{}: cannot read ({e}); pass a folder that `odm sweep` wrote",
                p.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            user(format!(
                "{}: {e} (a damaged manifest: sweep the spec again into a new --out)",
                p.display()
            ))
        })
    }

    /// Write it atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        atomic_write(
            &dir.join(FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }
}

/// The points of a plan as manifest entries.
pub fn entries(plan: &Plan) -> Vec<PointEntry> {
    plan.runs
        .iter()
        .enumerate()
        .map(|(index, s)| PointEntry {
            index,
            name: s.name.clone(),
            hash: crate::commands::canonical(s).1,
        })
        .collect()
}

/// The manifest of `dir`, created with the frozen spec when the folder is new; an existing one
/// must describe the same points as the spec file does now.
pub fn open_or_create(dir: &Path, plan: &Plan, overrides: &[String]) -> anyhow::Result<Manifest> {
    let points = entries(plan);
    if dir.join(FILE).is_file() {
        let m = Manifest::read(dir)?;
        check_matches(dir, &m, &points)?;
        return Ok(m);
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    atomic_write(&dir.join(FROZEN), plan.source.as_bytes())?;
    Ok(Manifest {
        spec_file: plan.file.display().to_string(),
        spec_sha256: record::hex(&<sha2::Sha256 as sha2::Digest>::digest(
            plan.source.as_bytes(),
        )),
        overrides: overrides.to_vec(),
        workdir: plan.workdir.display().to_string(),
        results: plan.results.display().to_string(),
        points,
        stages: plan.stages.clone(),
        submissions: Vec::new(),
    })
}

/// The manifest's points are the spec's points (same names and spec hashes, same order).
pub fn check_matches(dir: &Path, m: &Manifest, points: &[PointEntry]) -> anyhow::Result<()> {
    if m.points != points {
        return Err(user(format!(
            "{}: the manifest no longer matches the spec file {} ({} points recorded, {} now, or their spec hashes differ); sweep it into a new --out",
            dir.join(FILE).display(),
            m.spec_file,
            m.points.len(),
            points.len()
        )));
    }
    Ok(())
}
