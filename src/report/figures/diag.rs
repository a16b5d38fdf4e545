//! Figures of the per-layer QAT diagnostics, for every experiment whose finished runs store
//! them: the mismatch ‖X − q(X)‖ of a few layers over iterations (`diagnostics.csv`), the
//! histogram of one layer's input for the FP and the quantized model with the clip range and
//! the grid (`histogram.json`, ODM's Fig. 5), and the gate weight per parameter group (the gate
//! rows of `metrics.csv`). One panel per run group of an experiment, and one figure of each kind
//! per declared mechanism comparison (`reports/expected.ron`, `mechanisms`: e.g. none / naive /
//! cooperative regularization, whose groups may come from different experiments) with its arms
//! side by side in the declared order.

use super::chart::{share_axes, Chart, Marks, Panel, Series};
use super::curves::label;
use super::layout::Entry;
use super::style::{Dash, Look, Marker};
use super::{drawn, over_seeds, Any, Drawn};
use crate::report::mechanism::Mechanism;
use crate::report::runs::group_log;
use crate::report::tables::{groups, Group};
use crate::report::{Run, PROTOCOL};
use crate::train::diagnostics::{self, Hist, LayerHistogram};
use plotters::style::RGBColor;
use std::collections::BTreeMap;

const PANEL: (i32, i32) = (520, 380);
/// Panels per row.
const COLS: usize = 3;
/// Layers drawn in the mismatch figure.
const LAYERS: usize = 5;

/// Groups drawn side by side in one figure of each kind: an experiment's groups in table order
/// (`role` none), or a mechanism's in its declared order under their roles.
struct PanelSet<'g, 'r> {
    /// The figure's stem after its kind: the experiment, or `mechanism-<name>`.
    stem: String,
    /// What the panels are, for the caption.
    what: String,
    arms: Vec<(&'g Group<'r>, Option<String>)>,
}

/// Every experiment's panel set, then each declared mechanism's (its groups without finished
/// runs left out, and named in the caption).
fn panel_sets<'g, 'r>(gs: &'g [Group<'r>], mechanisms: &[Mechanism]) -> Vec<PanelSet<'g, 'r>> {
    let mut out = Vec::new();
    let mut exps: Vec<&str> = gs.iter().map(|g| g.first().experiment.as_str()).collect();
    exps.sort();
    exps.dedup();
    for exp in exps {
        let mut arms: Vec<(&Group, Option<String>)> = gs
            .iter()
            .filter(|g| g.first().experiment == exp)
            .map(|g| (g, None))
            .collect();
        arms.sort_by_key(|(g, _)| g.order());
        out.push(PanelSet {
            stem: exp.to_string(),
            what: format!("one panel per group of `{exp}`"),
            arms,
        });
    }
    for m in mechanisms {
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for (role, name) in &m.arms {
            match gs.iter().find(|g| &g.name == name) {
                Some(g) => found.push((g, Some(role.clone()))),
                None => missing.push(format!("{role} (`{name}`)")),
            }
        }
        let roles: Vec<String> = m.arms.iter().map(|(r, n)| format!("{r} = `{n}`")).collect();
        let mut what = format!(
            "the mechanism comparison `{}` declared in reports/expected.ron, one panel per arm: {}",
            m.name,
            roles.join(", ")
        );
        if !missing.is_empty() {
            what.push_str(&format!(" (no finished run yet: {})", missing.join(", ")));
        }
        out.push(PanelSet {
            stem: format!("mechanism-{}", m.name),
            what,
            arms: found,
        });
    }
    out
}

/// Panels in rows of [`COLS`] on shared axes, the legend under the last row.
fn rows(mut panels: Vec<Panel>, legend: Vec<Entry>) -> Vec<(Vec<Panel>, Vec<Entry>)> {
    share_axes(&mut panels);
    let n = panels.len().div_ceil(COLS);
    let mut it = panels.into_iter();
    (0..n)
        .map(|k| {
            let row: Vec<Panel> = it.by_ref().take(COLS).collect();
            (
                row,
                if k + 1 == n {
                    legend.clone()
                } else {
                    Vec::new()
                },
            )
        })
        .collect()
}

/// `k` of `n` indices, evenly spread, first and last included.
pub fn spread_pick(n: usize, k: usize) -> Vec<usize> {
    if n <= k {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..k)
        .map(|i| (i * (n - 1) + (k - 1) / 2) / (k - 1))
        .collect();
    v.dedup();
    v
}

/// A panel's arm: `role: experiment.point` in a mechanism comparison, else the point's label.
fn arm_name(g: &Group, role: &Option<String>) -> String {
    match role {
        Some(r) => format!("{r}: {}", g.name),
        None => label(g),
    }
}

fn grid_title(g: &Group, role: &Option<String>) -> String {
    format!("{} ({})", arm_name(g, role), g.first().family)
}

