//! `odm report` and `odm verify`: the paper's tables and figures, regenerated from finished run
//! folders only (the report never runs a model). Every number comes from a run's
//! `summary.json`, `metrics.csv`, `cost.json`, `offsets.json` and `activations.json`; the
//! evaluation protocol behind them is the harness's (Y channel of BT.601, `scale` pixels shaved,
//! output rounded to 8 bits, LR made by MATLAB-compatible bicubic from HR cropped to a multiple
//! of the scale). Output is byte-identical for the same results: runs are sorted, nothing records
//! a time or a path outside the results tree.

pub mod compute;
pub mod drops;
pub mod figures;
pub mod frame;
pub mod gatelog;
pub mod mechanism;
pub mod prereg;
pub mod qualitative;
pub mod runs;
pub mod seeds;
pub mod selection;
pub mod stats;
pub mod summary;
pub mod tables;
pub mod verify;

pub use runs::{collect, Run};
pub use seeds::{group_of, mean_std, read_summary, seed_table, Scores};

use crate::record::atomic_write;
use std::path::{Path, PathBuf};

/// The protocol sentence every caption carries.
pub const PROTOCOL: &str = "PSNR/SSIM on the Y channel (BT.601), scale pixels shaved, output rounded to 8 bits, LR made from HR by odm's MATLAB-compatible bicubic";

/// Write a text file under `out`, creating folders, and remember it for the index.
pub(crate) fn put(
    out: &Path,
    rel: &str,
    bytes: &[u8],
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let p = out.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    atomic_write(&p, bytes)?;
    written.push(PathBuf::from(rel));
    Ok(())
}

/// `odm report`: every table and figure from `results` into `out`. Returns the files written
/// (relative to `out`), in order.
pub fn report(results: &Path, out: &Path, expected: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let (runs, superseded) = runs::collect_noted(results)?;
    if runs.is_empty() {
        return Err(crate::error::user(format!(
            "{}: no finished runs (folders with summary.json); run `odm run FILE` first or pass --results DIR",
            results.display()
        )));
    }
    let agg = frame::aggregate(&runs)?;
    let mut written = Vec::new();
    let mut tables = tables::write_all(&runs, &agg, out, &mut written)?;
    if let Some(t) = compute::table(&runs) {
        let item = tables::write_table(out, "compute", "Compute".into(), t, &mut written)?;
        tables.push(item);
    }
    tables.extend(gatelog::write_all(&runs, out, &mut written)?);
    let (exp, lead) = match expected.filter(|e| e.is_file()) {
        Some(e) => {
            let exp = verify::load(e)?;
            let v = verify::check(&exp, &runs, &agg, &prereg::history(e));
            tables.push(verify::write_repro(&v, out, &mut written)?);
            if let Some(t) = drops::table(&v, &runs) {
                let title = "Drop from full precision".to_string();
                tables.push(tables::write_table(out, "drops", title, t, &mut written)?);
            }
            tables.extend(selection::write_all(&v.selections, out, &mut written)?);
            (Some(exp), summary::lead(&v))
        }
        None => (None, String::new()),
    };
    let mut index = figures::write_all(&runs, &agg, exp.as_ref(), out, &mut written)?;
    index.extend(qualitative::write(&runs, out, &mut written)?);
    index.extend(tables);
    let mut readme = tables::index_md(&runs, &lead, &index);
    readme.push_str(&stopped_md(&runs::stopped(results)));
    readme.push_str(&superseded_md(&superseded));
    readme.push_str(&mixed_md(&runs::mixed_builds(&runs)));
    put(out, "README.md", readme.as_bytes(), &mut written)?;
    Ok(written)
}

/// The README's section on runs that failed or stopped without scores (empty when none).
fn stopped_md(stopped: &[runs::Stopped]) -> String {
    if stopped.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n## Failed or incomplete runs\n\nThese folders hold no finished result; no table or figure above uses them.\n\n| folder | stopped after iteration | cause | continue with |\n|---|---|---|---|\n",
    );
    for r in stopped {
        let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
        s.push_str(&format!(
            "| `{}` | {} | {} | `{}` |\n",
            cell(&r.folder),
            r.step.map_or("?".to_string(), |n| n.to_string()),
            cell(&r.cause),
            cell(&r.resume)
        ));
    }
    s
}

/// The README's section on finished runs left out for a newer spec of the same name.
fn superseded_md(runs: &[runs::Superseded]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n## Superseded runs\n\nFolders of the same run name whose spec differs: the one that finished last is used, the other is left out of every table and figure.\n\n| run | used | left out |\n|---|---|---|\n",
    );
    for r in runs {
        s.push_str(&format!(
            "| {} | `{}` | `{}` |\n",
            r.name, r.kept, r.dropped
        ));
    }
    s
}

/// The README's section on groups whose seeds ran on different builds (empty when none).
fn mixed_md(groups: &[(String, Vec<(String, String)>)]) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "\n## Groups whose seeds ran on different builds\n\nTheir seeds differ in the binary as well as the seed (from `provenance.json`: the binary's hash and commit, or, for runs recorded before builds were, the working folder's commit), so a per-seed comparison mixes builds.\n\n| group | run folder | build |\n|---|---|---|\n",
    );
    for (g, runs) in groups {
        for (folder, build) in runs {
            s.push_str(&format!("| {g} | `{folder}` | {build} |\n"));
        }
    }
    s
}
