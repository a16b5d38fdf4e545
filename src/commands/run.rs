//! `odm run`: one spec file's runs, each in its own result folder, resuming or skipping as asked.

use super::{canonical, load_eval_sets, load_sets, pretty};
use crate::backend::{pick, with_backend, Picked};
use crate::data::{ImageSet, Sampler};
use crate::error::user;
use crate::eval::{bicubic, SetScore};
use crate::models::Model;
use crate::record::{self, atomic_write, create_run_dir, Provenance};
use crate::spec::{self, resolve_path, InitFrom, Spec};
use crate::train::init::InitWeights;
use crate::train::Start;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `odm run`.
#[derive(Clone, Debug, Default)]
pub struct RunOpts {
    pub out: PathBuf,
    pub threads: Option<usize>,
    pub progress: bool,
    /// Continue the newest unfinished run of each spec instead of starting a new one.
    pub resume: bool,
    /// Stop (as if interrupted) after the first checkpoint at or past this iteration.
    pub stop_after: Option<usize>,
    /// `field=value` overrides applied to the spec before its grid is expanded.
    pub overrides: Vec<String>,
    /// Only these grid points (indices into the expanded grid); `None`: all.
    pub points: Option<Vec<usize>>,
    /// `--allow-data-change`: let `--resume` continue although the data's fingerprint changed
    /// (recorded in the run's provenance).
    pub allow_data_change: bool,
    /// Stop right after this iteration, without a checkpoint (`odm reproduce --until`).
    pub until: Option<usize>,
}

/// `--point`: comma-separated indices and inclusive ranges, e.g. `0,2,5-7`.
pub fn parse_points(text: &str) -> anyhow::Result<Vec<usize>> {
    let bad = || {
        user(format!(
            "--point {text:?}: expected indices and ranges such as 3 or 0,2,5-7 (see --list)"
        ))
    };
    let mut v = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b - a >= crate::spec::MAX_POINTS {
            return Err(bad());
        }
        v.extend(a..=b);
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The runs of a loaded file that `opts.points` selects, with their grid indices; an index past
/// the grid is an error naming the valid range.
pub(super) fn selected<'a>(
    path: &Path,
    runs: &'a [Spec],
    opts: &RunOpts,
) -> anyhow::Result<Vec<(usize, &'a Spec)>> {
    let Some(points) = &opts.points else {
        return Ok(runs.iter().enumerate().collect());
    };
    if let Some(p) = points.iter().find(|&&p| p >= runs.len()) {
        return Err(user(format!(
            "--point {p}: {} has {} run(s), indices 0 to {}",
            path.display(),
            runs.len(),
            runs.len().saturating_sub(1)
        )));
    }
    Ok(points.iter().map(|&i| (i, &runs[i])).collect())
}

/// `odm run --list`: one line per grid point: index, run name, spec hash and state (finished,
/// unfinished with a checkpoint, or not started) under `opts.out`.
pub fn list(path: &Path, opts: &RunOpts) -> anyhow::Result<String> {
    let loaded = spec::load_file_with(path, &opts.overrides)?;
    let mut out = String::new();
    for (i, s) in selected(path, &loaded.runs, opts)? {
        let (_, hash) = canonical(s);
        let state = state_of(&run_dirs(&opts.out, s));
        out.push_str(&format!("{i}\t{}\t{hash}\t{state}\n", s.name));
    }
    Ok(out)
}

