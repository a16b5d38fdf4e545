//! Hyperparameter selection on a validation split, declared before its runs
//! (`reports/expected.ron`, `selections`): a sweep's arms are compared with its reference arm
//! seed by seed (runs with the same seed share calibration batches and the sampler stream), on a
//! validation set held out of training, never on a benchmark.
//!
//! The rule: among the arms with a score for every seed the reference has, those whose paired
//! difference Δ_s = PSNR(arm, s) − PSNR(reference, s) is positive on every seed s; of these, the
//! one with the highest mean PSNR over its seeds (ties: the first by name). When no arm qualifies,
//! the declared fallback is taken and the table says no arm won. With two seeds this is a
//! screening rule, not a test: it is what the sweep's file committed to before its runs, and the
//! study that uses the choice judges its claims with paired tests on more seeds.

use super::prereg::{self, History, Registration};
use super::tables::{csv, latex, md, tex, write_table, Fmt, Item, Table};
use super::Run;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The benchmark sets, which a selection may never read.
pub const BENCHMARKS: [&str; 4] = ["Set5", "Set14", "B100", "Urban100"];

/// One declared selection.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// The sweep's experiment (its run names before the first `.`).
    pub experiment: String,
    /// The grid point every arm is compared with, or a group of another experiment
    /// (`experiment.point`, one of `borrow`).
    pub reference: String,
    /// The validation set whose final PSNR-Y decides.
    pub set: String,
    /// The arm taken when no arm beats the reference on every seed.
    pub fallback: String,
    /// Groups of other experiments that join as arms under their full name (e.g. an earlier
    /// stage's reference and winner, so a later stage need not run them again). Their runs
    /// pair by seed like the experiment's own: every random stream derives from the seed alone.
    #[serde(default)]
    pub borrow: Vec<String>,
}

impl Selection {
    /// A selection on a benchmark set is refused (hyperparameters are never chosen on test sets).
    pub fn check(&self, file: &Path) -> anyhow::Result<()> {
        if BENCHMARKS.contains(&self.set.as_str()) {
            return Err(crate::error::user(format!(
                "{}: selection {:?}: set {:?} is a benchmark; select on a validation split (data.validation, e.g. set: \"bsd200_val\")",
                file.display(),
                self.experiment,
                self.set
            )));
        }
        Ok(())
    }
}

/// One arm's scores and its differences to the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    pub point: String,
    pub method: String,
    /// PSNR-Y on the set per seed.
    pub psnr: BTreeMap<u64, f64>,
    /// Δ to the reference per seed the two share (empty for the reference itself).
    pub delta: BTreeMap<u64, f64>,
    /// Scored on every seed the reference has.
    pub complete: bool,
}

impl Arm {
    pub fn mean(&self) -> f64 {
        self.psnr.values().sum::<f64>() / self.psnr.len() as f64
    }

    pub fn mean_delta(&self) -> Option<f64> {
        (!self.delta.is_empty()).then(|| self.delta.values().sum::<f64>() / self.delta.len() as f64)
    }

    /// Δ > 0 on every seed of the reference.
    pub fn beats(&self) -> bool {
        self.complete && !self.delta.is_empty() && self.delta.values().all(|d| *d > 0.0)
    }
}

/// What the rule gave.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The best arm that beat the reference on every seed.
    Winner(String),
    /// No arm did: the declared fallback.
    Fallback(String),
    /// The rule cannot be applied yet (why).
    Incomplete(String),
}

/// A selection applied to the ledger.
#[derive(Clone, Debug, PartialEq)]
pub struct Chosen {
    pub selection: Selection,
    /// The reference first, then the other arms by name.
    pub arms: Vec<Arm>,
    pub outcome: Outcome,
    pub registration: Registration,
}

/// Per grid point: its method label and a value per seed.
type PerPoint<T> = BTreeMap<String, (String, BTreeMap<u64, T>)>;

