//! Grids: one file expands into many independent runs that share a name prefix.
//!
//! ```ron
//! grid: (
//!     axes: [ (field: "optim.lr", values: [1e-4, 2e-4]) ],
//!     seeds: [1, 2, 3],
//! ),
//! ```
//! Each axis overrides one dotted field path; an axis with an empty `field` takes maps of
//! several dotted fields to values, applied together (e.g. `{"gating.rule": Sign, "offsets":
//! None}`). Values are written as in a spec file (`Step(every: 100, gamma: 0.5)`, `Cpu`); the
//! tagged-map form of earlier files (`{"Step": {"every": 100, "gamma": 0.5}}`, `"Cpu"`) means the
//! same (`spec::value`). The runs are the Cartesian product of the axes and the seeds.

use super::load::FieldError;
use super::value::{self, Node};
use super::Spec;
use ron::value::RawValue;
use serde::{Deserialize, Serialize};

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
    pub values: Vec<AxisValue>,
    /// Optional names of the values in run names (default: derived from each value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
}

/// A grid value: its RON text as written (surrounding space and comments trimmed), read by
/// [`value::parse`] when the grid expands.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(transparent)]
pub struct AxisValue(Box<RawValue>);

impl AxisValue {
    /// The value's RON text.
    pub fn text(&self) -> &str {
        self.0.get_ron()
    }
}

impl<'de> Deserialize<'de> for AxisValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(|r| AxisValue(r.trim_boxed()))
    }
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
    let base = Node::from_json(&serde_json::to_value(&base).expect("spec serializes"));
    let mut points: Vec<(Node, Vec<String>)> = vec![(base, vec![])];
    for (ai, axis) in grid.axes.iter().enumerate() {
        let values = check_axis(ai, axis)?;
        let mut next = Vec::new();
        for (node, labels) in &points {
            for (vi, v) in values.iter().enumerate() {
                let (j, name) = apply(node, ai, axis, vi, v)?;
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
        let s: Spec = value::decode(&j).map_err(|e| FieldError {
            field: "grid.axes".into(),
            msg: format!(
                "the grid point `{}` does not fit the spec: {e}",
                labels.join(".")
            ),
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

/// An axis has values, and one label per value when it has labels: its values parsed.
fn check_axis(ai: usize, axis: &Axis) -> Result<Vec<Node>, FieldError> {
    if axis.values.is_empty() {
        return Err(FieldError {
            field: format!("grid.axes[{ai}].values"),
            msg: "an axis needs at least one value".into(),
        });
    }
    if let Some(ls) = axis
        .labels
        .as_ref()
        .filter(|ls| ls.len() != axis.values.len())
    {
        return Err(FieldError {
            field: format!("grid.axes[{ai}].labels"),
            msg: format!(
                "{} labels for {} values; give one label per value",
                ls.len(),
                axis.values.len()
            ),
        });
    }
    axis.values
        .iter()
        .enumerate()
        .map(|(vi, raw)| {
            value::parse(raw.text()).map_err(|e| FieldError {
                field: format!("grid.axes[{ai}].values"),
                msg: format!("value {vi} ({}): {e}", raw.text()),
            })
        })
        .collect()
}

/// Value `vi` of axis `ai` applied to a point: the new point and its label part.
fn apply(
    node: &Node,
    ai: usize,
    axis: &Axis,
    vi: usize,
    v: &Node,
) -> Result<(Node, String), FieldError> {
    let mut j = node.clone();
    let ok = if axis.field.is_empty() {
        patch(&mut j, v)
    } else {
        value::slot(&mut j, &axis.field, false).map(|slot| *slot = v.clone())
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
        None => v.label(),
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

/// Apply a map `{"dotted.field": value, ...}` to the spec, in the keys' sorted order (as the
/// JSON map of earlier versions did); `None` if a key is not a field.
fn patch(j: &mut Node, v: &Node) -> Option<()> {
    let Node::Map(m) = v else { return None };
    let mut entries: Vec<&(String, Node)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, val) in entries {
        *value::slot(j, k, false)? = val.clone();
    }
    Some(())
}
