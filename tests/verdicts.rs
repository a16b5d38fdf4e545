//! Claim verdicts (issue 25): the t distribution, the paired / Welch tests, TOST, Holm's
//! correction and pre-registration, each against numbers computed independently of odm:
//! Python 3.11 with scipy 1.17.1 (`scipy.stats.t`, `ttest_rel`, `ttest_ind(equal_var=False)`,
//! `ttest_1samp` for the TOST halves, `scipy.special.betainc`), cross-checked by hand where a
//! closed form exists (df = 1: F(t) = ½ + atan(t)/π; df = 2: P(T ≥ t) = ½ − t / (2√(t² + 2));
//! I_x(½, ½) = (2/π) asin √x; I_x(2, 3) a polynomial) and against printed t tables.

mod common;
use common::*;
use odm::report::prereg::parse_rfc3339;
use odm::report::stats::{beta_inc, holm, paired, t_cdf, t_quantile, t_sf, welch, Kind};
use std::path::Path;
use std::process::Command;

fn close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:.15}, want {want:.15}"
    );
}

#[test]
fn t_distribution_matches_tables_and_scipy() {
    // Two-sided 95 % critical values of a printed t table: t_{0.975, df}.
    for (df, q) in [(1.0, 12.706), (2.0, 4.303), (4.0, 2.776), (30.0, 2.042)] {
        close(t_quantile(0.975, df), q, 5e-4, &format!("t_0.975,{df}"));
        close(t_cdf(q, df), 0.975, 1e-4, &format!("F({q}; {df})"));
    }
    // The same to full precision (scipy.stats.t.ppf).
    for (p, df, q) in [
        (0.975, 1.0, 12.706204736174694),
        (0.975, 2.0, 4.302652729749462),
        (0.975, 4.0, 2.7764451051977934),
        (0.975, 30.0, 2.0422724563012378),
        (0.95, 1.0, 6.313751514675037),
        (0.95, 2.6350364964, 2.4923813408305744),
        (0.999, 3.0, 10.214531852407383),
        (0.6, 7.0, 0.2631668613520229),
    ] {
        close(
            t_quantile(p, df),
            q,
            1e-9 * q.abs(),
            &format!("ppf({p}, {df})"),
        );
        close(
            t_quantile(1.0 - p, df),
            -q,
            1e-9 * q.abs(),
            "lower quantile",
        );
    }
    // CDF and survival function (scipy.stats.t.cdf / .sf); df = 1 by hand: ½ + atan(2)/π.
    close(
        t_cdf(2.0, 1.0),
        0.5 + 2f64.atan() / std::f64::consts::PI,
        1e-14,
        "atan",
    );
    for (t, df, cdf, sf) in [
        (2.0, 1.0, 0.8524163823495667, 0.14758361765043326),
        (2.0, 3.0, 0.9303370157205785, 0.06966298427942152),
        (-1.5, 5.0, 0.09695184012123664, 0.9030481598787634),
        (10.0, 2.5, 0.9977792521163463, 0.0022207478836537117),
        (0.3, 100.0, 0.6176000598498482, 0.3823999401501518),
        (45.0, 2.0, 0.9997532691682973, 0.0002467308317027207),
        (3.0, 0.7, 0.8583143303494871, 0.1416856696505129),
    ] {
        close(t_cdf(t, df), cdf, 1e-12, &format!("cdf({t}, {df})"));
        // The tail keeps its relative precision.
        close(
            t_sf(t, df),
            sf,
            1e-12 * sf.max(1e-3),
            &format!("sf({t}, {df})"),
        );
    }
    assert_eq!(t_cdf(f64::INFINITY, 3.0), 1.0);
    assert_eq!(t_cdf(f64::NEG_INFINITY, 3.0), 0.0);
    assert_eq!(t_cdf(0.0, 3.0), 0.5);
    // The regularized incomplete beta function (scipy.special.betainc; the first two by hand).
    for (a, b, x, want) in [
        (0.5, 0.5, 0.3, 0.36901011956554536),
        (2.0, 3.0, 0.4, 0.5248),
        (10.0, 0.5, 0.99, 0.6579281751567845),
        (1.5, 0.5, 0.01, 0.0004256932865778925),
    ] {
        close(beta_inc(a, b, x), want, 1e-13, &format!("I_{x}({a}, {b})"));
    }
    close(
        beta_inc(0.5, 0.5, 0.3),
        2.0 / std::f64::consts::PI * 0.3f64.sqrt().asin(),
        1e-14,
        "arcsine law",
    );
}

