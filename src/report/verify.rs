//! `odm verify`: our numbers against the papers' published cells (`reports/expected.ron`, each
//! with its source and tolerance), and relative claims between our own runs judged by tests.
//!
//! A cell matches the group of runs with the same backbone, scale, W/A bits and method (label or
//! family, e.g. "ODM"); `group` pins one explicitly. Bicubic cells read the bicubic scores every
//! run stores for its own images.
//!
//! A claim "A > B on a set" pairs A's and B's runs by seed (runs with the same seed share the
//! calibration batches and the sampler stream) and tests the per-seed PSNR differences with a
//! one-sided paired t test (df = n − 1); where the groups share fewer than two seeds but each has
//! two runs, Welch's unpaired test (Welch–Satterthwaite df) instead. p-values are Holm-adjusted
//! across the tested claims of one experiment (the experiment of the claim's groups), separately
//! for "A > B" and "A < B". Outcomes at α = 0.05: `pass` (A > B significant), `FAIL` (A < B
//! significant; for an `expect: Equivalent` claim, either direction), `equivalent` (neither, and
//! TOST puts the difference inside ±margin, default 0.05 dB), `inconclusive` otherwise, always
//! with a single seed. A claim first committed to the expectations file after the first of its
//! runs started is post hoc ([`super::prereg`]); an uncommitted claim is post hoc too. `verify`
//! exits non-zero when a cell or claim marked `required` does not hold (a missing one fails too).

use super::frame::{Agg, Aggs};
pub use super::prereg::Registration;
use super::prereg::{self, History};
use super::selection::{self, Chosen, Selection};
use super::stats::{self, Kind, TTest};
use super::tables::{csv, latex, md, tex, write_table, Fmt, Item, Table};
use super::{Run, PROTOCOL};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The significance level of every test.
pub const ALPHA: f64 = 0.05;

/// One published number.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Cell {
    pub source: String,
    pub backbone: String,
    pub scale: usize,
    /// (w_bits, a_bits); `None` for FP and bicubic.
    #[serde(default)]
    pub bits: Option<(u32, u32)>,
    /// "Bicubic", a family ("FP32", "PAMS", "DDTB-static", "ODM", ...) or an exact method label.
    pub method: String,
    pub set: String,
    pub psnr: f64,
    #[serde(default)]
    pub ssim: Option<f64>,
    pub tol_psnr: f64,
    #[serde(default = "d_tol_ssim")]
    pub tol_ssim: f64,
    #[serde(default)]
    pub required: bool,
    /// Pin the group of runs this cell compares with.
    #[serde(default)]
    pub group: Option<String>,
}

fn d_tol_ssim() -> f64 {
    0.005
}
fn d_margin() -> f64 {
    0.05
}

/// What a claim asserts of its two groups.
#[derive(Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Expect {
    /// `better` scores higher than `worse`.
    #[default]
    Better,
    /// No effect: the difference lies within ±margin.
    Equivalent,
}

impl Expect {
    fn word(self) -> &'static str {
        match self {
            Expect::Better => "better",
            Expect::Equivalent => "equivalent",
        }
    }
}

/// A relative claim between two groups on one set (PSNR).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub claim: String,
    pub better: String,
    pub worse: String,
    pub set: String,
    /// The equivalence margin in dB (TOST): differences within ±margin count as no effect.
    #[serde(default = "d_margin")]
    pub margin: f64,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default)]
    pub required: bool,
}

/// `reports/expected.ron`.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    pub cells: Vec<Cell>,
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Hyperparameter selections on a validation split ([`super::selection`]).
    #[serde(default)]
    pub selections: Vec<Selection>,
    /// Mechanism comparisons drawn side by side ([`super::mechanism`]).
    #[serde(default)]
    pub mechanisms: Vec<super::mechanism::Mechanism>,
}

