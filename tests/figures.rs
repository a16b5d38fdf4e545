//! Acceptance (issue 29): every figure is drawn on a layout computed before drawing, and that
//! layout keeps legends and labels off the panels and off each other, keeps text at 10 pt or
//! more at the PNG's 96 dpi, and fixes the PNG's size. Checked on the committed ledger
//! (`results/`, every figure kind the report draws from it) and on hand-made inputs; the
//! diagnostics figures, which the ledger's runs predate, are checked on a toy run in
//! tests/report.rs.

mod common;

use common::assert_clean;
use odm::report::figures::layout::{layout, spread, Entry, Layout, Rect, RowSpec, Side, Spec};
use odm::report::figures::{self, ablation, style, Figure};
use odm::report::qualitative;

fn png_size(png: &[u8]) -> (u32, u32) {
    let img = image::load_from_memory(png).unwrap();
    (img.width(), img.height())
}

/// Boxes of 20 px wanting centres 50, 55, 60 and 300: the first three stack from 40 down
/// (40, 60, 80), the fourth keeps its place (290). With the bottom at 100 they are pushed back up
/// (20, 40, 60, 80): room for four boxes between 0 and 100.
#[test]
fn labels_are_pushed_apart_in_order() {
    assert_eq!(
        spread(&[55, 50, 60, 300], 20, 0, 1000),
        vec![60, 40, 80, 290]
    );
    assert_eq!(spread(&[55, 50, 60, 300], 20, 0, 100), vec![40, 20, 60, 80]);
    // No room: they stack from the top, in order, still apart.
    assert_eq!(spread(&[5, 5, 5], 20, 0, 30), vec![0, 20, 40]);
}

/// A two-row spec: each legend lies under its row's panels, the side labels right of the first
/// row, and the canvas is exactly as wide as margins, panels and the label column.
#[test]
fn legends_go_below_and_labels_beside() {
    let e = |t: &str| Entry {
        look: Some(style::Look::nth(0)),
        line: true,
        text: t.into(),
    };
    let s = Spec {
        title: "t".into(),
        caption: "a caption ".repeat(40),
        panel: (400, 300),
        rows: vec![
            RowSpec {
                panels: 2,
                legend: (0..9).map(|i| e(&format!("series number {i}"))).collect(),
            },
            RowSpec {
                panels: 1,
                legend: vec![],
            },
        ],
        side: Side {
            texts: vec!["a label".into(), "another".into()],
            targets: vec![10, 12],
            bottom: 0,
        },
    };
    let l = layout(&s);
    assert_clean("spec", &l);
    assert_eq!(l.panels.len(), 3);
    assert!(l.legends[0].y >= l.panels[0].bottom() && l.legends[0].bottom() <= l.panels[2].y);
    let side = l.labels.iter().map(|r| r.right()).max().unwrap();
    assert_eq!(
        l.size.0 as i32,
        side + 10 + 16,
        "label column then gap and margin"
    );
    assert!(l.labels.iter().all(|r| r.x >= l.panels[1].right()));
}

/// The figures of the committed ledger: each kind is drawn, each layout is clean, and each
/// PNG has its layout's size.
#[test]
fn every_ledger_figure_keeps_legends_and_labels_clear() {
    let root = common::repo();
    let runs = odm::report::collect(&root.join("results")).unwrap();
    let aggs = odm::report::frame::aggregate(&runs).unwrap();
    let exp = odm::report::verify::load(&root.join("reports/expected.ron")).unwrap();
    let figs = figures::build(&runs, &aggs, Some(&exp)).unwrap();
    for kind in [
        "ablation",
        "psnr_vs_bitops",
        "training-",
        "distribution",
        "offsets",
        "conflict",
    ] {
        assert!(
            figs.iter().any(|d| d.stem.starts_with(kind)),
            "no {kind} figure"
        );
    }
    for d in &figs {
        let l = d.fig.layout();
        assert_clean(&d.stem, &l);
        assert_eq!(
            png_size(&figures::png(&d.fig).unwrap()),
            l.size,
            "{}",
            d.stem
        );
    }
    // PSNR against BitOPs names every quantized group with cost in its label column.
    let s = figs.iter().find(|d| d.stem == "psnr_vs_bitops").unwrap();
    let groups: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter(|r| r.bits.is_some() && r.cost.is_some())
        .map(|r| r.group.as_str())
        .collect();
    let l = s.fig.layout();
    assert!(
        l.labels.len() > groups.len(),
        "{} labels for {} groups",
        l.labels.len(),
        groups.len()
    );
}

