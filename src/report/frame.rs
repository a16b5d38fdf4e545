//! The runs' seed aggregation: mean and sample standard deviation (n − 1) of PSNR and SSIM per
//! group and evaluation set, groups in first-seen (sorted run name) order.

use super::seeds::mean_std;
use super::Run;

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

/// Mean ± sample std over seeds per (group, set), groups in the order their first row appears.
pub fn aggregate(runs: &[Run]) -> anyhow::Result<Aggs> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    let mut vals: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
    for r in runs {
        for s in &r.scores {
            let key = (r.group.as_str(), s.set.as_str());
            let i = match keys.iter().position(|k| *k == key) {
                Some(i) => i,
                None => {
                    keys.push(key);
                    vals.push((Vec::new(), Vec::new()));
                    keys.len() - 1
                }
            };
            vals[i].0.push(s.psnr);
            vals[i].1.push(s.ssim);
        }
    }
    Ok(Aggs(
        keys.iter()
            .zip(&vals)
            .map(|((group, set), (p, s))| Agg {
                group: group.to_string(),
                set: set.to_string(),
                n: p.len(),
                psnr: mean_std(p),
                ssim: mean_std(s),
            })
            .collect(),
    ))
}
