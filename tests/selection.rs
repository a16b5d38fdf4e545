//! Selection on a validation split (`reports/expected.ron`, `selections`; issue 27, part 7): the
//! rule picks, from hand-made scores, the arm a reader picks by hand; it falls back when no arm
//! beats the reference on every seed, waits while an arm lacks a seed, is pre-registered only when
//! committed before the sweep's first run, and refuses a benchmark set. Validation-only runs stay
//! out of the main table.

mod common;
use common::*;
use odm::report::selection::{rule, Arm, Outcome, Selection};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A finished run of grid point `point` of experiment `exp` that scored only its validation
/// split `val` (PSNR `psnr`), started at `started`.
fn run(root: &Path, exp: &str, point: &str, seed: u64, psnr: f64, started: &str) {
    let name = format!("{exp}.{point}.seed-{seed}");
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: [], validation: "splits/val.txt"), quant: Pams(w_bits: 2, a_bits: 2), schedule: (iterations: 10))"#
    );
    let eval = format!(
        r#"{{"set": "val", "scale": 4, "images": 10, "psnr_y": {psnr}, "ssim_y": 0.7, "bicubic_psnr_y": 25.0, "bicubic_ssim_y": 0.65}}"#
    );
    let prov = format!(r#"{{"seed": {seed}, "started": "{started}"}}"#);
    finished_run(
        &root.join(format!("{name}-{seed:010}")),
        &name,
        &spec,
        &eval,
        Some(&prov),
    );
}

/// A benchmark run (Set5) of a single-run experiment.
fn bench_run(root: &Path) {
    finished_run(
        &root.join("fp_toy-0000000001"),
        "fp_toy",
        r#"(name: "fp_toy", seed: 1, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), schedule: (iterations: 10))"#,
        r#"{"set": "Set5", "scale": 4, "images": 5, "psnr_y": 30.0, "ssim_y": 0.85, "bicubic_psnr_y": 28.0, "bicubic_ssim_y": 0.8}"#,
        None,
    );
}

const START: &str = "2026-03-02T00:00:00Z";

/// The sweep `sw`: reference `wcc`, arms a, b, c on seeds 1 and 2, plus `extra` runs.
fn sweep(root: &Path) {
    for (point, s1, s2) in [
        ("wcc", 26.00, 26.10),
        // Δ = (+0.10, +0.20): beats the reference on both seeds, mean 26.200.
        ("a", 26.10, 26.30),
        // Δ = (+0.50, −0.05): the highest mean (26.275) but not better on seed 2.
        ("b", 26.50, 26.05),
        // Δ = (+0.05, +0.05): beats it on both, mean 26.100 < a's.
        ("c", 26.05, 26.15),
    ] {
        run(root, "sw", point, 1, s1, START);
        run(root, "sw", point, 2, s2, START);
    }
}

fn expected(sel: &str) -> String {
    format!("(cells: [], selections: [\n{sel}\n])\n")
}

