//! `odm export`: write a run as ONNX ([`onnx`], `--onnx`), or publish a finished FP run as a weights-only `.safetensors` file for `zoo/`
//! (DEVELOPERS.md: at most 8 MB, with its SHA-256, the spec that made it and its scores), so
//! that a QAT experiment starts from it in seconds (`init_from: Checkpoint("zoo/<name>.safetensors")`).

use crate::error::user;
use crate::models::Model;
use crate::record::{self, NamedTensor};
use crate::spec::{self, QuantSpec};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The zoo's size limit per file.
pub const ZOO_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Write `out` (weights only: the model's declared parameters and buffers) and `out` with the
/// extension `.json` (file name, SHA-256, bytes, the run, its spec and its final scores). Both
/// must not exist yet. Returns the two paths.
pub fn export(run_dir: &Path, out: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let sidecar = out.with_extension("json");
    for p in [out, sidecar.as_path()] {
        if p.exists() {
            return Err(user(format!(
                "{}: exists; zoo files are never overwritten (choose another --out)",
                p.display()
            )));
        }
    }
    let read = |name: &str| {
        std::fs::read_to_string(run_dir.join(name)).map_err(|e| {
            user(format!(
                "{}: cannot read ({e}); export takes a finished run folder",
                run_dir.join(name).display()
            ))
        })
    };
    let (spec_text, effective) = (read("spec.ron")?, read("spec.effective.ron")?);
    let summary = record::Summary::read(run_dir)?;
    let s = spec::load::parse_str(
        &run_dir.join("spec.effective.ron").display().to_string(),
        &effective,
    )?;
    if s.quant != QuantSpec::Fp {
        return Err(user(format!(
            "{}: a quantized run; the zoo publishes FP models that QAT starts from",
            run_dir.display()
        )));
    }
    let model = Model::from_spec(&s.model, s.scale);
    let ckpt = run_dir.join("checkpoint.safetensors");
    let (all, _) = record::read_safetensors(&ckpt)?;
    crate::train::checkpoint::check_against(&ckpt, &model, &all)?;
    let by: BTreeMap<&str, &NamedTensor> = all.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut tensors = Vec::new();
    for d in model.decls() {
        let t = by.get(d.name.as_str()).ok_or_else(|| {
            user(format!(
                "{}: checkpoint lacks {}",
                run_dir.display(),
                d.name
            ))
        })?;
        tensors.push((*t).clone());
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".to_string(), "odm-weights-1".to_string());
    meta.insert("spec".to_string(), effective.clone());
    let bytes = record::checkpoint::to_bytes(&tensors, &meta);
    if bytes.len() > ZOO_MAX_BYTES {
        return Err(user(format!(
            "{}: {} bytes, over the zoo's 8 MB",
            out.display(),
            bytes.len()
        )));
    }
    let sha = record::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let card = serde_json::json!({
        "file": out.file_name().map(|f| f.to_string_lossy().to_string()),
        "sha256": sha,
        "bytes": bytes.len(),
        "run": run_dir.file_name().map(|f| f.to_string_lossy().to_string()),
        "spec": spec_text,
        "scores": summary.eval,
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    record::atomic_write(out, &bytes)?;
    record::atomic_write(&sidecar, serde_json::to_string_pretty(&card)?.as_bytes())?;
    Ok((out.to_path_buf(), sidecar))
}

/// `odm export RUN_DIR --onnx FILE`: the run's checkpoint as an ONNX graph in QDQ form
/// (`crate::export`). The file must not exist yet. Returns its size and the number of convs
/// with quantized weights.
pub fn onnx(run_dir: &Path, out: &Path) -> anyhow::Result<(usize, usize)> {
    if out.exists() {
        return Err(user(format!(
            "{}: exists; choose another --onnx file (earlier results are never overwritten)",
            out.display()
        )));
    }
    let (s, model, plan, params) =
        super::load_run::<crate::backend::Cpu>(run_dir, &Default::default())?;
    let meta = [
        ("odm.run", s.name.clone()),
        ("odm.preset", s.quant.label().to_string()),
        ("odm.scale", s.scale.to_string()),
        (
            "odm.spec_hash",
            crate::digest::short_hash(&serde_json::to_vec(&s)?),
        ),
    ];
    let bytes = crate::export::onnx(&model, &params, &plan, &meta).map_err(|e| {
        match e.downcast_ref::<crate::error::UserError>() {
            Some(u) => user(format!("{}: {u}", run_dir.display())),
            None => e,
        }
    })?;
    record::atomic_write(out, &bytes)?;
    Ok((bytes.len(), plan.weight_count()))
}