/// Load and parse the expectations; errors name the file, line and column.
pub fn load(path: &Path) -> anyhow::Result<Expected> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::error::user(format!(
            "{}: cannot read ({e}); pass --expected FILE",
            path.display()
        ))
    })?;
    let e: Expected = crate::spec::load::ron_options()
        .from_str(&text)
        .map_err(|e| {
            crate::error::user(format!(
                "{}:{}:{}: {} (fields: cells: [(source, backbone, scale, bits, method, set, psnr, ssim, tol_psnr, tol_ssim, required, group)], claims: [(claim, better, worse, set, margin, expect: Better | Equivalent, required)], selections: [(experiment, reference, set, fallback, borrow)], mechanisms: [(name, arms: [(role, group)])])",
                path.display(),
                e.position.line,
                e.position.col,
                e.code
            ))
        })?;
    if let Some(c) = e
        .claims
        .iter()
        .find(|c| !(c.margin.is_finite() && c.margin >= 0.0))
    {
        return Err(crate::error::user(format!(
            "{}: claim {:?}: margin {} is not a number of dB ≥ 0; set e.g. margin: 0.05",
            path.display(),
            c.claim,
            c.margin
        )));
    }
    for s in &e.selections {
        s.check(path)?;
    }
    for m in &e.mechanisms {
        m.check(path)?;
    }
    Ok(e)
}

/// What identifies a claim across versions of the file: its text, groups, set, expectation
/// and margin (changing any of them makes a new claim). `required` is not part of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key(String, String, String, String, Expect, u64);

impl Key {
    fn of(c: &Claim) -> Self {
        Key(
            c.claim.clone(),
            c.better.clone(),
            c.worse.clone(),
            c.set.clone(),
            c.expect,
            c.margin.to_bits(),
        )
    }
}