/// Per-layer mismatch over iterations.
pub fn mismatch(runs: &[Run], mechanisms: &[Mechanism]) -> anyhow::Result<Vec<Drawn<Any>>> {
    let gs = groups(runs);
    let mut out = Vec::new();
    for set in panel_sets(&gs, mechanisms) {
        let mut rows_of: Vec<(&Group, &Option<String>, Vec<diagnostics::Row>)> = Vec::new();
        for (g, role) in &set.arms {
            let mut all = Vec::new();
            for r in &g.runs {
                all.extend(diagnostics::read(&r.dir, usize::MAX)?);
            }
            if !all.is_empty() {
                rows_of.push((g, role, all));
            }
        }
        if rows_of.is_empty() {
            continue;
        }
        let mut layers: Vec<String> = Vec::new();
        for r in &rows_of[0].2 {
            if !layers.contains(&r.layer) {
                layers.push(r.layer.clone());
            }
        }
        let pick: Vec<String> = spread_pick(layers.len(), LAYERS)
            .into_iter()
            .map(|i| layers[i].clone())
            .collect();
        let looks: Vec<Look> = (0..pick.len()).map(Look::nth).collect();
        let panels = rows_of
            .iter()
            .map(|(g, role, rows)| {
                let series = pick
                    .iter()
                    .zip(&looks)
                    .enumerate()
                    .map(|(i, (l, lk))| {
                        let pairs = rows.iter().filter(|r| &r.layer == l);
                        seed_line(*lk, i, pairs.map(|r| (r.step, r.stats.mismatch)))
                    })
                    .collect();
                Panel {
                    title: grid_title(g, role),
                    xdesc: "iteration".into(),
                    ydesc: "‖X − q(X)‖₂ on the probe (log)".into(),
                    series,
                    log_y: true,
                    ..Panel::default()
                }
            })
            .collect();
        let legend = pick
            .iter()
            .zip(&looks)
            .map(|(l, lk)| Entry {
                look: Some(*lk),
                line: true,
                text: format!("input of {l}"),
            })
            .collect();
        let caption = format!(
            "Quantization mismatch ‖X − q(X)‖₂ of {} of the {} quantized layers' inputs (evenly spaced through the network) on the fixed probe batch of `diagnostics.csv`, at every log step, {} on shared axes; lines: mean over the seeds that stored it, bands their range. {PROTOCOL}.",
            pick.len(),
            layers.len(),
            set.what
        );
        let title = format!("Per-layer quantization mismatch: {}", set.stem);
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: PANEL,
            rows: rows(panels, legend),
        };
        out.push(drawn(format!("mismatch-{}", set.stem), title, caption, fig));
    }
    Ok(out)
}

/// A histogram as a step line of densities (per unit of activation).
pub fn density(h: &Hist) -> Vec<(f64, f64)> {
    let n = h.counts.len().max(1);
    let w = ((h.max - h.min) / n as f64).max(f64::MIN_POSITIVE);
    let total = h.counts.iter().sum::<u64>().max(1) as f64;
    let mut v = Vec::with_capacity(2 * n);
    for (i, &c) in h.counts.iter().enumerate() {
        let d = c as f64 / (total * w);
        v.push((h.min + i as f64 * w, d));
        v.push((h.min + (i + 1) as f64 * w, d));
    }
    v
}

/// Read a run's `histogram.json`, if it stored one.
pub fn read_histogram(r: &Run) -> anyhow::Result<Option<LayerHistogram>> {
    let p = r.dir.join(diagnostics::HIST_FILE);
    let Ok(text) = std::fs::read_to_string(&p) else {
        return Ok(None);
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        crate::error::user(format!(
            "{}: {e}; rerun the run or delete the file",
            p.display()
        ))
    })
}

fn hist_looks() -> [Look; 4] {
    let l = |c: RGBColor, dash: Dash, marker: Marker| Look {
        color: c,
        dash,
        marker,
        filled: true,
    };
    [
        l(RGBColor(0, 114, 178), Dash::Solid, Marker::Square),
        l(RGBColor(213, 94, 0), Dash::Solid, Marker::Square),
        l(RGBColor(0, 0, 0), Dash::Dashed, Marker::Plus),
        l(RGBColor(150, 150, 150), Dash::Dotted, Marker::Plus),
    ]
}

/// One histogram panel.
fn hist_panel(g: &Group, role: &Option<String>, r: &Run, h: &LayerHistogram) -> Panel {
    let [fp, q, clip, grid] = hist_looks();
    let mut series = Vec::new();
    let fpd = h.fp.as_ref().map(density).unwrap_or_default();
    let qd = h.qat.as_ref().map(density).unwrap_or_default();
    let top = fpd.iter().chain(&qd).map(|p| p.1).fold(0.0f64, f64::max);
    for lv in &h.levels {
        series.push(Series::line(
            grid,
            vec![(*lv, 0.0), (*lv, top)],
            Marks::None,
        ));
    }
    for b in [h.lo, h.hi].into_iter().flatten() {
        series.push(Series::line(clip, vec![(b, 0.0), (b, top)], Marks::None));
    }
    series.push(Series::line(fp, fpd, Marks::None));
    series.push(Series::line(q, qd, Marks::None));
    Panel {
        title: format!("{}, seed {}", arm_name(g, role), r.spec.seed),
        xdesc: format!("input of {} (activation value)", h.layer),
        ydesc: "density (per unit)".into(),
        series,
        zero: true,
        ..Panel::default()
    }
}

