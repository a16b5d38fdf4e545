//! Tables from finished runs: mean ± standard deviation over seeds, per eval set.

use std::path::Path;

/// Final metrics of one run: (set, (PSNR-Y, SSIM-Y)), in the spec's eval order.
pub type Scores = Vec<(String, (f64, f64))>;

fn get<'a>(s: &'a Scores, set: &str) -> Option<&'a (f64, f64)> {
    s.iter().find(|(k, _)| k == set).map(|(_, v)| v)
}

/// One finished run's final metrics, read from its `summary.json`.
pub fn read_summary(run_dir: &Path) -> anyhow::Result<Scores> {
    let s = crate::record::Summary::read(run_dir)?;
    Ok(s.eval
        .into_iter()
        .map(|e| (e.set, (e.psnr_y, e.ssim_y)))
        .collect())
}

/// The run name without its `.seed-N` grid label: the group that seeds are averaged over.
pub fn group_of(name: &str) -> String {
    match name.rfind(".seed-") {
        Some(i) => name[..i].to_string(),
        None => name.to_string(),
    }
}

/// Mean and sample standard deviation (n − 1; 0 for one value).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let s = if v.len() > 1 {
        (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (m, s)
}

/// A Markdown table: one row per group (in first-seen order), one PSNR/SSIM column per set (in
/// eval order), cells `mean ± std` over the group's seeds.
pub fn seed_table(runs: &[(String, Scores)]) -> String {
    let mut groups: Vec<(String, Vec<&Scores>)> = Vec::new();
    for (name, m) in runs {
        let g = group_of(name);
        match groups.iter_mut().find(|(k, _)| *k == g) {
            Some((_, v)) => v.push(m),
            None => groups.push((g, vec![m])),
        }
    }
    let sets: Vec<String> = runs
        .first()
        .map(|(_, m)| m.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let mut s = String::from("| run | seeds |");
    for set in &sets {
        s.push_str(&format!(" {set} PSNR / SSIM |"));
    }
    s.push_str(&format!("\n|---|---|{}\n", "---|".repeat(sets.len())));
    for (g, ms) in &groups {
        s.push_str(&format!("| {g} | {} |", ms.len()));
        for set in &sets {
            let p: Vec<f64> = ms.iter().filter_map(|m| get(m, set)).map(|x| x.0).collect();
            let q: Vec<f64> = ms.iter().filter_map(|m| get(m, set)).map(|x| x.1).collect();
            let ((pm, ps), (qm, qs)) = (mean_std(&p), mean_std(&q));
            s.push_str(&format!(" {pm:.3} ± {ps:.3} / {qm:.4} ± {qs:.4} |"));
        }
        s.push('\n');
    }
    s
}
