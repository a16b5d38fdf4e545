//! Initial weights: a run folder or `.safetensors` file (our names), or a PyTorch checkpoint
//! (EDSR-PyTorch keys through [`Model::pytorch_key`]) whose state dict may sit under a dotted key
//! and carry a prefix to strip, as BasicSR's `param_key` and `strict_load` do. Every load is
//! reported: which declared parameters were loaded, which stay at their initial values (allowed
//! only when not strict) and which keys of the file were not used.

use crate::error::user;
use crate::models::Model;
pub use crate::record::provenance::LoadReport;
use crate::record::{self, NamedTensor};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where initial weights come from.
#[derive(Clone, Debug, PartialEq)]
pub struct InitWeights {
    pub path: PathBuf,
    /// Dotted key of the state dict inside a PyTorch checkpoint (e.g. `model.sd`).
    pub key: Option<String>,
    /// Prefix removed from the state dict's keys (e.g. `encoder.`).
    pub strip_prefix: Option<String>,
    /// Every declared trainable parameter must be present.
    pub strict: bool,
    /// Rescale the loaded network's features by this factor (`models::rescale`).
    pub feature_scale: Option<f64>,
    /// The input normalisation the weights were trained with, converted exactly into the
    /// model's (`models::rescale::recentre`).
    pub from_input_norm: Option<crate::spec::InputNorm>,
}

impl InitWeights {
    /// A strict load of a run folder, `.safetensors` or `.pt` file.
    pub fn plain(path: PathBuf) -> Self {
        Self {
            path,
            key: None,
            strip_prefix: None,
            strict: true,
            feature_scale: None,
            from_input_norm: None,
        }
    }
}

/// The weights file of a run folder or file path.
fn weights_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("checkpoint.safetensors")
    } else {
        path.to_path_buf()
    }
}

/// All tensors of a PyTorch checkpoint under `key`, with `prefix` stripped (keys without the
/// prefix are dropped).
fn pytorch_tensors(
    file: &Path,
    key: Option<&str>,
    prefix: Option<&str>,
) -> anyhow::Result<BTreeMap<String, NamedTensor>> {
    let err = |e: String| user(format!("{}: {e}", file.display()));
    let (top, rest) = match key {
        Some(k) => match k.split_once('.') {
            Some((t, r)) => (Some(t), format!("{r}.")),
            None => (Some(k), String::new()),
        },
        None => (None, String::new()),
    };
    let reader = match top {
        Some(t) => burn_store::pytorch::PytorchReader::with_top_level_key(file, t),
        None => burn_store::pytorch::PytorchReader::new(file),
    }
    .map_err(|e| {
        err(format!(
            "cannot read PyTorch file (init_from key {key:?}): {e}"
        ))
    })?;
    let mut out = BTreeMap::new();
    for (name, t) in reader.tensors() {
        let Some(k) = name.strip_prefix(rest.as_str()) else {
            continue;
        };
        // Keys with the prefix lose it; others keep their name (and are reported as unused
        // unless a parameter has that very name), as BasicSR's prefix removal does.
        let k = k.strip_prefix(prefix.unwrap_or("")).unwrap_or(k);
        let data = t
            .to_data()
            .map_err(|e| err(format!("tensor {name}: {e:?}")))?
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| err(format!("tensor {name}: {e:?}")))?;
        out.insert(
            k.to_string(),
            NamedTensor {
                name: k.to_string(),
                shape: t.shape.to_vec(),
                data,
            },
        );
    }
    if out.is_empty() {
        return Err(err(format!(
            "no tensors under key {key:?} with prefix {prefix:?} (fix init_from's key or strip_prefix)"
        )));
    }
    Ok(out)
}

/// The model's declared parameters found in `init` (by our name), and the load report. A shape
/// mismatch is an error naming the key; so is a missing trainable parameter when strict.
pub fn read(
    model: &Model,
    init: &InitWeights,
) -> anyhow::Result<(HashMap<String, NamedTensor>, LoadReport)> {
    let file = weights_file(&init.path);
    if !file.is_file() {
        return Err(user(format!("{}: no checkpoint found", file.display())));
    }
    let bytes = std::fs::read(&file)?;
    let sha256 = record::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let ext = file
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let torch = ext == "pt" || ext == "pth";
    let mut all: BTreeMap<String, NamedTensor> = if torch {
        pytorch_tensors(&file, init.key.as_deref(), init.strip_prefix.as_deref())?
    } else {
        let (ts, _) = record::read_safetensors(&file)?;
        let p = init.strip_prefix.as_deref().unwrap_or("");
        ts.into_iter()
            .filter_map(|t| {
                let k = t.name.strip_prefix(p)?.to_string();
                Some((k.clone(), NamedTensor { name: k, ..t }))
            })
            .collect()
    };
    let mut found = HashMap::new();
    let mut report = LoadReport {
        sha256,
        ..Default::default()
    };
    for d in model.decls() {
        let key = if torch {
            model.pytorch_key(&d.name)
        } else {
            d.name.clone()
        };
        match all.remove(&key) {
            Some(t) if t.data.len() == d.shape.iter().product::<usize>() => {
                report.loaded.push(d.name.clone());
                found.insert(d.name.clone(), t);
            }
            Some(t) => {
                return Err(user(format!(
                    "{}: tensor {key} has shape {:?}, the model's {} needs {:?} (check model and scale)",
                    file.display(),
                    t.shape,
                    d.name,
                    d.shape
                )))
            }
            None if d.buffer => {}
            None if init.strict => {
                return Err(user(format!(
                    "{}: tensor {key} (for {}) is missing (check model and scale, or set init_from strict: false)",
                    file.display(),
                    d.name
                )))
            }
            None => report.left_at_init.push(d.name.clone()),
        }
    }
    if let Some(n) = report
        .loaded
        .iter()
        .find(|n| found[*n].data.iter().any(|v| !v.is_finite()))
    {
        return Err(user(format!(
            "{}: tensor for {n} holds non-finite values (NaN or infinity); start from other weights",
            file.display()
        )));
    }
    // Our own checkpoints also hold quantizer state and Adam moments: not "unused" weights.
    report.unused = all
        .into_keys()
        .filter(|k| torch || !(k.starts_with("adam.") || k.starts_with("teacher.")))
        .collect();
    Ok((found, report))
}