fn tile(w: usize, h: usize, v: u8) -> qualitative::Pixels {
    qualitative::Pixels {
        w,
        h,
        rgb: vec![v; w * h * 3],
    }
}

/// 17 methods × 2 crops of 88×64 (the ledger's grid) and 4 methods × 1 crop (narrower than the
/// title): at most 1,600 px wide, nothing overlapping, and the PNG as large as the layout; with
/// thumbnails too.
#[test]
fn the_qualitative_grid_stays_narrow_and_clear() {
    for (thumbs, n, m) in [(false, 17, 2), (true, 17, 2), (true, 4, 1), (false, 4, 1)] {
        let cols: Vec<qualitative::Column> = (0..m)
            .map(|i| qualitative::Column {
                title: format!("Set{i}/image: x 10 y 20, 88×64 px"),
                w: 88,
                h: 64,
                thumb: thumbs.then(|| {
                    (
                        tile(160, 120, 40),
                        Rect {
                            x: 5,
                            y: 10,
                            w: 22,
                            h: 16,
                        },
                    )
                }),
            })
            .collect();
        let rows: Vec<qualitative::Row> = (0..n)
            .map(|i| qualitative::Row {
                name: if n > 4 {
                    format!("method_number_{i}-w2a2")
                } else {
                    format!("m{i}")
                },
                tiles: (0..m)
                    .map(|j| (j == 0).then(|| (tile(88, 64, 200), Some(20.0 + i as f64))))
                    .collect(),
            })
            .collect();
        let cap = "caption ".repeat(60);
        let l = qualitative::grid_layout(&rows, &cols, &cap);
        assert!(
            l.size.0 <= qualitative::MAX_W as u32,
            "{} px wide",
            l.size.0
        );
        assert_eq!(l.tiles.len(), n * m);
        assert_eq!(l.thumbs.len(), if thumbs { l.heads.len() } else { 0 });
        // Blocks side by side only when one block would be taller than the widest figure.
        assert_eq!(l.heads.len(), if n == 17 { 2 * m } else { m }, "{n} rows");
        let as_layout = Layout {
            size: l.size,
            title: l.title,
            panels: l.tiles.clone(),
            legends: vec![],
            entries: vec![],
            labels: [
                l.heads.clone(),
                l.thumbs.clone(),
                l.names.clone(),
                l.psnrs.clone(),
            ]
            .concat(),
            caption: l.caption,
            caption_lines: vec![],
            min_text_px: l.min_text_px,
        };
        assert_clean("qualitative", &as_layout);
        let png = qualitative::render(&rows, &cols, &cap).unwrap();
        assert_eq!(png_size(&png), l.size);
    }
}

/// Paired differences over the shared seeds, and their 95 % interval by hand: d = (1, 2):
/// mean 1.5, s = √0.5, se = 0.5, t(0.975, 1) = 12.7062 → 1.5 ± 6.3531.
#[test]
fn ablation_differences_and_interval_by_hand() {
    let a = [(1, 30.0), (2, 31.0), (3, 29.0)];
    let b = [(1, 29.0), (2, 29.0), (4, 10.0)];
    let d = ablation::paired_diffs(&a, &b);
    assert_eq!(d, vec![1.0, 2.0]);
    let (m, ci) = ablation::diff_ci(&d).unwrap();
    assert_eq!(m, 1.5);
    let (lo, hi) = ci.unwrap();
    assert!(
        (lo - (1.5 - 6.35310)).abs() < 1e-4 && (hi - (1.5 + 6.35310)).abs() < 1e-4,
        "{lo} {hi}"
    );
    assert_eq!(ablation::diff_ci(&[0.5]), Some((0.5, None)));
}