/// Run folders of `spec` under `root`: `<name>-<hash>` and its `-k` reruns, oldest first.
pub fn run_dirs(root: &Path, spec: &Spec) -> Vec<PathBuf> {
    let (_, hash) = canonical(spec);
    let base = format!("{}-{hash}", spec.name);
    let mut v: Vec<(usize, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let k = if n == base {
                1
            } else {
                n.strip_prefix(&format!("{base}-"))?.parse().ok()?
            };
            Some((k, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// A run folder is finished when its `summary.json` holds a score for every evaluation set
/// ([`record::finished`]).
pub fn is_finished(dir: &Path) -> bool {
    record::finished(dir).is_some()
}

/// The state of a spec's run folders, as `--list` prints it: finished, running (locked by a
/// live process), failed or unfinished (resumable when a checkpoint exists), or not started.
pub fn state_of(dirs: &[PathBuf]) -> &'static str {
    let ckpt = |d: &PathBuf| d.join("checkpoint.safetensors").is_file();
    if dirs.iter().any(|d| is_finished(d)) {
        "finished"
    } else if dirs.iter().any(|d| record::lock::live_holder(d).is_some()) {
        "running"
    } else if let Some(d) = dirs.iter().rev().find(|d| ckpt(d)) {
        if d.join(record::failure::FAILED).is_file() {
            "failed (resumable)"
        } else {
            "unfinished (resumable)"
        }
    } else if dirs
        .iter()
        .any(|d| d.join(record::failure::FAILED).is_file())
    {
        "failed"
    } else {
        "not started"
    }
}

/// The weights a spec starts from: a checkpoint path, or the finished result of an experiment
/// file (which is run first when it has none).
fn resolve_init(s: &Spec, opts: &RunOpts) -> anyhow::Result<Option<InitWeights>> {
    Ok(match &s.init_from {
        None => None,
        Some(InitFrom::Pretrained {
            path,
            key,
            strip_prefix,
            strict,
            feature_scale,
            from_input_norm,
        }) => Some(InitWeights {
            path: resolve_path(path),
            key: key.clone(),
            strip_prefix: strip_prefix.clone(),
            strict: *strict,
            feature_scale: *feature_scale,
            from_input_norm: *from_input_norm,
        }),
        other => resolve_run_init(s, opts, other)?.map(InitWeights::plain),
    })
}

/// A checkpoint path or an experiment's finished result (run first when it has none).
fn resolve_run_init(
    s: &Spec,
    opts: &RunOpts,
    init: &Option<InitFrom>,
) -> anyhow::Result<Option<PathBuf>> {
    match init {
        None | Some(InitFrom::Pretrained { .. }) => Ok(None),
        Some(InitFrom::Checkpoint(p)) => Ok(Some(resolve_path(p))),
        Some(InitFrom::Experiment(p)) => {
            let p = resolve_path(p);
            check_no_cycle(&p)?;
            let loaded = spec::load_file(&p)?;
            if loaded.runs.len() != 1 {
                return Err(user(format!(
                    "{}: init_from names an experiment with {} runs; it needs exactly one",
                    p.display(),
                    loaded.runs.len()
                )));
            }
            let mut fp = loaded.runs[0].clone();
            // A device given on the command line applies to the run started first as well.
            if device_overridden(opts) {
                fp.device = s.device;
            }
            let fp = &fp;
            // A finished result seeds the run only with its checkpoint: results are committed
            // without checkpoints, so on a fresh clone the experiment runs again.
            if let Some(d) = run_dirs(&opts.out, fp)
                .into_iter()
                .rev()
                .find(|d| is_finished(d) && d.join("checkpoint.safetensors").is_file())
            {
                eprintln!("odm: starting from {} ({})", d.display(), p.display());
                return Ok(Some(d));
            }
            eprintln!(
                "odm: {} has no finished result; running it first",
                p.display()
            );
            let sub = RunOpts {
                resume: false,
                stop_after: None,
                ..opts.clone()
            };
            let _in = InChain::enter(&p);
            Ok(Some(run_one(
                &p,
                &loaded.source,
                fp,
                &sub,
                crate::backend::set_threads(opts.threads),
                &Continue::one(resume_command(&p, &sub, None)),
            )?))
        }
    }
}

thread_local! {
    /// The experiment files being run, outermost first: `init_from: Experiment` runs the file it
    /// names first, so a cycle among files would recurse without end.
    static CHAIN: std::cell::RefCell<Vec<PathBuf>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A file's place in [`CHAIN`] while it runs.
struct InChain;

impl InChain {
    fn enter(file: &Path) -> InChain {
        let f = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        CHAIN.with(|c| c.borrow_mut().push(f));
        InChain
    }
}

impl Drop for InChain {
    fn drop(&mut self) {
        CHAIN.with(|c| c.borrow_mut().pop());
    }
}

/// An `init_from: Experiment(file)` chain that comes back to a file already being run is a
/// cycle: a user error naming the chain, found before anything runs or is written. The chain is
/// followed through the files (each of one run) from `file` on.
fn check_no_cycle(file: &Path) -> anyhow::Result<()> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut chain = CHAIN.with(|c| c.borrow().clone());
    let mut next = Some(file.to_path_buf());
    while let Some(f) = next.take() {
        let f = canon(&f);
        if let Some(i) = chain.iter().position(|x| *x == f) {
            let names: Vec<String> = chain[i..]
                .iter()
                .chain(std::iter::once(&f))
                .map(|p| p.display().to_string())
                .collect();
            return Err(user(format!(
                "field `init_from`: the experiments start from each other in a cycle ({}); start one of them from a checkpoint or from nothing",
                names.join(" → ")
            )));
        }
        if let Ok(l) = spec::load_file(&f) {
            if let [s] = l.runs.as_slice() {
                if let Some(InitFrom::Experiment(p)) = &s.init_from {
                    next = Some(resolve_path(p));
                }
            }
        }
        chain.push(f);
    }
    Ok(())
}

/// True when `--device` or `--set device=...` was given.
fn device_overridden(opts: &RunOpts) -> bool {
    opts.overrides
        .iter()
        .any(|o| o.split_once('=').is_some_and(|(f, _)| f.trim() == "device"))
}

/// The device of `s`, checked to exist on this machine; the error names the file and the field
/// (its line and column when the file sets it, else the command-line override).
fn pick_device(origin: &Path, source: &str, s: &Spec, opts: &RunOpts) -> anyhow::Result<Picked> {
    pick(s.device).map_err(|msg| {
        let overridden = device_overridden(opts);
        let at = match spec::load::locate(source, "device") {
            Some((line, col)) if !overridden => format!(":{line}:{col}"),
            _ => String::new(),
        };
        let (how, fix) = if overridden {
            (" (--device/--set)", "--device cpu")
        } else {
            ("", "device: Cpu")
        };
        user(format!(
            "{}{at}: field `device`{how}: {msg}; use {fix}",
            origin.display()
        ))
    })
}

/// Every `trainable` prefix must name at least one parameter of the model; the error names the
/// file, the field and its position.
fn check_trainable(origin: &Path, source: &str, s: &Spec, model: &Model) -> anyhow::Result<()> {
    let Some(t) = &s.trainable else {
        return Ok(());
    };
    let names: Vec<String> = model
        .decls()
        .into_iter()
        .filter(|d| !d.buffer)
        .map(|d| d.name)
        .collect();
    match t
        .iter()
        .find(|p| !names.iter().any(|n| n.starts_with(p.as_str())))
    {
        None => Ok(()),
        Some(p) => {
            let at = spec::load::locate(source, "trainable")
                .map(|(l, c)| format!(":{l}:{c}"))
                .unwrap_or_default();
            Err(user(format!(
                "{}{at}: field `trainable`: {p:?} is the prefix of no parameter of this model (e.g. \"upsample\", \"tail\", \"body.3\")",
                origin.display()
            )))
        }
    }
}

/// `eval_at_start` and `crops` must name sets of `data.eval`, and each crop an image and a box
/// inside it; the error names the file, the field and what is available.
fn check_eval_names(
    origin: &Path,
    source: &str,
    s: &Spec,
    sets: &[Arc<ImageSet>],
) -> anyhow::Result<()> {
    let at = |field: &str| {
        spec::load::locate(source, field)
            .map(|(l, c)| format!(":{l}:{c}"))
            .unwrap_or_default()
    };
    let names: Vec<&str> = sets.iter().map(|e| e.name.as_str()).collect();
    if let Some(n) = s
        .eval_at_start
        .iter()
        .find(|n| !names.contains(&n.as_str()))
    {
        return Err(user(format!(
            "{}{}: field `eval_at_start`: {n:?} is not a set of data.eval (sets: {names:?})",
            origin.display(),
            at("eval_at_start")
        )));
    }
    for (i, c) in s.crops.iter().enumerate() {
        if let Err(m) = crate::eval::crops::find(c, sets) {
            return Err(user(format!(
                "{}{}: field `crops[{i}]`: {m}",
                origin.display(),
                at("crops")
            )));
        }
    }
    Ok(())
}

/// `odm run`: run every point of a spec file; returns the run folders.
/// A grid skips the points that already have a finished result.
pub fn run(path: &Path, opts: &RunOpts) -> anyhow::Result<Vec<PathBuf>> {
    let loaded = spec::load_file_with(path, &opts.overrides)?;
    let chosen = selected(path, &loaded.runs, opts)?;
    // Every run's device is checked before any run starts or writes anything.
    for (_, s) in &chosen {
        pick_device(path, &loaded.source, s, opts)?;
    }
    let threads = crate::backend::set_threads(opts.threads);
    record::interrupt::install();
    let _in = InChain::enter(path);
    let is_grid = loaded.grid;
    let mut dirs = Vec::new();
    let n = loaded.runs.len();
    for (i, s) in chosen {
        // A grid's finished points are skipped, with or without --resume.
        if is_grid {
            if let Some(d) = run_dirs(&opts.out, s)
                .into_iter()
                .rev()
                .find(|d| is_finished(d))
            {
                eprintln!(
                    "odm: [point {i} of 0–{}] {} is finished; skipping",
                    n - 1,
                    s.name
                );
                dirs.push(d);
                continue;
            }
        }
        if n > 1 {
            eprintln!("odm: [point {i} of 0–{}] {}", n - 1, s.name);
        }
        let point = (n > 1).then_some(i);
        let cmd = Continue {
            point: resume_command(path, opts, point.map(|i| i.to_string())),
            all: resume_command(path, opts, selection(opts)),
        };
        dirs.push(run_one(path, &loaded.source, s, opts, threads, &cmd)?);
    }
    Ok(dirs)
}

/// A word for a shell: quoted when it holds anything but plain characters.
fn shell_word(w: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./=:,+-@%".contains(c);
    if !w.is_empty() && w.chars().all(plain) {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

/// The commands that continue a run: the run alone (`point`, recorded in `failed.json`) and all
/// that the interrupted command was to run (`all`, said on SIGINT or SIGTERM: for a whole grid,
/// no `--point`, since a grid skips its finished points and `--resume` continues the stopped one).
struct Continue {
    point: String,
    all: String,
}

impl Continue {
    fn one(cmd: String) -> Self {
        Continue {
            point: cmd.clone(),
            all: cmd,
        }
    }
}

/// The `--point` value of the points `odm run` was given, if any.
fn selection(opts: &RunOpts) -> Option<String> {
    let ps = opts.points.as_ref()?;
    Some(
        ps.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// The command that continues a run of `file` (`point`: grid indices) with the options given.
fn resume_command(file: &Path, opts: &RunOpts, point: Option<String>) -> String {
    let mut c = format!("odm run {}", shell_word(&file.display().to_string()));
    if opts.out != Path::new("results") {
        c.push_str(&format!(
            " --out {}",
            shell_word(&opts.out.display().to_string())
        ));
    }
    for o in &opts.overrides {
        c.push_str(&format!(" --set {}", shell_word(o)));
    }
    if let Some(t) = opts.threads {
        c.push_str(&format!(" --threads {t}"));
    }
    if let Some(i) = point {
        c.push_str(&format!(" --point {i}"));
    }
    c.push_str(" --resume");
    c
}

/// Every training and evaluation image file with its size and SHA-256, per folder.
/// The validation list (`data.validation`) counts as one more folder holding that one file.
fn data_fingerprint(s: &Spec) -> anyhow::Result<Vec<record::provenance::DataFolder>> {
    let mut out = s
        .data
        .train
        .iter()
        .chain(&s.data.eval)
        .map(|d| {
            let d = resolve_path(d);
            let files = crate::data::images::list_images(&d)?;
            Ok(record::provenance::DataFolder::hash(&d, &files)?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if let Some(list) = s.data.validation.as_ref().map(|p| resolve_path(p)) {
        let dir = list.parent().unwrap_or(Path::new("")).to_path_buf();
        out.push(record::provenance::DataFolder::hash(&dir, &[list])?);
    }
    Ok(out)
}

/// The newest unfinished run folder of `s` that holds a checkpoint (said on stderr when none).
fn resumable(s: &Spec, opts: &RunOpts) -> Option<PathBuf> {
    let dirs = run_dirs(&opts.out, s);
    let d = dirs
        .iter()
        .rev()
        .find(|d| !is_finished(d) && d.join("checkpoint.safetensors").is_file());
    if d.is_none() {
        eprintln!(
            "odm: no unfinished run of {} to resume; starting a new one",
            s.name
        );
        say_abandoned(&dirs);
    }
    d.cloned()
}

/// Name the unfinished folders among `dirs` (none holds a checkpoint: stopped before their first
/// one): `--resume` cannot continue them and leaves them alone, since another process may be
/// writing.
fn say_abandoned(dirs: &[PathBuf]) {
    for d in dirs.iter().filter(|d| !is_finished(d)) {
        if let Some(f) = record::failure::Failure::read(d) {
            eprintln!(
                "odm: {} failed before its first checkpoint ({}); it stays as the record of that failure",
                d.display(),
                f.cause
            );
            continue;
        }
        eprintln!(
            "odm: {} is unfinished and has no checkpoint (stopped before its first one); delete it unless another odm is still writing it",
            d.display()
        );
    }
}

/// The closing lines: each set's PSNR against bicubic.
fn say_scores(s: &Spec, scores: &[SetScore], bic: &[SetScore]) {
    for (m, b) in scores.iter().zip(bic) {
        let d = m.psnr_y - b.psnr_y;
        let verdict = if d > 0.0 {
            "beats bicubic"
        } else {
            "does NOT beat bicubic"
        };
        eprintln!(
            "odm: {} ×{}: PSNR-Y {:.3} dB vs bicubic {:.3} dB ({d:+.3} dB): {verdict}",
            m.set, s.scale, m.psnr_y, b.psnr_y
        );
    }
}

/// After the last step: bicubic scores, activation statistics and cost, the result files,
/// the final provenance and the closing lines.
fn finish(
    dir: &Path,
    s: &Spec,
    out: &crate::train::Outcome,
    eval_sets: &[Arc<ImageSet>],
    prov: &mut Provenance,
) -> anyhow::Result<()> {
    let bic: Vec<SetScore> = eval_sets.iter().map(|e| bicubic(e)).collect();
    // Activation statistics and cost for `odm report` (the report never runs a model); they
    // are taken on the first evaluation set, so a spec without one has none.
    if !s.data.eval.is_empty() {
        super::inspect(dir, None)?;
    }
    write_results(dir, s, out, &bic)?;
    prov.finished = record::provenance::now();
    if let Some(seg) = prov.segments.last_mut() {
        let began = humantime::parse_rfc3339(&seg.started).ok();
        seg.wall_seconds = began
            .and_then(|b| std::time::SystemTime::now().duration_since(b).ok())
            .map_or(0.0, |d| d.as_secs_f64());
    }
    prov.wall_seconds = out.timing.wall_seconds;
    prov.timed_from_step = out.timing.from_step;
    prov.iterations = s.schedule.iterations;
    prov.iterations_per_second = out.timing.iterations_per_second();
    prov.patches_per_second = prov.iterations_per_second * s.data.batch_size as f64;
    atomic_write(
        &dir.join("provenance.json"),
        serde_json::to_string_pretty(prov)?.as_bytes(),
    )?;
    crate::train::timing::Timing::remove(dir);
    eprintln!(
        "odm: finished {} in {:.1} s ({:.2} it/s)",
        s.name, prov.wall_seconds, prov.iterations_per_second
    );
    say_scores(s, &out.final_scores, &bic);
    Ok(())
}

/// `spec.ron` as given, the effective spec and its canonical form.
fn write_specs(dir: &Path, source: &str, s: &Spec, canon: &str) -> anyhow::Result<()> {
    atomic_write(&dir.join("spec.ron"), source.as_bytes())?;
    atomic_write(&dir.join("spec.effective.ron"), pretty(s).as_bytes())?;
    atomic_write(&dir.join("spec.canonical.json"), canon.as_bytes())
}

/// The provenance of a resumed segment: the first segment's record (its start, initial weights
/// and data) with this segment appended, and the failure it recovers from moved in from
/// `failed.json`.
fn resumed_provenance(dir: &Path, now: Provenance, step: usize) -> anyhow::Result<Provenance> {
    let Some(mut prov) = Provenance::read(dir).ok() else {
        return Ok(Provenance {
            resumed: true,
            ..now
        });
    };
    let digest = record::provenance::data_digest(&now.data);
    let changed = record::provenance::data_difference(&prov.data, &now.data).is_some();
    prov.segments.push(record::provenance::Segment {
        started: now.started.clone(),
        from_step: step,
        git_commit: now.git_commit.clone(),
        git_dirty: now.git_dirty,
        build: now.build.clone(),
        wall_seconds: 0.0,
        threads: now.threads,
        device: now.device.clone(),
        data_sha256: digest,
        data_changed: if changed { now.data.clone() } else { vec![] },
        allowed_data_change: changed,
    });
    if let Some(f) = record::failure::Failure::read(dir) {
        prov.failures.push(f);
    }
    prov.resumed = true;
    prov.finished.clear();
    Ok(prov)
}

/// The iteration of the checkpoint in `dir`, if it holds a readable one.
fn checkpoint_step(dir: &Path) -> Option<usize> {
    let (_, meta) = record::read_safetensors(&dir.join("checkpoint.safetensors")).ok()?;
    meta.get("iteration")?.parse().ok()
}

/// How a resumed run starts: with the metrics recorded so far.
fn resume_start(dir: &Path) -> anyhow::Result<Start<'static>> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap_or_default();
    eprintln!("odm: resuming {}", dir.display());
    Ok(Start::Resume(if text.is_empty() {
        vec![]
    } else {
        record::parse_metrics(&text).map_err(|e| {
            user(format!(
                "{}: {e:#} (a damaged metrics file: restore it, or delete the run folder and run again)",
                dir.join("metrics.csv").display()
            ))
        })?
    }))
}

/// `--resume` continues only on the data the run started with: a changed, added or removed
/// image is a user error naming it, unless `--allow-data-change` (recorded in provenance).
fn check_same_data(
    dir: &Path,
    now: &[record::provenance::DataFolder],
    allow: bool,
) -> anyhow::Result<()> {
    let Some(was) = Provenance::read(dir).ok().map(|p| p.data) else {
        return Ok(());
    };
    match record::provenance::data_difference(&was, now) {
        Some(what) if !allow => Err(user(format!(
            "{}: the data changed since this run started: {what}; restore it, or pass --allow-data-change to continue on the new data (recorded in provenance.json)",
            dir.display()
        ))),
        Some(what) => {
            eprintln!("odm: --allow-data-change: continuing although {what}");
            Ok(())
        }
        None => Ok(()),
    }
}

/// `data.validation`: its images' positions in the training sets (which the sampler leaves
/// out), its evaluation set appended to `eval_sets` (its name must be new there).
fn validation_split(
    s: &Spec,
    train: &[Arc<ImageSet>],
    eval_sets: &mut Vec<Arc<ImageSet>>,
) -> anyhow::Result<Vec<(usize, usize)>> {
    let Some(list) = s.data.validation.as_ref().map(|p| resolve_path(p)) else {
        return Ok(vec![]);
    };
    let v = crate::data::split::validation(train, &list)?;
    if eval_sets.iter().any(|e| e.name == v.set.name) {
        return Err(user(format!(
            "{}: data.eval already has a set named {:?}; rename the list file",
            list.display(),
            v.set.name
        )));
    }
    crate::eval::check_evaluable(&v.set)?;
    eval_sets.push(v.set);
    Ok(v.held)
}

/// Everything a run needs, read and checked before its folder exists.
struct Prepared {
    picked: Picked,
    eval_sets: Vec<Arc<ImageSet>>,
    model: Model,
    sampler: Sampler,
    fingerprint: Vec<record::provenance::DataFolder>,
    canon: String,
    hash: String,
    /// The unfinished run to continue (`--resume`), if any.
    resume_dir: Option<PathBuf>,
    /// The initial weights of a fresh run and what loading them found.
    init: Option<InitWeights>,
    init_report: Option<crate::train::init::LoadReport>,
}

/// Check everything that can fail on input: device, data, model, eval names, initial weights.
fn prepare(origin: &Path, source: &str, s: &Spec, opts: &RunOpts) -> anyhow::Result<Prepared> {
    let picked = pick_device(origin, source, s, opts)?;
    let train_sets = load_sets(&s.data.train, s.scale)?;
    let mut eval_sets = load_eval_sets(&s.data.eval, s.scale)?;
    let held = validation_split(s, &train_sets, &mut eval_sets)?;
    let model = Model::from_spec(&s.model, s.scale);
    check_trainable(origin, source, s, &model)?;
    check_eval_names(origin, source, s, &eval_sets)?;
    let fingerprint = data_fingerprint(s)?;
    let sampler = Sampler::with_small(
        train_sets,
        s.scale,
        s.data.patch_size,
        s.data.batch_size,
        s.data.augment,
        model.rgb_range(),
        s.seed,
        s.data.skip_small,
    )?
    .without(&held)?;
    let (canon, hash) = canonical(s);
    let resume_dir = opts.resume.then(|| resumable(s, opts)).flatten();
    if let Some(d) = &resume_dir {
        // The checkpoint must be this spec's, and finite, before the folder is touched.
        let path = d.join("checkpoint.safetensors");
        let (ts, _) = record::read_safetensors(&path)?;
        crate::train::checkpoint::check_against(&path, &model, &ts)?;
        check_same_data(d, &fingerprint, opts.allow_data_change)?;
    }
    let init = match resume_dir {
        None => resolve_init(s, opts)?,
        Some(_) => None,
    };
    let init_report = init
        .as_ref()
        .map(|i| crate::train::init::read(&model, i).map(|r| r.1))
        .transpose()?;
    Ok(Prepared {
        picked,
        eval_sets,
        model,
        sampler,
        fingerprint,
        canon,
        hash,
        resume_dir,
        init,
        init_report,
    })
}

/// Run one spec: prepare, create (or reopen) and lock its folder, train, write the results.
/// A failure before training starts removes a fresh folder again; after that the folder is kept
/// with its last good checkpoint and `metrics.csv`, and `failed.json` says why, where and how to
/// continue (`resume`, the command that does).
fn run_one(
    origin: &Path,
    source: &str,
    s: &Spec,
    opts: &RunOpts,
    threads: usize,
    resume: &Continue,
) -> anyhow::Result<PathBuf> {
    if record::interrupt::requested() {
        return Err(anyhow::Error::new(Interrupted(format!(
            "interrupted before {} started; nothing written; continue with: {}",
            s.name, resume.all
        ))));
    }
    let mut p = prepare(origin, source, s, opts)?;
    let fresh = p.resume_dir.is_none();
    let dir = match &p.resume_dir {
        Some(d) => d.clone(),
        None => create_run_dir(&opts.out, &s.name, &p.hash)?,
    };
    let lock = match record::lock::RunLock::acquire(&dir) {
        Ok(l) => l,
        Err(e) => {
            if fresh {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e);
        }
    };
    let mut started = false;
    let r = execute(&dir, source, s, opts, threads, &mut p, &mut started);
    let outcome = match r {
        Ok(o) => o,
        Err(e) if fresh && !started => {
            drop(lock);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        Err(e) => return Err(failed(&dir, e, &resume.point)),
    };
    if let Some(step) = outcome {
        let kept = checkpoint_step(&dir);
        if fresh && kept.is_none() {
            drop(lock);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(anyhow::Error::new(Interrupted(format!(
                "interrupted before the first step of {}; nothing kept; continue with: {}",
                s.name, resume.all
            ))));
        }
        return Err(anyhow::Error::new(Interrupted(format!(
            "interrupted after iteration {step}; {} holds the checkpoint of iteration {}; continue with: {}",
            dir.display(),
            kept.unwrap_or(0),
            resume.all
        ))));
    }
    Ok(dir)
}

/// A run stopped by SIGTERM or SIGINT: one line saying where, and how to continue. `odm` exits
/// with code 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Record a failure after training started: `failed.json` (cause, step, time, the failing path,
/// the command that continues) and one line for the user naming all of it. A user error stays
/// one (exit code 2).
fn failed(dir: &Path, e: anyhow::Error, resume: &str) -> anyhow::Error {
    // anyhow's downcasts look through every context layer.
    let step = e.downcast_ref::<crate::train::AtStep>().map_or(0, |s| s.0);
    let write = e.downcast_ref::<record::WriteError>();
    let cause = format!("{e:#}");
    let ckpt = checkpoint_step(dir);
    let f = record::failure::Failure {
        cause: cause.clone(),
        step,
        checkpoint_step: ckpt,
        time: record::provenance::now(),
        path: write.map(|w| w.path.display().to_string()),
        resume: resume.to_string(),
    };
    let noted = match f.write(dir) {
        Ok(()) => format!("{} says why", dir.join(record::failure::FAILED).display()),
        Err(w) => format!("failed.json could not be written either: {w:#}"),
    };
    let next = match ckpt {
        Some(k) => format!(
            "kept {} with its checkpoint of iteration {k} and metrics.csv ({noted}); continue with: {resume}",
            dir.display()
        ),
        None => format!(
            "kept {} with metrics.csv and no checkpoint yet ({noted}); a rerun starts afresh: {}",
            dir.display(),
            resume.trim_end_matches(" --resume")
        ),
    };
    let msg = format!("{cause}; {next}");
    if e.downcast_ref::<crate::error::UserError>().is_some() {
        user(msg)
    } else {
        anyhow::anyhow!(msg)
    }
}

/// Train a prepared run in `dir` (fresh, or resumed from its checkpoint) and write its results.
/// `Ok(None)`: finished, or stopped early at `--stop-after`; `Ok(Some(step))`: interrupted by a
/// signal after `step`. `started` turns true once the folder holds more than the specs.
fn execute(
    dir: &Path,
    source: &str,
    s: &Spec,
    opts: &RunOpts,
    threads: usize,
    p: &mut Prepared,
    started: &mut bool,
) -> anyhow::Result<Option<usize>> {
    let mut prov = Provenance::start(threads, &p.picked.describe(threads), s.seed, &p.hash);
    prov.gpu = p.picked.gpu();
    prov.data = p.fingerprint.clone();
    let start = if p.resume_dir.is_none() {
        write_specs(dir, source, s, &p.canon)?;
        if let Some(i) = &p.init {
            prov.init_from = i.path.display().to_string();
            if let Some(r) = &p.init_report {
                eprint!("{}", r.describe());
            }
            prov.init = p.init_report.clone();
        }
        Start::Fresh(p.init.as_ref())
    } else {
        *started = true;
        record::remove_stale_temps(dir)?;
        prov = resumed_provenance(dir, prov, checkpoint_step(dir).unwrap_or(0))?;
        resume_start(dir)?
    };
    atomic_write(
        &dir.join("provenance.json"),
        serde_json::to_string_pretty(&prov)?.as_bytes(),
    )?;
    // The failure is in provenance now; the folder is a live run again.
    let _ = std::fs::remove_file(dir.join(record::failure::FAILED));
    *started = true;
    eprintln!(
        "odm: run {} ({} parameters, {} training images, {} threads) -> {}",
        s.name,
        p.model.param_count(),
        p.sampler.len(),
        threads,
        dir.display()
    );
    if let Some(g) = prov.gpu.as_ref() {
        eprintln!("odm: device {}", g.describe());
    }
    let out = with_backend!(&p.picked, |AB, dev| crate::train::train::<AB>(
        s,
        &p.model,
        &mut p.sampler,
        &p.eval_sets,
        dir,
        &dev,
        start,
        crate::train::Stop {
            after_checkpoint: opts.stop_after,
            at: opts.until,
        },
        opts.progress,
    ))?;
    if out.interrupted {
        return Ok(Some(out.step));
    }
    if !out.finished {
        eprintln!(
            "odm: stopped after iteration {}; continue with --resume",
            out.step
        );
        return Ok(None);
    }
    finish(dir, s, &out, &p.eval_sets, &mut prov)
        .map_err(|e| e.context(crate::train::AtStep(out.step)))?;
    Ok(None)
}

fn write_results(
    dir: &Path,
    s: &Spec,
    out: &crate::train::Outcome,
    bic: &[SetScore],
) -> anyhow::Result<()> {
    // RFC 4180 quoting where a set or image name needs it; floats in shortest round-trip form.
    let per = record::csv_text(
        &[
            "set",
            "image",
            "psnr_y",
            "ssim_y",
            "bicubic_psnr_y",
            "bicubic_ssim_y",
        ],
        out.final_scores.iter().zip(bic).flat_map(|(m, b)| {
            m.per_image.iter().zip(&b.per_image).map(|(pm, pb)| {
                [
                    m.set.clone(),
                    pm.image.clone(),
                    pm.psnr_y.to_string(),
                    pm.ssim_y.to_string(),
                    pb.psnr_y.to_string(),
                    pb.ssim_y.to_string(),
                ]
            })
        }),
    );
    atomic_write(&dir.join("per_image.csv"), per.as_bytes())?;
    let eval = out
        .final_scores
        .iter()
        .zip(bic)
        .map(|(m, b)| record::SetSummary {
            bicubic_psnr_y: b.psnr_y,
            bicubic_ssim_y: b.ssim_y,
            images: m.images,
            psnr_y: m.psnr_y,
            scale: m.scale,
            set: m.set.clone(),
            ssim_y: m.ssim_y,
        })
        .collect();
    record::Summary {
        eval,
        final_loss: out.final_loss,
        iterations: s.schedule.iterations,
        name: s.name.clone(),
    }
    .write(dir)
}
