//! The CLI's subcommands, as library functions (so tests can call them too).

use crate::backend::{pick, with_backend, Cpu};
use crate::data::{load_set, ImageSet};
use crate::error::user;
use crate::eval::{bicubic, evaluate_with, SetScore};
use crate::models::{Model, Params};
use crate::quant::QuantPlan;
use crate::record;
use crate::spec::{self, resolve_path, Device, Spec};
use burn::tensor::backend::{AutodiffBackend, Backend};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod export;
pub mod infer;
pub mod reproduce;
mod run;
mod save;
pub use save::SaveSr;
pub mod stdout;
pub mod sweep;

pub use run::{is_finished, list, parse_points, run, run_dirs, state_of, Interrupted, RunOpts};

type Inner<AB> = <AB as AutodiffBackend>::InnerBackend;

/// Fields added to the spec after results were first recorded. At their default they are left
/// out of the canonical form, so adding a field never changes the hash (and folder) of a spec
/// that does not use it.
const LATE_FIELDS: [&str; 3] = ["regularizer", "gating", "offsets"];

/// The canonical form of an effective spec (sorted-key JSON) and its short hash.
pub fn canonical(spec: &Spec) -> (String, String) {
    let mut v = serde_json::to_value(spec).expect("spec serializes");
    let defaults = serde_json::json!({
        "regularizer": crate::spec::Regularizer::default(),
        "gating": crate::spec::Gating::default(),
        "offsets": crate::spec::OffsetPolicy::default(),
    });
    if let Some(obj) = v.as_object_mut() {
        for f in LATE_FIELDS {
            if obj.get(f) == defaults.get(f) {
                obj.remove(f);
            }
        }
    }
    let s = serde_json::to_string(&v).expect("json");
    let h = record::short_hash(s.as_bytes());
    (s, h)
}

/// Pretty RON of a spec.
pub fn pretty(spec: &Spec) -> String {
    spec::load::ron_options()
        .to_string_pretty(spec, ron::ser::PrettyConfig::default())
        .expect("spec to ron")
}

/// `odm check`: validate (with `--set` overrides applied) and print the effective spec(s).
pub fn check(path: &Path, overrides: &[String]) -> anyhow::Result<String> {
    let loaded = spec::load_file_with(path, overrides)?;
    let mut out = String::new();
    for s in &loaded.runs {
        let (_, h) = canonical(s);
        let m = Model::from_spec(&s.model, s.scale);
        out.push_str(&format!(
            "// run {}-{h}: {} parameters\n{}\n",
            s.name,
            m.param_count(),
            pretty(s)
        ));
    }
    out.push_str(&format!(
        "// {}: OK, {} run(s)\n",
        path.display(),
        loaded.runs.len()
    ));
    Ok(out)
}

/// The sets of `dirs`, each under a unique name ([`crate::data::unique_set_names`]).
fn load_sets(dirs: &[PathBuf], scale: usize) -> anyhow::Result<Vec<Arc<ImageSet>>> {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| resolve_path(d)).collect();
    let names = crate::data::unique_set_names(&dirs)?;
    dirs.iter()
        .zip(&names)
        .map(|(d, n)| crate::data::load_set_as(d, scale, n))
        .collect()
}

/// Evaluation sets: loaded, and every image large enough for the protocol.
fn load_eval_sets(dirs: &[PathBuf], scale: usize) -> anyhow::Result<Vec<Arc<ImageSet>>> {
    let sets = load_sets(dirs, scale)?;
    for s in &sets {
        crate::eval::check_evaluable(s)?;
    }
    Ok(sets)
}

