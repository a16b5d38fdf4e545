//! The ablation figure: for each ablation the expectations file quotes from a paper (cells
//! whose source names an "ablation" and that name their group), one mark per arm with its
//! per-seed PSNR and the paper's value beside it, and below, each arm's paired difference to the
//! baseline arm (the ablation's first arm in the file, as the paper's table lists it first) with
//! its 95 % interval, the paper's difference beside it.

use super::chart::{Chart, Marks, Panel, Series};
use super::layout::Entry;
use super::style::{Dash, Look, Marker, PALETTE};
use super::{drawn, Any, Drawn};
use crate::report::frame::Aggs;
use crate::report::stats;
use crate::report::verify::{Cell, Expected};
use crate::report::{Run, PROTOCOL};
use plotters::style::RGBColor;

/// One arm on one set: PSNR per seed, and the paper's value.
#[derive(Clone, Debug, PartialEq)]
pub struct ArmSet {
    pub seeds: Vec<(u64, f64)>,
    pub paper: Option<f64>,
}

/// The per-seed PSNR of `group` on `set`, by seed.
pub fn per_seed(runs: &[Run], group: &str, set: &str) -> Vec<(u64, f64)> {
    let mut v: Vec<(u64, f64)> = runs
        .iter()
        .filter(|r| r.group == group)
        .filter_map(|r| Some((r.spec.seed, r.scores.iter().find(|s| s.set == set)?.psnr)))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    v
}

/// Paired differences `a − b` over the seeds both have, in seed order.
pub fn paired_diffs(a: &[(u64, f64)], b: &[(u64, f64)]) -> Vec<f64> {
    a.iter()
        .filter_map(|(s, x)| b.iter().find(|(t, _)| t == s).map(|(_, y)| x - y))
        .collect()
}

/// The mean paired difference and its two-sided 95 % interval (t, df = n − 1); the interval
/// is absent with fewer than two pairs.
pub fn diff_ci(d: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    if d.is_empty() {
        return None;
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    Some((mean, stats::paired(d).map(|t| t.ci(0.95))))
}

/// The ablations of `e`: source, arms (groups in file order) and sets.
fn ablations(e: &Expected) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for c in e.cells.iter().filter(|c| c.source.contains("ablation")) {
        let Some(g) = &c.group else { continue };
        let i = match out.iter().position(|o| o.0 == c.source) {
            Some(i) => i,
            None => {
                out.push((c.source.clone(), Vec::new(), Vec::new()));
                out.len() - 1
            }
        };
        if !out[i].1.contains(g) {
            out[i].1.push(g.clone());
        }
        if !out[i].2.contains(&c.set) {
            out[i].2.push(c.set.clone());
        }
    }
    out
}

fn look(color: RGBColor, marker: Marker, filled: bool) -> Look {
    Look {
        color,
        dash: Dash::Solid,
        marker,
        filled,
    }
}

/// Looks: one seed, our mean (and interval), the paper (shared with the drop figure).
pub(super) fn looks() -> [Look; 3] {
    [
        look(PALETTE[5], Marker::Circle, false),
        look(PALETTE[0], Marker::Diamond, true),
        look(PALETTE[1], Marker::Square, false),
    ]
}

/// x offsets of ours and the paper's marks around an arm's position.
const OURS: f64 = -0.12;
const PAPER: f64 = 0.16;