/// The histogram of one layer's input, FP and quantized, per group (its first seed).
pub fn histograms(runs: &[Run], mechanisms: &[Mechanism]) -> anyhow::Result<Vec<Drawn<Any>>> {
    let gs = groups(runs);
    let mut out = Vec::new();
    for set in panel_sets(&gs, mechanisms) {
        let mut panels = Vec::new();
        for (g, role) in &set.arms {
            let mut rs = g.runs.clone();
            rs.sort_by_key(|r| r.spec.seed);
            for r in rs {
                if let Some(h) = read_histogram(r)? {
                    panels.push(hist_panel(g, role, r, &h));
                    break;
                }
            }
        }
        if panels.is_empty() {
            continue;
        }
        let [fp, q, clip, grid] = hist_looks();
        let e = |l: Look, t: &str| Entry {
            look: Some(l),
            line: true,
            text: t.into(),
        };
        let legend = vec![
            e(fp, "FP model's input (before QAT)"),
            e(q, "quantized model's input (end of QAT)"),
            e(clip, "clip range [l, u]"),
            e(grid, "grid levels"),
        ];
        let caption = format!(
            "Histogram of one quantized layer's input on the fixed probe batch (`histogram.json`, as ODM's Fig. 5), for the FP model at the start and the quantized model at the end of QAT, {} on shared axes (its lowest seed), with the layer's static clip range and its quantizer's grid levels (none drawn for DAQ or per-channel bounds, whose grids differ per input or channel). Densities integrate to 1. {PROTOCOL}.",
            set.what
        );
        let title = format!("Input histograms of one layer: {}", set.stem);
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: PANEL,
            rows: rows(panels, legend),
        };
        out.push(drawn(
            format!("histogram-{}", set.stem),
            title,
            caption,
            fig,
        ));
    }
    Ok(out)
}

/// The mean gate weight per parameter group over iterations, per gated group.
pub fn gates(runs: &[Run], mechanisms: &[Mechanism]) -> Vec<Drawn<Any>> {
    let gs = groups(runs);
    let mut out = Vec::new();
    for set in panel_sets(&gs, mechanisms) {
        type Logs = Vec<Vec<crate::report::runs::GroupLog>>;
        let mine: Vec<(&Group, &Option<String>, Logs)> = set
            .arms
            .iter()
            .map(|(g, role)| {
                (
                    *g,
                    role,
                    g.runs
                        .iter()
                        .map(|r| group_log(&r.metrics))
                        .collect::<Vec<_>>(),
                )
            })
            .filter(|(_, _, logs)| logs.iter().any(|l| !l.is_empty()))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let mut names: Vec<String> = mine
            .iter()
            .flat_map(|(_, _, l)| l.iter().flatten().map(|x| x.group.clone()))
            .collect();
        names.sort();
        names.dedup();
        let looks: Vec<Look> = (0..names.len()).map(Look::nth).collect();
        let panels = mine
            .iter()
            .map(|(g, role, logs)| {
                let series = names
                    .iter()
                    .zip(&looks)
                    .enumerate()
                    .map(|(i, (n, lk))| {
                        let pairs = logs
                            .iter()
                            .flatten()
                            .filter(|x| &x.group == n && x.weight.is_finite());
                        seed_line(*lk, i, pairs.map(|x| (x.step, x.weight)))
                    })
                    .collect();
                Panel {
                    title: grid_title(g, role),
                    xdesc: "iteration".into(),
                    ydesc: "mean gate weight".into(),
                    series,
                    zero: true,
                    ..Panel::default()
                }
            })
            .collect();
        let legend = names
            .iter()
            .zip(&looks)
            .map(|(n, lk)| Entry {
                look: Some(*lk),
                line: true,
                text: format!("parameter group {n}"),
            })
            .collect();
        let caption = format!(
            "Gate weight of the regularizer's gradient (the mean over a parameter group's elements or tensors, 1 = regularizer applied in full; elements the regularizer never reaches, WCC's γ among the bounds, count at 0, so with per-layer l, u and γ an always-on gate reads 2/3 on the bounds) at every gate log step, {} on shared axes (those whose runs log it); lines: mean over seeds, bands their range. {PROTOCOL}.",
            set.what
        );
        let title = format!("Gate weight per parameter group: {}", set.stem);
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: PANEL,
            rows: rows(panels, legend),
        };
        out.push(drawn(format!("gate-{}", set.stem), title, caption, fig));
    }
    out
}

/// The series `i` with look `look` through the mean over seeds of `(step, value)` pairs (each
/// seed's run one value per step), its band the range over seeds.
fn seed_line(look: Look, i: usize, pairs: impl Iterator<Item = (usize, f64)>) -> Series {
    let mut v: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for (step, x) in pairs {
        v.entry(step).or_default().push(x);
    }
    let (pts, band) = over_seeds(&v);
    Series {
        band,
        ..Series::line(look, pts, Marks::Some(i))
    }
}
