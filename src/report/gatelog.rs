//! The gate log as a table, one per experiment whose runs log it (`metrics.csv`, split `gate`,
//! set = parameter group): per grid point and parameter group, the reconstruction loss's gradient
//! ‖g_rec‖, the regularizer's gradient as applied ‖λ·w ⊙ g_reg‖, their ratio, cos(g_rec, g_reg)
//! and the mean gate weight w. Each is averaged over a run's logged steps (the ratio is taken per
//! step, then averaged), then over seeds. The ratio is what a regularizer's λ is sized from: the
//! update moves by λ·w·g_reg beside g_rec, so a ratio of 0.02 means the regularizer is 2 % of the
//! step's gradient in that group.

use super::runs::{group_log, GroupLog};
use super::tables::{csv, groups, latex, md, tex, write_table, Item, Table};
use super::Run;
use crate::train::gating::Group;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One parameter group's gate log summarized over logged steps and then over runs (seeds).
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// `conv_weights`, `bounds` or `other`.
    pub group: String,
    /// Runs that logged the group.
    pub runs: usize,
    /// Logged steps per run (the most of any run).
    pub steps: usize,
    pub norm_rec: f64,
    pub norm_reg: f64,
    /// Mean over steps with ‖g_rec‖ > 0 of ‖λ·w ⊙ g_reg‖ / ‖g_rec‖.
    pub ratio: f64,
    pub cosine: f64,
    pub weight: f64,
}

/// Mean of the finite values; NaN when there is none.
fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v
        .filter(|x| x.is_finite())
        .fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

/// Per parameter group (in [`Group::ALL`]'s order, then any other name): the means over each
/// run's logged steps, then over the runs that logged the group.
pub fn summarize(logs: &[Vec<GroupLog>]) -> Vec<Summary> {
    let mut names: Vec<String> = Group::ALL.iter().map(|g| g.key().to_string()).collect();
    let extra: BTreeSet<&String> = logs.iter().flatten().map(|g| &g.group).collect();
    names.extend(
        extra
            .into_iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    names
        .into_iter()
        .filter_map(|name| {
            let per_run: Vec<Vec<&GroupLog>> = logs
                .iter()
                .map(|l| l.iter().filter(|g| g.group == name).collect::<Vec<_>>())
                .filter(|l| !l.is_empty())
                .collect();
            if per_run.is_empty() {
                return None;
            }
            let over = |f: &dyn Fn(&GroupLog) -> f64| {
                mean(per_run.iter().map(|l| mean(l.iter().map(|g| f(g)))))
            };
            let ratio = |g: &GroupLog| {
                if g.norm_rec > 0.0 {
                    g.norm_reg / g.norm_rec
                } else {
                    f64::NAN
                }
            };
            Some(Summary {
                runs: per_run.len(),
                steps: per_run.iter().map(Vec::len).max().unwrap_or(0),
                norm_rec: over(&|g| g.norm_rec),
                norm_reg: over(&|g| g.norm_reg),
                ratio: over(&ratio),
                cosine: over(&|g| g.cosine),
                weight: over(&|g| g.weight),
                group: name,
            })
        })
        .collect()
}

/// A gradient norm: 4 significant digits, in scientific notation outside [10⁻³, 10⁵).
fn norm(x: f64) -> String {
    if (1e-3..1e5).contains(&x.abs()) {
        super::figures::chart::tick(x)
    } else {
        format!("{x:.3e}")
    }
}

fn num(x: f64, f: &dyn Fn(f64) -> String) -> String {
    if x.is_finite() {
        f(x)
    } else {
        "–".into()
    }
}

/// The table of one experiment: a row per (grid point, parameter group) of its gate-logging runs.
pub fn table(runs: &[Run], exp: &str) -> Table {
    let head = [
        "Point",
        "Method",
        "λ",
        "Group",
        "Seeds",
        "Logged steps",
        "‖g_rec‖",
        "‖λ·w⊙g_reg‖",
        "Ratio",
        "cos",
        "Gate weight",
    ];
    let mut rows = Vec::new();
    for g in groups(runs).iter().filter(|g| g.first().experiment == exp) {
        let logs: Vec<Vec<GroupLog>> = g.runs.iter().map(|r| group_log(&r.metrics)).collect();
        let r = g.first();
        for s in summarize(&logs) {
            rows.push(vec![
                r.point.clone(),
                r.method.clone(),
                format!("{:e}", r.spec.regularizer.lambda()),
                s.group.clone(),
                s.runs.to_string(),
                s.steps.to_string(),
                num(s.norm_rec, &norm),
                num(s.norm_reg, &norm),
                num(s.ratio, &|x| format!("{x:.4}")),
                num(s.cosine, &|x| format!("{x:.3}")),
                num(s.weight, &|x| format!("{x:.3}")),
            ]);
        }
    }
    let caption = format!(
        "Gate log of `{exp}`: per grid point and parameter group (conv weights; the quantizers' learned bounds; every other trainable tensor), ‖g_rec‖ (the reconstruction loss's gradient), ‖λ·w⊙g_reg‖ (the regularizer's gradient as applied, after the gate's weight w), their ratio (per logged step, then averaged), cos(g_rec, g_reg) and the mean gate weight w over the group's elements (tensors the regularizer never reaches, such as WCC's γ among the bounds, count with w = 0, so a group that holds them reads below the gate's own weight); each the mean over a run's logged steps, then over seeds. A ratio of 0.02 means the regularizer is 2 % of the group's gradient."
    );
    let heads: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    let tex_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| tex(c)).collect())
        .collect();
    Table {
        md: md(&heads, &rows),
        tex: latex(&heads, &tex_rows, &caption, &format!("tab:gate-{exp}")),
        csv: csv(
            &[
                "point",
                "method",
                "lambda",
                "group",
                "seeds",
                "logged_steps",
                "norm_rec",
                "norm_reg",
                "ratio",
                "cosine",
                "gate_weight",
            ],
            &rows,
        ),
        caption,
    }
}

/// `tables/gate-<experiment>.{md,tex,csv}` for every experiment with a gate log.
pub fn write_all(
    runs: &[Run],
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<Item>> {
    let exps: BTreeSet<&str> = runs
        .iter()
        .filter(|r| !group_log(&r.metrics).is_empty())
        .map(|r| r.experiment.as_str())
        .collect();
    exps.into_iter()
        .map(|e| {
            write_table(
                out,
                &format!("gate-{e}"),
                format!("Gate log: {e}"),
                table(runs, e),
                written,
            )
        })
        .collect()
}