/// PSNR-Y on the selection's set per arm (a grid point of its experiment or a borrowed group) and
/// seed (runs sharing a seed averaged), each arm's method label, and the experiment's own run
/// folders read. Only the stage's own runs date its registration: a borrowed group was declared
/// (and usually run) by an earlier stage.
fn scores<'a>(runs: &'a [Run], sel: &Selection) -> (PerPoint<f64>, Vec<&'a Path>) {
    let mut acc: PerPoint<(f64, usize)> = BTreeMap::new();
    let mut used = Vec::new();
    for r in runs
        .iter()
        .filter(|r| r.experiment == sel.experiment || sel.borrow.contains(&r.group))
    {
        let arm = if r.experiment == sel.experiment {
            &r.point
        } else {
            &r.group
        };
        if let Some(s) = r.scores.iter().find(|s| s.set == sel.set) {
            let e = acc
                .entry(arm.clone())
                .or_insert_with(|| (r.method.clone(), BTreeMap::new()));
            let v = e.1.entry(r.spec.seed).or_insert((0.0, 0));
            v.0 += s.psnr;
            v.1 += 1;
            if r.experiment == sel.experiment {
                used.push(r.dir.as_path());
            }
        }
    }
    let means = acc
        .into_iter()
        .map(|(p, (m, v))| {
            let v = v.into_iter().map(|(k, (s, n))| (k, s / n as f64)).collect();
            (p, (m, v))
        })
        .collect();
    (means, used)
}

/// The arms of a selection, the reference first.
fn arms(sel: &Selection, runs: &[Run]) -> (Vec<Arm>, Vec<PathBuf>) {
    let (by_point, used) = scores(runs, sel);
    let reference = by_point.get(&sel.reference).map(|(_, v)| v.clone());
    let mut out: Vec<Arm> = by_point
        .into_iter()
        .map(|(point, (method, psnr))| {
            let (delta, complete) = match &reference {
                Some(r) if point != sel.reference => (
                    psnr.iter()
                        .filter_map(|(k, v)| r.get(k).map(|b| (*k, v - b)))
                        .collect(),
                    r.keys().all(|k| psnr.contains_key(k)),
                ),
                Some(_) => (BTreeMap::new(), true),
                None => (BTreeMap::new(), false),
            };
            Arm {
                point,
                method,
                psnr,
                delta,
                complete,
            }
        })
        .collect();
    out.sort_by_key(|a| (a.point != sel.reference, a.point.clone()));
    (out, used.into_iter().map(Path::to_path_buf).collect())
}

/// The (grid point, seed) pairs the experiment's file declares, read from the `spec.ron` (the
/// file as written) of one of its finished runs and expanded as `odm run` expands it; `None`
/// when no run of it is finished or its file does not parse.
fn planned(sel: &Selection, runs: &[Run]) -> Option<Vec<(String, u64)>> {
    let r = runs.iter().find(|r| r.experiment == sel.experiment)?;
    let text = std::fs::read_to_string(r.dir.join("spec.ron")).ok()?;
    let spec = crate::spec::load::parse_str("spec.ron", &text).ok()?;
    let points = crate::spec::expand(&spec).ok()?;
    let prefix = format!("{}.", sel.experiment);
    Some(
        points
            .iter()
            .map(|p| {
                let g = super::group_of(&p.name);
                let point = g.strip_prefix(&prefix).unwrap_or(&g).to_string();
                (point, p.seed)
            })
            .collect(),
    )
}

/// Runs the experiment declares that have not finished (empty when unknown).
fn unfinished(sel: &Selection, runs: &[Run], arms: &[Arm]) -> Vec<String> {
    planned(sel, runs)
        .unwrap_or_default()
        .into_iter()
        .filter(|(p, k)| !arms.iter().any(|a| &a.point == p && a.psnr.contains_key(k)))
        .map(|(p, k)| format!("{p} seed {k}"))
        .collect()
}

