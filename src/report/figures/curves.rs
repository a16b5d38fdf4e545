//! Curves over iterations: training loss and validation PSNR per experiment (one row per W/A,
//! methods coloured by family) and the gradient conflict of the gated runs.

use super::chart::{Chart, Marks, Panel, Series};
use super::layout::Entry;
use super::style::Look;
use super::{drawn, seed_series, seeds_note, Any, Drawn};
use crate::record::keys;
use crate::report::tables::{groups, Group};
use crate::report::{Run, PROTOCOL};

/// Panel size of the curve figures.
const PANEL: (i32, i32) = (720, 430);

/// A group's label in legends: its grid point, or its name for a single run.
pub fn label(g: &Group) -> String {
    if g.first().point.is_empty() {
        g.name.clone()
    } else {
        g.first().point.clone()
    }
}

/// The experiments of `runs`, sorted.
pub fn experiments(runs: &[Run]) -> Vec<String> {
    let mut v: Vec<String> = runs.iter().map(|r| r.experiment.clone()).collect();
    v.sort();
    v.dedup();
    v
}

/// Looks for `gs` (in order): the family's colour, dash and marker by rank within the family.
/// With a single family the colours cycle instead ([`Look::nth`]).
pub fn family_looks(gs: &[&Group]) -> Vec<Look> {
    if gs.iter().all(|g| g.first().family == gs[0].first().family) {
        return (0..gs.len()).map(Look::nth).collect();
    }
    let mut seen: Vec<(crate::report::runs::Family, usize)> = Vec::new();
    gs.iter()
        .map(|g| {
            let f = g.first().family;
            let k = seen.iter().filter(|s| s.0 == f).count();
            seen.push((f, k));
            Look::grouped(family_colour(f), k)
        })
        .collect()
}

/// A family's palette index: ODM (most groups) blue, FP black, yellow (weak on white) for the
/// rarest.
pub fn family_colour(f: crate::report::runs::Family) -> usize {
    use crate::report::runs::Family::*;
    match f {
        Odm => 0,
        MinMax => 1,
        Pams => 2,
        DdtbStatic => 3,
        Ddtb => 4,
        Daq => 5,
        Fp32 => 6,
        DaqStrict => 7,
    }
}

/// A line of seed means with its band.
fn seed_line(look: Look, g: &Group, split: &str, set: &str, metric: &str, marks: Marks) -> Series {
    let (pts, band) = seed_series(g, split, set, metric);
    Series {
        band,
        ..Series::line(look, pts, marks)
    }
}

/// Whether some series of `p` has two points or more (a curve to draw).
fn has_curve(p: &Panel) -> bool {
    p.series.iter().any(|s| s.pts.len() > 1)
}

/// One row of the training figure: the groups of one W/A, the loss and one validation panel per
/// scored set; only the panels with a curve (a run scored once, or not trained, has none).
fn training_row(gs: &[&Group], bits: &str, sets: &[String]) -> (Vec<Panel>, Vec<Entry>) {
    let looks = family_looks(gs);
    let loss = gs
        .iter()
        .zip(&looks)
        .enumerate()
        .map(|(i, (g, l))| seed_line(*l, g, keys::TRAIN, "-", keys::L1, Marks::Some(i)))
        .collect();
    let psnr = |set: &str| -> Vec<Series> {
        gs.iter()
            .zip(&looks)
            .map(|(g, l)| seed_line(*l, g, keys::EVAL, set, keys::PSNR_Y, Marks::All))
            .collect()
    };
    let entries = gs
        .iter()
        .zip(&looks)
        .map(|(g, l)| Entry {
            look: Some(*l),
            line: true,
            text: format!("{} ({})", label(g), g.first().family),
        })
        .collect();
    let mut panels = vec![Panel {
        title: format!("W/A {bits}: training loss"),
        xdesc: "iteration".into(),
        ydesc: "L1 (0–255 scale)".into(),
        series: loss,
        ..Panel::default()
    }];
    panels.extend(sets.iter().map(|set| Panel {
        title: format!("W/A {bits}: validation PSNR-Y on {set}"),
        xdesc: "iteration".into(),
        ydesc: "PSNR (dB)".into(),
        series: psnr(set),
        ..Panel::default()
    }));
    (panels.into_iter().filter(has_curve).collect(), entries)
}

