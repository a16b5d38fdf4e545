//! The drop from full precision, ours beside the paper's. The papers' tables compare methods on
//! one FP model of their own (ODM, Hong & Lee, ECCV 2024, Table 1: FP32 row first); ours start
//! from another FP model, so absolute PSNRs differ by the FP models' gap and the drop FP − method
//! is what compares across the two.
//!
//! For each quantized cell of `reports/expected.ron` that our runs answer:
//! - the paper's drop is the paper's FP32 cell on the same backbone, scale and set minus the cell
//!   (the FP32 cell of the same paper; else the one FP32 value every cell of that key agrees on);
//! - our drop is the FP PSNR of the exact weights our runs started from minus our mean over seeds.
//!   Those weights are named by the SHA-256 each run's `provenance.json` records (`init.sha256`);
//!   their FP PSNR comes from a finished FP evaluation among the runs (no training iterations)
//!   whose initial weights have that hash, else from the zoo record beside the weights file
//!   (`zoo/<name>.json`, read relative to the results folder's parent, with the same hash).

use super::tables::{csv, latex, md, tex, Fmt, Table};
use super::verify::{Cell, CellResult, Verdict};
use super::Run;
use serde::Deserialize;
use std::path::Path;

/// What a run's `provenance.json` says about its initial weights.
#[derive(Deserialize, Default)]
struct Init {
    #[serde(default)]
    init_from: String,
    #[serde(default)]
    init: Option<InitHash>,
}

#[derive(Deserialize, Default)]
struct InitHash {
    sha256: String,
}

/// A zoo record (`zoo/<name>.json`): the weights' hash and their FP scores.
#[derive(Deserialize)]
struct ZooRecord {
    sha256: String,
    scores: Vec<ZooScore>,
}

#[derive(Deserialize)]
struct ZooScore {
    set: String,
    psnr_y: f64,
}

fn init_of(dir: &Path) -> Init {
    std::fs::read_to_string(dir.join("provenance.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn sha_of(i: &Init) -> Option<&str> {
    i.init
        .as_ref()
        .map(|h| h.sha256.as_str())
        .filter(|s| !s.is_empty())
}

/// Our FP PSNR on `set` for the weights `group`'s runs started from, and where it was read
/// (an FP run's group or the zoo record's path); `None` when the runs disagree on their initial
/// weights or no FP score of those weights is found.
pub fn our_fp(group: &str, set: &str, runs: &[Run]) -> Option<(f64, String)> {
    let members: Vec<&Run> = runs.iter().filter(|r| r.group == group).collect();
    // A group's runs share their spec (its `init_from` included); runs resumed by an older odm
    // recorded no hash, so the hashes recorded must agree and at least one must exist.
    let inits: Vec<Init> = members
        .iter()
        .map(|r| init_of(&r.dir))
        .filter(|i| sha_of(i).is_some())
        .collect();
    let sha = sha_of(inits.first()?)?.to_string();
    if inits.iter().any(|i| sha_of(i) != Some(sha.as_str())) {
        return None;
    }
    let fp_run = runs.iter().find(|r| {
        r.bits.is_none()
            && r.spec.schedule.iterations == 0
            && sha_of(&init_of(&r.dir)) == Some(sha.as_str())
            && r.scores.iter().any(|s| s.set == set)
    });
    if let Some(r) = fp_run {
        let s = r.scores.iter().find(|s| s.set == set)?;
        return Some((s.psnr, r.group.clone()));
    }
    let root = members.first()?.dir.parent()?.parent()?;
    let rel = Path::new(&inits[0].init_from).with_extension("json");
    let text = std::fs::read_to_string(root.join(&rel)).ok()?;
    let rec: ZooRecord = serde_json::from_str(&text).ok()?;
    if rec.sha256 != sha {
        return None;
    }
    let s = rec.scores.iter().find(|s| s.set == set)?;
    Some((s.psnr_y, rel.display().to_string()))
}

/// The paper a cell's source names: the text before " Table", " ablation", " README" or " (".
fn paper(source: &str) -> &str {
    [" Table", " ablation", " README", " ("]
        .iter()
        .filter_map(|m| source.find(m))
        .min()
        .map_or(source, |i| &source[..i])
}

/// The paper's FP32 PSNR for cell `c` among `cells` (see the module documentation).
pub fn paper_fp<'a>(c: &Cell, cells: impl Iterator<Item = &'a Cell>) -> Option<f64> {
    let fps: Vec<&Cell> = cells
        .filter(|d| {
            d.method == "FP32"
                && d.bits.is_none()
                && d.backbone == c.backbone
                && d.scale == c.scale
                && d.set == c.set
        })
        .collect();
    if let Some(d) = fps.iter().find(|d| paper(&d.source) == paper(&c.source)) {
        return Some(d.psnr);
    }
    let first = fps.first()?.psnr;
    fps.iter().all(|d| d.psnr == first).then_some(first)
}

/// One row of the table, before formatting.
struct Row<'a> {
    r: &'a CellResult,
    paper_fp: Option<f64>,
    ours: (f64, usize),
    fp: Option<(f64, String)>,
}

