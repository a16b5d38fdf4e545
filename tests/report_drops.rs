//! The report's drop-from-FP table and compute table, on synthetic run folders whose numbers are
//! chosen by hand: every expected cell below is worked out in the comments from those numbers.

mod common;
use common::*;
use std::path::Path;

const PAMS: &str = "Pams(w_bits: 2, a_bits: 2)";

/// A finished run `name` (seed `seed`) with one Set5 score and the given provenance fields.
fn run(root: &Path, name: &str, seed: u64, quant: &str, iterations: usize, psnr: f64, prov: &str) {
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), quant: {quant}, schedule: (iterations: {iterations}))"#
    );
    let eval = format!(
        r#"{{"set": "Set5", "scale": 4, "images": 5, "psnr_y": {psnr}, "ssim_y": 0.8, "bicubic_psnr_y": 28.0, "bicubic_ssim_y": 0.78}}"#
    );
    let dir = root.join(format!("{name}-{seed:010}"));
    finished_run(&dir, name, &spec, &eval, Some(&format!("{{{prov}}}")));
}

/// Provenance: initial weights (file, hash), wall seconds, threads, binary.
fn prov(file: &str, sha: &str, wall: f64, threads: usize, binary: &str) -> String {
    format!(
        r#""init_from": "{file}", "init": {{"sha256": "{sha}", "loaded": [], "left_at_init": [], "unused": []}},
        "wall_seconds": {wall}, "threads": {threads}, "segments": [],
        "build": {{"commit": "c0ffee", "dirty": "false", "binary_sha256": "{binary}"}},
        "machine": {{"cpu": "Test CPU", "kernel_paths": "scalar"}}"#
    )
}

fn fixture(t: &Path) -> std::path::PathBuf {
    let res = t.join("results");
    // An FP evaluation (no iterations) of the weights with hash "aaa": Set5 30.0.
    run(
        &res,
        "fpz",
        1,
        "Fp",
        0,
        30.0,
        &prov("w/a.st", "aaa", 360.0, 2, "b1"),
    );
    // From "aaa": coop 29.3, 29.5 (mean 29.4, drop 30.0 − 29.4 = 0.6).
    // From "bbb", which only the zoo record names (Set5 31.0): always 29.0, 29.0 (drop 2.0).
    // base: its seeds name different weights, so it has no FP reference.
    let arms = [
        ("coop", ["aaa", "aaa"], [29.3, 29.5]),
        ("always", ["bbb", "bbb"], [29.0, 29.0]),
        ("base", ["aaa", "ccc"], [29.0, 29.2]),
    ];
    // Core-seconds (wall × threads): 3600, 3600, 3600, 600, 1200, 600 → 13,200 s = 3.67 h;
    // median (1200 + 3600) / 2 = 2400 s = 40.0 core-minutes. One run has another binary.
    let times = [
        (3600.0, 1),
        (1800.0, 2),
        (900.0, 4),
        (600.0, 1),
        (1200.0, 1),
        (300.0, 2),
    ];
    for (k, (arm, shas, psnrs)) in arms.iter().enumerate() {
        for s in 0..2 {
            let (wall, threads) = times[2 * k + s];
            let file = if shas[s] == "bbb" {
                "zoo/w.safetensors"
            } else {
                "w/a.st"
            };
            let binary = if k == 2 && s == 1 { "b2" } else { "b1" };
            let p = prov(file, shas[s], wall, threads, binary);
            let name = format!("abl.{arm}.seed-{}", s + 1);
            run(&res, &name, s as u64 + 1, PAMS, 10, psnrs[s], &p);
        }
    }
    std::fs::create_dir_all(t.join("zoo")).unwrap();
    write(
        &t.join("zoo"),
        "w.json",
        r#"{"sha256": "bbb", "scores": [{"set": "Set5", "psnr_y": 31.0}]}"#,
    );
    res
}

const EXPECTED: &str = r#"(cells: [
    (source: "P Table (ours: FP)", backbone: "EDSR 2×8", scale: 4, method: "FP32", set: "Set5", psnr: 32.0, tol_psnr: 0.1),
    (source: "Q README", backbone: "EDSR 2×8", scale: 4, method: "FP32", set: "Set5", psnr: 32.5, tol_psnr: 0.1),
    (source: "P Table (ours: x)", backbone: "EDSR 2×8", scale: 4, bits: (2, 2), method: "PAMS", set: "Set5", psnr: 31.5, tol_psnr: 0.1, group: "abl.coop"),
    (source: "P ablation (ours: x)", backbone: "EDSR 2×8", scale: 4, bits: (2, 2), method: "PAMS", set: "Set5", psnr: 30.0, tol_psnr: 0.1, group: "abl.always"),
    (source: "P Table (ours: x)", backbone: "EDSR 2×8", scale: 4, bits: (2, 2), method: "PAMS", set: "Set5", psnr: 30.0, tol_psnr: 0.1, group: "abl.base"),
    (source: "R Table", backbone: "EDSR 2×8", scale: 4, bits: (2, 2), method: "PAMS", set: "Set5", psnr: 31.0, tol_psnr: 0.1, group: "abl.coop"),
])"#;

