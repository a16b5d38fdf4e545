//! Finished runs found under a results root, with the labels the tables group them by.

use crate::eval::inspect::ActStats;
use crate::quant::cost::CostReport;
use crate::record::{parse_metrics, MetricRow};
use crate::spec::{CoopScope, GateRule, ModelSpec, OffsetPolicy, Regularizer, Residual, Spec};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One set's final scores and the bicubic baseline of the same images.
#[derive(Clone, Debug, PartialEq)]
pub struct SetRow {
    pub set: String,
    pub psnr: f64,
    pub ssim: f64,
    pub bic_psnr: f64,
    pub bic_ssim: f64,
}

/// One row of `offsets.json`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct Offset {
    pub layer: String,
    pub m_sigma: f64,
    pub m_mu: f64,
    pub scale: bool,
    pub shift: bool,
}

/// A finished run folder and what the report reads of it.
#[derive(Clone, Debug)]
pub struct Run {
    pub dir: PathBuf,
    /// Spec name, e.g. `ablation_bench.cooperative.seed-1`.
    pub name: String,
    /// Name without the `.seed-N` label: what seeds are averaged over.
    pub group: String,
    /// The experiment file's name (the part before the first `.`).
    pub experiment: String,
    /// The grid point (the group without the experiment), or "" for a single run.
    pub point: String,
    pub spec: Spec,
    pub backbone: String,
    /// (w_bits, a_bits); `None` for FP.
    pub bits: Option<(u32, u32)>,
    pub method: String,
    pub family: Family,
    pub scores: Vec<SetRow>,
    pub metrics: Vec<MetricRow>,
    pub cost: Option<CostReport>,
    pub acts: Option<ActStats>,
    pub offsets: Option<Vec<Offset>>,
    /// `crops.json`: the saved crops and their PSNR (the qualitative figure).
    pub crops: Option<Vec<crate::eval::crops::CropRecord>>,
}

/// "EDSR-baseline", "EDSR 4×32", "RDN", "RDN D8C4G32", "SRResNet", ...
pub fn backbone(m: &ModelSpec) -> String {
    match m {
        ModelSpec::Edsr(e) if e.n_resblocks == 16 && e.n_feats == 64 => "EDSR-baseline".into(),
        ModelSpec::Edsr(e) => format!("EDSR {}×{}", e.n_resblocks, e.n_feats),
        ModelSpec::Rdn(r) if r.d == 16 && r.c == 8 && r.g == 64 && r.g0 == 64 => "RDN".into(),
        ModelSpec::Rdn(r) => format!("RDN D{}C{}G{}", r.d, r.c, r.g),
        ModelSpec::SrResNet(s) if s.n_resblocks == 16 && s.n_feats == 64 => "SRResNet".into(),
        ModelSpec::SrResNet(s) => format!("SRResNet {}×{}", s.n_resblocks, s.n_feats),
    }
}

pub use crate::spec::Family;

/// Method label and family from the quantizer, regularizer, gating, offsets and weight clip.
pub fn method(s: &Spec) -> (String, Family) {
    let Some(opts) = s.quant.opts() else {
        return ("FP32".into(), Family::Fp32);
    };
    let base = s.quant.family();
    let gate = match s.gating.scope {
        CoopScope::All => s.gating.rule.label().to_string(),
        CoopScope::ConvWeights => format!("{} over conv weights", s.gating.rule.label()),
        CoopScope::PerTensor => format!("{} per tensor", s.gating.rule.label()),
    };
    let mut parts = vec![base.label().to_string()];
    match &s.regularizer {
        Regularizer::None => {}
        // A regularizer that is never applied leaves the baseline.
        _ if matches!(s.gating.rule, GateRule::Never) => {}
        Regularizer::Variance { lambda, .. } => {
            parts.push(format!("VarReg (λ={lambda:e}, {gate})"))
        }
        Regularizer::Mismatch { lambda, residual } => parts.push(match residual {
            Residual::Ste => format!("MisReg (λ={lambda:e}, {gate})"),
            Residual::Detached => format!("MisReg (λ={lambda:e}, sg(q), {gate})"),
        }),
    }
    if !matches!(s.offsets, OffsetPolicy::None) {
        parts.push("offsets".into());
    }
    if matches!(opts.weight_clip, crate::spec::WeightClip::Wcc { .. }) {
        parts.push("WCC".into());
    }
    let family = if parts.len() > 1 { Family::Odm } else { base };
    (parts.join(" + "), family)
}

/// One logged step of the gate's per-group log: the `gate` rows of `metrics.csv` whose set names
/// a parameter group (`conv_weights`, `bounds`, `other`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupLog {
    pub step: usize,
    pub group: String,
    /// ‖g_rec‖, ‖λ·w ⊙ g_reg‖, cos(g_rec, g_reg) and the mean gate weight; NaN where a row is
    /// missing.
    pub norm_rec: f64,
    pub norm_reg: f64,
    pub cosine: f64,
    pub weight: f64,
}

