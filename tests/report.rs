//! `odm report` / `odm verify` (issue 5). Tables are checked against text written out by hand
//! from the fixture's numbers (means, sample stds, bold placement); figures are checked for
//! validity and content; verify against a good and a planted-regression fixture; and two reports
//! of the same results must be byte-identical.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

/// A synthetic finished run: spec.effective.ron + summary.json (+ metrics.csv).
fn fake_run(
    root: &Path,
    name: &str,
    seed: u64,
    quant: &str,
    extra: &str,
    scores: &[(&str, f64, f64)],
) {
    let dir = root.join(format!("{name}-{seed:010}"));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), quant: {quant}, {extra} schedule: (iterations: 10))"#
    );
    std::fs::write(dir.join("spec.effective.ron"), spec).unwrap();
    let bic = |set: &str| {
        if set == "Set5" {
            (28.0, 0.78)
        } else {
            (23.0, 0.65)
        }
    };
    let eval: Vec<String> = scores
        .iter()
        .map(|(set, p, s)| {
            format!(
                r#"{{"set": "{set}", "scale": 4, "images": 5, "psnr_y": {p}, "ssim_y": {s}, "bicubic_psnr_y": {}, "bicubic_ssim_y": {}}}"#,
                bic(set).0,
                bic(set).1
            )
        })
        .collect();
    std::fs::write(
        dir.join("summary.json"),
        format!(
            r#"{{"name": "{name}", "iterations": 10, "eval": [{}]}}"#,
            eval.join(",")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("metrics.csv"),
        "step,split,set,metric,value\n5,train,-,l1,10\n10,train,-,l1,8\n",
    )
    .unwrap();
}

const PAMS: &str = "Pams(w_bits: 2, a_bits: 2)";
const VAR: &str = "regularizer: Variance(lambda: 1e-4),";

/// The fixture: an FP run and a 3-point × 2-seed W2A2 ablation, with hand-chosen numbers.
fn fixture(root: &Path) {
    fake_run(
        root,
        "fp",
        1,
        "Fp",
        "",
        &[("Set5", 30.0, 0.85), ("Urban100", 25.0, 0.70)],
    );
    let abl = [
        (
            "baseline",
            "",
            [(29.0, 0.8000, 24.0, 0.70), (29.2, 0.8020, 24.2, 0.70)],
        ),
        (
            "cooperative",
            "gating: (rule: Sign),",
            [(29.3, 0.8050, 24.1, 0.71), (29.5, 0.8030, 24.1, 0.71)],
        ),
        (
            "always",
            "gating: (rule: Always),",
            [(29.0, 0.8100, 24.3, 0.69), (29.0, 0.8100, 24.5, 0.69)],
        ),
    ];
    for (point, gate, seeds) in abl {
        for (k, (p5, s5, pu, su)) in seeds.iter().enumerate() {
            let extra = if point == "baseline" {
                String::new()
            } else {
                format!("{VAR} {gate}")
            };
            fake_run(
                root,
                &format!("abl.{point}.seed-{}", k + 1),
                k as u64 + 1,
                PAMS,
                &extra,
                &[("Set5", *p5, *s5), ("Urban100", *pu, *su)],
            );
        }
    }
}

fn odm(args: &[&str]) -> std::process::Output {
    Command::new(odm_bin()).args(args).output().unwrap()
}