/// `odm table`: mean ± std over seeds of the finished runs of a spec file.
pub fn table(path: &Path, out: &Path, overrides: &[String]) -> anyhow::Result<String> {
    let loaded = spec::load_file_with(path, overrides)?;
    let mut runs = Vec::new();
    let mut missing = Vec::new();
    for s in &loaded.runs {
        match run_dirs(out, s).into_iter().rev().find(|d| is_finished(d)) {
            Some(d) => runs.push((s.name.clone(), crate::report::read_summary(&d)?)),
            None => missing.push(s.name.clone()),
        }
    }
    let mut t = crate::report::seed_table(&runs);
    if !missing.is_empty() {
        t.push_str(&format!(
            "\n{} run(s) not finished: {}\n",
            missing.len(),
            missing.join(", ")
        ));
    }
    Ok(t)
}

/// Load a finished (or checkpointed) run: its effective spec, model, quantization plan and
/// parameters (weights, quantizer bounds, buffers) on `device`. Checkpoints hold host data, so a
/// run trained on one device loads on any other.
pub fn load_run<B: Backend>(
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<(Spec, Model, QuantPlan, Params<B>)> {
    let spec_path = run_dir.join("spec.effective.ron");
    let text = std::fs::read_to_string(&spec_path).map_err(|e| {
        user(format!(
            "{}: cannot read ({e}); name a finished run folder, results/<name>-<hash>",
            spec_path.display()
        ))
    })?;
    let s = spec::load::parse_str(&spec_path.display().to_string(), &text)?;
    let model = Model::from_spec(&s.model, s.scale);
    if !run_dir.join("checkpoint.safetensors").is_file() {
        return Err(user(format!(
            "{}: no checkpoint.safetensors in this run folder",
            run_dir.display()
        )));
    }
    let (params, _, _) = crate::train::checkpoint::checkpoint_params::<B>(run_dir, &model, device)?;
    let plan = crate::train::checkpoint::restore_plan(&s, &model, &params);
    Ok((s, model, plan, params))
}

/// `odm eval`: evaluate a run's checkpoint on benchmark folders, on `device` (`--device`).
///
/// `save`: `--save-sr DIR` and whether `--save-lr` (see [`SaveSr`]). `tile`: super-resolve in
/// tiles of that many LR pixels (bit-identical; bounds the memory of large images), 1 to
/// `spec::limits::MAX_SIDE`, checked before anything is read or written.
pub fn eval(
    run_dir: &Path,
    data: &[PathBuf],
    threads: Option<usize>,
    device: Device,
    save: Option<(&Path, bool)>,
    tile: Option<usize>,
) -> anyhow::Result<Vec<SetScore>> {
    let max = crate::spec::limits::MAX_SIDE;
    if let Some(t) = tile.filter(|t| !(1..=max).contains(t)) {
        return Err(user(format!(
            "--tile {t}: a tile is 1 to {max} LR pixels on a side; use e.g. --tile 256, or leave it out to run whole images"
        )));
    }
    crate::backend::set_threads(threads);
    let picked = pick(device).map_err(|m| user(format!("--device: {m}; use --device cpu")))?;
    let save = save.map(|(o, lr)| SaveSr::new(o, lr)).transpose()?;
    let scores = with_backend!(&picked, |AB, dev| {
        let (s, model, plan, params) = load_run::<Inner<AB>>(run_dir, &dev)?;
        let sets = load_eval_sets(data, s.scale)?;
        sets.iter()
            .map(|set| {
                let mut sink = |name: &str, sr: &crate::data::RgbImage| match &save {
                    Some(w) => w.write(set, name, sr),
                    None => Ok(()),
                };
                evaluate_with(&model, &params, &plan, set, tile, &dev, &mut sink)
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    if let Some(w) = save {
        w.finish()?;
    }
    Ok(scores)
}

/// `odm bicubic`: the bicubic baseline of a folder.
pub fn bicubic_cmd(data: &Path, scale: usize) -> anyhow::Result<SetScore> {
    if !matches!(scale, 2..=4) {
        return Err(user(format!(
            "--scale {scale} is not supported; allowed values: 2, 3, 4"
        )));
    }
    let set = load_set(data, scale)?;
    crate::eval::check_evaluable(&set)?;
    Ok(bicubic(&set))
}

/// One line of human-readable output for a set score.
pub fn describe(s: &SetScore) -> String {
    format!(
        "{} ×{}: {} images, PSNR-Y {:.3} dB, SSIM-Y {:.4}",
        s.set, s.scale, s.images, s.psnr_y, s.ssim_y
    )
}

/// `odm cost`: per-layer MACs, BitOPs and storage at LR `w`×`h`, of each run of a spec file or
/// of a run folder (whose checkpoint tells which layers carry offsets).
pub fn cost(
    path: &Path,
    w: usize,
    h: usize,
) -> anyhow::Result<Vec<(String, crate::quant::cost::CostReport)>> {
    if path.is_dir() {
        let (s, model, plan, _) = load_run::<Cpu>(path, &Default::default())?;
        return Ok(vec![(
            s.name.clone(),
            crate::quant::cost::cost(&model, &plan, w, h),
        )]);
    }
    let loaded = spec::load_file_fields(path)?;
    Ok(loaded
        .runs
        .iter()
        .map(|s| {
            let model = Model::from_spec(&s.model, s.scale);
            let mut plan = QuantPlan::from_spec(&s.quant, &model);
            // Offsets known without calibration data (the All* policies).
            let (sc, sh) = match s.offsets {
                crate::spec::OffsetPolicy::AllScale => (true, false),
                crate::spec::OffsetPolicy::AllShift => (false, true),
                crate::spec::OffsetPolicy::AllBoth => (true, true),
                _ => (false, false),
            };
            for (_, l) in plan.layers.iter_mut().filter(|(_, l)| l.has_act()) {
                l.scale = sc;
                l.shift = sh;
            }
            // DDTB's gated points are chosen at calibration; without data, the widest.
            let exact = match s.quant.dynamic(&s.model, s.schedule.iterations) {
                Some((ratio, _)) => crate::quant::cost::mark_widest(&mut plan, ratio),
                None => true,
            };
            (
                s.name.clone(),
                crate::quant::cost::cost_with(&model, &plan, w, h, exact),
            )
        })
        .collect())
}

/// LR input size of the cost table: a 1280×720 output at the run's scale (the papers' BitOPs
/// convention), e.g. 320×180 at ×4.
pub fn cost_size(scale: usize) -> (usize, usize) {
    (1280 / scale, 720 / scale)
}

/// Write `cost.json` (see `quant::cost`) and `activations.json` (see `eval::inspect`) into a run
/// folder, from its checkpoint, on the spec's first evaluation set. With `data` (another folder),
/// the statistics go beside the run's own files, never over them: `activations-<set>.json`, and
/// no `cost.json`. Returns the activation statistics and the file written.
pub fn inspect(
    run_dir: &Path,
    data: Option<&Path>,
) -> anyhow::Result<(crate::eval::inspect::ActStats, PathBuf)> {
    let (s, model, plan, params) = load_run::<Cpu>(run_dir, &Default::default())?;
    let dir = match data {
        Some(d) => d.to_path_buf(),
        None => s.data.eval.first().cloned().ok_or_else(|| {
            user(format!(
                "{}: the spec has no evaluation set; pass --data DIR",
                run_dir.display()
            ))
        })?,
    };
    let set = load_set(&resolve_path(&dir), s.scale)?;
    let stats = crate::eval::inspect::inspect(&model, &params, &plan, &set, &Default::default());
    let out = match data {
        None => {
            let (w, h) = cost_size(s.scale);
            let cost = crate::quant::cost::cost(&model, &plan, w, h);
            crate::record::atomic_write(
                &run_dir.join("cost.json"),
                serde_json::to_string_pretty(&cost)?.as_bytes(),
            )?;
            run_dir.join("activations.json")
        }
        Some(_) => {
            let safe: String = set
                .name
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            run_dir.join(format!("activations-{safe}.json"))
        }
    };
    crate::record::atomic_write(&out, serde_json::to_string(&stats)?.as_bytes())?;
    Ok((stats, out))
}