/// The gate's per-group log of a run, in step and then group order; empty for runs without a
/// regularizer and for runs recorded before the log existed.
pub fn group_log(metrics: &[MetricRow]) -> Vec<GroupLog> {
    use crate::record::keys;
    let mut out: Vec<GroupLog> = Vec::new();
    for r in metrics
        .iter()
        .filter(|r| r.split == keys::GATE && r.set != "-")
    {
        let i = match out
            .iter()
            .position(|g| g.step == r.step && g.group == r.set)
        {
            Some(i) => i,
            None => {
                out.push(GroupLog {
                    step: r.step,
                    group: r.set.clone(),
                    norm_rec: f64::NAN,
                    norm_reg: f64::NAN,
                    cosine: f64::NAN,
                    weight: f64::NAN,
                });
                out.len() - 1
            }
        };
        let g = &mut out[i];
        match r.metric.as_str() {
            keys::GRAD_NORM_REC => g.norm_rec = r.value,
            keys::GRAD_NORM_REG => g.norm_reg = r.value,
            keys::COSINE => g.cosine = r.value,
            keys::GATE_WEIGHT => g.weight = r.value,
            _ => {}
        }
    }
    out
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> anyhow::Result<Option<T>> {
    if !p.is_file() {
        return Ok(None);
    }
    let t = std::fs::read_to_string(p)?;
    serde_json::from_str(&t).map(Some).map_err(|e| {
        crate::error::user(format!(
            "{}: {e}; delete it or rerun `odm inspect`",
            p.display()
        ))
    })
}

fn scores(dir: &Path) -> anyhow::Result<Vec<SetRow>> {
    let s = crate::record::Summary::read(dir)?;
    Ok(s.eval
        .into_iter()
        .map(|e| SetRow {
            set: e.set,
            psnr: e.psnr_y,
            ssim: e.ssim_y,
            bic_psnr: e.bicubic_psnr_y,
            bic_ssim: e.bicubic_ssim_y,
        })
        .collect())
}

/// Read one finished run folder.
pub fn read_run(dir: &Path) -> anyhow::Result<Run> {
    let sp = dir.join("spec.effective.ron");
    let text = std::fs::read_to_string(&sp)
        .map_err(|e| crate::error::user(format!("{}: cannot read ({e})", sp.display())))?;
    let spec: Spec = crate::spec::load::parse_str(&sp.display().to_string(), &text)?;
    let name = spec.name.clone();
    let group = super::group_of(&name);
    let experiment = group.split('.').next().unwrap_or("").to_string();
    let point = group
        .strip_prefix(&format!("{experiment}."))
        .unwrap_or("")
        .to_string();
    let metrics = match std::fs::read_to_string(dir.join("metrics.csv")) {
        Ok(t) => parse_metrics(&t).map_err(|e| {
            crate::error::user(format!(
                "{}: {e:#} (a damaged metrics file: restore it from version control or rerun the run)",
                dir.join("metrics.csv").display()
            ))
        })?,
        Err(_) => Vec::new(),
    };
    let (method, family) = method(&spec);
    Ok(Run {
        dir: dir.to_path_buf(),
        backbone: backbone(&spec.model),
        bits: spec.quant.opts_form().map(|(o, _)| (o.w_bits, o.a_bits)),
        method,
        family,
        scores: scores(dir)?,
        metrics,
        cost: read_json(&dir.join("cost.json"))?,
        acts: read_json(&dir.join("activations.json"))?,
        offsets: read_json(&dir.join("offsets.json"))?,
        crops: read_json(&dir.join("crops.json"))?,
        name,
        group,
        experiment,
        point,
        spec,
    })
}

/// Every finished run (a folder holding `spec.effective.ron` and a `summary.json` with a score
/// for every evaluation set, [`crate::record::finished`]) under `root`, sorted by spec name, then
/// folder; see [`collect_noted`].
pub fn collect(root: &Path) -> anyhow::Result<Vec<Run>> {
    Ok(collect_noted(root)?.0)
}

/// A finished run left out because another folder of the same name holds a different spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Superseded {
    pub name: String,
    /// The folder kept and the one left out, relative to the results root.
    pub kept: String,
    pub dropped: String,
}

/// The spec without what differs between the seeds of one group (name and seed), as JSON.
fn spec_but_seed(s: &Spec) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("spec serializes");
    if let Some(o) = v.as_object_mut() {
        o.remove("name");
        o.remove("seed");
    }
    v
}

/// When a run finished (provenance `finished`, else `started`; RFC 3339 sorts as text).
fn finished_at(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("provenance.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    [&v["finished"], &v["started"]]
        .iter()
        .find_map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_string))
        .unwrap_or_default()
}

