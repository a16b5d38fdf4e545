//! The paper's own figures on our runs: Fig. 1 (per-channel ranges and per-image histograms of
//! one layer's input, FP beside quantized) and Fig. 3 (M_σ / M_μ per layer and the offsets
//! selected).

use super::chart::{Chart, Marks, Panel, Series};
use super::layout::Entry;
use super::style::{Dash, Look, Marker, PALETTE};
use super::{drawn, Any, Drawn};
use crate::eval::inspect::LayerStats;
use crate::report::runs::{Family, Offset};
use crate::report::{Run, PROTOCOL};
use plotters::style::RGBColor;

fn look(color: RGBColor, marker: Marker, dash: Dash) -> Look {
    Look {
        color,
        dash,
        marker,
        filled: true,
    }
}

/// The y range both per-channel panels share: every channel's min–max and the clip ranges.
fn shared_range(ls: &[&LayerStats]) -> (f64, f64) {
    let vals = ls.iter().flat_map(|l| {
        l.channels
            .iter()
            .flat_map(|r| [r.min, r.max])
            .chain(l.bounds.iter().flat_map(|b| [b.0, b.1]))
    });
    let lo = vals.clone().fold(f64::INFINITY, f64::min);
    let hi = vals.fold(f64::NEG_INFINITY, f64::max);
    super::chart::pad(lo, hi)
}

/// The per-channel panel of one layer: whiskers min–max, bars p1–p99, mean dots, clip lines,
/// on the y range `y`.
fn ranges_panel(name: &str, l: &LayerStats, y: (f64, f64)) -> Panel {
    let grey = look(RGBColor(120, 120, 120), Marker::Square, Dash::Solid);
    let blue = look(PALETTE[0], Marker::Square, Dash::Solid);
    let dot = look(RGBColor(0, 0, 0), Marker::Circle, Dash::Solid);
    let ch =
        |f: &dyn Fn(&crate::eval::inspect::ChannelRange) -> (f64, f64)| -> Vec<(f64, f64, f64)> {
            l.channels
                .iter()
                .enumerate()
                .map(|(i, r)| (i as f64, f(r).0, f(r).1))
                .collect()
        };
    let mut series = vec![
        Series::bars(grey, ch(&|r| (r.min, r.max)), 0.0),
        Series::bars(blue, ch(&|r| (r.p01, r.p99)), 0.35),
        Series {
            marks: Marks::All,
            ..Series::points(
                dot,
                l.channels
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i as f64, r.mean))
                    .collect(),
            )
        },
    ];
    if let Some((lo, hi)) = l.bounds {
        let red = look(PALETTE[1], Marker::Plus, Dash::Dashed);
        let n = l.channels.len() as f64;
        for b in [lo, hi] {
            series.push(Series::line(
                red,
                vec![(-0.5, b), (n - 0.5, b)],
                Marks::None,
            ));
        }
    }
    Panel {
        title: format!("{name}: per-channel range of {}", l.layer),
        xdesc: "channel".into(),
        ydesc: "activation value".into(),
        series,
        y: Some(y),
        ..Panel::default()
    }
}

fn ranges_legend(bounds: bool) -> Vec<Entry> {
    let e = |look: Look, line: bool, text: &str| Entry {
        look: Some(look),
        line,
        text: text.into(),
    };
    let mut v = vec![
        e(
            look(RGBColor(120, 120, 120), Marker::Plus, Dash::Solid),
            true,
            "min–max per channel",
        ),
        e(
            look(PALETTE[0], Marker::Square, Dash::Solid),
            false,
            "1st–99th percentile",
        ),
        e(
            look(RGBColor(0, 0, 0), Marker::Circle, Dash::Solid),
            false,
            "mean",
        ),
    ];
    if bounds {
        v.push(e(
            look(PALETTE[1], Marker::Plus, Dash::Dashed),
            true,
            "quantizer clip [l, u]",
        ));
    }
    v
}

/// The per-image histogram panel (log fraction of pixels) over the activation range `x`.
fn hist_panel(name: &str, l: &LayerStats, looks: &[Look], x: (f64, f64)) -> Panel {
    let bins = l.hist.first().map_or(1, |h| h.len()).max(1);
    let width = (l.hist_hi - l.hist_lo) / bins as f64;
    let series = l
        .hist
        .iter()
        .zip(looks)
        .map(|(h, lk)| {
            let total = h.iter().sum::<u64>().max(1) as f64;
            let pts = h
                .iter()
                .enumerate()
                .map(|(i, &n)| (l.hist_lo + (i as f64 + 0.5) * width, n as f64 / total))
                .collect();
            Series::line(*lk, pts, Marks::Some(0))
        })
        .collect();
    Panel {
        title: format!("{name}: per-image histograms of {}", l.layer),
        xdesc: "activation value".into(),
        ydesc: "fraction of pixels (log)".into(),
        series,
        log_y: true,
        x: Some(x),
        ..Panel::default()
    }
}

/// The quantized run of Fig. 1 (ODM with offsets preferred) and the best FP run of its backbone
/// and scale with statistics.
fn fig1_runs(runs: &[Run]) -> Option<(&Run, &Run)> {
    let q = runs
        .iter()
        .filter(|r| r.acts.is_some() && r.bits.is_some())
        .max_by_key(|r| {
            (
                r.family == Family::Odm,
                r.offsets
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|x| x.scale || x.shift)),
                std::cmp::Reverse(r.name.clone()),
            )
        })?;
    let psnr = |r: &Run| r.scores.first().map_or(f64::NEG_INFINITY, |s| s.psnr);
    let fp = runs
        .iter()
        .filter(|r| r.family == Family::Fp32 && r.acts.is_some())
        .filter(|r| r.backbone == q.backbone && r.spec.scale == q.spec.scale)
        .max_by(|a, b| psnr(a).total_cmp(&psnr(b)).then(b.name.cmp(&a.name)))?;
    Some((fp, q))
}

