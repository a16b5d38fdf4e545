//! Grids: one file expands into many independent runs that share a name prefix.
//!
//! ```ron
//! grid: (
//!     axes: [ (field: "optim.lr", values: [1e-4, 2e-4]) ],
//!     seeds: [1, 2, 3],
//! ),
//! ```
//! Each axis overrides one dotted field path; an axis with an empty `field` takes maps of
//! several dotted fields to values, applied together (e.g. `{"gating.rule": "Sign", "offsets":
//! "None"}`). Values are written as plain RON values; an enum
//! value is written in its tagged-map form, `{"Step": {"every": 100, "gamma": 0.5}}`, and a unit
//! variant as a string, `"Cpu"`. The runs are the Cartesian product of the axes and the seeds.

use super::load::FieldError;
use super::Spec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A grid of overrides.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Axes of the product. Default none.
    #[serde(default)]
    pub axes: Vec<Axis>,
    /// Seeds, the innermost axis. Default: the spec's own seed only.
    #[serde(default)]
    pub seeds: Vec<u64>,
}

/// One axis: a dotted field path and the values it takes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    pub field: String,
    pub values: Vec<ron::Value>,
    /// Optional names of the values in run names (default: derived from each value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// Expand a spec into its runs. A spec without a grid is one run.
/// The most runs one grid may expand to.
pub const MAX_POINTS: usize = 100_000;

pub fn expand(spec: &Spec) -> Result<Vec<Spec>, FieldError> {
    let Some(grid) = &spec.grid else {
        return Ok(vec![spec.clone()]);
    };
    let total = grid
        .axes
        .iter()
        .map(|a| a.values.len())
        .chain(std::iter::once(grid.seeds.len().max(1)))
        .try_fold(1usize, |n, k| n.checked_mul(k).filter(|&n| n <= MAX_POINTS));
    if total.is_none() {
        return Err(FieldError {
            field: "grid".into(),
            msg: format!(
                "the grid expands to more than {MAX_POINTS} runs (the product of its axes' lengths and seeds); split it into several files"
            ),
        });
    }
    let mut base = spec.clone();
    base.grid = None;
    let base_json = serde_json::to_value(&base).expect("spec serializes");
    let mut points: Vec<(Value, Vec<String>)> = vec![(base_json, vec![])];
    for (ai, axis) in grid.axes.iter().enumerate() {
        check_axis(ai, axis)?;
        let mut next = Vec::new();
        for (json, labels) in &points {
            for (vi, v) in axis.values.iter().enumerate() {
                let (j, name) = apply(json, ai, axis, vi, v)?;
                let mut l = labels.clone();
                l.push(name);
                next.push((j, l));
            }
        }
        points = next;
    }
    let seeds = if grid.seeds.is_empty() {
        vec![spec.seed]
    } else {
        grid.seeds.clone()
    };
    let mut out = Vec::new();
    for (j, labels) in points {
        let s: Spec = serde_json::from_value(j).map_err(|e| FieldError {
            field: "grid.axes".into(),
            msg: format!("an override does not fit the spec: {e}"),
        })?;
        for &seed in &seeds {
            let mut r = s.clone();
            r.seed = seed;
            let mut l = labels.clone();
            if !grid.seeds.is_empty() {
                l.push(format!("seed={seed}"));
            }
            r.name = sanitize(&format!("{}.{}", s.name, l.join(".")));
            out.push(r);
        }
    }
    let mut names: Vec<&str> = out.iter().map(|r| r.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(FieldError {
            field: "grid.axes".into(),
            msg: format!(
                "two grid points are both named {:?}; give the axis `labels`",
                w[0]
            ),
        });
    }
    Ok(out)
}

/// An axis has values, and one label per value when it has labels.
fn check_axis(ai: usize, axis: &Axis) -> Result<(), FieldError> {
    if axis.values.is_empty() {
        return Err(FieldError {
            field: format!("grid.axes[{ai}].values"),
            msg: "an axis needs at least one value".into(),
        });
    }
    match &axis.labels {
        Some(ls) if ls.len() != axis.values.len() => Err(FieldError {
            field: format!("grid.axes[{ai}].labels"),
            msg: format!(
                "{} labels for {} values; give one label per value",
                ls.len(),
                axis.values.len()
            ),
        }),
        _ => Ok(()),
    }
}

/// Value `vi` of axis `ai` applied to a point's JSON: the new JSON and the point's label part.
fn apply(
    json: &Value,
    ai: usize,
    axis: &Axis,
    vi: usize,
    v: &ron::Value,
) -> Result<(Value, String), FieldError> {
    let jv = serde_json::to_value(v).map_err(|e| FieldError {
        field: format!("grid.axes[{ai}].values"),
        msg: e.to_string(),
    })?;
    let mut j = json.clone();
    let ok = if axis.field.is_empty() {
        patch(&mut j, &jv)
    } else {
        set_path(&mut j, &axis.field).map(|slot| *slot = jv.clone())
    };
    ok.ok_or_else(|| FieldError {
        field: format!("grid.axes[{ai}].field"),
        msg: format!(
            "`{}` is not a field of the spec; use a dotted path such as \"optim.lr\" (with an empty field, each value maps dotted fields to values)",
            axis.field
        ),
    })?;
    let name = match &axis.labels {
        Some(ls) => ls[vi].clone(),
        None => label(&jv),
    };
    let name = if axis.field.is_empty() {
        name
    } else {
        format!("{}={}", last_segment(&axis.field), name)
    };
    Ok((j, name))
}

fn last_segment(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

fn label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Object(m) if m.len() == 1 => m.keys().next().cloned().unwrap_or_default(),
        Value::Null => "none".into(),
        other => crate::digest::short_hash(other.to_string().as_bytes()),
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else if c == '=' {
                '-'
            } else {
                '_'
            }
        })
        .collect::<String>()
}

/// Apply a map `{"dotted.field": value, ...}` to the spec; `None` if a key is not a field.
fn patch(j: &mut Value, v: &Value) -> Option<()> {
    for (k, val) in v.as_object()? {
        *set_path(j, k)? = val.clone();
    }
    Some(())
}

/// Walk a dotted path through objects; externally tagged enums (`{"Edsr": {...}}`) are entered
/// transparently, so `model.n_feats` reaches `{"Edsr": {"n_feats": ..}}`.
pub fn set_path<'a>(root: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = root;
    for seg in path.split('.') {
        cur = descend(cur, seg)?;
    }
    Some(cur)
}

fn descend<'a>(v: &'a mut Value, seg: &str) -> Option<&'a mut Value> {
    let obj = v.as_object_mut()?;
    if obj.contains_key(seg) {
        return obj.get_mut(seg);
    }
    if obj.len() == 1 {
        let inner = obj.values_mut().next()?;
        return inner.as_object_mut()?.get_mut(seg);
    }
    None
}
