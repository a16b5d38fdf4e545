//! `odm verify`: our numbers against the papers' published cells (`reports/expected.ron`, each
//! with its source and tolerance), and relative claims checked against the seed spread.
//!
//! A cell matches the group of runs with the same backbone, scale, W/A bits and method (label or
//! family, e.g. "ODM"); `group` pins one explicitly. Bicubic cells read the bicubic scores every
//! run stores for its own images. A claim "A > B on a set" passes when
//! mean_A − mean_B > k · sqrt(sd_A² + sd_B²) (sample stds over seeds), fails when the difference
//! is below −k · that spread, and is inconclusive in between. `verify` exits non-zero when a cell
//! or claim marked `required` does not pass (a missing required cell fails too).

use super::frame::{Agg, Aggs};
use super::tables::{csv, latex, md, tex, write_table, Fmt, Item, Table};
use super::{Run, PROTOCOL};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
fn d_k() -> f64 {
    1.0
}

/// A relative claim between two groups on one set (PSNR).
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub claim: String,
    pub better: String,
    pub worse: String,
    pub set: String,
    #[serde(default = "d_k")]
    pub k: f64,
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
}

/// Load and parse the expectations; errors name the file, line and column.
pub fn load(path: &Path) -> anyhow::Result<Expected> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::error::user(format!(
            "{}: cannot read ({e}); pass --expected FILE",
            path.display()
        ))
    })?;
    crate::spec::load::ron_options()
        .from_str(&text)
        .map_err(|e| {
            crate::error::user(format!(
                "{}:{}:{}: {} (fields: cells: [(source, backbone, scale, bits, method, set, psnr, ssim, tol_psnr, tol_ssim, required, group)], claims: [(claim, better, worse, set, k, required)])",
                path.display(),
                e.position.line,
                e.position.col,
                e.code
            ))
        })
}

/// Outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Status {
    Pass,
    Fail,
    Inconclusive,
    Missing,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
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

/// One claim's result: Δ, spread and status.
pub struct ClaimResult {
    pub claim: Claim,
    pub delta: Option<(f64, f64)>,
    pub status: Status,
}

/// Everything `verify` found; `ok` is false when a required check did not pass.
pub struct Verdict {
    pub cells: Vec<CellResult>,
    pub claims: Vec<ClaimResult>,
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

fn check_claim(c: &Claim, aggs: &Aggs) -> ClaimResult {
    let (b, w) = (aggs.get(&c.better, &c.set), aggs.get(&c.worse, &c.set));
    let (delta, status) = match (b, w) {
        (Some(b), Some(w)) => {
            let d = b.psnr.0 - w.psnr.0;
            let spread = (b.psnr.1 * b.psnr.1 + w.psnr.1 * w.psnr.1).sqrt();
            // One seed gives no spread: the difference cannot be told from seed noise.
            let st = if b.n < 2 || w.n < 2 {
                Status::Inconclusive
            } else if d > c.k * spread && d > 0.0 {
                Status::Pass
            } else if d < -c.k * spread || (d <= 0.0 && spread == 0.0) {
                Status::Fail
            } else {
                Status::Inconclusive
            };
            (Some((d, spread)), st)
        }
        _ => (None, Status::Missing),
    };
    ClaimResult {
        claim: c.clone(),
        delta,
        status,
    }
}

/// Check every cell and claim.
pub fn check(e: &Expected, runs: &[Run], aggs: &Aggs) -> Verdict {
    let cells: Vec<CellResult> = e.cells.iter().map(|c| check_cell(c, runs, aggs)).collect();
    let claims: Vec<ClaimResult> = e.claims.iter().map(|c| check_claim(c, aggs)).collect();
    let ok = cells
        .iter()
        .all(|c| !c.cell.required || c.status == Status::Pass)
        && claims
            .iter()
            .all(|c| !c.claim.required || c.status == Status::Pass);
    Verdict { cells, claims, ok }
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

fn claim_rows(v: &Verdict) -> Vec<Vec<String>> {
    v.claims
        .iter()
        .map(|r| {
            let c = &r.claim;
            vec![
                c.claim.clone(),
                c.better.clone(),
                c.worse.clone(),
                c.set.clone(),
                f(r.delta.map(|d| d.0), 3),
                f(r.delta.map(|d| c.k * d.1), 3),
                format!(
                    "{}{}",
                    r.status.word(),
                    if c.required { " (required)" } else { "" }
                ),
            ]
        })
        .collect()
}

const CLAIM_HEAD: [&str; 7] = [
    "Claim",
    "Better",
    "Worse",
    "Set",
    "Δ PSNR",
    "k · spread",
    "Status",
];

/// The reproduction table.
pub fn table(v: &Verdict) -> Table {
    let h = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cap = format!(
        "Reproduction: our numbers beside the papers' (reports/expected.ron names each source and tolerance). {PROTOCOL}. Ours: mean over the seeds in column Seeds. Claims compare two groups' mean PSNR against k · sqrt(sd₁² + sd₂²) over seeds; with fewer than two seeds in either group a claim is inconclusive."
    );
    let md_s = format!(
        "# Reproduction\n\n{cap}\n\n{}\n## Claims\n\n{}",
        md(&h(&CELL_HEAD), &cell_rows(v, Fmt::Md)),
        md(&h(&CLAIM_HEAD), &claim_rows(v))
    );
    let tex_s = latex(
        &h(&CELL_HEAD),
        &cell_rows(v, Fmt::Tex),
        &cap,
        "tab:reproduction",
    );
    let csv_s = csv(&CELL_HEAD, &cell_rows(v, Fmt::Md));
    Table {
        md: md_s,
        tex: tex_s,
        csv: csv_s,
        caption: cap,
    }
}

/// Write the reproduction table; returns its index entry.
pub fn write_repro(v: &Verdict, out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<Item> {
    write_table(
        out,
        "reproduction",
        "Reproduction".into(),
        table(v),
        written,
    )
}

/// `odm verify`: the printed report and whether every required check passed.
pub fn verify(results: &Path, expected: &Path) -> anyhow::Result<(String, bool)> {
    let e = load(expected)?;
    let runs = super::collect(results)?;
    let aggs = super::frame::aggregate(&runs)?;
    let v = check(&e, &runs, &aggs);
    let md_s = table(&v).md;
    let failed = v
        .cells
        .iter()
        .filter(|c| c.cell.required && c.status != Status::Pass)
        .count()
        + v.claims
            .iter()
            .filter(|c| c.claim.required && c.status != Status::Pass)
            .count();
    let tail = if v.ok {
        "verify: every required cell and claim passes\n".to_string()
    } else {
        format!("verify: {failed} required cell(s)/claim(s) did not pass\n")
    };
    Ok((format!("{md_s}\n{tail}"), v.ok))
}
