//! `odm sweep FILE --local --jobs N`: the stages one after another, then the unfinished points
//! as up to N concurrent `odm run --point I --resume` processes, the threads split evenly between
//! them (so a point's result equals a Slurm task's with `--cpus-per-task` that many CPUs).

use super::manifest::{Manifest, Submission};
use super::slurm::stage_cmd;
use super::{run_args, Plan};
use crate::error::user;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Start `cmd` (binary first) with its output appended to `log`.
fn spawn(cmd: &[String], workdir: &str, log: &Path) -> anyhow::Result<Child> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    Ok(Command::new(&cmd[0])
        .args(&cmd[1..])
        .current_dir(workdir)
        .stdout(Stdio::from(f.try_clone()?))
        .stderr(Stdio::from(f))
        .spawn()?)
}

/// Run the plan locally; fails (naming the points and their logs) when any process fails.
pub fn start(
    dir: &Path,
    plan: &Plan,
    m: &mut Manifest,
    jobs: usize,
    threads: Option<usize>,
) -> anyhow::Result<Vec<String>> {
    if jobs == 0 {
        return Err(user("--jobs 0: run at least one process (e.g. --jobs 2)"));
    }
    let odm = std::env::current_exe()?.display().to_string();
    let total = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let per = (total / jobs).max(1).to_string();
    let logs = dir.join("logs");
    let mut lines = vec![format!("sweep folder {}", dir.display())];
    for (k, st) in plan.stages.iter().enumerate() {
        let log = logs.join(format!("local-stage-{k}.out"));
        let cmd = stage_cmd(&odm, &st.file, m, &total.to_string());
        if !spawn(&cmd, &m.workdir, &log)?.wait()?.success() {
            anyhow::bail!("stage {} failed; see {}", st.file, log.display());
        }
        lines.push(format!("stage {} finished", st.name));
    }
    let commands: Vec<(usize, Vec<String>)> = plan
        .todo
        .iter()
        .map(|&i| {
            let mut cmd = vec![odm.clone()];
            cmd.extend(run_args(dir, m, &per));
            cmd.extend(["--point".into(), i.to_string(), "--resume".into()]);
            (i, cmd)
        })
        .collect();
    let failed = pool(commands, jobs, &m.workdir, &logs)?;
    m.stages = plan.stages.clone();
    m.submissions.push(Submission {
        kind: "local".into(),
        submitted: crate::record::provenance::now(),
        points: plan.todo.clone(),
        stage_jobs: Vec::new(),
        array_job: None,
        script: None,
    });
    m.write(dir)?;
    if !failed.is_empty() {
        anyhow::bail!(
            "points {failed:?} failed; their logs: {}/local-<point>.out",
            logs.display()
        );
    }
    let n = plan.todo.len();
    lines.push(format!(
        "{n} point(s) finished with {jobs} process(es) of {per} thread(s)"
    ));
    Ok(lines)
}

/// Run `(point, command)`s at most `jobs` at a time (a finished one is replaced at once);
/// returns the points whose process failed.
fn pool(
    commands: Vec<(usize, Vec<String>)>,
    jobs: usize,
    workdir: &str,
    logs: &Path,
) -> anyhow::Result<Vec<usize>> {
    let mut queue = commands.into_iter();
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut failed = Vec::new();
    loop {
        while running.len() < jobs {
            let Some((i, cmd)) = queue.next() else { break };
            let log = logs.join(format!("local-{i}.out"));
            running.push((i, spawn(&cmd, workdir, &log)?));
        }
        if running.is_empty() {
            return Ok(failed);
        }
        let mut done = None;
        for (k, (_, child)) in running.iter_mut().enumerate() {
            if let Some(st) = child.try_wait()? {
                done = Some((k, st.success()));
                break;
            }
        }
        match done {
            Some((k, ok)) => {
                let (i, _) = running.remove(k);
                if !ok {
                    failed.push(i);
                }
            }
            None => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}