/// The training curves of each experiment: one row per W/A (FP first), loss and validation.
pub fn training(runs: &[Run]) -> Vec<Drawn<Any>> {
    let gs = groups(runs);
    let mut out = Vec::new();
    for exp in experiments(runs) {
        let mut mine: Vec<&Group> = gs.iter().filter(|g| g.first().experiment == exp).collect();
        mine.sort_by_key(|g| g.order());
        let mut sets: Vec<String> = Vec::new();
        for s in mine.iter().flat_map(|g| &g.first().scores) {
            if !sets.contains(&s.set) {
                sets.push(s.set.clone());
            }
        }
        let mut bits: Vec<String> = mine.iter().map(|g| g.bits_label()).collect();
        bits.dedup();
        let rows: Vec<(Vec<Panel>, Vec<Entry>)> = bits
            .iter()
            .map(|b| {
                let row: Vec<&Group> = mine
                    .iter()
                    .copied()
                    .filter(|g| &g.bits_label() == b)
                    .collect();
                training_row(&row, b, &sets)
            })
            .filter(|(p, _)| !p.is_empty())
            .collect();
        if rows.is_empty() {
            continue;
        }
        // The sets with a validation curve in some row.
        let curves: Vec<&String> = sets
            .iter()
            .filter(|set| {
                let t = format!(": validation PSNR-Y on {set}");
                rows.iter()
                    .any(|(p, _)| p.iter().any(|p| p.title.ends_with(&t)))
            })
            .collect();
        let set = sets.join(", ");
        let colour = if mine.len() == 1 {
            "One group"
        } else if mine
            .iter()
            .all(|g| g.first().family == mine[0].first().family)
        {
            "One family: colour, dash and marker tell the methods apart"
        } else {
            "Colour: method family; dash and marker tell a family's methods apart"
        };
        let validation = if !curves.is_empty() {
            let on: Vec<&str> = curves.iter().map(|s| s.as_str()).collect();
            format!(
                " and validation PSNR-Y on {} at every evaluation (markers{})",
                on.join(", "),
                if on.len() > 1 {
                    ", one panel per set"
                } else {
                    ""
                }
            )
        } else {
            format!("; no validation panel: each run scored {set} once, at the end (see its table)")
        };
        let caption = format!(
            "Training of `{exp}`, one row per W/A: L1 loss (logged every `log_every` steps){validation}; {}. {colour}. {PROTOCOL}.",
            seeds_note(&mine)
        );
        let title = format!("Training curves: {exp}");
        let fig = Chart {
            title: title.clone(),
            caption: caption.clone(),
            panel: PANEL,
            rows,
        };
        out.push(drawn(format!("training-{exp}"), title, caption, fig));
    }
    out
}

/// The gradient conflict per gated group: conflict ratio and cosine over iterations.
pub fn conflict(runs: &[Run]) -> Vec<Drawn<Any>> {
    let gs = groups(runs);
    let gated: Vec<&Group> = gs
        .iter()
        .filter(|g| {
            g.runs.iter().any(|r| {
                r.metrics
                    .iter()
                    .any(|m| m.split == keys::GATE && m.set == "-")
            })
        })
        .collect();
    if gated.is_empty() {
        return Vec::new();
    }
    let looks: Vec<Look> = (0..gated.len()).map(Look::nth).collect();
    let lines = |metric: &str| -> Vec<Series> {
        gated
            .iter()
            .zip(&looks)
            .enumerate()
            .map(|(i, (g, l))| seed_line(*l, g, keys::GATE, "-", metric, Marks::Some(i)))
            .collect()
    };
    let entries = gated
        .iter()
        .zip(&looks)
        .map(|(g, l)| Entry {
            look: Some(*l),
            line: true,
            text: format!("{} ({})", g.name, g.first().method),
        })
        .collect();
    let caption = format!(
        "Gradient conflict during QAT: fraction of parameter elements where the reconstruction (L1) and regularizer gradients have opposite signs, and their global cosine, logged every `gating.log_every` steps; {}. Evaluation protocol of these runs: {PROTOCOL}.",
        seeds_note(&gated)
    );
    let title = "Gradient conflict between L1 and the regularizer".to_string();
    let panels = vec![
        Panel {
            title: "conflict ratio".into(),
            xdesc: "iteration".into(),
            ydesc: "fraction with opposite signs".into(),
            series: lines(keys::CONFLICT_RATIO),
            ..Panel::default()
        },
        Panel {
            title: "cosine(g_rec, g_reg)".into(),
            xdesc: "iteration".into(),
            ydesc: "cosine".into(),
            series: lines(keys::COSINE),
            ..Panel::default()
        },
    ];
    let fig = Chart {
        title: title.clone(),
        caption: caption.clone(),
        panel: PANEL,
        rows: vec![(panels, entries)],
    };
    vec![drawn(
        "conflict".into(),
        "Gradient conflict".into(),
        caption,
        fig,
    )]
}
