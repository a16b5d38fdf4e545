//! `odm sweep`: hand a grid to a cluster scheduler (Slurm job arrays) or to N local processes.
//! Each grid point is already an independent, resumable, deterministic `odm run --point I`, so a
//! sweep only decides which points are left, writes a sweep folder (the frozen spec, a manifest,
//! the sbatch scripts, the tasks' logs) and starts them. Results land in the usual results root:
//! every task claims its own folder with an atomic `mkdir` and writes with atomic renames, so
//! tasks on different hosts can share one `results/`; `odm report` is unchanged.
//!
//! Stages: a point whose `init_from` is an `Experiment(...)` without a finished result (with its
//! checkpoint) needs that experiment first; the sweep runs or submits it as a stage before the
//! points (Slurm: `--dependency=afterok:<stage job>`).

mod local;
mod manifest;
mod slurm;
mod status;

pub use manifest::{Manifest, PointEntry, StageEntry, Submission};
pub use slurm::SlurmOpts;
pub use status::status;

use super::canonical;
use super::run::{is_finished, run_dirs, selected, RunOpts};
use crate::error::user;
use crate::record;
use crate::spec::{self, resolve_path, InitFrom, Spec};
use std::path::{Path, PathBuf};

/// Where the points run.
#[derive(Clone, Debug)]
pub enum Target {
    /// A Slurm job array (`--submit` calls `sbatch`; otherwise the scripts are only written).
    Slurm { opts: SlurmOpts, submit: bool },
    /// `jobs` local `odm run` processes, the threads split between them.
    Local { jobs: usize },
}

/// What `odm sweep FILE` needs besides the file.
#[derive(Clone, Debug)]
pub struct SweepOpts {
    /// Results root, `--set` overrides, `--point` selection and total threads (local).
    pub run: RunOpts,
    pub target: Target,
}

/// The work a sweep leaves to do.
pub struct Plan {
    /// The spec file as given, its text and its expansion.
    pub file: PathBuf,
    pub source: String,
    pub runs: Vec<Spec>,
    /// Grid indices of the selected points that have not finished.
    pub todo: Vec<usize>,
    /// Experiments some unfinished point starts from that have no finished result yet.
    pub stages: Vec<StageEntry>,
    /// Absolute working directory and results root (tasks run there).
    pub workdir: PathBuf,
    pub results: PathBuf,
}

/// Expand `file`, select the points, and find which are unfinished and which stages they need.
pub fn plan(file: &Path, opts: &RunOpts) -> anyhow::Result<Plan> {
    let loaded = spec::load_file_with(file, &opts.overrides)?;
    let workdir = std::env::current_dir()?;
    let results = workdir.join(&opts.out);
    let mut todo = Vec::new();
    let mut stages: Vec<StageEntry> = Vec::new();
    for (i, s) in selected(file, &loaded.runs, opts)? {
        if run_dirs(&results, s).iter().any(|d| is_finished(d)) {
            continue;
        }
        todo.push(i);
        if let Some(st) = pending_stage(s, &results)? {
            if !stages.iter().any(|x| x.file == st.file) {
                stages.push(st);
            }
        }
    }
    Ok(Plan {
        file: file.to_path_buf(),
        source: loaded.source,
        runs: loaded.runs,
        todo,
        stages,
        workdir,
        results,
    })
}

/// The experiment `s` starts from, when it has no finished result with a checkpoint under
/// `results` (what `odm run` would otherwise run first, inside the point's own task).
fn pending_stage(s: &Spec, results: &Path) -> anyhow::Result<Option<StageEntry>> {
    let Some(InitFrom::Experiment(p)) = &s.init_from else {
        return Ok(None);
    };
    let path = resolve_path(p);
    let loaded = spec::load_file(&path)?;
    let [fp] = loaded.runs.as_slice() else {
        return Err(user(format!(
            "{}: init_from names an experiment with {} runs; it needs exactly one",
            path.display(),
            loaded.runs.len()
        )));
    };
    let done = run_dirs(results, fp)
        .iter()
        .any(|d| is_finished(d) && d.join("checkpoint.safetensors").is_file());
    Ok((!done).then(|| StageEntry {
        file: path.display().to_string(),
        name: fp.name.clone(),
        hash: canonical(fp).1,
    }))
}

/// The sweep folder of a spec text and its overrides: `<results>/sweeps/<name>-<hash>`, where the
/// hash covers the text and the overrides (the same file swept twice is the same sweep).
pub fn sweep_dir(plan: &Plan, overrides: &[String]) -> PathBuf {
    let name = plan
        .runs
        .first()
        .map_or("sweep", |s| s.name.split('.').next().unwrap_or(&s.name));
    let key = format!("{}\n{}", plan.source, overrides.join("\n"));
    let hash = record::short_hash(key.as_bytes());
    plan.results.join("sweeps").join(format!("{name}-{hash}"))
}

/// `odm sweep FILE`: write (or update) the sweep folder and start the unfinished points as
/// `opts.target` says. Returns the folder and the lines to print.
pub fn sweep(file: &Path, opts: &SweepOpts) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let plan = plan(file, &opts.run)?;
    if let Target::Slurm { submit: true, .. } = opts.target {
        slurm::check_sbatch()?;
    }
    let dir = sweep_dir(&plan, &opts.run.overrides);
    let fresh = !dir.exists();
    let result = (|| {
        let mut m = manifest::open_or_create(&dir, &plan, &opts.run.overrides)?;
        let lines = match &opts.target {
            Target::Slurm { opts: so, submit } => slurm::start(&dir, &plan, &mut m, so, *submit)?,
            Target::Local { jobs } => local::start(&dir, &plan, &mut m, *jobs, opts.run.threads)?,
        };
        Ok(lines)
    })();
    match result {
        Ok(lines) => Ok((dir, lines)),
        Err(e) => {
            if fresh {
                let _ = std::fs::remove_dir_all(&dir);
            }
            Err(e)
        }
    }
}

/// The `odm run` arguments of one task: the frozen spec, the overrides, results root, threads.
fn run_args(dir: &Path, m: &Manifest, threads: &str) -> Vec<String> {
    let mut a = vec![
        "run".to_string(),
        dir.join(manifest::FROZEN).display().to_string(),
        "--out".into(),
        m.results.clone(),
        "--threads".into(),
        threads.to_string(),
        "--quiet".into(),
    ];
    for o in &m.overrides {
        a.push("--set".into());
        a.push(o.clone());
    }
    a
}