/// The two panels (PSNR, Δ to the baseline) of one set.
fn set_panels(runs: &[Run], cells: &[&Cell], arms: &[String], set: &str) -> (Panel, Panel) {
    let [one, mean, paper] = looks();
    let paper_of = |g: &str| {
        cells
            .iter()
            .find(|c| c.group.as_deref() == Some(g) && c.set == set)
            .map(|c| c.psnr)
    };
    let seeds: Vec<Vec<(u64, f64)>> = arms.iter().map(|g| per_seed(runs, g, set)).collect();
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    let base_paper = paper_of(&arms[0]);
    for (i, (g, s)) in arms.iter().zip(&seeds).enumerate() {
        let x = i as f64 + OURS;
        top.push(Series::points(one, s.iter().map(|p| (x, p.1)).collect()));
        if !s.is_empty() {
            let m = s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64;
            top.push(Series::points(mean, vec![(x, m)]));
        }
        if let Some(p) = paper_of(g) {
            top.push(Series::points(paper, vec![(i as f64 + PAPER, p)]));
            if let Some(b) = base_paper {
                bottom.push(Series::points(paper, vec![(i as f64 + PAPER, p - b)]));
            }
        }
        let d = paired_diffs(s, &seeds[0]);
        bottom.push(Series::points(one, d.iter().map(|v| (x, *v)).collect()));
        if let Some((m, ci)) = diff_ci(&d) {
            if let Some((lo, hi)) = ci {
                bottom.push(Series::bars(mean, vec![(x, lo, hi)], 0.0));
            }
            bottom.push(Series::points(mean, vec![(x, m)]));
        }
    }
    let n = arms.len() as f64;
    let zero = look(RGBColor(120, 120, 120), Marker::Plus, true);
    bottom.push(Series::line(
        Look {
            dash: Dash::Dotted,
            ..zero
        },
        vec![(-0.5, 0.0), (n - 0.5, 0.0)],
        Marks::None,
    ));
    let cats: Vec<String> = arms
        .iter()
        .map(|g| g.rsplit('.').next().unwrap_or(g).to_string())
        .collect();
    (
        Panel {
            title: format!("PSNR-Y on {set}"),
            xdesc: "arm".into(),
            ydesc: "PSNR (dB)".into(),
            series: top,
            cats: cats.clone(),
            ..Panel::default()
        },
        Panel {
            title: format!("difference to {} on {set}", cats[0]),
            xdesc: "arm".into(),
            ydesc: "Δ PSNR (dB)".into(),
            series: bottom,
            cats,
            zero: true,
            ..Panel::default()
        },
    )
}

/// One figure per ablation the expectations quote.
pub fn figures(runs: &[Run], _aggs: &Aggs, e: &Expected) -> Vec<Drawn<Any>> {
    let mut out = Vec::new();
    for (k, (source, arms, sets)) in ablations(e).into_iter().enumerate() {
        if arms.len() < 2 || !arms.iter().any(|g| runs.iter().any(|r| &r.group == g)) {
            continue;
        }
        let cells: Vec<&Cell> = e.cells.iter().filter(|c| c.source == source).collect();
        let (top, bottom): (Vec<Panel>, Vec<Panel>) = sets
            .iter()
            .map(|s| set_panels(runs, &cells, &arms, s))
            .unzip();
        let [one, mean, paper] = looks();
        let legend = vec![
            Entry::new(one, false, "ours, one seed"),
            Entry::new(mean, false, "ours, mean over seeds"),
            Entry::new(mean, true, "ours, 95 % interval of the paired difference"),
            Entry::new(paper, false, "paper"),
        ];
        let n = arms
            .iter()
            .map(|g| per_seed(runs, g, &sets[0]).len())
            .max()
            .unwrap_or(0);
        let caption = format!(
            "Ablation quoted in reports/expected.ron as \"{source}\": top, each arm's PSNR per seed (up to {n} seed{}), their mean, and the paper's value beside; bottom, each arm's difference to the baseline arm {} paired by seed, its mean and two-sided 95 % interval (t quantile, df = n − 1; none with one pair), and the paper's difference beside. {PROTOCOL}.",
            if n == 1 { "" } else { "s" },
            arms[0]
        );
        let title = format!("Ablation against the paper: {source}");
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: (640, 400),
            rows: vec![(top, Vec::new()), (bottom, legend)],
        };
        // The first keeps its historic name; later ones are named by their arms' experiment.
        let exp = arms[0].split('.').next().unwrap_or_default();
        let stem = if k == 0 {
            "ablation".to_string()
        } else {
            format!("ablation-{exp}")
        };
        out.push(drawn(stem, title, caption, fig));
    }
    out
}
