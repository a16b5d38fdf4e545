//! The drop-from-FP figure, one per experiment and W/A that `reports/expected.ron` sets beside a
//! paper's rows (cells whose source says "(ours: …)" and that pin a group of the experiment): one panel
//! per set, one category per arm in the file's order, with our drop per seed and its mean (FP −
//! PSNR, FP being the exact weights the runs started from, [`crate::report::drops::our_fp`]) and
//! the paper's drop (its FP32 row − its number, [`crate::report::drops::paper_fp`]) beside.

use super::ablation::{looks, per_seed};
use super::chart::{Chart, Panel, Series, PANEL_MARGIN, Y_AREA};
use super::layout::Entry;
use super::style::{text_size, TEXT_PX};
use super::{drawn, Any, Drawn};
use crate::report::drops::{our_fp, paper_fp};
use crate::report::verify::{Cell, Expected};
use crate::report::{Run, PROTOCOL};

/// The papers' set order, then any other set in the order the cells name it.
fn set_order(cells: &[&Cell]) -> Vec<String> {
    let known = ["Set5", "Set14", "B100", "Urban100"];
    let mut sets: Vec<String> = known
        .iter()
        .filter(|k| cells.iter().any(|c| c.set == **k))
        .map(|k| k.to_string())
        .collect();
    for c in cells {
        if !sets.contains(&c.set) {
            sets.push(c.set.clone());
        }
    }
    sets
}

/// An experiment and a W/A, with its cells in file order.
type Study<'a> = ((String, (u32, u32)), Vec<&'a Cell>);

/// (experiment, W/A) pairs with quantized cells set beside our runs.
fn studies<'a>(e: &'a Expected, runs: &[Run]) -> Vec<Study<'a>> {
    let mut out: Vec<Study<'a>> = Vec::new();
    for c in e.cells.iter().filter(|c| c.source.contains("(ours:")) {
        let (Some(g), Some(bits)) = (&c.group, c.bits) else {
            continue;
        };
        if !runs.iter().any(|r| &r.group == g) {
            continue;
        }
        let key = (g.split('.').next().unwrap_or_default().to_string(), bits);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(c),
            None => out.push((key, vec![c])),
        }
    }
    out
}

/// One set's panel: our drops per seed and mean, the paper's drop, per arm.
/// `suffix` (e.g. "-w2a2") is dropped from the arms' names on the axis.
fn panel(
    runs: &[Run],
    e: &Expected,
    cells: &[&Cell],
    arms: &[String],
    set: &str,
    suffix: &str,
) -> Panel {
    let [one, mean, paper] = looks();
    let mut series = Vec::new();
    for (i, g) in arms.iter().enumerate() {
        let x = i as f64;
        let cell = cells
            .iter()
            .find(|c| c.group.as_deref() == Some(g) && c.set == set);
        if let Some(c) = cell {
            if let Some(fp) = paper_fp(c, e.cells.iter()) {
                series.push(Series::points(paper, vec![(x + 0.16, fp - c.psnr)]));
            }
        }
        let Some((fp, _)) = our_fp(g, set, runs) else {
            continue;
        };
        let d: Vec<f64> = per_seed(runs, g, set).iter().map(|s| fp - s.1).collect();
        series.push(Series::points(
            one,
            d.iter().map(|v| (x - 0.12, *v)).collect(),
        ));
        if !d.is_empty() {
            let m = d.iter().sum::<f64>() / d.len() as f64;
            series.push(Series::points(mean, vec![(x - 0.12, m)]));
        }
    }
    Panel {
        title: format!("drop from FP on {set}"),
        xdesc: "arm".into(),
        ydesc: "FP − PSNR (dB)".into(),
        series,
        cats: arms
            .iter()
            .map(|g| {
                let point = g.rsplit('.').next().unwrap_or(g);
                point.strip_suffix(suffix).unwrap_or(point).to_string()
            })
            .collect(),
        zero: true,
        ..Panel::default()
    }
}

/// The widest category name of the first panel, in pixels at the tick labels' size.
fn rows_widest(rows: &[(Vec<Panel>, Vec<Entry>)]) -> i32 {
    let cats = rows
        .first()
        .and_then(|r| r.0.first())
        .map(|p| p.cats.as_slice());
    cats.unwrap_or_default()
        .iter()
        .map(|c| text_size(c, TEXT_PX).0)
        .max()
        .unwrap_or(0)
}

/// One figure per experiment and W/A with cells beside a paper's (see the module docs).
pub fn figures(runs: &[Run], e: &Expected) -> Vec<Drawn<Any>> {
    let mut out = Vec::new();
    for ((exp, (w, a)), cells) in studies(e, runs) {
        let suffix = format!("-w{w}a{a}");
        let mut arms: Vec<String> = Vec::new();
        for c in &cells {
            let g = c.group.clone().unwrap_or_default();
            if !arms.contains(&g) {
                arms.push(g);
            }
        }
        let sets = set_order(&cells);
        let [one, mean, paper] = looks();
        let legend = vec![
            Entry::new(one, false, "ours, one seed"),
            Entry::new(mean, false, "ours, mean over seeds"),
            Entry::new(paper, false, "paper"),
        ];
        let n = sets.len();
        let rows: Vec<(Vec<Panel>, Vec<Entry>)> = sets
            .iter()
            .enumerate()
            .map(|(k, s)| {
                let l = if k + 1 == n {
                    legend.clone()
                } else {
                    Vec::new()
                };
                (vec![panel(runs, e, &cells, &arms, s, &suffix)], l)
            })
            .collect();
        let title = format!("Drop from full precision at W{w}A{a}: {exp} beside the papers");
        let caption = format!(
            "Drop from full precision at W{w}A{a} per arm of {exp} that reports/expected.ron sets beside a paper's row: ours is FP − PSNR per seed and its mean, FP being the PSNR of the exact weights the runs started from (matched by the SHA-256 in their provenance, as in tables/drops.md); the paper's is its FP32 row minus its number. The papers train longer from their own FP models; the drops compare where absolute PSNRs cannot. {PROTOCOL}."
        );
        // Wide enough for every arm's name on the axis (the chart shows as many as fit).
        let widest = rows_widest(&rows);
        let width = (arms.len() as i32 * (widest + 24) + Y_AREA + 2 * PANEL_MARGIN).max(640);
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: (width, 280),
            rows,
        };
        out.push(drawn(format!("drops-{exp}{suffix}"), title, caption, fig));
    }
    out
}
