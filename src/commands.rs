//! The CLI's subcommands, as library functions (so tests can call them too).

use crate::backend::{cpu_device_string, Cpu, CpuTrain};
use crate::data::{load_set, ImageSet, Sampler};
use crate::error::user;
use crate::eval::{bicubic, evaluate, SetScore};
use crate::models::{Model, Params};
use crate::record::{self, atomic_write, create_run_dir, Provenance};
use crate::spec::{self, resolve_path, Spec};
use anyhow::Context;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The canonical form of an effective spec (sorted-key JSON) and its short hash.
pub fn canonical(spec: &Spec) -> (String, String) {
    let v = serde_json::to_value(spec).expect("spec serializes");
    let s = serde_json::to_string(&v).expect("json");
    let h = record::short_hash(s.as_bytes());
    (s, h)
}

/// Pretty RON of a spec.
pub fn pretty(spec: &Spec) -> String {
    ron::ser::to_string_pretty(spec, ron::ser::PrettyConfig::default()).expect("spec to ron")
}

/// `odm check`: validate and print the effective spec(s).
pub fn check(path: &Path) -> anyhow::Result<String> {
    let loaded = spec::load_file(path)?;
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

fn load_sets(dirs: &[PathBuf], scale: usize) -> anyhow::Result<Vec<Arc<ImageSet>>> {
    dirs.iter()
        .map(|d| load_set(&resolve_path(d), scale))
        .collect()
}

/// Options of `odm run`.
pub struct RunOpts {
    pub out: PathBuf,
    pub threads: Option<usize>,
    pub progress: bool,
}

/// `odm run`: run every point of a spec file; returns the run folders.
pub fn run(path: &Path, opts: &RunOpts) -> anyhow::Result<Vec<PathBuf>> {
    let loaded = spec::load_file(path)?;
    let threads = crate::backend::set_threads(opts.threads);
    let mut dirs = Vec::new();
    for s in &loaded.runs {
        dirs.push(run_one(&loaded.source, s, opts, threads)?);
    }
    Ok(dirs)
}

fn run_one(source: &str, s: &Spec, opts: &RunOpts, threads: usize) -> anyhow::Result<PathBuf> {
    // Everything that can fail on input is checked before the run folder exists.
    let train_sets = load_sets(&s.data.train, s.scale)?;
    let eval_sets = load_sets(&s.data.eval, s.scale)?;
    let model = Model::from_spec(&s.model, s.scale);
    let mut sampler = Sampler::new(
        train_sets,
        s.scale,
        s.data.patch_size,
        s.data.batch_size,
        s.data.augment,
        model.rgb_range(),
        s.seed,
    )?;
    let (canon, hash) = canonical(s);
    let dir = create_run_dir(&opts.out, &s.name, &hash)?;
    let result = (|| -> anyhow::Result<()> {
        atomic_write(&dir.join("spec.ron"), source.as_bytes())?;
        atomic_write(&dir.join("spec.effective.ron"), pretty(s).as_bytes())?;
        atomic_write(&dir.join("spec.canonical.json"), canon.as_bytes())?;
        let device_name = cpu_device_string(threads);
        let mut prov = Provenance::start(threads, &device_name, s.seed, &hash);
        atomic_write(
            &dir.join("provenance.json"),
            serde_json::to_string_pretty(&prov)?.as_bytes(),
        )?;
        eprintln!(
            "odm: run {} ({} parameters, {} training images, {} threads) -> {}",
            s.name,
            model.param_count(),
            sampler.len(),
            threads,
            dir.display()
        );
        let out = crate::train::train::<CpuTrain>(
            s,
            &model,
            &mut sampler,
            &eval_sets,
            &dir,
            &Default::default(),
            opts.progress,
        )?;
        let bic: Vec<SetScore> = eval_sets.iter().map(|e| bicubic(e)).collect();
        write_results(&dir, s, &out, &bic)?;
        prov.finished = record::provenance::now();
        prov.wall_seconds = out.wall_seconds;
        prov.iterations = s.schedule.iterations;
        prov.iterations_per_second = s.schedule.iterations as f64 / out.train_seconds.max(1e-9);
        prov.patches_per_second = prov.iterations_per_second * s.data.batch_size as f64;
        atomic_write(
            &dir.join("provenance.json"),
            serde_json::to_string_pretty(&prov)?.as_bytes(),
        )?;
        eprintln!(
            "odm: finished {} in {:.1} s ({:.2} it/s)",
            s.name, out.wall_seconds, prov.iterations_per_second
        );
        for (m, b) in out.final_scores.iter().zip(&bic) {
            let d = m.psnr_y - b.psnr_y;
            eprintln!(
                "odm: {} ×{}: PSNR-Y {:.3} dB vs bicubic {:.3} dB ({:+.3} dB): {}",
                m.set,
                s.scale,
                m.psnr_y,
                b.psnr_y,
                d,
                if d > 0.0 {
                    "beats bicubic"
                } else {
                    "does NOT beat bicubic"
                }
            );
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(dir)
}

fn write_results(
    dir: &Path,
    s: &Spec,
    out: &crate::train::Outcome,
    bic: &[SetScore],
) -> anyhow::Result<()> {
    let mut per = String::from("set,image,psnr_y,ssim_y,bicubic_psnr_y,bicubic_ssim_y\n");
    for (m, b) in out.final_scores.iter().zip(bic) {
        for (pm, pb) in m.per_image.iter().zip(&b.per_image) {
            per.push_str(&format!(
                "{},{},{},{},{},{}\n",
                m.set, pm.image, pm.psnr_y, pm.ssim_y, pb.psnr_y, pb.ssim_y
            ));
        }
    }
    atomic_write(&dir.join("per_image.csv"), per.as_bytes())?;
    let sets: Vec<_> = out
        .final_scores
        .iter()
        .zip(bic)
        .map(|(m, b)| {
            json!({"set": m.set, "scale": m.scale, "images": m.images, "psnr_y": m.psnr_y,
                   "ssim_y": m.ssim_y, "bicubic_psnr_y": b.psnr_y, "bicubic_ssim_y": b.ssim_y})
        })
        .collect();
    let summary = json!({
        "name": s.name,
        "iterations": s.schedule.iterations,
        "final_loss": out.losses.last(),
        "eval": sets,
    });
    atomic_write(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )
}

/// Load a finished (or checkpointed) run: its effective spec, model and weights.
pub fn load_run(run_dir: &Path) -> anyhow::Result<(Spec, Model, Params<Cpu>)> {
    let spec_path = run_dir.join("spec.effective.ron");
    let text = std::fs::read_to_string(&spec_path).map_err(|e| {
        user(format!(
            "{}: cannot read ({e}); --checkpoint must name a run folder under results/",
            spec_path.display()
        ))
    })?;
    let s = spec::load::parse_str(&spec_path.display().to_string(), &text)?;
    let model = Model::from_spec(&s.model, s.scale);
    let ck = run_dir.join("checkpoint.safetensors");
    if !ck.exists() {
        return Err(user(format!(
            "{}: no checkpoint in this run folder",
            ck.display()
        )));
    }
    let (tensors, _) =
        record::read_safetensors(&ck).with_context(|| format!("loading {}", ck.display()))?;
    let by_name: std::collections::HashMap<_, _> =
        tensors.into_iter().map(|t| (t.name.clone(), t)).collect();
    let decls = model.decls();
    let mut values = Vec::new();
    for d in &decls {
        let t = by_name
            .get(&d.name)
            .ok_or_else(|| user(format!("{}: tensor {} is missing", ck.display(), d.name)))?;
        if t.shape != d.shape {
            return Err(user(format!(
                "{}: tensor {} has shape {:?}, the spec's model needs {:?}",
                ck.display(),
                d.name,
                t.shape,
                d.shape
            )));
        }
        values.push(t.data.clone());
    }
    let params = Params::from_host(
        decls.iter().map(|d| d.name.clone()).collect(),
        decls.iter().map(|d| d.shape.clone()).collect(),
        values,
        &Default::default(),
    );
    Ok((s, model, params))
}

/// `odm eval`: evaluate a run's checkpoint on benchmark folders.
pub fn eval(
    run_dir: &Path,
    data: &[PathBuf],
    threads: Option<usize>,
) -> anyhow::Result<Vec<SetScore>> {
    crate::backend::set_threads(threads);
    let (s, model, params) = load_run(run_dir)?;
    let sets = load_sets(data, s.scale)?;
    Ok(sets
        .iter()
        .map(|set| evaluate(&model, &params, set, &Default::default()))
        .collect())
}

/// `odm bicubic`: the bicubic baseline of a folder.
pub fn bicubic_cmd(data: &Path, scale: usize) -> anyhow::Result<SetScore> {
    if !matches!(scale, 2..=4) {
        return Err(user(format!(
            "--scale {scale} is not supported; allowed values: 2, 3, 4"
        )));
    }
    Ok(bicubic(&*load_set(data, scale)?))
}

/// One line of human-readable output for a set score.
pub fn describe(s: &SetScore) -> String {
    format!(
        "{} ×{}: {} images, PSNR-Y {:.3} dB, SSIM-Y {:.4}",
        s.set, s.scale, s.images, s.psnr_y, s.ssim_y
    )
}