fn report(results: &Path, out: &Path, expected: &Path) -> std::process::Output {
    let o = odm(&[
        "report",
        "--results",
        results.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--expected",
        expected.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// The body rows of a Markdown table file (lines starting with `|`, header and rule dropped).
fn rows(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(String::from)
        .collect()
}

#[test]
fn main_and_ablation_tables_match_hand_written_text() {
    let t = common::tempdir();
    let (res, out) = (t.path().join("results"), t.path().join("reports"));
    fixture(&res);
    report(&res, &out, &t.path().join("none.ron"));
    // Means and sample stds by hand: (29.0, 29.2) → 29.100 ± 0.141; (0.8000, 0.8020) →
    // 0.8010 ± 0.0014; (29.3, 29.5) → 29.400 ± 0.141; (24.3, 24.5) → 24.400 ± 0.141.
    // W2A2 group bold: Set5 PSNR cooperative, Set5 SSIM always-on, Urban100 PSNR always-on,
    // Urban100 SSIM cooperative. The FP group has one row: no bold. Bicubic leads the block.
    let want = [
        "| EDSR 2×8 | ×4 | – | Bicubic | – | 28.000 / 0.7800 | 23.000 / 0.6500 |",
        "| EDSR 2×8 | ×4 | 32/32 | FP32 | 1 | 30.000 / 0.8500 | 25.000 / 0.7000 |",
        "| EDSR 2×8 | ×4 | 2/2 | PAMS | 2 | 29.100 ± 0.141 / 0.8010 ± 0.0014 | 24.100 ± 0.141 / 0.7000 ± 0.0000 |",
        "| EDSR 2×8 | ×4 | 2/2 | PAMS + VarReg (λ=1e-4, always-on) | 2 | 29.000 ± 0.000 / **0.8100 ± 0.0000** | **24.400 ± 0.141** / 0.6900 ± 0.0000 |",
        "| EDSR 2×8 | ×4 | 2/2 | PAMS + VarReg (λ=1e-4, sign-gated) | 2 | **29.400 ± 0.141** / 0.8040 ± 0.0014 | 24.100 ± 0.000 / **0.7100 ± 0.0000** |",
    ];
    assert_eq!(rows(&out.join("tables/main.md")), want);
    let want = [
        "| baseline | PAMS | 2 | 29.100 ± 0.141 / 0.8010 ± 0.0014 | 24.100 ± 0.141 / 0.7000 ± 0.0000 |",
        "| always | PAMS + VarReg (λ=1e-4, always-on) | 2 | 29.000 ± 0.000 / **0.8100 ± 0.0000** (-0.100 / +0.0090) | **24.400 ± 0.141** / 0.6900 ± 0.0000 (+0.300 / -0.0100) |",
        "| cooperative | PAMS + VarReg (λ=1e-4, sign-gated) | 2 | **29.400 ± 0.141** / 0.8040 ± 0.0014 (+0.300 / +0.0030) | 24.100 ± 0.000 / **0.7100 ± 0.0000** (+0.000 / +0.0100) |",
    ];
    assert_eq!(rows(&out.join("tables/ablation-abl.md")), want);
    let tex = std::fs::read_to_string(out.join("tables/main.tex")).unwrap();
    assert!(tex.contains("\\textbf{29.400 $\\pm$ 0.141}"), "{tex}");
    let csv = std::fs::read_to_string(out.join("tables/main.csv")).unwrap();
    assert!(csv.contains("EDSR 2×8,4,2/2,\"PAMS + VarReg (λ=1e-4, sign-gated)\",abl.cooperative,2,Set5,29.400000,0.141421,0.804000,0.001414,1,0"), "{csv}");
    let md = std::fs::read_to_string(out.join("tables/main.md")).unwrap();
    assert!(
        md.contains("Y channel") && md.contains("scale pixels shaved") && md.contains("1–2 seeds"),
        "{md}"
    );
}

fn expected(dir: &Path, odm_set5: f64, required_claim: bool) -> std::path::PathBuf {
    write(
        dir,
        "expected.ron",
        &format!(
            r#"(cells: [
    (source: "t", backbone: "any", scale: 4, method: "Bicubic", set: "Set5", psnr: 28.00, ssim: 0.780, tol_psnr: 0.03, required: true),
    (source: "t", backbone: "EDSR 2×8", scale: 4, bits: (2, 2), method: "ODM", set: "Set5", psnr: {odm_set5}, tol_psnr: 0.10, required: true, group: "abl.cooperative"),
    (source: "t", backbone: "EDSR-baseline", scale: 4, bits: (2, 2), method: "DAQ", set: "Set5", psnr: 31.01, tol_psnr: 0.1),
], claims: [
    (claim: "coop > always", better: "abl.cooperative", worse: "abl.always", set: "Set5", required: {required_claim}),
])"#
        ),
    )
}

#[test]
fn verify_passes_good_fixture_and_fails_planted_regressions() {
    let t = common::tempdir();
    let res = t.path().join("results");
    fixture(&res);
    let r = res.to_str().unwrap();
    // Good: cooperative Set5 = 29.40 (paper cell 29.40). The claim's per-seed differences
    // (0.3, 0.5) give t = 0.4 / 0.1 = 4 with df 1, p = ½ − atan(4)/π = 0.0780: inconclusive,
    // so it is not required here.
    let good = expected(t.path(), 29.40, false);
    let o = odm(&[
        "verify",
        "--results",
        r,
        "--expected",
        good.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("| 29.40 | 29.400") || text.contains("29.400"),
        "{text}"
    );
    assert!(text.contains("missing"), "DAQ has no runs: {text}");
    assert!(
        text.contains(
            "| coop > always | abl.cooperative | abl.always | Set5 | better | 2 | 0.400 |"
        ) && text.contains("| paired, df 1 | 0.0780 | 0.0780 |"),
        "{text}"
    );
    // Planted regression 1: the paper cell is 0.5 dB above ours.
    let bad = expected(t.path(), 29.90, false);
    let o = odm(&[
        "verify",
        "--results",
        r,
        "--expected",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("FAIL (required)"));
    // Planted regression 2: cooperative falls below always-on in the results, by 0.6 dB on both
    // seeds (zero spread: t = −∞, p against = 0, FAIL).
    let res2 = t.path().join("results2");
    fixture(&res2);
    for k in 1..=2 {
        let d = std::fs::read_dir(&res2)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.to_string_lossy()
                    .contains(&format!("abl.cooperative.seed-{k}"))
            })
            .unwrap();
        let s = std::fs::read_to_string(d.join("summary.json")).unwrap();
        let s = s.replace(
            if k == 1 {
                "\"psnr_y\": 29.3"
            } else {
                "\"psnr_y\": 29.5"
            },
            "\"psnr_y\": 28.4",
        );
        std::fs::write(d.join("summary.json"), s).unwrap();
    }
    let good2 = expected(t.path(), 28.40, true);
    let o = odm(&[
        "verify",
        "--results",
        res2.to_str().unwrap(),
        "--expected",
        good2.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("| coop > always | abl.cooperative | abl.always | Set5 | better | 2 | -0.600 | [-0.600, -0.600] | paired, df 1 | 1.0000 | 1.0000 | 0 |")
            && text.contains("| FAIL (required) |"),
        "{text}"
    );
    // A malformed expectations file is a one-line input error naming the file.
    let broken = write(t.path(), "broken.ron", "(cells: [(source: 1)])");
    let o = odm(&[
        "verify",
        "--results",
        r,
        "--expected",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.ron:1:") && err.lines().count() == 1,
        "{err}"
    );
}

/// A second set scored at every evaluation gets its own validation panel beside the first: the
/// `abl` runs' curves copied under another set name, 1 dB lower, give the same steps and the
/// first panel's values less 1.
fn second_set_gets_its_own_panel(
    runs: &[odm::report::Run],
    first: &odm::report::figures::chart::Panel,
) {
    let mut more = runs.to_vec();
    for r in more.iter_mut().filter(|r| r.experiment == "abl") {
        let extra: Vec<_> = r
            .metrics
            .iter()
            .filter(|m| m.split == "eval")
            .map(|m| {
                let mut m = m.clone();
                m.set = "second".into();
                m.value -= 1.0;
                m
            })
            .collect();
        r.metrics.extend(extra);
        let mut row = r.scores[0].clone();
        row.set = "second".into();
        r.scores.push(row);
    }
    let aggs = odm::report::frame::aggregate(&more).unwrap();
    let built = odm::report::figures::build(&more, &aggs, None).unwrap();
    let t = built.iter().find(|d| d.stem == "training-abl").unwrap();
    let odm::report::figures::Any::Chart(c) = &t.fig else {
        panic!("training-abl is a chart")
    };
    let row = &c.rows[0].0;
    assert_eq!(row.len(), 3, "loss and one validation panel per set");
    assert!(
        row[2].title.ends_with("validation PSNR-Y on second"),
        "{}",
        row[2].title
    );
    for (a, b) in first.series.iter().zip(&row[2].series) {
        let want: Vec<(f64, f64)> = a.pts.iter().map(|p| (p.0, p.1 - 1.0)).collect();
        let got: Vec<(f64, f64)> = b.pts.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(got, want);
    }
    assert!(
        t.caption
            .contains("on holdout, second at every evaluation (markers, one panel per set)"),
        "{}",
        t.caption
    );
}

fn png_colours(p: &Path) -> usize {
    let img = image::open(p).unwrap().to_rgb8();
    let mut c: Vec<[u8; 3]> = img.pixels().map(|p| p.0).collect();
    c.sort();
    c.dedup();
    c.len()
}

#[test]
fn toy_runs_give_every_figure_and_identical_reruns() {
    let t = common::tempdir();
    let res = t.path().join("results");
    let fp = write(t.path(), "fp.ron", &toy_spec("fp", 1, 6, ""));
    let q = toy_spec(
        "abl",
        1,
        4,
        &format!(
            r#"init_from: Experiment("{}"),
    quant: Pams(w_bits: 4, a_bits: 4, calib_batches: 1),
    regularizer: Variance(lambda: 1e-4),
    offsets: Selective(scale: TopFraction(0.5), shift: TopFraction(0.5)),
    gating: (rule: Sign, log_every: 1),
    eval_every: 2,
    grid: (axes: [(field: "", values: [{{"gating.rule": "Always"}}, {{"gating.rule": "Sign"}}], labels: ["baseline", "sign"])]),"#,
            fp.display()
        ),
    );
    let q = write(t.path(), "abl.ron", &q);
    let o = odm(&[
        "run",
        q.to_str().unwrap(),
        "--out",
        res.to_str().unwrap(),
        "--quiet",
        "--threads",
        "1",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (t.path().join("r1"), t.path().join("r2"));
    let none = t.path().join("none.ron");
    report(&res, &a, &none);
    report(&res, &b, &none);
    // The QAT runs store the per-layer diagnostics, the histogram and the gate's group log:
    // their figures appear (issue 27, acceptance 2) on the same clean layouts (issue 29).
    for r in std::fs::read_dir(&res).unwrap().map(|e| e.unwrap().path()) {
        let name = r.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("abl.") {
            assert!(
                r.join("diagnostics.csv").is_file() && r.join("histogram.json").is_file(),
                "{name}"
            );
        }
    }
    let runs = odm::report::collect(&res).unwrap();
    let aggs = odm::report::frame::aggregate(&runs).unwrap();
    let built = odm::report::figures::build(&runs, &aggs, None).unwrap();
    for d in &built {
        let l = odm::report::figures::Figure::layout(&d.fig);
        common::assert_clean(&d.stem, &l);
        let png = image::open(a.join(format!("figures/{}.png", d.stem))).unwrap();
        assert_eq!((png.width(), png.height()), l.size, "{}", d.stem);
    }
    mechanism_figures(&runs, &aggs);
    // Validation every 2 of 4 iterations: the whole curve, at iterations 2 and 4, per group.
    let t = built.iter().find(|d| d.stem == "training-abl").unwrap();
    let odm::report::figures::Any::Chart(c) = &t.fig else {
        panic!("training-abl is a chart")
    };
    let psnr = &c.rows[0].0[1];
    assert_eq!(psnr.ydesc, "PSNR (dB)");
    assert_eq!(psnr.series.len(), 2, "baseline and sign");
    for s in &psnr.series {
        let steps: Vec<f64> = s.pts.iter().map(|p| p.0).collect();
        assert_eq!(steps, vec![2.0, 4.0]);
    }
    second_set_gets_its_own_panel(&runs, psnr);
    let figs = [
        "distribution",
        "offsets",
        "conflict",
        "psnr_vs_bitops",
        "training-abl",
        "training-fp",
        "mismatch-abl",
        "histogram-abl",
        "gate-abl",
    ];
    for f in figs {
        let png = a.join(format!("figures/{f}.png"));
        assert!(png_colours(&png) > 8, "{f}.png is nearly one colour");
        let svg = std::fs::read_to_string(a.join(format!("figures/{f}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{f}.svg"
        );
        let labels: &[&str] = match f {
            "distribution" => &["channel", "activation value", "fraction of pixels"],
            "offsets" => &[
                "layer (input of the quantized conv)",
                "spread",
                "selected for channel-wise scale",
            ],
            "conflict" => &["iteration", "fraction with opposite signs", "cosine"],
            "psnr_vs_bitops" => &["BitOPs (G", "PSNR-Y on"],
            "mismatch-abl" => &["iteration", "‖X − q(X)‖₂", "input of"],
            "histogram-abl" => &["density (per unit)", "clip range [l, u]", "grid levels"],
            "gate-abl" => &["iteration", "mean gate weight", "parameter group"],
            "training-fp" => &["iteration", "L1 (0–255 scale)", "no validation panel"],
            _ => &["iteration", "L1 (0–255 scale)", "PSNR (dB)"],
        };
        // The text nodes, joined by spaces: a caption's lines wrap anywhere.
        let text: String = svg
            .split('<')
            .filter_map(|t| t.split_once('>').map(|(_, x)| x.trim()))
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        for l in labels {
            assert!(text.contains(l), "{f}.svg lacks the label {l:?}");
        }
        assert!(
            text.contains("Y channel"),
            "{f}.svg lacks the protocol caption"
        );
    }
    for e in walkdir::WalkDir::new(&a)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
    {
        let rel = e.path().strip_prefix(&a).unwrap();
        let other = std::fs::read(b.join(rel)).unwrap();
        assert!(
            std::fs::read(e.path()).unwrap() == other,
            "{} differs between two reports",
            rel.display()
        );
    }
    let idx = std::fs::read_to_string(a.join("README.md")).unwrap();
    assert!(
        idx.contains("figures/distribution.png") && idx.contains("tables/main.md"),
        "{idx}"
    );
}

/// A declared mechanism comparison draws its groups side by side in the declared order under
/// their roles; an arm without runs is left out and named in the caption.
fn mechanism_figures(runs: &[odm::report::Run], aggs: &odm::report::frame::Aggs) {
    let e: odm::report::verify::Expected = odm::spec::load::ron_options()
        .from_str(
            r#"(cells: [], mechanisms: [(name: "m", arms: [("cooperative", "abl.sign"), ("none", "abl.baseline"), ("naive", "elsewhere.always")])])"#,
        )
        .unwrap();
    let built = odm::report::figures::build(runs, aggs, Some(&e)).unwrap();
    for kind in ["mismatch", "histogram", "gate"] {
        let stem = format!("{kind}-mechanism-m");
        let d = built
            .iter()
            .find(|d| d.stem == stem)
            .unwrap_or_else(|| panic!("no {stem}"));
        let odm::report::figures::Any::Chart(c) = &d.fig else {
            panic!("{stem} is a chart")
        };
        let titles: Vec<&str> = c
            .rows
            .iter()
            .flat_map(|r| r.0.iter().map(|p| p.title.as_str()))
            .collect();
        let order = ["cooperative: abl.sign", "none: abl.baseline"];
        let mut want = order
            .iter()
            .filter(|o| titles.iter().any(|t| t.starts_with(**o)));
        for t in &titles {
            assert!(t.starts_with(want.next().unwrap()), "{stem}: {titles:?}");
        }
        if kind != "gate" {
            assert_eq!(titles.len(), 2, "{stem}: {titles:?}");
        }
        assert!(
            d.caption
                .contains("no finished run yet: naive (`elsewhere.always`)"),
            "{stem}: {}",
            d.caption
        );
        common::assert_clean(&stem, &odm::report::figures::Figure::layout(&d.fig));
    }
}

#[test]
fn a_bad_mechanism_is_refused_in_one_line() {
    let t = common::tempdir();
    for (arms, why) in [
        ("[]", "arms is empty"),
        (r#"[("a", "x.y"), ("b", "x.y")]"#, "given twice"),
    ] {
        let f = write(
            t.path(),
            "expected.ron",
            &format!(r#"(cells: [], mechanisms: [(name: "m", arms: {arms})])"#),
        );
        let err = odm::report::verify::load(&f).unwrap_err().to_string();
        assert!(
            err.contains("expected.ron") && err.contains(why) && !err.contains('\n'),
            "{err}"
        );
    }
    let f = write(
        t.path(),
        "expected.ron",
        r#"(cells: [], mechanisms: [(name: "a/b", arms: [("a", "x.y")])])"#,
    );
    let err = odm::report::verify::load(&f).unwrap_err().to_string();
    assert!(err.contains("name must be"), "{err}");
}