/// Fig. 1: the distribution mismatch at the FP model's layer of largest M_σ.
pub fn distribution(runs: &[Run]) -> Vec<Drawn<Any>> {
    let Some((fp, q)) = fig1_runs(runs) else {
        return Vec::new();
    };
    let (fa, qa) = (
        fp.acts.as_ref().expect("acts"),
        q.acts.as_ref().expect("acts"),
    );
    let Some(l) = fa
        .layers
        .iter()
        .filter(|l| qa.layers.iter().any(|m| m.layer == l.layer))
        .max_by(|a, b| a.m_sigma.total_cmp(&b.m_sigma).then(b.layer.cmp(&a.layer)))
    else {
        return Vec::new();
    };
    let ql = qa
        .layers
        .iter()
        .find(|m| m.layer == l.layer)
        .expect("layer");
    let caption = format!(
        "Input of {} (largest M_σ in the FP model) on the first {} images of {} (×{}, LR made by odm's MATLAB-compatible bicubic). Left: FP model {} (M_σ {:.2}, M_μ {:.2}); right: quantized {} = {} (M_σ {:.2}, M_μ {:.2}), one seed, after its distribution offsets, with its learned clip range. Evaluation protocol of these runs: {PROTOCOL}.",
        l.layer, fa.images.len(), fa.set, fp.spec.scale, fp.name, l.m_sigma, l.m_mu, q.name, q.method, ql.m_sigma, ql.m_mu
    );
    let looks: Vec<Look> = (0..fa.images.len().max(l.hist.len()))
        .map(Look::nth)
        .collect();
    let hist_legend = fa
        .images
        .iter()
        .zip(&looks)
        .map(|(s, lk)| Entry {
            look: Some(*lk),
            line: true,
            text: s.clone(),
        })
        .collect();
    let y = shared_range(&[l, ql]);
    let x = (l.hist_lo.min(ql.hist_lo), l.hist_hi.max(ql.hist_hi));
    let title = "Distribution mismatch: activations entering a quantized layer".to_string();
    let fig = Chart {
        title: title.clone(),
        caption: caption.clone(),
        panel: (720, 430),
        rows: vec![
            (
                vec![ranges_panel("FP", l, y), ranges_panel("quantized", ql, y)],
                ranges_legend(ql.bounds.is_some() || l.bounds.is_some()),
            ),
            (
                vec![
                    hist_panel("FP", l, &looks, x),
                    hist_panel("quantized", ql, &looks, x),
                ],
                hist_legend,
            ),
        ],
    };
    vec![drawn(
        "distribution".into(),
        "Distribution mismatch (Fig. 1)".into(),
        caption,
        fig,
    )]
}

/// One bar panel of Fig. 3.
fn spread_panel(
    rows: &[Offset],
    title: &str,
    get: &dyn Fn(&Offset) -> (f64, bool),
    hi: Look,
    lo: Look,
) -> Panel {
    let bars = |sel: bool| -> Vec<(f64, f64, f64)> {
        rows.iter()
            .enumerate()
            .filter(|(_, o)| get(o).1 == sel)
            .map(|(i, o)| (i as f64, 0.0, get(o).0))
            .collect()
    };
    Panel {
        title: title.into(),
        xdesc: "layer (input of the quantized conv)".into(),
        ydesc: "spread".into(),
        series: vec![
            Series::bars(hi, bars(true), 0.38),
            Series::bars(lo, bars(false), 0.38),
        ],
        cats: rows.iter().map(|o| o.layer.clone()).collect(),
        zero: true,
        ..Panel::default()
    }
}

/// Fig. 3: M_σ / M_μ with the layers the first run with offsets selected.
pub fn offsets(runs: &[Run]) -> Vec<Drawn<Any>> {
    let Some(r) = runs.iter().find(|r| {
        r.offsets
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x.scale || x.shift))
    }) else {
        return Vec::new();
    };
    let rows = r.offsets.as_ref().expect("offsets");
    let caption = format!(
        "M_σ and M_μ of each quantized layer's input on the FP model's calibration batches (training patches), as stored by {} ({}, one seed); coloured: the layers its offset policy selected. Evaluation protocol of this run: {PROTOCOL}.",
        r.name, r.method
    );
    let hi = look(PALETTE[1], Marker::Square, Dash::Solid);
    let lo = look(RGBColor(150, 150, 150), Marker::Square, Dash::Solid);
    let entry = |l: Look, t: &str| Entry {
        look: Some(l),
        line: false,
        text: t.into(),
    };
    let title = "Channel spreads per quantized layer and the selected offsets".to_string();
    let fig = Chart {
        title: title.clone(),
        caption: caption.clone(),
        panel: (1440, 400),
        rows: vec![
            (
                vec![spread_panel(
                    rows,
                    "M_σ = std_c(σ_c) / mean_c(σ_c)",
                    &|o| (o.m_sigma, o.scale),
                    hi,
                    lo,
                )],
                vec![
                    entry(hi, "selected for channel-wise scale"),
                    entry(lo, "not selected"),
                ],
            ),
            (
                vec![spread_panel(
                    rows,
                    "M_μ = std_c(μ_c) / mean_c(σ_c)",
                    &|o| (o.m_mu, o.shift),
                    hi,
                    lo,
                )],
                vec![
                    entry(hi, "selected for channel-wise shift"),
                    entry(lo, "not selected"),
                ],
            ),
        ],
    };
    vec![drawn(
        "offsets".into(),
        "Channel spreads and selected offsets (Fig. 3)".into(),
        caption,
        fig,
    )]
}