/// `odm report` of `res` with `exp` into `out`; panics unless it succeeds.
fn report(res: &Path, out: &Path, exp: &Path) {
    let o = Command::new(odm_bin())
        .args(["report", "--results"])
        .arg(res)
        .arg("--out")
        .arg(out)
        .arg("--expected")
        .arg(exp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// `odm verify` of `res` with `exp`.
fn verify(res: &Path, exp: &Path) -> std::process::Output {
    Command::new(odm_bin())
        .args(["verify", "--results"])
        .arg(res)
        .arg("--expected")
        .arg(exp)
        .output()
        .unwrap()
}

/// A git repository under `dir` whose `reports/expected.ron` declares `sel`, committed at Unix
/// time `time`: (repository, expected.ron).
fn committed(dir: &Path, sel: &str, time: i64) -> (std::path::PathBuf, std::path::PathBuf) {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("reports")).unwrap();
    git(&repo, None, &["init", "-q"]);
    let exp = repo.join("reports/expected.ron");
    std::fs::write(&exp, expected(sel)).unwrap();
    git(&repo, None, &["add", "-A"]);
    git(&repo, Some(time), &["commit", "-q", "-m", "selection"]);
    (repo, exp)
}

const SEL: &str = r#"(experiment: "sw", reference: "wcc", set: "val", fallback: "c"),"#;

/// The row of `point` in a selection table, cells trimmed.
fn row(md: &str, point: &str) -> Vec<String> {
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| {point} |")))
        .unwrap_or_else(|| panic!("no row {point} in\n{md}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn the_rule_picks_by_hand_and_the_registration_reads_git() {
    let t = tempdir();
    // 2026-03-01T00:00:00Z = 1772323200: a day before the runs.
    let (repo, exp) = committed(t.path(), SEL, 1772323200);
    let res = t.path().join("results");
    sweep(&res);
    bench_run(&res);

    let out = t.path().join("reports");
    report(&res, &out, &exp);
    let md = std::fs::read_to_string(out.join("tables/selection-sw.md")).unwrap();
    // Point, Method, seed 1, seed 2, Mean, Δ seed 1, Δ seed 2, Mean Δ, every seed, Selected.
    assert_eq!(
        row(&md, "a")[2..],
        ["26.100", "26.300", "26.200", "+0.100", "+0.200", "+0.150", "yes", "◀"]
    );
    assert_eq!(
        row(&md, "b")[2..],
        ["26.500", "26.050", "26.275", "+0.500", "−0.050", "+0.225", "no", ""]
    );
    assert_eq!(row(&md, "c")[7..], ["+0.050", "yes", ""]);
    assert_eq!(row(&md, "wcc")[7..], ["–", "reference", ""]);
    assert!(md.contains("Selected: `a`"), "{md}");
    assert!(md.contains("Registered: pre-registered."), "{md}");
    // The sweep's runs scored only their validation split: not in the main table.
    let main = std::fs::read_to_string(out.join("tables/main.md")).unwrap();
    assert!(
        main.contains("fp_toy") || main.contains("| FP32 |"),
        "{main}"
    );
    assert!(!main.contains(" val "), "{main}");
    assert!(!main.contains("PAMS"), "{main}");

    // `odm verify` spells the registration out.
    let o = verify(&res, &exp);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(
        text.contains("Registered: pre-registered: ")
            && text.contains("2026-03-01T00:00:00Z ≤ first run 2026-03-02T00:00:00Z"),
        "{text}"
    );

    // Committed after the runs started: post hoc.
    let late = SEL.replace("fallback: \"c\"", "fallback: \"a\"");
    std::fs::write(&exp, expected(&late)).unwrap();
    git(&repo, None, &["add", "-A"]);
    git(&repo, Some(1772496000), &["commit", "-q", "-m", "late"]);
    let o = verify(&res, &exp);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Registered: post hoc: "), "{text}");
}

#[test]
fn the_rule_waits_for_every_run_the_file_declares() {
    let t = tempdir();
    let res = t.path().join("results");
    sweep(&res);
    // The sweep's file (as each run folder keeps it) also declares point `d`, not run yet.
    let file = r#"(name: "sw", seed: 1, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: []), quant: Pams(w_bits: 2, a_bits: 2), schedule: (iterations: 10),
    grid: (axes: [(field: "", values: [{"optim": Adam(lr: 1e-4)}, {"optim": Adam(lr: 2e-4)}, {"optim": Adam(lr: 3e-4)}, {"optim": Adam(lr: 4e-4)}, {"optim": Adam(lr: 5e-4)}],
        labels: ["wcc", "a", "b", "c", "d"])], seeds: [1, 2]))"#;
    for e in std::fs::read_dir(&res).unwrap() {
        std::fs::write(e.unwrap().path().join("spec.ron"), file).unwrap();
    }
    let exp = write(t.path(), "expected.ron", &expected(SEL));
    let out = t.path().join("reports");
    report(&res, &out, &exp);
    let md = std::fs::read_to_string(out.join("tables/selection-sw.md")).unwrap();
    assert!(
        md.contains(
            "Not decided yet: 2 run(s) its file declares have not finished (d seed 1, d seed 2)."
        ),
        "{md}"
    );
    assert_eq!(row(&md, "a")[9], "");
}

#[test]
fn a_later_stage_borrows_an_earlier_stages_reference_and_arm() {
    let t = tempdir();
    let res = t.path().join("results");
    sweep(&res);
    let sel = r#"(experiment: "sw2", reference: "sw.wcc", set: "val", fallback: "sw.a", borrow: ["sw.wcc", "sw.a"]),"#;
    // Before any of its own runs has finished, the stage decides nothing.
    let early = write(t.path(), "early.ron", &expected(sel));
    report(&res, &t.path().join("early"), &early);
    let md = std::fs::read_to_string(t.path().join("early/tables/selection-sw2.md")).unwrap();
    assert!(
        md.contains("Not decided yet: no run of `sw2` has finished.") && !md.contains('◀'),
        "{md}"
    );
    // Stage 2 runs only its new arms: lo Δ = (+0.30, +0.25) to sw.wcc, mean 26.325, above the
    // borrowed sw.a (26.200); hi Δ = (+0.40, −0.10). They start after stage 2 is committed
    // (2026-03-03), stage 1's runs (START) before it.
    for (point, s1, s2) in [("lo", 26.30, 26.35), ("hi", 26.40, 26.00)] {
        run(&res, "sw2", point, 1, s1, "2026-03-04T00:00:00Z");
        run(&res, "sw2", point, 2, s2, "2026-03-04T00:00:00Z");
    }
    // 2026-03-03T00:00:00Z: after the borrowed runs started, before the stage's own.
    let (_, exp) = committed(t.path(), sel, 1772496000);
    let out = t.path().join("reports");
    report(&res, &out, &exp);
    let md = std::fs::read_to_string(out.join("tables/selection-sw2.md")).unwrap();
    let points: Vec<String> = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Point"))
        .map(|l| row(l, l.split('|').nth(1).unwrap().trim())[0].clone())
        .collect();
    // The reference first, then the arms by name; sw's other arms (b, c) are not borrowed.
    assert_eq!(points, ["sw.wcc", "hi", "lo", "sw.a"]);
    assert_eq!(
        row(&md, "lo")[5..],
        ["+0.300", "+0.250", "+0.275", "yes", "◀"]
    );
    assert_eq!(row(&md, "sw.a")[8..], ["yes", ""]);
    assert_eq!(row(&md, "hi")[8..], ["no", ""]);
    // Only the stage's own runs date its registration.
    assert!(md.contains("Registered: pre-registered."), "{md}");
}

#[test]
fn a_later_stage_waits_for_a_borrowed_group_still_running() {
    let t = tempdir();
    let res = t.path().join("results");
    sweep(&res);
    // Stage 2 borrows `sw.e` too, a point of stage 1 that has not finished yet.
    let sel = r#"(experiment: "sw2", reference: "sw.wcc", set: "val", fallback: "sw.a", borrow: ["sw.wcc", "sw.a", "sw.e"]),"#;
    for (point, s1, s2) in [("lo", 26.30, 26.35), ("hi", 26.40, 26.00)] {
        run(&res, "sw2", point, 1, s1, "2026-03-04T00:00:00Z");
        run(&res, "sw2", point, 2, s2, "2026-03-04T00:00:00Z");
    }
    let exp = write(t.path(), "expected.ron", &expected(sel));
    report(&res, &t.path().join("early"), &exp);
    let md = std::fs::read_to_string(t.path().join("early/tables/selection-sw2.md")).unwrap();
    assert!(
        md.contains("Not decided yet: borrowed group(s) with no finished run: sw.e.")
            && !md.contains('◀'),
        "{md}"
    );
    // Once sw.e has finished on one seed, the rule still waits (a seed the reference has).
    run(&res, "sw", "e", 1, 27.00, START);
    report(&res, &t.path().join("half"), &exp);
    let md = std::fs::read_to_string(t.path().join("half/tables/selection-sw2.md")).unwrap();
    assert!(md.contains("Not decided yet: sw.e lack a seed"), "{md}");
    // On both seeds, Δ = (+1.00, +0.20) to sw.wcc: sw.e, mean 26.700, beats stage 2's lo (26.325).
    run(&res, "sw", "e", 2, 26.30, START);
    report(&res, &t.path().join("done"), &exp);
    let md = std::fs::read_to_string(t.path().join("done/tables/selection-sw2.md")).unwrap();
    assert_eq!(
        row(&md, "sw.e")[5..],
        ["+1.000", "+0.200", "+0.600", "yes", "◀"]
    );
}

fn arm(point: &str, psnr: &[(u64, f64)], reference: &BTreeMap<u64, f64>) -> Arm {
    let psnr: BTreeMap<u64, f64> = psnr.iter().copied().collect();
    let delta = psnr
        .iter()
        .filter_map(|(k, v)| reference.get(k).map(|b| (*k, v - b)))
        .collect();
    Arm {
        point: point.into(),
        method: "m".into(),
        complete: reference.keys().all(|k| psnr.contains_key(k)),
        psnr,
        delta,
    }
}

#[test]
fn fallback_wait_and_ties() {
    let sel = Selection {
        experiment: "sw".into(),
        reference: "r".into(),
        set: "val".into(),
        fallback: "x".into(),
        borrow: vec![],
    };
    let rv: BTreeMap<u64, f64> = [(1, 26.0), (2, 26.0)].into_iter().collect();
    let r = Arm {
        point: "r".into(),
        method: "m".into(),
        psnr: rv.clone(),
        delta: BTreeMap::new(),
        complete: true,
    };
    // Nobody beats r on both seeds (a ties it on seed 2): the fallback.
    let a = arm("a", &[(1, 26.4), (2, 26.0)], &rv);
    let x = arm("x", &[(1, 25.9), (2, 26.5)], &rv);
    assert_eq!(
        rule(&sel, &[r.clone(), a.clone(), x.clone()]),
        Outcome::Fallback("x".into())
    );
    // An arm without seed 2: not decided, whatever the others do.
    let d = arm("d", &[(1, 27.0)], &rv);
    let good = arm("g", &[(1, 26.1), (2, 26.1)], &rv);
    match rule(&sel, &[r.clone(), d, good.clone()]) {
        Outcome::Incomplete(why) => assert!(why.starts_with("d lack a seed"), "{why}"),
        o => panic!("{o:?}"),
    }
    // Two arms with the same mean: the first by name.
    let h = arm("h", &[(1, 26.2), (2, 26.0 + 1e-9)], &rv);
    let g2 = arm("g", &[(1, 26.2), (2, 26.0 + 1e-9)], &rv);
    assert_eq!(rule(&sel, &[r.clone(), g2, h]), Outcome::Winner("g".into()));
    // No reference runs: not decided.
    match rule(&sel, &[good]) {
        Outcome::Incomplete(why) => assert!(why.contains("reference `r`"), "{why}"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_selection_on_a_benchmark_is_refused() {
    let t = tempdir();
    let res = t.path().join("results");
    sweep(&res);
    let exp = write(
        t.path(),
        "expected.ron",
        &expected(&SEL.replace("set: \"val\"", "set: \"Set5\"")),
    );
    let o = verify(&res, &exp);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("expected.ron")
            && err.contains("\"Set5\" is a benchmark")
            && err.contains("validation split"),
        "{err}"
    );
}