fn rows<'a>(v: &'a Verdict, runs: &[Run]) -> Vec<Row<'a>> {
    v.cells
        .iter()
        .filter(|r| r.cell.bits.is_some())
        .filter_map(|r| {
            let (p, _, n) = r.ours?;
            let g = r.group.as_deref()?;
            Some(Row {
                r,
                paper_fp: paper_fp(&r.cell, v.cells.iter().map(|o| &o.cell)),
                ours: (p, n),
                fp: our_fp(g, &r.cell.set, runs),
            })
        })
        .collect()
}

const HEAD: [&str; 14] = [
    "Source",
    "W/A",
    "Method",
    "Set",
    "Paper FP",
    "Paper",
    "Paper drop",
    "Our FP",
    "Ours",
    "Our drop",
    "Our − paper drop",
    "Our group",
    "Seeds",
    "Our FP from",
];

fn cells(w: &Row, fm: Fmt) -> Vec<String> {
    let t = |s: &str| {
        if fm == Fmt::Tex {
            tex(s)
        } else {
            s.to_string()
        }
    };
    let c = &w.r.cell;
    let f = |x: Option<f64>, d: usize| x.map_or("–".to_string(), |x| format!("{x:.d$}"));
    let paper_drop = w.paper_fp.map(|fp| fp - c.psnr);
    let our_drop = w.fp.as_ref().map(|(fp, _)| fp - w.ours.0);
    let (w_bits, a_bits) = c.bits.unwrap_or_default();
    vec![
        t(&c.source),
        format!("{w_bits}/{a_bits}"),
        t(&c.method),
        c.set.clone(),
        f(w.paper_fp, 2),
        format!("{:.2}", c.psnr),
        f(paper_drop, 2),
        f(w.fp.as_ref().map(|x| x.0), 3),
        format!("{:.3}", w.ours.0),
        f(our_drop, 3),
        f(our_drop.zip(paper_drop).map(|(o, p)| o - p), 3),
        t(w.r.group.as_deref().unwrap_or("–")),
        w.ours.1.to_string(),
        t(w.fp.as_ref().map_or("–", |x| x.1.as_str())),
    ]
}

const CAPTION: &str = "Drop from full precision, ours beside the paper's: for each quantized paper number in reports/expected.ron that our runs answer, the paper's drop is the paper's FP32 PSNR on the same backbone, scale and set (the same paper's, else the one value all its FP32 cells agree on) minus its number, and ours is the FP PSNR of the exact weights our runs started from (found by the SHA-256 in their provenance.json: an FP evaluation among the runs, else the zoo record beside the weights file) minus our mean over seeds. The papers start from their own FP models (trained on DIV2K), ours from ours, so the drops compare where absolute PSNRs cannot.";

/// The drop table; `None` when no quantized cell has runs of ours.
pub fn table(v: &Verdict, runs: &[Run]) -> Option<Table> {
    let rs = rows(v, runs);
    if rs.is_empty() {
        return None;
    }
    let head: Vec<String> = HEAD.iter().map(|h| h.to_string()).collect();
    let body = |fm: Fmt| rs.iter().map(|w| cells(w, fm)).collect::<Vec<_>>();
    let cap = format!("{CAPTION} {}.", super::PROTOCOL);
    Some(Table {
        md: format!(
            "# Drop from full precision\n\n{cap}\n\n{}",
            md(&head, &body(Fmt::Md))
        ),
        tex: latex(&head, &body(Fmt::Tex), &cap, "tab:drops"),
        csv: csv(
            &[
                "source",
                "bits",
                "method",
                "set",
                "paper_fp_psnr",
                "paper_psnr",
                "paper_drop",
                "our_fp_psnr",
                "our_psnr",
                "our_drop",
                "drop_difference",
                "group",
                "seeds",
                "our_fp_from",
            ],
            &body(Fmt::Md),
        ),
        caption: cap,
    })
}