/// The claims of an older version of the file, read leniently (older fields such as `k`, and
/// anything else unknown, are ignored); an unreadable version holds no claims.
fn past_claims(text: &str) -> Vec<Key> {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(default)]
        claims: Vec<LooseClaim>,
    }
    #[derive(Deserialize)]
    struct LooseClaim {
        claim: String,
        better: String,
        worse: String,
        set: String,
        #[serde(default = "d_margin")]
        margin: f64,
        #[serde(default)]
        expect: Expect,
    }
    crate::spec::load::ron_options()
        .from_str::<Loose>(text)
        .map(|l| {
            l.claims
                .into_iter()
                .map(|c| {
                    Key(
                        c.claim,
                        c.better,
                        c.worse,
                        c.set,
                        c.expect,
                        c.margin.to_bits(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    Pass,
    Fail,
    Equivalent,
    Inconclusive,
    Missing,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Equivalent => "equivalent",
            Status::Inconclusive => "inconclusive",
            Status::Missing => "missing",
        }
    }
}

/// One cell's result.
pub struct CellResult {
    pub cell: Cell,
    pub group: Option<String>,
    pub ours: Option<(f64, Option<f64>, usize)>,
    pub status: Status,
}

/// A claim's test and its p-values.
#[derive(Clone, Debug, PartialEq)]
pub struct Tested {
    pub test: TTest,
    /// Raw one-sided p of "A > B".
    pub p: f64,
    /// Raw one-sided p of "A < B".
    pub p_against: f64,
    /// Holm-adjusted within the claim's experiment.
    pub p_holm: f64,
    pub p_against_holm: f64,
    /// TOST p of |Δ| < margin.
    pub p_tost: f64,
    /// The 95 % two-sided confidence interval of Δ.
    pub ci: (f64, f64),
}

/// One claim's result.
pub struct ClaimResult {
    pub claim: Claim,
    /// Seeds with a score on the set: (better, worse, shared).
    pub seeds: (usize, usize, usize),
    /// The mean difference (over the pairs when paired, else of the group means).
    pub delta: Option<f64>,
    pub tested: Option<Tested>,
    /// Why there is no test, when there is none.
    pub untested: Option<&'static str>,
    /// The Holm family: the experiment(s) of the claim's groups.
    pub family: String,
    pub status: Status,
    pub registration: Registration,
}

impl ClaimResult {
    /// Whether the claim says what it expects: pass for `Better`, equivalent for `Equivalent`.
    pub fn holds(&self) -> bool {
        match self.claim.expect {
            Expect::Better => self.status == Status::Pass,
            Expect::Equivalent => self.status == Status::Equivalent,
        }
    }
}

/// Everything `verify` found; `ok` is false when a required check did not hold.
pub struct Verdict {
    pub cells: Vec<CellResult>,
    pub claims: Vec<ClaimResult>,
    /// The declared selections applied to the ledger (they never make `ok` false).
    pub selections: Vec<Chosen>,
    pub ok: bool,
}

fn find_group(c: &Cell, runs: &[Run], aggs: &Aggs) -> Option<String> {
    if let Some(g) = &c.group {
        return runs.iter().find(|r| &r.group == g).map(|r| r.group.clone());
    }
    let mut cands: Vec<(usize, usize, String)> = runs
        .iter()
        .filter(|r| {
            r.backbone == c.backbone
                && r.spec.scale == c.scale
                && r.bits == c.bits
                && (r.method == c.method || r.family.label() == c.method)
        })
        .filter_map(|r| {
            aggs.get(&r.group, &c.set)
                .map(|a| (a.n, r.spec.schedule.iterations, r.group.clone()))
        })
        .collect();
    cands.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    cands.into_iter().next().map(|c| c.2)
}

fn check_cell(c: &Cell, runs: &[Run], aggs: &Aggs) -> CellResult {
    let (group, ours) = if c.method == "Bicubic" {
        let s = runs
            .iter()
            .filter(|r| r.spec.scale == c.scale)
            .flat_map(|r| r.scores.iter())
            .find(|s| s.set == c.set);
        (
            s.map(|_| "bicubic".to_string()),
            s.map(|s| (s.bic_psnr, Some(s.bic_ssim), 1)),
        )
    } else {
        let g = find_group(c, runs, aggs);
        let a: Option<&Agg> = g.as_ref().and_then(|g| aggs.get(g, &c.set));
        (g.clone(), a.map(|a| (a.psnr.0, Some(a.ssim.0), a.n)))
    };
    let status = match ours {
        None => Status::Missing,
        Some((p, s, _)) => {
            let ok_p = (p - c.psnr).abs() <= c.tol_psnr;
            let ok_s = match (c.ssim, s) {
                (Some(e), Some(o)) => (o - e).abs() <= c.tol_ssim,
                _ => true,
            };
            if ok_p && ok_s {
                Status::Pass
            } else {
                Status::Fail
            }
        }
    };
    CellResult {
        cell: c.clone(),
        group,
        ours,
        status,
    }
}

/// A group's PSNR on `set` per seed (runs sharing a seed are averaged), its experiment, and the
/// runs read.
fn per_seed<'a>(
    runs: &'a [Run],
    group: &str,
    set: &str,
) -> (BTreeMap<u64, f64>, Option<&'a str>, Vec<&'a Run>) {
    let mut acc: BTreeMap<u64, (f64, usize)> = BTreeMap::new();
    let (mut exp, mut used) = (None, Vec::new());
    for r in runs.iter().filter(|r| r.group == group) {
        if let Some(s) = r.scores.iter().find(|s| s.set == set) {
            let e = acc.entry(r.spec.seed).or_insert((0.0, 0));
            e.0 += s.psnr;
            e.1 += 1;
            exp.get_or_insert(r.experiment.as_str());
            used.push(r);
        }
    }
    let means = acc
        .into_iter()
        .map(|(k, (s, n))| (k, s / n as f64))
        .collect();
    (means, exp, used)
}

/// Each claim's first commit (the earliest committer time of a version that holds it).
fn first_commits(h: &History) -> HashMap<Key, (String, i64)> {
    let mut first: HashMap<Key, (String, i64)> = HashMap::new();
    if let History::Versions(vs) = h {
        for v in vs {
            for k in past_claims(&v.text) {
                match first.get(&k) {
                    Some((_, t)) if *t <= v.time => {}
                    _ => {
                        first.insert(k, (v.commit.clone(), v.time));
                    }
                }
            }
        }
    }
    first
}

fn registration(
    c: &Claim,
    used: &[&Run],
    first: &HashMap<Key, (String, i64)>,
    hist: &History,
) -> Registration {
    let dirs: Vec<&Path> = used.iter().map(|r| r.dir.as_path()).collect();
    prereg::register(first.get(&Key::of(c)), &dirs, hist)
}

/// Pair, test and register one claim; its p-values are not yet Holm-adjusted and its status
/// not yet final (see [`check`]).
fn judge(
    c: &Claim,
    runs: &[Run],
    first: &HashMap<Key, (String, i64)>,
    hist: &History,
) -> ClaimResult {
    let (a, ea, ua) = per_seed(runs, &c.better, &c.set);
    let (b, eb, ub) = per_seed(runs, &c.worse, &c.set);
    let family = match (ea, eb) {
        (Some(x), Some(y)) if x == y => x.to_string(),
        (Some(x), Some(y)) => format!("{x} / {y}"),
        _ => String::new(),
    };
    let shared: Vec<u64> = a.keys().filter(|k| b.contains_key(k)).copied().collect();
    let seeds = (a.len(), b.len(), shared.len());
    if a.is_empty() || b.is_empty() {
        return ClaimResult {
            claim: c.clone(),
            seeds,
            delta: None,
            tested: None,
            untested: None,
            family,
            status: Status::Missing,
            registration: Registration::NoRuns,
        };
    }
    let d: Vec<f64> = shared.iter().map(|k| a[k] - b[k]).collect();
    let (av, bv): (Vec<f64>, Vec<f64>) =
        (a.values().copied().collect(), b.values().copied().collect());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let test = if d.len() >= 2 {
        stats::paired(&d)
    } else {
        stats::welch(&av, &bv)
    };
    let delta = Some(test.map_or_else(
        || {
            if d.is_empty() {
                mean(&av) - mean(&bv)
            } else {
                mean(&d)
            }
        },
        |t| t.mean,
    ));
    let tested = test.map(|t| Tested {
        test: t,
        p: t.p_above(0.0),
        p_against: t.p_below(0.0),
        p_holm: t.p_above(0.0),
        p_against_holm: t.p_below(0.0),
        p_tost: t.p_equivalent(c.margin),
        ci: t.ci(0.95),
    });
    let untested = match tested {
        Some(_) => None,
        None if a.len().max(b.len()) <= 1 => Some("one seed"),
        None if d.len() < 2 && a.len().min(b.len()) < 2 => Some("a group has one seed"),
        None => Some("a score is not finite"),
    };
    let mut used = ua;
    used.extend(ub);
    ClaimResult {
        claim: c.clone(),
        seeds,
        delta,
        tested,
        untested,
        family,
        status: Status::Inconclusive,
        registration: registration(c, &used, first, hist),
    }
}

fn outcome(c: &Claim, t: &Tested) -> Status {
    let (up, down) = (t.p_holm < ALPHA, t.p_against_holm < ALPHA);
    match c.expect {
        Expect::Better if up => Status::Pass,
        Expect::Better if down => Status::Fail,
        Expect::Equivalent if up || down => Status::Fail,
        _ if t.p_tost < ALPHA => Status::Equivalent,
        _ => Status::Inconclusive,
    }
}

/// Check every cell and claim. `hist` is the expectations file's git history
/// ([`prereg::history`]), which decides what is post hoc.
pub fn check(e: &Expected, runs: &[Run], aggs: &Aggs, hist: &History) -> Verdict {
    let cells: Vec<CellResult> = e.cells.iter().map(|c| check_cell(c, runs, aggs)).collect();
    let first = first_commits(hist);
    let mut claims: Vec<ClaimResult> = e
        .claims
        .iter()
        .map(|c| judge(c, runs, &first, hist))
        .collect();
    // Holm within each experiment, over its tested claims, once for "A > B" and once for
    // "A < B".
    let mut families: Vec<String> = claims
        .iter()
        .filter(|r| r.tested.is_some())
        .map(|r| r.family.clone())
        .collect();
    families.sort();
    families.dedup();
    for f in &families {
        let members: Vec<usize> = (0..claims.len())
            .filter(|&i| claims[i].tested.is_some() && &claims[i].family == f)
            .collect();
        let tests: Vec<&Tested> = members
            .iter()
            .filter_map(|&i| claims[i].tested.as_ref())
            .collect();
        let up = stats::holm(&tests.iter().map(|t| t.p).collect::<Vec<_>>());
        let down = stats::holm(&tests.iter().map(|t| t.p_against).collect::<Vec<_>>());
        for (k, &i) in members.iter().enumerate() {
            if let Some(t) = claims[i].tested.as_mut() {
                t.p_holm = up[k];
                t.p_against_holm = down[k];
            }
        }
    }
    for r in claims.iter_mut() {
        if let Some(t) = &r.tested {
            r.status = outcome(&r.claim, t);
        }
    }
    let ok = cells
        .iter()
        .all(|c| !c.cell.required || c.status == Status::Pass)
        && claims.iter().all(|c| !c.claim.required || c.holds());
    let selections = selection::choose(&e.selections, runs, hist);
    Verdict {
        cells,
        claims,
        selections,
        ok,
    }
}

fn f(x: Option<f64>, d: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.d$}"))
}

fn cell_rows(v: &Verdict, fm: Fmt) -> Vec<Vec<String>> {
    let t = |s: &str| {
        if fm == Fmt::Tex {
            tex(s)
        } else {
            s.to_string()
        }
    };
    v.cells
        .iter()
        .map(|r| {
            let c = &r.cell;
            let (op, os, n) = r.ours.map_or((None, None, 0), |(p, s, n)| (Some(p), s, n));
            vec![
                t(&c.source),
                t(&c.backbone),
                t(&format!("×{}", c.scale)),
                match c.bits {
                    Some((w, a)) => format!("{w}/{a}"),
                    None if c.method == "Bicubic" => "–".into(),
                    None => "32/32".into(),
                },
                t(&c.method),
                c.set.clone(),
                format!(
                    "{:.2}{}",
                    c.psnr,
                    c.ssim.map_or(String::new(), |s| format!(" / {s:.4}"))
                ),
                format!(
                    "{}{}",
                    f(op, 3),
                    os.map_or(String::new(), |s| format!(" / {s:.4}"))
                ),
                f(op.map(|p| p - c.psnr), 3),
                format!("{:.2}", c.tol_psnr),
                t(&r.group.clone().unwrap_or("–".into())),
                if n == 0 { "–".into() } else { n.to_string() },
                format!(
                    "{}{}",
                    r.status.word(),
                    if c.required { " (required)" } else { "" }
                ),
            ]
        })
        .collect()
}

const CELL_HEAD: [&str; 13] = [
    "Source",
    "Backbone",
    "Scale",
    "W/A",
    "Method",
    "Set",
    "Paper PSNR / SSIM",
    "Ours PSNR / SSIM",
    "Δ PSNR",
    "Tol",
    "Our group",
    "Seeds",
    "Status",
];

/// A p-value: four decimals, or two significant digits below 0.001.
pub fn fp(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

fn test_word(r: &ClaimResult) -> String {
    match (&r.tested, r.status) {
        (_, Status::Missing) => "–".into(),
        (Some(t), _) => match t.test.kind {
            Kind::Paired => format!("paired, df {}", t.test.df),
            Kind::Welch => format!("unpaired (Welch), df {:.2}", t.test.df),
        },
        (None, _) => format!("none: {}", r.untested.unwrap_or("no test")),
    }
}

fn n_word(r: &ClaimResult) -> String {
    let (a, b, shared) = r.seeds;
    match &r.tested {
        _ if r.status == Status::Missing => "–".into(),
        Some(t) if t.test.kind == Kind::Welch => format!("{a} + {b}"),
        _ if shared > 0 => shared.to_string(),
        _ => format!("{a} + {b}"),
    }
}

fn claim_rows(v: &Verdict, detail: bool, fm: Fmt) -> Vec<Vec<String>> {
    let t = |s: &str| {
        if fm == Fmt::Tex {
            tex(s)
                .replace('<', "\\textless{}")
                .replace('>', "\\textgreater{}")
        } else {
            s.to_string()
        }
    };
    v.claims
        .iter()
        .map(|r| {
            let c = &r.claim;
            let ts = r.tested.as_ref();
            vec![
                t(&c.claim),
                t(&c.better),
                t(&c.worse),
                t(&c.set),
                c.expect.word().into(),
                n_word(r),
                f(r.delta, 3),
                ts.map_or("–".into(), |x| format!("[{:.3}, {:.3}]", x.ci.0, x.ci.1)),
                t(&test_word(r)),
                ts.map_or("–".into(), |x| fp(x.p)),
                ts.map_or("–".into(), |x| fp(x.p_holm)),
                ts.map_or("–".into(), |x| fp(x.p_against_holm)),
                ts.map_or("–".into(), |x| {
                    format!("{} (±{})", fp(x.p_tost), c.margin)
                }),
                t(&if detail {
                    r.registration.detail()
                } else {
                    r.registration.word().to_string()
                }),
                format!(
                    "{}{}",
                    r.status.word(),
                    if c.required { " (required)" } else { "" }
                ),
            ]
        })
        .collect()
}

const CLAIM_HEAD: [&str; 15] = [
    "Claim",
    "Better",
    "Worse",
    "Set",
    "Expect",
    "n",
    "Mean Δ PSNR",
    "95 % CI",
    "Test",
    "p",
    "p (Holm)",
    "p against (Holm)",
    "p TOST (±margin)",
    "Registered",
    "Outcome",
];

fn claim_csv(v: &Verdict) -> String {
    let e = |x: Option<f64>| x.map_or(String::new(), |p| format!("{p:.6e}"));
    let d = |x: Option<f64>| x.map_or(String::new(), |p| format!("{p:.6}"));
    let rows: Vec<Vec<String>> = v
        .claims
        .iter()
        .map(|r| {
            let c = &r.claim;
            let ts = r.tested.as_ref();
            vec![
                c.claim.clone(),
                c.better.clone(),
                c.worse.clone(),
                c.set.clone(),
                c.expect.word().into(),
                format!("{}", c.margin),
                r.seeds.0.to_string(),
                r.seeds.1.to_string(),
                r.seeds.2.to_string(),
                ts.map_or("none".into(), |x| match x.test.kind {
                    Kind::Paired => "paired".into(),
                    Kind::Welch => "welch".into(),
                }),
                d(ts.map(|x| x.test.df)),
                d(r.delta),
                d(ts.map(|x| x.ci.0)),
                d(ts.map(|x| x.ci.1)),
                e(ts.map(|x| x.p)),
                e(ts.map(|x| x.p_holm)),
                e(ts.map(|x| x.p_against)),
                e(ts.map(|x| x.p_against_holm)),
                e(ts.map(|x| x.p_tost)),
                match r.registration {
                    Registration::NoRuns => String::new(),
                    _ => r.registration.word().into(),
                },
                c.required.to_string(),
                r.status.word().into(),
            ]
        })
        .collect();
    csv(
        &[
            "claim",
            "better",
            "worse",
            "set",
            "expect",
            "margin",
            "seeds_better",
            "seeds_worse",
            "pairs",
            "test",
            "df",
            "mean_delta_psnr",
            "ci95_low",
            "ci95_high",
            "p",
            "p_holm",
            "p_against",
            "p_against_holm",
            "p_tost",
            "registered",
            "required",
            "outcome",
        ],
        &rows,
    )
}

/// The claims' tally: outcomes of the pre-registered and of the post hoc ones, the missing, and
/// whether every required claim holds.
pub fn summary(v: &Verdict) -> String {
    let tally = |post: bool| {
        let rs: Vec<&ClaimResult> = v
            .claims
            .iter()
            .filter(|r| r.status != Status::Missing && r.registration.post_hoc() == post)
            .collect();
        let k = |s: Status| rs.iter().filter(|r| r.status == s).count();
        format!(
            "{} {} ({} pass, {} FAIL, {} equivalent, {} inconclusive)",
            rs.len(),
            if post { "post hoc" } else { "pre-registered" },
            k(Status::Pass),
            k(Status::Fail),
            k(Status::Equivalent),
            k(Status::Inconclusive)
        )
    };
    let missing = v
        .claims
        .iter()
        .filter(|r| r.status == Status::Missing)
        .count();
    let req: Vec<&ClaimResult> = v.claims.iter().filter(|r| r.claim.required).collect();
    let post = req.iter().filter(|r| r.registration.post_hoc()).count();
    let bad: Vec<String> = req
        .iter()
        .filter(|r| !r.holds())
        .map(|r| format!("{:?} ({})", r.claim.claim, r.status.word()))
        .collect();
    format!(
        "Claims: {}; {}; {missing} missing. Required: {} ({post} post hoc), {}.",
        tally(false),
        tally(true),
        req.len(),
        if bad.is_empty() {
            "all hold".to_string()
        } else {
            format!("{} do not hold: {}", bad.len(), bad.join(", "))
        }
    )
}

const CLAIM_RULE: &str = "Claims pair the two groups' runs by seed (the same seed shares calibration batches and the sampler stream) and test the per-seed PSNR differences Δ with a one-sided paired Student t test (df = n − 1), or with Welch's unpaired test where the groups share fewer than two seeds; p is for Δ > 0, Holm-adjusted across the tested claims of one experiment (separately for Δ < 0). At α = 0.05: pass when Δ > 0 is significant, FAIL when Δ < 0 is (for an equivalence claim, either), equivalent when neither is and the two one-sided tests (TOST) put Δ within ±margin, inconclusive otherwise and always with one seed. The 95 % CI is two-sided (t quantile, df = n − 1). Zero spread gives t = ±∞ (p = 0) unless the mean is on the bound (p = 0.5). Registered: pre-registered when the claim was committed to reports/expected.ron no later than the first of its runs started, post hoc otherwise (or when not committed).";

/// The reproduction table; `detail` spells out each claim's registration (commit and times), as
/// `odm verify` prints it.
pub fn table(v: &Verdict, detail: bool) -> Table {
    let h = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cap = format!(
        "Reproduction: our numbers beside the papers' (reports/expected.ron names each source and tolerance). {PROTOCOL}. Ours: mean over the seeds in column Seeds. {CLAIM_RULE}"
    );
    let sum = summary(v);
    let md_s = format!(
        "# Reproduction\n\n{cap}\n\n{}\n## Claims\n\n{}\n{sum}\n",
        md(&h(&CELL_HEAD), &cell_rows(v, Fmt::Md)),
        md(&h(&CLAIM_HEAD), &claim_rows(v, detail, Fmt::Md))
    );
    let mut tex_s = latex(
        &h(&CELL_HEAD),
        &cell_rows(v, Fmt::Tex),
        &cap,
        "tab:reproduction",
    );
    tex_s.push_str(&latex(
        &h(&CLAIM_HEAD),
        &claim_rows(v, detail, Fmt::Tex),
        &format!("Claims between our runs. {CLAIM_RULE} {sum}"),
        "tab:claims",
    ));
    let csv_s = csv(&CELL_HEAD, &cell_rows(v, Fmt::Md));
    Table {
        md: md_s,
        tex: tex_s,
        csv: csv_s,
        caption: cap,
    }
}

/// Write the reproduction table (cells and claims in `.md` and `.tex`; the cells in `.csv`, the
/// claims in `reproduction-claims.csv`); returns its index entry.
pub fn write_repro(v: &Verdict, out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<Item> {
    let mut item = write_table(
        out,
        "reproduction",
        "Reproduction".into(),
        table(v, false),
        written,
    )?;
    let rel = "tables/reproduction-claims.csv";
    super::put(out, rel, claim_csv(v).as_bytes(), written)?;
    item.files.push(rel.into());
    Ok(item)
}

/// `odm verify`: the printed report and whether every required check holds.
pub fn verify(results: &Path, expected: &Path) -> anyhow::Result<(String, bool)> {
    let e = load(expected)?;
    let runs = super::collect(results)?;
    let aggs = super::frame::aggregate(&runs)?;
    let hist = prereg::history(expected);
    let v = check(&e, &runs, &aggs, &hist);
    let mut md_s = table(&v, true).md;
    for c in &v.selections {
        md_s.push('\n');
        md_s.push_str(&c.table(true).md);
    }
    let failed = v
        .cells
        .iter()
        .filter(|c| c.cell.required && c.status != Status::Pass)
        .count()
        + v.claims
            .iter()
            .filter(|c| c.claim.required && !c.holds())
            .count();
    let tail = if v.ok {
        "verify: every required cell and claim holds\n".to_string()
    } else {
        format!("verify: {failed} required cell(s)/claim(s) do not hold\n")
    };
    Ok((format!("{md_s}\n{tail}"), v.ok))
}