/// A histogram's density integrates to 1 over its range: counts (1, 3) on [0, 2] give
/// densities 0.25 and 0.75 per unit.
#[test]
fn histogram_density_by_hand() {
    let h = odm::train::diagnostics::Hist {
        min: 0.0,
        max: 2.0,
        counts: vec![1, 3],
    };
    let d = figures::diag::density(&h);
    assert_eq!(d, vec![(0.0, 0.25), (1.0, 0.25), (1.0, 0.75), (2.0, 0.75)]);
}

/// The thumbnail: 4×2 pixels shrunk by 2 (a 2×2 box mean, rounded) when the side limit asks it.
#[test]
fn thumbnail_is_a_box_mean() {
    let w = 2 * odm::eval::crops::THUMB_SIDE;
    let mut data = vec![0u8; w * 2 * 3];
    // Top-left 2×2 box: values 0, 1, 2, 4 in every channel → mean 1.75 → 2.
    for (i, v) in [(0, 0u8), (1, 1), (w, 2), (w + 1, 4)] {
        data[i * 3..i * 3 + 3].fill(v);
    }
    let img = odm::data::RgbImage { h: 2, w, data };
    let (t, f) = odm::eval::crops::thumbnail(&img);
    assert_eq!((f, t.w, t.h), (2, odm::eval::crops::THUMB_SIDE, 1));
    assert_eq!(&t.data[..3], &[2, 2, 2]);
}

/// No two series of a figure look alike: `Look::nth` differs in colour or dash for the first 28
/// series, `Look::grouped` in dash or marker for the first 24 of a family; neither uses the
/// palette's yellow for `nth`.
#[test]
fn series_looks_are_distinct() {
    let key = |l: &style::Look| (l.color.0, l.color.1, l.color.2, l.dash as u8);
    let v: Vec<_> = (0..28).map(|i| key(&style::Look::nth(i))).collect();
    for i in 0..v.len() {
        assert!(!v[i + 1..].contains(&v[i]), "nth({i}) repeats");
    }
    assert!((0..28).all(|i| style::Look::nth(i).color != style::PALETTE[7]));
    let g: Vec<_> = (0..24)
        .map(|k| {
            let l = style::Look::grouped(3, k);
            (l.dash as u8, l.marker as u8)
        })
        .collect();
    for i in 0..g.len() {
        assert!(!g[i + 1..].contains(&g[i]), "grouped(3, {i}) repeats");
    }
}

/// A synthetic finished run of group `group` with its metrics rows (step, set, PSNR-Y).
fn run_with_evals(root: &std::path::Path, group: &str, seed: u64, evals: &[(usize, &str, f64)]) {
    let name = format!("{group}.seed-{seed}");
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), quant: Pams(w_bits: 2, a_bits: 2), schedule: (iterations: 10))"#
    );
    let dir = root.join(format!("{name}-0000000000"));
    let eval = r#"{"set": "e", "scale": 4, "images": 5, "psnr_y": 30.0, "ssim_y": 0.8, "bicubic_psnr_y": 28.0, "bicubic_ssim_y": 0.7}"#;
    common::finished_run(&dir, &name, &spec, eval, None);
    let mut csv = String::from("step,split,set,metric,value\n");
    for (step, set, v) in evals {
        csv += &format!("{step},eval,{set},psnr_y,{v}\n{step},eval,{set},ssim_y,0.8\n");
    }
    std::fs::write(dir.join("metrics.csv"), csv).unwrap();
}

