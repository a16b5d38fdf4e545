//! The claims' gap over training: for each claim of the expectations file whose two groups were
//! scored on its set at [`MIN_STEPS`] evaluations or more, the PSNR-Y difference Δ = better −
//! worse at every evaluation both share, paired by seed (same calibration batches and sampler
//! stream), with its mean and two-sided 95 % interval (paired t, df = n − 1). Claims are judged
//! at the final evaluation; this shows whether a gap grows, holds or fades with training (the
//! length test of the study at the sources' scale).

use super::ablation::{diff_ci, paired_diffs};
use super::chart::{Chart, Marks, Panel, Series};
use super::layout::Entry;
use super::style::{Dash, Look, Marker, PALETTE};
use super::{drawn, Any, Drawn};
use crate::record::keys;
use crate::report::verify::{Claim, Expected};
use crate::report::{Run, PROTOCOL};
use plotters::style::RGBColor;
use std::collections::BTreeMap;

/// Evaluations a claim's groups must share for a panel: a start and an end alone are not a curve.
pub const MIN_STEPS: usize = 3;

/// A claim's paired differences per evaluation: (step, Δ per shared seed).
pub type Gaps = Vec<(usize, Vec<f64>)>;

/// Panels per row.
const PER_ROW: usize = 2;

/// Per evaluation step, `group`'s PSNR-Y on `set` per seed, in seed order (runs sharing a seed
/// averaged, as the verdicts do).
fn by_step(runs: &[Run], group: &str, set: &str) -> BTreeMap<usize, Vec<(u64, f64)>> {
    let mut acc: BTreeMap<usize, BTreeMap<u64, (f64, usize)>> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.group == group) {
        for m in r.metrics.iter().filter(|m| {
            m.split == keys::EVAL && m.set == set && m.metric == keys::PSNR_Y && m.value.is_finite()
        }) {
            let e = acc
                .entry(m.step)
                .or_default()
                .entry(r.spec.seed)
                .or_insert((0.0, 0));
            e.0 += m.value;
            e.1 += 1;
        }
    }
    acc.into_iter()
        .map(|(step, seeds)| {
            let v = seeds
                .into_iter()
                .map(|(s, (sum, n))| (s, sum / n as f64))
                .collect();
            (step, v)
        })
        .collect()
}

/// The claim's paired differences better − worse at each evaluation both groups share (with
/// at least one shared seed): (step, Δ per shared seed in seed order).
pub fn gap_by_step(runs: &[Run], better: &str, worse: &str, set: &str) -> Gaps {
    let b = by_step(runs, worse, set);
    by_step(runs, better, set)
        .into_iter()
        .filter_map(|(step, a)| {
            let d = paired_diffs(&a, b.get(&step)?);
            (!d.is_empty()).then_some((step, d))
        })
        .collect()
}

/// The experiment a group belongs to (the part before its first `.`).
fn experiment(group: &str) -> &str {
    group.split('.').next().unwrap_or(group)
}

/// A group's point within its experiment (the part after the first `.`).
fn point(group: &str) -> &str {
    group.split_once('.').map_or(group, |(_, p)| p)
}

/// Looks: one seed's Δ, the mean and its interval, the zero line.
fn looks() -> [Look; 3] {
    let look = |color, dash, marker, filled| Look {
        color,
        dash,
        marker,
        filled,
    };
    [
        look(PALETTE[1], Dash::Solid, Marker::Circle, false),
        look(PALETTE[0], Dash::Solid, Marker::Diamond, true),
        look(RGBColor(0, 0, 0), Dash::Dotted, Marker::None, true),
    ]
}

/// The panel of one claim from its gaps.
fn panel(c: &Claim, gaps: &[(usize, Vec<f64>)]) -> Panel {
    let [one, mean, zero] = looks();
    let mut seeds = Vec::new();
    let (mut line, mut band) = (Vec::new(), Vec::new());
    for (step, d) in gaps {
        let x = *step as f64;
        seeds.extend(d.iter().map(|v| (x, *v)));
        if let Some((m, ci)) = diff_ci(d) {
            line.push((x, m));
            if let Some((lo, hi)) = ci {
                band.push((x, lo, hi));
            }
        }
    }
    let (x0, x1) = (gaps[0].0 as f64, gaps[gaps.len() - 1].0 as f64);
    Panel {
        title: format!("{} − {}, {}", point(&c.better), point(&c.worse), c.set),
        xdesc: "iteration".into(),
        ydesc: "Δ PSNR-Y (dB)".into(),
        series: vec![
            Series::line(zero, vec![(x0, 0.0), (x1, 0.0)], Marks::None),
            Series::points(one, seeds),
            Series {
                band,
                ..Series::line(mean, line, Marks::All)
            },
        ],
        zero: true,
        ..Panel::default()
    }
}

/// One figure per experiment with a claim whose groups share [`MIN_STEPS`] evaluations on its
/// set: one panel per such claim, in the file's order.
pub fn figures(runs: &[Run], e: &Expected) -> Vec<Drawn<Any>> {
    let mut per_exp: BTreeMap<&str, Vec<(&Claim, Gaps)>> = BTreeMap::new();
    for c in &e.claims {
        let gaps = gap_by_step(runs, &c.better, &c.worse, &c.set);
        if gaps.len() >= MIN_STEPS {
            per_exp
                .entry(experiment(&c.better))
                .or_default()
                .push((c, gaps));
        }
    }
    per_exp
        .into_iter()
        .map(|(exp, claims)| figure(exp, &claims))
        .collect()
}

/// The figure of one experiment's claims.
fn figure(exp: &str, claims: &[(&Claim, Gaps)]) -> Drawn<Any> {
    let [one, mean, zero] = looks();
    let legend = vec![
        Entry::new(one, false, "one seed's Δ"),
        Entry::new(mean, true, "mean Δ over seeds, band its 95 % interval"),
        Entry::new(zero, true, "Δ = 0"),
    ];
    let panels: Vec<Panel> = claims.iter().map(|(c, g)| panel(c, g)).collect();
    let n_rows = panels.len().div_ceil(PER_ROW);
    let rows = panels
        .chunks(PER_ROW)
        .enumerate()
        .map(|(i, p)| {
            let l = if i + 1 == n_rows {
                legend.clone()
            } else {
                Vec::new()
            };
            (p.to_vec(), l)
        })
        .collect();
    let seeds = claims
        .iter()
        .flat_map(|(_, g)| g.iter().map(|(_, d)| d.len()))
        .max()
        .unwrap_or(0);
    let caption = format!(
        "Gap over training in `{exp}`: for each claim in reports/expected.ron whose groups were scored on its set at {MIN_STEPS} or more evaluations, the PSNR-Y difference better − worse at every evaluation both share, paired by seed (the same seed shares calibration batches and the sampler stream; up to {seeds} pairs): each seed's Δ, their mean and its two-sided 95 % interval (t quantile, df = n − 1; none with one pair). The claims are judged at the last evaluation; this shows whether a gap grows, holds or fades with training. {PROTOCOL}."
    );
    let title = format!("Claims' gap over training: {exp}");
    let fig = Chart {
        title: title.clone(),
        caption: caption.clone(),
        panel: (720, 430),
        rows,
    };
    drawn(format!("gap-{exp}"), title, caption, fig)
}