#[test]
fn paired_welch_tost_and_holm_by_hand() {
    // d = (0.50, 0.52, 0.54): mean 0.52, sd 0.02, se 0.02/√3, t = 45.0333, df 2;
    // by the df = 2 closed form p = ½ − t/(2√(t² + 2)) = 2.463661e-4 (scipy ttest_rel agrees).
    let t = paired(&[0.50, 0.52, 0.54]).unwrap();
    assert_eq!((t.kind, t.df), (Kind::Paired, 2.0));
    close(t.mean, 0.52, 1e-15, "mean");
    close(t.mean / t.se, 45.0333209968, 1e-8, "t");
    close(t.p_above(0.0), 0.0002463661, 1e-10, "p");
    close(t.p_below(0.0), 0.9997536339, 1e-10, "p against");
    let (lo, hi) = t.ci(0.95);
    close(lo, 0.4703172458, 1e-9, "ci low");
    close(hi, 0.5696827542, 1e-9, "ci high");
    // TOST, d = (0.01, −0.01, 0): se = 0.01/√3, t = ±0.05/se = ±8.660254, df 2:
    // p = ½ − 8.660254/(2√77) = 0.0065362288.
    let e = paired(&[0.01, -0.01, 0.0]).unwrap();
    close(e.p_equivalent(0.05), 0.0065362288, 1e-9, "tost");
    close(e.p_above(0.0), 0.5, 1e-12, "p at the bound");
    // margin 0.01: t = 1.732051, p = ½ − 1.732051/(2√5) = 0.1127016654.
    close(e.p_equivalent(0.01), 0.1127016654, 1e-9, "tost 0.01");
    // Welch: a = (30.0, 30.2, 30.4), b = (29.8, 29.9): Δ 0.35, s²/n = 0.013333 + 0.0025,
    // se = 0.125831, t = 2.781518, df = 0.0158333²/(0.013333²/2 + 0.0025²/1) = 2.635036;
    // scipy ttest_ind(equal_var=False, alternative='greater') p = 0.0399103462.
    let w = welch(&[30.0, 30.2, 30.4], &[29.8, 29.9]).unwrap();
    assert_eq!(w.kind, Kind::Welch);
    close(w.df, 2.635036496350348, 1e-9, "welch df");
    close(w.mean / w.se, 2.781517949836593, 1e-9, "welch t");
    close(w.p_above(0.0), 0.03991034619564037, 1e-10, "welch p");
    let (lo, hi) = w.ci(0.95);
    close(lo, -0.08373020804733133, 1e-8, "welch ci low");
    close(hi, 0.7837302080473271, 1e-8, "welch ci high");
    // Zero spread: t = ±∞ unless the mean sits on the bound.
    let z = paired(&[0.25, 0.25]).unwrap();
    assert_eq!((z.se, z.p_above(0.0), z.p_below(0.0)), (0.0, 0.0, 1.0));
    assert_eq!(z.ci(0.95), (0.25, 0.25));
    assert_eq!(z.p_equivalent(0.05), 1.0);
    let zz = paired(&[0.0, 0.0, 0.0]).unwrap();
    assert_eq!((zz.p_above(0.0), zz.p_below(0.0)), (0.5, 0.5));
    assert_eq!(zz.p_equivalent(0.05), 0.0);
    assert_eq!(zz.p_equivalent(0.0), 0.5);
    // No test with one difference, one run on a side, or a non-finite score.
    assert!(paired(&[0.3]).is_none());
    assert!(paired(&[0.3, f64::NAN]).is_none());
    assert!(welch(&[1.0, 2.0], &[1.0]).is_none());
    // Holm: raw (0.0247068, 0.0045663, 0.0054202) sort to x, y, z:
    // 3·0.0045663 = 0.0136989; 2·0.0054202 = 0.0108404 → max 0.0136989; 1·0.0247068.
    let adj = holm(&[
        0.024706812106639935,
        0.004566305693137461,
        0.005420214302600772,
    ]);
    close(adj[0], 0.024706812106639935, 1e-15, "holm z");
    close(adj[1], 0.013698917079412384, 1e-15, "holm x");
    close(adj[2], 0.013698917079412384, 1e-15, "holm y");
    // Capped at 1 and monotone: (0.4, 0.3, 0.01) → 0.03, then max(0.03, 2·0.3) = 0.6,
    // then max(0.6, min(1, 0.4)) = 0.6.
    let adj = holm(&[0.4, 0.3, 0.01]);
    assert_eq!(
        adj.iter()
            .map(|p| (p * 1e6).round() / 1e6)
            .collect::<Vec<_>>(),
        [0.6, 0.6, 0.03]
    );
    assert!(holm(&[]).is_empty());
}

