//! The runs as a polars frame (one row per run and evaluation set) and its seed aggregation:
//! mean and sample standard deviation (n − 1) of PSNR and SSIM per group and set.

use super::Run;
use polars::prelude::*;

/// One group's seed statistics on one set.
#[derive(Clone, Debug, PartialEq)]
pub struct Agg {
    pub group: String,
    pub set: String,
    pub n: usize,
    pub psnr: (f64, f64),
    pub ssim: (f64, f64),
}

/// All groups' statistics, in first-seen (sorted run name) order.
#[derive(Clone, Debug, Default)]
pub struct Aggs(pub Vec<Agg>);

impl Aggs {
    pub fn get(&self, group: &str, set: &str) -> Option<&Agg> {
        self.0.iter().find(|a| a.group == group && a.set == set)
    }
}

/// Long-format frame: group, experiment, backbone, scale, bits, method, seed, set, psnr, ssim.
pub fn scores_frame(runs: &[Run]) -> PolarsResult<DataFrame> {
    let rows: Vec<(&Run, &super::runs::SetRow)> = runs
        .iter()
        .flat_map(|r| r.scores.iter().map(move |s| (r, s)))
        .collect();
    let s = |f: &dyn Fn(&Run, &super::runs::SetRow) -> String| -> Vec<String> {
        rows.iter().map(|(r, x)| f(r, x)).collect()
    };
    DataFrame::new_infer_height(vec![
        Column::new("group".into(), s(&|r, _| r.group.clone())),
        Column::new("experiment".into(), s(&|r, _| r.experiment.clone())),
        Column::new("backbone".into(), s(&|r, _| r.backbone.clone())),
        Column::new(
            "scale".into(),
            rows.iter()
                .map(|(r, _)| r.spec.scale as u32)
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "bits".into(),
            s(&|r, _| r.bits.map_or("32/32".into(), |(w, a)| format!("{w}/{a}"))),
        ),
        Column::new("method".into(), s(&|r, _| r.method.clone())),
        Column::new(
            "seed".into(),
            rows.iter().map(|(r, _)| r.spec.seed).collect::<Vec<_>>(),
        ),
        Column::new("set".into(), s(&|_, x| x.set.clone())),
        Column::new(
            "psnr".into(),
            rows.iter().map(|(_, x)| x.psnr).collect::<Vec<_>>(),
        ),
        Column::new(
            "ssim".into(),
            rows.iter().map(|(_, x)| x.ssim).collect::<Vec<_>>(),
        ),
    ])
}

fn strs(df: &DataFrame, c: &str) -> PolarsResult<Vec<String>> {
    let ca = df.column(c)?.str()?;
    Ok((0..ca.len())
        .map(|i| ca.get(i).unwrap_or("").to_string())
        .collect())
}

fn f64s(df: &DataFrame, c: &str) -> PolarsResult<Vec<f64>> {
    let col = df.column(c)?.cast(&DataType::Float64)?;
    let ca = col.f64()?;
    Ok((0..ca.len()).map(|i| ca.get(i).unwrap_or(0.0)).collect())
}

/// Mean ± sample std over seeds per (group, set), via polars' stable group-by.
#[allow(deprecated)]
pub fn aggregate(runs: &[Run]) -> anyhow::Result<Aggs> {
    let df = scores_frame(runs)?;
    let by = ["group", "set"];
    let g = || df.group_by_stable(by).map(|g| g.select(["psnr", "ssim"]));
    let mean = g()?.mean()?;
    let std = g()?.std(1)?;
    let count = g()?.count()?;
    let (groups, sets) = (strs(&mean, "group")?, strs(&mean, "set")?);
    let (pm, sm) = (f64s(&mean, "psnr_mean")?, f64s(&mean, "ssim_mean")?);
    let (ps, ss) = (f64s(&std, "psnr_agg_std")?, f64s(&std, "ssim_agg_std")?);
    let n = f64s(&count, "psnr_count")?;
    Ok(Aggs(
        (0..groups.len())
            .map(|i| Agg {
                group: groups[i].clone(),
                set: sets[i].clone(),
                n: n[i] as usize,
                psnr: (pm[i], if n[i] > 1.0 { ps[i] } else { 0.0 }),
                ssim: (sm[i], if n[i] > 1.0 { ss[i] } else { 0.0 }),
            })
            .collect(),
    ))
}
