//! The opening of reports/README.md: what the ledger shows, written from the verdicts of
//! `reports/expected.ron` (the reproduction cells against the papers and the claims between our
//! runs), before any figure.

use super::verify::{fp as fmt_p, Status, Verdict};

/// Count of the cells (paper numbers) by status, and the range of ours − paper over the cells
/// that have a run of ours.
fn cell_tally(v: &Verdict) -> (usize, usize, usize, Option<(f64, f64)>, usize) {
    let k = |s: Status| v.cells.iter().filter(|c| c.status == s).count();
    let gaps: Vec<f64> = v
        .cells
        .iter()
        .filter_map(|c| c.ours.map(|o| o.0 - c.cell.psnr))
        .collect();
    let range = (!gaps.is_empty()).then(|| {
        (
            gaps.iter().copied().fold(f64::INFINITY, f64::min),
            gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        )
    });
    let below = gaps.iter().filter(|g| **g < 0.0).count();
    (
        k(Status::Pass),
        k(Status::Fail),
        k(Status::Missing),
        range,
        below,
    )
}

/// The short summary: the cells, then the claims' tally.
pub fn summary(v: &Verdict) -> String {
    let (pass, fail, missing, range, below) = cell_tally(v);
    let gaps = match range {
        Some((lo, hi)) => format!(
            " Ours − paper ranges from {lo:+.3} to {hi:+.3} dB PSNR; ours is lower in {below} of the {} cells with a run.",
            pass + fail
        ),
        None => String::new(),
    };
    format!(
        "Of the {} paper numbers quoted in `reports/expected.ron`, {pass} are matched within their tolerance by our runs, {fail} are not, and {missing} have no run of ours yet.{gaps} {}",
        v.cells.len(),
        super::verify::summary(v)
    )
}

/// The verdicts table: one line per claim with a result (claim, set, n, mean Δ, 95 % CI, the
/// Holm-adjusted one-sided p-values for each direction, registration, outcome).
pub fn claims_md(v: &Verdict) -> String {
    let mut s = String::from(
        "| Claim | n | Mean Δ PSNR (dB) | 95 % CI | Holm p (Δ > 0 / Δ < 0) | Registered | Outcome |\n|---|---|---|---|---|---|---|\n",
    );
    for r in v.claims.iter().filter(|r| r.status != Status::Missing) {
        let ci = r.tested.as_ref().map_or("–".to_string(), |t| {
            format!("[{:.3}, {:.3}]", t.ci.0, t.ci.1)
        });
        let p = r.tested.as_ref().map_or("–".to_string(), |t| {
            format!("{} / {}", fmt_p(t.p_holm), fmt_p(t.p_against_holm))
        });
        s.push_str(&format!(
            "| {} | {} | {} | {ci} | {p} | {} | {}{} |\n",
            r.claim.claim.replace('|', "\\|"),
            r.seeds.2,
            r.delta.map_or("–".to_string(), |d| format!("{d:+.3}")),
            r.registration.word(),
            r.status.word(),
            if r.claim.required { " (required)" } else { "" }
        ));
    }
    s
}

/// The README's opening section.
pub fn lead(v: &Verdict) -> String {
    format!(
        "## What the ledger shows\n\n{}\n\nClaims between our runs (paired by seed; details, tests and the cells against the papers in [tables/reproduction.md](tables/reproduction.md)):\n\n{}\n",
        summary(v),
        claims_md(v)
    )
}