#[test]
fn rfc3339_times() {
    // 2026-01-10T00:00:00Z = 1768003200 (Python datetime.timestamp).
    assert_eq!(parse_rfc3339("2026-01-10T00:00:00Z"), Some(1768003200));
    assert_eq!(parse_rfc3339("2026-01-14T12:00:00+02:00"), Some(1768384800));
    assert_eq!(
        parse_rfc3339("2026-01-14T07:30:00.25-02:30"),
        Some(1768384800)
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z"), Some(1709164800));
    for bad in [
        "",
        "2026-01-10",
        "2026-13-10T00:00:00Z",
        "2026-01-10T00:00:00",
        "x026-01-10T00:00:00Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
    }
}

/// A finished run: spec.effective.ron and summary.json with one Set5 score, and a
/// provenance.json when `started` is given.
fn run(root: &Path, group: &str, seed: u64, psnr: f64, started: Option<&str>) {
    let name = format!("{group}.seed-{seed}");
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), quant: Pams(w_bits: 2, a_bits: 2), schedule: (iterations: 10))"#
    );
    let eval = format!(
        r#"{{"set": "Set5", "scale": 4, "images": 5, "psnr_y": {psnr}, "ssim_y": 0.8, "bicubic_psnr_y": 28.0, "bicubic_ssim_y": 0.78}}"#
    );
    let prov = started.map(|s| format!(r#"{{"seed": {seed}, "started": "{s}"}}"#));
    finished_run(
        &root.join(format!("{name}-{seed:010}")),
        &name,
        &spec,
        &eval,
        prov.as_deref(),
    );
}

/// Runs of one group: (seed, PSNR) pairs.
fn group(root: &Path, g: &str, scores: &[(u64, f64)]) {
    for &(s, p) in scores {
        run(root, g, s, p, None);
    }
}

fn odm(args: &[&str]) -> std::process::Output {
    Command::new(odm_bin()).args(args).output().unwrap()
}

/// `odm verify --results RES --expected EXP`.
fn verify(res: &Path, exp: &Path) -> std::process::Output {
    Command::new(odm_bin())
        .arg("verify")
        .arg("--results")
        .arg(res)
        .arg("--expected")
        .arg(exp)
        .output()
        .unwrap()
}

/// `odm report --results RES --out OUT --expected EXP`.
fn report(res: &Path, out: &Path, exp: &Path) -> std::process::Output {
    Command::new(odm_bin())
        .arg("report")
        .arg("--results")
        .arg(res)
        .arg("--out")
        .arg(out)
        .arg("--expected")
        .arg(exp)
        .output()
        .unwrap()
}

/// The cells of the claims-table row whose first cell is `claim`.
fn row(text: &str, claim: &str) -> Vec<String> {
    let want = format!("| {claim} |");
    let line = text
        .lines()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("no row {claim:?} in\n{text}"));
    line.trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

// Columns of the claims table.
const N: usize = 5;
const MEAN: usize = 6;
const CI: usize = 7;
const TEST: usize = 8;
const P: usize = 9;
const P_HOLM: usize = 10;
const P_AGAINST: usize = 11;
const TOST: usize = 12;
const REG: usize = 13;
const OUTCOME: usize = 14;

fn claims_fixture(root: &Path) {
    let seeds = |v: [f64; 3]| [(1, v[0]), (2, v[1]), (3, v[2])];
    // The B sides vary across seeds far more than the differences do: pairing is what resolves
    // them.
    group(root, "pa.b", &seeds([30.0, 29.0, 31.0]));
    group(root, "pa.a", &seeds([30.50, 29.52, 31.54])); // d = 0.50, 0.52, 0.54
    group(root, "fa.b", &seeds([30.0, 30.5, 29.5]));
    group(root, "fa.a", &seeds([29.70, 30.16, 29.18])); // d = −0.30, −0.34, −0.32
    group(root, "eq.b", &seeds([28.0, 28.4, 28.2]));
    group(root, "eq.a", &seeds([28.01, 28.39, 28.20])); // d = 0.01, −0.01, 0
    group(root, "in.b", &seeds([27.0, 27.2, 27.4]));
    group(root, "in.a", &seeds([27.10, 27.15, 27.44])); // d = 0.10, −0.05, 0.04
    group(root, "one.a", &[(1, 30.3)]);
    group(root, "one.b", &[(1, 30.0)]);
    group(root, "zs.a", &[(1, 30.5), (2, 30.75)]); // d = 0.25, 0.25 exactly
    group(root, "zs.b", &[(1, 30.25), (2, 30.5)]);
    group(root, "zz.a", &[(1, 29.5), (2, 29.75)]); // d = 0, 0
    group(root, "zz.b", &[(1, 29.5), (2, 29.75)]);
    group(root, "we.a", &seeds([30.0, 30.2, 30.4]));
    group(root, "we.b", &[(4, 29.8), (5, 29.9)]); // no seed in common: Welch
    group(root, "ho.base", &seeds([30.0, 30.0, 30.0]));
    group(root, "ho.z", &seeds([30.03, 30.05, 30.07]));
    group(root, "ho.x", &seeds([30.10, 30.12, 30.14]));
    group(root, "ho.y", &seeds([30.09, 30.11, 30.13]));
}

fn claims_ron(dir: &Path, required_inconclusive: bool) -> std::path::PathBuf {
    write(
        dir,
        "expected.ron",
        &format!(
            r#"(cells: [], claims: [
    (claim: "pass", better: "pa.a", worse: "pa.b", set: "Set5", required: true),
    (claim: "fail", better: "fa.a", worse: "fa.b", set: "Set5"),
    (claim: "equivalent", better: "eq.a", worse: "eq.b", set: "Set5", expect: Equivalent, required: true),
    (claim: "narrow margin", better: "eq.a", worse: "eq.b", set: "Set5", margin: 0.01),
    (claim: "inconclusive", better: "in.a", worse: "in.b", set: "Set5", required: {required_inconclusive}),
    (claim: "one seed", better: "one.a", worse: "one.b", set: "Set5"),
    (claim: "zero spread", better: "zs.a", worse: "zs.b", set: "Set5"),
    (claim: "zero spread, zero mean", better: "zz.a", worse: "zz.b", set: "Set5"),
    (claim: "welch", better: "we.a", worse: "we.b", set: "Set5"),
    (claim: "holm z", better: "ho.z", worse: "ho.base", set: "Set5"),
    (claim: "holm x", better: "ho.x", worse: "ho.base", set: "Set5"),
    (claim: "holm y", better: "ho.y", worse: "ho.base", set: "Set5"),
    (claim: "no runs", better: "gpu.a", worse: "gpu.b", set: "Set5"),
])"#
        ),
    )
}