/// The rule (module documentation) on `arms`.
pub fn rule(sel: &Selection, arms: &[Arm]) -> Outcome {
    let Some(r) = arms.iter().find(|a| a.point == sel.reference) else {
        return Outcome::Incomplete(format!(
            "no finished run of the reference `{}`",
            sel.reference
        ));
    };
    let missing: Vec<&str> = arms
        .iter()
        .filter(|a| !a.complete)
        .map(|a| a.point.as_str())
        .collect();
    if !missing.is_empty() {
        return Outcome::Incomplete(format!(
            "{} lack a seed the reference has ({} seed(s))",
            missing.join(", "),
            r.psnr.len()
        ));
    }
    let best = arms
        .iter()
        .filter(|a| a.beats())
        .fold(None::<&Arm>, |b, a| match b {
            Some(b) if b.mean() >= a.mean() => Some(b),
            _ => Some(a),
        });
    match best {
        Some(a) => Outcome::Winner(a.point.clone()),
        None => Outcome::Fallback(sel.fallback.clone()),
    }
}

/// The selections of an older version of the file, read leniently.
fn past(text: &str) -> Vec<Selection> {
    #[derive(Deserialize)]
    struct Loose {
        #[serde(default)]
        selections: Vec<Selection>,
    }
    crate::spec::load::ron_options()
        .from_str::<Loose>(text)
        .map(|l| l.selections)
        .unwrap_or_default()
}

/// Each selection's first commit.
fn first_commits(h: &History) -> HashMap<Selection, (String, i64)> {
    let mut first: HashMap<Selection, (String, i64)> = HashMap::new();
    if let History::Versions(vs) = h {
        for v in vs {
            for s in past(&v.text) {
                first
                    .entry(s)
                    .and_modify(|e| {
                        if v.time < e.1 {
                            *e = (v.commit.clone(), v.time);
                        }
                    })
                    .or_insert((v.commit.clone(), v.time));
            }
        }
    }
    first
}

/// Apply every declared selection to the ledger.
pub fn choose(sels: &[Selection], runs: &[Run], hist: &History) -> Vec<Chosen> {
    let first = first_commits(hist);
    sels.iter()
        .map(|s| {
            let (arms, used) = arms(s, runs);
            let dirs: Vec<&Path> = used.iter().map(PathBuf::as_path).collect();
            let waiting = unfinished(s, runs, &arms);
            // A borrowed group may still be running when a later stage is declared: the stage
            // waits for it as for its own runs (one with some seeds only waits in `rule`).
            let absent: Vec<&str> = s
                .borrow
                .iter()
                .filter(|b| !arms.iter().any(|a| &a.point == *b))
                .map(String::as_str)
                .collect();
            let outcome = if dirs.is_empty() {
                // Only borrowed groups so far: the stage's own arms have not run.
                Outcome::Incomplete(format!("no run of `{}` has finished", s.experiment))
            } else if !waiting.is_empty() {
                Outcome::Incomplete(format!(
                    "{} run(s) its file declares have not finished ({})",
                    waiting.len(),
                    waiting.join(", ")
                ))
            } else if !absent.is_empty() {
                Outcome::Incomplete(format!(
                    "borrowed group(s) with no finished run: {}",
                    absent.join(", ")
                ))
            } else {
                rule(s, &arms)
            };
            Chosen {
                outcome,
                registration: prereg::register(first.get(s), &dirs, hist),
                selection: s.clone(),
                arms,
            }
        })
        .collect()
}

fn signed(x: f64) -> String {
    format!("{}{:.3}", if x >= 0.0 { "+" } else { "−" }, x.abs())
}

