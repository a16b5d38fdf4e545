//! Slurm: one sbatch script per stage and one job array over the unfinished points
//! (`#SBATCH --array=<indices>%K`, `$SLURM_ARRAY_TASK_ID` is the grid index). Every task runs
//! `odm run <frozen spec> --point $SLURM_ARRAY_TASK_ID --resume`, so a requeued or preempted task
//! continues from its checkpoint and a finished point is skipped.

use super::manifest::{Manifest, Submission};
use super::{run_args, Plan};
use crate::error::user;
use crate::record::atomic_write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `#SBATCH` settings of the sweep's jobs.
#[derive(Clone, Debug, Default)]
pub struct SlurmOpts {
    pub partition: Option<String>,
    /// `HH:MM:SS` (or any form sbatch's `--time` takes).
    pub time: Option<String>,
    /// CPUs per task; each task runs with that many threads. Default 1.
    pub cpus_per_task: Option<usize>,
    pub gpus_per_task: Option<usize>,
    /// At most this many array tasks at once (`%K`).
    pub max_parallel: Option<usize>,
}

/// `sbatch` must be on PATH before anything is written.
pub fn check_sbatch() -> anyhow::Result<()> {
    match Command::new("sbatch").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => Err(user(
            "--submit: `sbatch` is not on PATH (install Slurm's client, load its module, or leave out --submit and run the written script yourself)",
        )),
    }
}

/// Shell single-quoting.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `a,b,c-d` for sorted indices.
pub fn ranges(v: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// One sbatch script: the header, ODM_DATA as it was at sweep time, and the task's command.
fn script(
    dir: &Path,
    m: &Manifest,
    o: &SlurmOpts,
    name: &str,
    array: Option<&str>,
    cmd: &[String],
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    let mut h = |k: &str, v: &str| s.push_str(&format!("#SBATCH --{k}={v}\n"));
    h("job-name", &format!("odm-{name}"));
    h("chdir", &m.workdir);
    h("cpus-per-task", &o.cpus_per_task.unwrap_or(1).to_string());
    let log = dir.join("logs");
    match array {
        Some(a) => {
            h("array", a);
            h("output", &format!("{}/%A_%a.out", log.display()));
        }
        None => h("output", &format!("{}/%j.out", log.display())),
    }
    if let Some(p) = &o.partition {
        h("partition", p);
    }
    if let Some(t) = &o.time {
        h("time", t);
    }
    if let Some(g) = o.gpus_per_task {
        h("gpus-per-task", &g.to_string());
    }
    s.push_str("#SBATCH --requeue\n#SBATCH --open-mode=append\nset -euo pipefail\n");
    if let Ok(d) = std::env::var("ODM_DATA") {
        s.push_str(&format!("export ODM_DATA={}\n", quote(&d)));
    }
    let line: Vec<String> = cmd
        .iter()
        .map(|a| {
            if a.starts_with('"') {
                a.clone()
            } else {
                quote(a)
            }
        })
        .collect();
    s.push_str(&format!("exec {}\n", line.join(" ")));
    s
}

/// `sbatch --parsable [--dependency=afterok:…] script`: the job id, or sbatch's refusal as a
/// user error.
fn submit(script: &Path, after: &[String]) -> anyhow::Result<String> {
    let mut c = Command::new("sbatch");
    c.arg("--parsable");
    if !after.is_empty() {
        c.arg(format!("--dependency=afterok:{}", after.join(":")));
    }
    let out = c.arg(script).output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || text.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err
            .lines()
            .last()
            .unwrap_or("no message")
            .trim()
            .to_string();
        return Err(user(format!(
            "{}: sbatch refused it: {err} (check the partition, time and resources)",
            script.display()
        )));
    }
    Ok(text.split(';').next().unwrap_or(&text).to_string())
}

/// The scripts of one sweep call: the stages in order, then the array (when points are left).
struct Scripts {
    stages: Vec<PathBuf>,
    array: Option<PathBuf>,
}