/// Every finished run under `root`, and the runs left out. Reruns of the same spec (`-2`, `-3`
/// folders) count once: the newest folder wins. Two folders of one name whose specs differ (an
/// edited spec under the same name): the one that finished last wins, and the other is listed
/// as superseded, so no table silently mixes them. A group whose seeds differ in anything but
/// the seed is a user error naming the folders.
pub fn collect_noted(root: &Path) -> anyhow::Result<(Vec<Run>, Vec<Superseded>)> {
    if !root.is_dir() {
        return Err(crate::error::user(format!(
            "{}: no such results folder; pass --results DIR",
            root.display()
        )));
    }
    let mut dirs: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_dir())
        .map(|e| e.into_path())
        .filter(|d| crate::record::finished(d).is_some() && d.join("spec.effective.ron").is_file())
        .collect();
    dirs.sort();
    let rel = |d: &Path| d.strip_prefix(root).unwrap_or(d).display().to_string();
    let mut runs: Vec<Run> = Vec::new();
    let mut superseded = Vec::new();
    for d in dirs {
        let r = read_run(&d)?;
        let Some(x) = runs.iter_mut().find(|x| x.name == r.name) else {
            runs.push(r);
            continue;
        };
        if spec_but_seed(&x.spec) == spec_but_seed(&r.spec) && x.spec.seed == r.spec.seed {
            if folder_rank(&r.dir) > folder_rank(&x.dir) {
                *x = r;
            }
            continue;
        }
        let (keep, drop) = if (finished_at(&r.dir), &r.dir) > (finished_at(&x.dir), &x.dir) {
            (r, x.clone())
        } else {
            (x.clone(), r)
        };
        superseded.push(Superseded {
            name: keep.name.clone(),
            kept: rel(&keep.dir),
            dropped: rel(&drop.dir),
        });
        *x = keep;
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name).then(a.dir.cmp(&b.dir)));
    check_groups(&runs, root)?;
    superseded.sort_by(|a, b| (&a.name, &a.dropped).cmp(&(&b.name, &b.dropped)));
    Ok((runs, superseded))
}

/// The seeds of one group must differ in the seed only: a user error names two folders that
/// differ in more.
fn check_groups(runs: &[Run], root: &Path) -> anyhow::Result<()> {
    for (i, a) in runs.iter().enumerate() {
        if let Some(b) = runs[i + 1..]
            .iter()
            .find(|b| b.group == a.group && spec_but_seed(&b.spec) != spec_but_seed(&a.spec))
        {
            let rel = |d: &Path| d.strip_prefix(root).unwrap_or(d).display().to_string();
            return Err(crate::error::user(format!(
                "{} and {}: one group ({}) whose specs differ in more than the seed; rename one, or move the stale folder out of {}",
                rel(&a.dir),
                rel(&b.dir),
                a.group,
                root.display()
            )));
        }
    }
    Ok(())
}

/// `name-hash` = 1, `name-hash-2` = 2, ...
fn folder_rank(d: &Path) -> u32 {
    let n = d.file_name().and_then(|s| s.to_str()).unwrap_or("");
    n.rsplit('-')
        .next()
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|&k| k < 1000)
        .unwrap_or(1)
}

/// A run folder under a results root that stopped without a finished result: it has
/// `failed.json`, or a `summary.json` that lacks scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Stopped {
    /// The folder, relative to the results root.
    pub folder: String,
    /// Why, on one line.
    pub cause: String,
    /// The last iteration completed (when known).
    pub step: Option<usize>,
    /// The command that continues it.
    pub resume: String,
}

/// Every failed or incomplete run folder under `root`, sorted by folder.
pub fn stopped(root: &Path) -> Vec<Stopped> {
    let mut out: Vec<Stopped> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_dir())
        .filter_map(|e| {
            let d = e.path();
            let folder = d.strip_prefix(root).unwrap_or(d).display().to_string();
            if let Some(f) = crate::record::failure::Failure::read(d) {
                return Some(Stopped {
                    folder,
                    cause: f.cause,
                    step: Some(f.step),
                    resume: f.resume,
                });
            }
            let incomplete =
                d.join("summary.json").is_file() && crate::record::finished(d).is_none();
            incomplete.then(|| Stopped {
                folder,
                cause: "summary.json lacks the scores of its evaluation sets".into(),
                step: None,
                resume: "odm run <its experiment file> --resume".into(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.folder.cmp(&b.folder));
    out
}

/// The build a run came from, as its provenance names it: the binary's commit and SHA-256
/// (`build`), else, for runs recorded before builds were, the working folder's commit.
pub fn build_of(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("provenance.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let short = |x: &serde_json::Value| {
        x.as_str()
            .unwrap_or("unknown")
            .chars()
            .take(10)
            .collect::<String>()
    };
    match v.get("build") {
        Some(b) => format!(
            "binary {} (commit {}{})",
            short(&b["binary_sha256"]),
            short(&b["commit"]),
            if b["dirty"] == "true" {
                ", modified"
            } else {
                ""
            }
        ),
        None => format!("commit {} (working folder)", short(&v["git_commit"])),
    }
}

/// Groups whose seeds ran on more than one build (see [`build_of`]): each with its runs' folder
/// names and builds, in name order. Seeds compared per seed should come from one build.
pub fn mixed_builds(runs: &[Run]) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for r in runs {
        let folder = r
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let entry = (folder, build_of(&r.dir));
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, v)) => v.push(entry),
            None => out.push((r.group.clone(), vec![entry])),
        }
    }
    out.retain(|(_, v)| v.iter().any(|(_, b)| *b != v[0].1));
    out
}