#[test]
fn verify_judges_each_outcome_from_hand_computed_statistics() {
    let t = tempdir();
    let res = t.path().join("results");
    claims_fixture(&res);
    let exp = claims_ron(t.path(), false);
    let o = verify(&res, &exp);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    // pass: scipy ttest_rel p = 2.463661e-4 (one claim in experiment "pa": Holm = raw), CI
    // 0.52 ± 4.302653 · 0.011547 = [0.470, 0.570].
    let r = row(&text, "pass");
    assert_eq!(
        [&r[N], &r[MEAN], &r[CI], &r[TEST], &r[P], &r[P_HOLM]],
        [
            "3",
            "0.520",
            "[0.470, 0.570]",
            "paired, df 2",
            "2.5e-4",
            "2.5e-4"
        ]
    );
    assert_eq!(r[OUTCOME], "pass (required)");
    // FAIL: d mean −0.32, t = −27.7128, p against = 6.497729e-4, CI [−0.370, −0.270].
    let r = row(&text, "fail");
    assert_eq!(
        [&r[MEAN], &r[CI], &r[P], &r[P_AGAINST], &r[OUTCOME]],
        ["-0.320", "[-0.370, -0.270]", "0.9994", "6.5e-4", "FAIL"]
    );
    // equivalent: p = 0.5 each way (Holm over the 2 claims of "eq": 1), TOST 0.0065362288,
    // CI ±4.302653 · 0.0057735 = ±0.0248.
    let r = row(&text, "equivalent");
    assert_eq!(
        [
            &r[CI],
            &r[P],
            &r[P_HOLM],
            &r[P_AGAINST],
            &r[TOST],
            &r[OUTCOME]
        ],
        [
            "[-0.025, 0.025]",
            "0.5000",
            "1.0000",
            "1.0000",
            "0.0065 (±0.05)",
            "equivalent (required)"
        ]
    );
    // The same runs with a 0.01 dB margin: TOST p = 0.1127 (df 2 closed form): inconclusive.
    let r = row(&text, "narrow margin");
    assert_eq!([&r[TOST], &r[OUTCOME]], ["0.1127 (±0.01)", "inconclusive"]);
    // inconclusive: d = (0.10, −0.05, 0.04): t = 0.688247, p = 0.2812, TOST 0.3457,
    // CI [−0.158, 0.218].
    let r = row(&text, "inconclusive");
    assert_eq!(
        [&r[MEAN], &r[CI], &r[P], &r[TOST], &r[OUTCOME]],
        [
            "0.030",
            "[-0.158, 0.218]",
            "0.2812",
            "0.3457 (±0.05)",
            "inconclusive"
        ]
    );
    // One seed: no test.
    let r = row(&text, "one seed");
    assert_eq!(
        [&r[N], &r[MEAN], &r[CI], &r[TEST], &r[P], &r[OUTCOME]],
        ["1", "0.300", "–", "none: one seed", "–", "inconclusive"]
    );
    // Zero spread: t = +∞ → p = 0; with mean 0, p = 0.5 and TOST p = 0.
    let r = row(&text, "zero spread");
    assert_eq!(
        [&r[CI], &r[P], &r[P_AGAINST], &r[OUTCOME]],
        ["[0.250, 0.250]", "0", "1.0000", "pass"]
    );
    let r = row(&text, "zero spread, zero mean");
    assert_eq!(
        [&r[P], &r[P_AGAINST], &r[TOST], &r[OUTCOME]],
        ["0.5000", "0.5000", "0 (±0.05)", "equivalent"]
    );
    // Welch (no shared seed): df 2.635036, p = 0.0399103, CI [−0.084, 0.784].
    let r = row(&text, "welch");
    assert_eq!(
        [&r[N], &r[MEAN], &r[CI], &r[TEST], &r[P], &r[OUTCOME]],
        [
            "3 + 2",
            "0.350",
            "[-0.084, 0.784]",
            "unpaired (Welch), df 2.64",
            "0.0399",
            "pass"
        ]
    );
    // Holm over experiment "ho" (listed z, x, y): raw 0.0247, 0.0046, 0.0054 →
    // adjusted 0.0247, 0.0137, 0.0137 (the step-down keeps y at x's 0.0137).
    for (c, raw, adj) in [
        ("holm z", "0.0247", "0.0247"),
        ("holm x", "0.0046", "0.0137"),
        ("holm y", "0.0054", "0.0137"),
    ] {
        let r = row(&text, c);
        assert_eq!([&r[P], &r[P_HOLM], &r[OUTCOME]], [raw, adj, "pass"], "{c}");
    }
    let r = row(&text, "no runs");
    assert_eq!([&r[N], &r[REG], &r[OUTCOME]], ["–", "–", "missing"]);
    // No provenance.json in these folders: their start is unknown, so post hoc.
    assert!(
        row(&text, "pass")[REG].starts_with("post hoc: start of pa."),
        "{text}"
    );
    assert!(
        text.contains("Claims: 0 pre-registered (0 pass, 0 FAIL, 0 equivalent, 0 inconclusive); 12 post hoc (6 pass, 1 FAIL, 2 equivalent, 3 inconclusive); 1 missing. Required: 2 (2 post hoc), all hold."),
        "{text}"
    );
    // A required claim that is inconclusive fails verify (exit 1) and is named.
    let exp = claims_ron(t.path(), true);
    let o = verify(&res, &exp);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Required: 3 (3 post hoc), 1 do not hold: \"inconclusive\" (inconclusive).")
            && text.contains("verify: 1 required cell(s)/claim(s) do not hold"),
        "{text}"
    );
    // A negative margin is a one-line input error (exit 2).
    let bad = write(
        t.path(),
        "bad.ron",
        r#"(cells: [], claims: [(claim: "m", better: "pa.a", worse: "pa.b", set: "Set5", margin: -0.1)])"#,
    );
    let o = verify(&res, &bad);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.ron: claim \"m\": margin -0.1") && err.trim().lines().count() == 1,
        "{err}"
    );
    // The retired `k` field is refused by name.
    let old = write(
        t.path(),
        "old.ron",
        r#"(cells: [], claims: [(claim: "m", better: "pa.a", worse: "pa.b", set: "Set5", k: 1.0)])"#,
    );
    let o = verify(&res, &old);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("margin"));
}