/// The array script over the plan's unfinished points.
fn array_script(dir: &Path, plan: &Plan, m: &Manifest, o: &SlurmOpts, odm: &str) -> String {
    let mut a = ranges(&plan.todo);
    if let Some(k) = o.max_parallel {
        a.push_str(&format!("%{k}"));
    }
    let threads = o.cpus_per_task.unwrap_or(1).to_string();
    let mut cmd = vec![odm.to_string()];
    cmd.extend(run_args(dir, m, &threads));
    cmd.extend([
        "--point".into(),
        "\"$SLURM_ARRAY_TASK_ID\"".into(),
        "--resume".into(),
    ]);
    let name = m.points[0].name.split('.').next().unwrap_or("sweep");
    script(dir, m, o, name, Some(&a), &cmd)
}

/// Write the stage scripts, the array script and `submit.sh` (their chain as a shell script).
fn write_scripts(dir: &Path, plan: &Plan, m: &Manifest, o: &SlurmOpts) -> anyhow::Result<Scripts> {
    let odm = std::env::current_exe()?.display().to_string();
    let threads = o.cpus_per_task.unwrap_or(1).to_string();
    let mut chain = String::from(
        "#!/bin/bash\n# Submits the stages, then the array after them.\nset -euo pipefail\nafter=\"\"\n",
    );
    let mut stages = Vec::new();
    for (k, st) in plan.stages.iter().enumerate() {
        let cmd = stage_cmd(&odm, &st.file, m, &threads);
        let p = dir.join(format!("stage-{k}.sbatch"));
        atomic_write(&p, script(dir, m, o, &st.name, None, &cmd).as_bytes())?;
        chain.push_str(&format!(
            "id=$(sbatch --parsable ${{after:+--dependency=afterok:$after}} {})\nafter=${{after:+$after:}}${{id%%;*}}\n",
            quote(&p.display().to_string())
        ));
        stages.push(p);
    }
    let array = if plan.todo.is_empty() {
        None
    } else {
        let p = dir.join("array.sbatch");
        atomic_write(&p, array_script(dir, plan, m, o, &odm).as_bytes())?;
        chain.push_str(&format!(
            "sbatch ${{after:+--dependency=afterok:$after}} {}\n",
            quote(&p.display().to_string())
        ));
        Some(p)
    };
    atomic_write(&dir.join("submit.sh"), chain.as_bytes())?;
    Ok(Scripts { stages, array })
}

/// Write the scripts; with `submit_now`, call sbatch for each stage and then the array, chained
/// with `afterok`, and record the submission in the manifest.
pub fn start(
    dir: &Path,
    plan: &Plan,
    m: &mut Manifest,
    o: &SlurmOpts,
    submit_now: bool,
) -> anyhow::Result<Vec<String>> {
    let scripts = write_scripts(dir, plan, m, o)?;
    let mut lines = vec![format!("sweep folder {}", dir.display())];
    let Some(array) = scripts.array else {
        lines.push("every selected point is finished; nothing to submit".into());
        return Ok(lines);
    };
    if !submit_now {
        let sh = dir.join("submit.sh");
        lines.push(format!("submit with: bash {}", sh.display()));
        m.write(dir)?;
        return Ok(lines);
    }
    let mut stage_jobs = Vec::new();
    for p in &scripts.stages {
        let id = submit(p, &stage_jobs)?;
        lines.push(format!("stage job {id} ({})", p.display()));
        stage_jobs.push(id);
    }
    let id = submit(&array, &stage_jobs)?;
    lines.push(format!("array job {id}: points {}", ranges(&plan.todo)));
    m.stages = plan.stages.clone();
    m.submissions.push(Submission {
        kind: "slurm".into(),
        submitted: crate::record::provenance::now(),
        points: plan.todo.clone(),
        stage_jobs,
        array_job: Some(id),
        script: Some("array.sbatch".into()),
    });
    m.write(dir)?;
    Ok(lines)
}

/// The command of a stage: `odm run <experiment> --out <results> --threads N --quiet` (the
/// sweep's `--set` overrides belong to the swept file, not to the stage's).
pub fn stage_cmd(odm: &str, file: &str, m: &Manifest, threads: &str) -> Vec<String> {
    [
        odm,
        "run",
        file,
        "--out",
        &m.results,
        "--threads",
        threads,
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
