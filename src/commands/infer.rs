//! `odm infer RUN_DIR --data DIR...`: evaluation with the integer path (`crate::infer`).

use crate::backend::Cpu;
use crate::error::user;
use crate::eval::SetScore;
use crate::infer::IntStats;
use std::path::{Path, PathBuf};

/// Scores of each folder under the integer path, and what the path did on the last image.
pub fn infer(
    run_dir: &Path,
    data: &[PathBuf],
    threads: Option<usize>,
) -> anyhow::Result<(Vec<SetScore>, IntStats)> {
    crate::backend::set_threads(threads);
    let (s, model, plan, params) = super::load_run::<Cpu>(run_dir, &Default::default())?;
    let sets = super::load_eval_sets(data, s.scale)?;
    let mut stats = IntStats::default();
    let mut missing = false;
    let scores = sets
        .iter()
        .map(|set| {
            crate::eval::evaluate_by(set, &mut |lr| match crate::infer::super_resolve(
                &model, &params, &plan, lr,
            ) {
                Some((sr, st)) => {
                    stats = st;
                    sr
                }
                None => {
                    missing = true;
                    lr.clone()
                }
            })
        })
        .collect();
    if missing {
        return Err(user(format!(
            "{}: integer inference traces EDSR only so far; RDN and SRResNet are not written yet",
            run_dir.display()
        )));
    }
    Ok((scores, stats))
}