fn head(dir: &Path) -> String {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout)[..10].to_string()
}

const C1: &str =
    r#"(claim: "C1 registered", better: "g.a", worse: "g.b", set: "Set5", required: REQ),"#;
const C2: &str =
    r#"(claim: "C2 after the runs", better: "g.a", worse: "g.b", set: "Set5", required: true),"#;
const C3: &str = r#"(claim: "C3 uncommitted", better: "g.a", worse: "g.b", set: "Set5"),"#;
const C4: &str =
    r#"(claim: "C1 registered", better: "g.a", worse: "g.b", set: "Set5", expect: Equivalent),"#;
const C5: &str = r#"(claim: "C5 no runs", better: "h.a", worse: "h.b", set: "Set5"),"#;

fn ron(claims: &[&str]) -> String {
    format!(
        "// an older field: `k` is ignored in past versions\n(cells: [], claims: [\n{}\n])\n",
        claims.join("\n")
    )
}

#[test]
fn claims_committed_after_their_runs_started_are_post_hoc() {
    let t = tempdir();
    let repo = t.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, None, &["init", "-q"]);
    // 2026-01-10T00:00:00Z: C1, in a file that later moves to reports/expected.ron, with the
    // retired `k` field (past versions are read leniently).
    let old = C1.replace("REQ", "false").replace("),", ", k: 1.0),");
    std::fs::write(repo.join("claims.ron"), ron(&[&old, C5])).unwrap();
    git(&repo, None, &["add", "claims.ron"]);
    git(&repo, Some(1768003200), &["commit", "-q", "-m", "C1"]);
    let c1 = head(&repo);
    // 2026-01-12T00:00:00Z: moved to reports/expected.ron (git log --follow tracks it).
    std::fs::create_dir_all(repo.join("reports")).unwrap();
    git(&repo, None, &["mv", "claims.ron", "reports/expected.ron"]);
    git(&repo, Some(1768176000), &["commit", "-q", "-m", "move"]);
    // 2026-01-20T00:00:00Z: C2 added.
    std::fs::write(repo.join("reports/expected.ron"), ron(&[&old, C5, C2])).unwrap();
    git(&repo, None, &["add", "-A"]);
    git(&repo, Some(1768867200), &["commit", "-q", "-m", "C2"]);
    let c2 = head(&repo);
    // Not committed: C3, C4 (C1 with another expectation), and C1 without `k` and now
    // required (neither is part of a claim's identity).
    let exp = repo.join("reports/expected.ron");
    let c1_req = C1.replace("REQ", "true");
    std::fs::write(&exp, ron(&[&c1_req, C5, C2, C3, C4])).unwrap();
    // The runs started between the two commits; the earliest, 2026-01-14T12:00:00+02:00 =
    // 10:00Z, counts.
    let res = t.path().join("results");
    run(&res, "g.a", 1, 31.0, Some("2026-01-15T00:00:00Z"));
    run(&res, "g.a", 2, 31.5, Some("2026-01-15T00:00:00Z"));
    run(&res, "g.b", 1, 30.0, Some("2026-01-14T12:00:00+02:00"));
    run(&res, "g.b", 2, 30.5, Some("2026-01-15T00:00:00Z"));
    // odm runs elsewhere: git must find the repository from the file's folder.
    let o = Command::new(odm_bin())
        .current_dir(t.path())
        .args(["verify", "--results", "results", "--expected"])
        .arg(&exp)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{text}");
    assert_eq!(
        row(&text, "C1 registered")[REG],
        format!("pre-registered: {c1} 2026-01-10T00:00:00Z ≤ first run 2026-01-14T10:00:00Z")
    );
    assert_eq!(
        row(&text, "C2 after the runs")[REG],
        format!("post hoc: {c2} 2026-01-20T00:00:00Z > first run 2026-01-14T10:00:00Z")
    );
    assert_eq!(row(&text, "C3 uncommitted")[REG], "post hoc: not committed");
    // C4 shares C1's text and groups but not its expectation: a new claim. d = (1, 1): zero
    // spread, so it FAILs as an equivalence claim.
    let c4 = text
        .lines()
        .filter(|l| l.starts_with("| C1 registered |"))
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(c4.contains("| post hoc: not committed | FAIL |"), "{c4}");
    assert_eq!(row(&text, "C5 no runs")[REG], "–");
    // The required post hoc claim is judged all the same, and counted apart.
    assert_eq!(row(&text, "C2 after the runs")[OUTCOME], "pass (required)");
    assert!(
        text.contains("Claims: 1 pre-registered (1 pass, 0 FAIL, 0 equivalent, 0 inconclusive); 3 post hoc (2 pass, 1 FAIL, 0 equivalent, 0 inconclusive); 1 missing. Required: 2 (1 post hoc), all hold."),
        "{text}"
    );
    // The report says only pre-registered / post hoc, so committing C3 later leaves it as is.
    let out = t.path().join("reports");
    let o = report(&res, &out, &exp);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("tables/reproduction.md")).unwrap();
    assert_eq!(row(&md, "C1 registered")[REG], "pre-registered");
    assert_eq!(row(&md, "C2 after the runs")[REG], "post hoc");
    assert_eq!(row(&md, "C3 uncommitted")[REG], "post hoc");
    git(&repo, None, &["add", "-A"]);
    git(&repo, Some(1768867300), &["commit", "-q", "-m", "C3"]);
    let again = t.path().join("reports2");
    let o = report(&res, &again, &exp);
    assert!(o.status.success());
    assert_eq!(
        md,
        std::fs::read_to_string(again.join("tables/reproduction.md")).unwrap()
    );
    let csv = std::fs::read_to_string(out.join("tables/reproduction-claims.csv")).unwrap();
    assert!(
        csv.contains("C2 after the runs,g.a,g.b,Set5,better,0.05,2,2,2,paired,1.000000,1.000000,1.000000,1.000000,0.000000e0,0.000000e0,1.000000e0,1.000000e0,1.000000e0,post hoc,true,pass"),
        "{csv}"
    );
    // Outside any repository there is no history: every judged claim is post hoc.
    let plain = t.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::copy(&exp, plain.join("expected.ron")).unwrap();
    let o = odm(&[
        "verify",
        "--results",
        res.to_str().unwrap(),
        "--expected",
        plain.join("expected.ron").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        row(&text, "C1 registered")[REG].starts_with("post hoc: no git history (not in a git"),
        "{text}"
    );
}
