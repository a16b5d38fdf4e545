//! Checkpoints in the safetensors format (an 8-byte little-endian header length, a JSON header
//! `{name: {dtype, shape, data_offsets}, "__metadata__": {..}}`, then raw little-endian data),
//! so they open in Python with `safetensors.torch.load_file`. Tensors are written in the given
//! order and the header's keys are sorted, so equal states give equal bytes.

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A named f32 tensor on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Serialize tensors and string metadata to safetensors bytes.
pub fn to_bytes(tensors: &[NamedTensor], metadata: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = Map::new();
    let mut off = 0usize;
    for t in tensors {
        let n = t.data.len() * 4;
        header.insert(
            t.name.clone(),
            json!({"dtype": "F32", "shape": t.shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    if !metadata.is_empty() {
        header.insert("__metadata__".into(), json!(metadata));
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).expect("header json");
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + h.len() + off);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    for t in tensors {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Write a checkpoint atomically.
pub fn write_safetensors(
    path: &Path,
    tensors: &[NamedTensor],
    metadata: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    super::atomic_write(path, &to_bytes(tensors, metadata))
}

/// Read a safetensors file (F32 tensors only), tensors sorted by data offset. A missing,
/// truncated or malformed file is a user error naming the file.
pub fn read_safetensors(
    path: &Path,
) -> anyhow::Result<(Vec<NamedTensor>, BTreeMap<String, String>)> {
    read_inner(path).map_err(|e| {
        crate::error::user(format!(
            "{e:#} (a missing, damaged or foreign file: replace it, or delete the run folder and run again)"
        ))
    })
}

fn read_inner(path: &Path) -> anyhow::Result<(Vec<NamedTensor>, BTreeMap<String, String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() < 8 {
        bail!("{}: not a safetensors file (too short)", path.display());
    }
    let hl = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let body = 8 + hl;
    if body > bytes.len() {
        bail!("{}: truncated safetensors header", path.display());
    }
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..body])
        .with_context(|| format!("{}: bad safetensors header", path.display()))?;
    let mut meta = BTreeMap::new();
    let mut out = Vec::new();
    for (k, v) in header {
        if k == "__metadata__" {
            meta = serde_json::from_value(v)?;
            continue;
        }
        if v["dtype"] != "F32" {
            bail!(
                "{}: tensor {k} has dtype {}, only F32 is supported",
                path.display(),
                v["dtype"]
            );
        }
        let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
        let [a, b]: [usize; 2] = serde_json::from_value(v["data_offsets"].clone())?;
        if body + b > bytes.len() || a > b || (b - a) != 4 * shape.iter().product::<usize>() {
            bail!("{}: tensor {k} has bad offsets", path.display());
        }
        let data = bytes[body + a..body + b]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        out.push((
            a,
            NamedTensor {
                name: k,
                shape,
                data,
            },
        ));
    }
    out.sort_by_key(|(a, _)| *a);
    Ok((out.into_iter().map(|(_, t)| t).collect(), meta))
}