/// Body rows of a Markdown table, split into trimmed cells.
fn body(p: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn drops_pair_each_cell_with_the_fp_of_its_starting_weights_and_compute_adds_up() {
    let t = tempdir();
    let res = fixture(t.path());
    let exp = write(t.path(), "expected.ron", EXPECTED);
    let out = t.path().join("reports");
    odm_ok(&[
        "report",
        "--results",
        res.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--expected",
        exp.to_str().unwrap(),
    ]);
    let drops = body(&out.join("tables/drops.md"));
    // Columns: source, W/A, method, set, paper FP, paper, paper drop, our FP, ours, our drop,
    // our − paper drop, group, seeds, FP from.
    let pick = |src: &str, g: &str| -> Vec<String> {
        let r = drops.iter().find(|r| r[0] == src && r[11] == g);
        r.unwrap_or_else(|| panic!("no row {src} {g} in {drops:?}"))
            .clone()
    };
    // Paper: 32.0 − 31.5 = 0.50; ours: 30.0 − 29.4 = 0.600, from the FP run; 0.600 − 0.50.
    let coop = pick("P Table (ours: x)", "abl.coop");
    assert_eq!(
        coop[4..11],
        ["32.00", "31.50", "0.50", "30.000", "29.400", "0.600", "0.100"]
    );
    assert_eq!(coop[12..], ["2", "fpz"]);
    // The ablation is the same paper (P): 32.0 − 30.0 = 2.00; ours from the zoo record:
    // 31.0 − 29.0 = 2.000.
    let always = pick("P ablation (ours: x)", "abl.always");
    assert_eq!(
        always[4..11],
        ["32.00", "30.00", "2.00", "31.000", "29.000", "2.000", "0.000"]
    );
    assert_eq!(always[13], "zoo/w.json");
    // base's seeds started from different weights: no FP of ours.
    let base = pick("P Table (ours: x)", "abl.base");
    assert_eq!(
        base[4..11],
        ["32.00", "30.00", "2.00", "–", "29.100", "–", "–"]
    );
    // R has no FP32 cell and P's and Q's disagree (32.0, 32.5): no paper FP.
    let r = pick("R Table", "abl.coop");
    assert_eq!(
        r[4..11],
        ["–", "31.00", "–", "30.000", "29.400", "0.600", "–"]
    );
    assert_eq!(drops.len(), 4, "FP cells have no drop row: {drops:?}");

    let compute = body(&out.join("tables/compute.md"));
    let abl = compute.iter().find(|r| r[0] == "abl").expect("abl row");
    assert_eq!(abl[1..6], ["6", "10", "3.67", "40.0", "2"]);
    assert!(
        abl[6].contains("binary b1 ") && abl[6].contains("binary b2 "),
        "{abl:?}"
    );
    assert_eq!(abl[7], "Test CPU (scalar)");
    let fpz = compute.iter().find(|r| r[0] == "fpz").expect("fpz row");
    // 360 s × 2 threads = 720 core-seconds = 0.20 h, 12.0 core-minutes.
    assert_eq!(fpz[1..6], ["1", "0", "0.20", "12.0", "1"]);
}

/// The points of every series of the figure's one panel on Set5 (x rounded to the arm index).
fn drop_points(res: &Path, exp: &Path) -> Vec<(String, Vec<(usize, f64)>)> {
    use odm::report::figures::{chart::Chart, drops, Any, Figure};
    let runs = odm::report::collect(res).unwrap();
    let e = odm::report::verify::load(exp).unwrap();
    let figs = drops::figures(&runs, &e);
    assert_eq!(figs.len(), 1, "one figure: experiment abl at W2A2");
    assert_eq!(figs[0].stem, "drops-abl-w2a2");
    assert_clean("drops-abl-w2a2", &figs[0].fig.layout());
    let Any::Chart(Chart { rows, .. }) = &figs[0].fig else {
        panic!("a chart")
    };
    let p = &rows[0].0[0];
    assert_eq!(p.cats, ["coop", "always", "base"]);
    let look = |s: &odm::report::figures::chart::Series| format!("{:?}", s.look.marker);
    p.series
        .iter()
        .map(|s| {
            (
                look(s),
                s.pts.iter().map(|q| (q.0.round() as usize, q.1)).collect(),
            )
        })
        .collect()
}

#[test]
fn the_drop_figure_marks_each_seed_our_mean_and_the_paper() {
    let t = tempdir();
    let res = fixture(t.path());
    let exp = write(t.path(), "expected.ron", EXPECTED);
    let pts = drop_points(&res, &exp);
    let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let has = |marker: &str, arm: usize, want: &[f64]| {
        pts.iter().any(|(m, v)| {
            m == marker
                && v.len() == want.len()
                && v.iter().zip(want).all(|(p, w)| p.0 == arm && near(p.1, *w))
        })
    };
    // coop: paper 32.0 − 31.5 (its first cell in the file); seeds 30.0 − 29.3, 30.0 − 29.5; mean.
    assert!(has("Square", 0, &[0.5]), "{pts:?}");
    assert!(has("Circle", 0, &[0.7, 0.5]), "{pts:?}");
    assert!(has("Diamond", 0, &[0.6]), "{pts:?}");
    // always: paper 32.0 − 30.0; ours from the zoo record: 31.0 − 29.0 on both seeds.
    assert!(
        has("Square", 1, &[2.0]) && has("Diamond", 1, &[2.0]),
        "{pts:?}"
    );
    // base: the paper's drop only (its seeds started from different weights).
    assert!(has("Square", 2, &[2.0]), "{pts:?}");
    assert!(
        !pts.iter()
            .any(|(m, v)| m != "Square" && v.iter().any(|p| p.0 == 2)),
        "{pts:?}"
    );
}