/// The gap over training, by hand. Per seed s ∈ {1, 2, 3}, worse = 30 + s/100 + step/1000 and
/// better = worse + Δ with Δ(0) = (0, 0, 0), Δ(250) = (0.1, 0.2, 0.3), Δ(500) = (0.5, 0.5, 0.8):
/// means 0, 0.2, 0.6; the 95 % half-widths t(0.975, 2)·s/√3 with t = 4.302653 are 0,
/// 4.302653·0.1/√3 = 0.248414 and 4.302653·0.1 = 0.430265 (s = √0.03 at 500). Seed 4 (better
/// only) and step 750 (worse only) have no pair; a claim with two shared evaluations gets no
/// panel.
#[test]
fn the_gap_over_training_pairs_seeds_at_each_evaluation() {
    let t = common::tempdir();
    let res = t.path().join("results");
    let diffs = [
        (0, [0.0, 0.0, 0.0]),
        (250, [0.1, 0.2, 0.3]),
        (500, [0.5, 0.5, 0.8]),
    ];
    for s in 1..=3u64 {
        let worse = |step: usize| 30.0 + s as f64 / 100.0 + step as f64 / 1000.0;
        let mut a: Vec<(usize, &str, f64)> = diffs
            .iter()
            .map(|(st, d)| (*st, "Set5", worse(*st) + d[s as usize - 1]))
            .collect();
        let mut b: Vec<(usize, &str, f64)> = diffs
            .iter()
            .map(|(st, _)| (*st, "Set5", worse(*st)))
            .collect();
        b.push((750, "Set5", worse(750)));
        for st in [0, 500] {
            a.push((st, "Urban100", 25.0));
            b.push((st, "Urban100", 24.0));
        }
        run_with_evals(&res, "long.a", s, &a);
        run_with_evals(&res, "long.b", s, &b);
    }
    run_with_evals(
        &res,
        "long.a",
        4,
        &[(0, "Set5", 99.0), (250, "Set5", 99.0), (500, "Set5", 99.0)],
    );
    let runs = odm::report::collect(&res).unwrap();
    let aggs = odm::report::frame::aggregate(&runs).unwrap();
    let e: odm::report::verify::Expected = odm::spec::load::ron_options()
        .from_str(
            r#"(cells: [], claims: [
                (claim: "a > b (Set5)", better: "long.a", worse: "long.b", set: "Set5"),
                (claim: "a > b (Urban100)", better: "long.a", worse: "long.b", set: "Urban100")])"#,
        )
        .unwrap();
    let gaps = figures::gap::gap_by_step(&runs, "long.a", "long.b", "Set5");
    assert_eq!(
        gaps.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![0, 250, 500]
    );
    for ((_, got), (_, want)) in gaps.iter().zip(&diffs) {
        assert_eq!(got.len(), 3);
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-9, "{gaps:?}");
        }
    }
    let built = figures::build(&runs, &aggs, Some(&e)).unwrap();
    let d = built
        .iter()
        .find(|d| d.stem == "gap-long")
        .expect("gap-long");
    let figures::Any::Chart(c) = &d.fig else {
        panic!("a chart")
    };
    let panels: Vec<_> = c.rows.iter().flat_map(|r| &r.0).collect();
    assert_eq!(
        panels.len(),
        1,
        "the Urban100 claim has two evaluations only"
    );
    assert_eq!(panels[0].title, "a − b, Set5");
    let mean = panels[0]
        .series
        .iter()
        .find(|s| !s.band.is_empty())
        .expect("the mean carries its interval");
    let want_mean = [(0.0, 0.0), (250.0, 0.2), (500.0, 0.6)];
    let want_half = [0.0, 0.248414, 0.430265];
    for (i, ((x, m), (bx, lo, hi))) in mean.pts.iter().zip(&mean.band).enumerate() {
        assert_eq!((*x, *bx), (want_mean[i].0, want_mean[i].0));
        assert!((m - want_mean[i].1).abs() < 1e-9, "{:?}", mean.pts);
        assert!((hi - m - want_half[i]).abs() < 1e-5, "{:?}", mean.band);
        assert!((m - lo - want_half[i]).abs() < 1e-5, "{:?}", mean.band);
    }
    assert_clean(&d.stem, &d.fig.layout());
}