impl Chosen {
    /// The seeds of the reference (the table's seed columns).
    fn seeds(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .arms
            .iter()
            .flat_map(|a| a.psnr.keys().copied())
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// One sentence: what the rule gave.
    pub fn verdict(&self) -> String {
        let s = &self.selection;
        match &self.outcome {
            Outcome::Winner(p) => format!(
                "Selected: `{p}`, the highest mean {} PSNR-Y among the arms that beat `{}` on every seed.",
                s.set, s.reference
            ),
            Outcome::Fallback(p) => format!(
                "No arm beat `{}` on every seed: the declared fallback `{p}` is taken.",
                s.reference
            ),
            Outcome::Incomplete(why) => format!("Not decided yet: {why}."),
        }
    }

    fn head(&self) -> Vec<String> {
        let seeds = self.seeds();
        let mut h = vec!["Point".to_string(), "Method".into()];
        h.extend(seeds.iter().map(|k| format!("seed {k}")));
        h.push("Mean".into());
        h.extend(seeds.iter().map(|k| format!("Δ seed {k}")));
        h.extend([
            "Mean Δ".into(),
            "Δ > 0 on every seed".into(),
            "Selected".into(),
        ]);
        h
    }

    fn rows(&self, fm: Fmt) -> Vec<Vec<String>> {
        let seeds = self.seeds();
        let chosen = match &self.outcome {
            Outcome::Winner(p) | Outcome::Fallback(p) => Some(p.as_str()),
            Outcome::Incomplete(_) => None,
        };
        let t = |s: &str| {
            if fm == Fmt::Tex {
                tex(s)
            } else {
                s.to_string()
            }
        };
        let cell = |v: Option<&f64>, f: &dyn Fn(f64) -> String| v.map_or("–".into(), |x| f(*x));
        self.arms
            .iter()
            .map(|a| {
                let is_ref = a.point == self.selection.reference;
                let mut r = vec![t(&a.point), t(&a.method)];
                r.extend(
                    seeds
                        .iter()
                        .map(|k| cell(a.psnr.get(k), &|x| format!("{x:.3}"))),
                );
                r.push(format!("{:.3}", a.mean()));
                r.extend(seeds.iter().map(|k| cell(a.delta.get(k), &signed)));
                r.push(a.mean_delta().map_or("–".into(), signed));
                r.push(if is_ref {
                    "reference".into()
                } else if a.beats() {
                    "yes".into()
                } else {
                    "no".into()
                });
                r.push(if chosen == Some(a.point.as_str()) {
                    "◀".into()
                } else {
                    String::new()
                });
                r
            })
            .collect()
    }

    /// The table: per arm its PSNR per seed, mean, paired Δ per seed, and the rule's choice.
    pub fn table(&self, detail: bool) -> Table {
        let s = &self.selection;
        let reg = if detail {
            self.registration.detail()
        } else {
            self.registration.word().to_string()
        };
        let cap = format!(
            "Selection `{}` on `{}` (a validation split held out of training; never a benchmark): final PSNR-Y (dB) per seed and the paired difference Δ to `{}` on the same seed (same calibration batches and sampler stream). Rule, declared in reports/expected.ron: among the arms scored on every seed of the reference, those with Δ > 0 on every seed; of these the highest mean; none: the fallback `{}`. A screening rule on few seeds, not a test. Registered: {reg}. {}",
            s.experiment, s.set, s.reference, s.fallback, self.verdict()
        );
        let head = self.head();
        let hs: Vec<&str> = head.iter().map(String::as_str).collect();
        Table {
            md: format!(
                "# Selection: {}\n\n{cap}\n\n{}",
                s.experiment,
                md(&head, &self.rows(Fmt::Md))
            ),
            tex: latex(
                &head,
                &self.rows(Fmt::Tex),
                &cap,
                &format!("tab:selection-{}", s.experiment),
            ),
            csv: csv(&hs, &self.rows(Fmt::Md)),
            caption: cap,
        }
    }
}

/// Write each selection's table as `tables/selection-<experiment>.{md,tex,csv}`.
pub fn write_all(
    chosen: &[Chosen],
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<Item>> {
    chosen
        .iter()
        .filter(|c| !c.arms.is_empty())
        .map(|c| {
            let e = &c.selection.experiment;
            write_table(
                out,
                &format!("selection-{e}"),
                format!("Selection: {e}"),
                c.table(false),
                written,
            )
        })
        .collect()
}
