//! `odm infer RUN_DIR --data DIR...`: evaluation with the integer path (`crate::infer`).

use crate::backend::Cpu;
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
    let scores = sets
        .iter()
        .map(|set| {
            crate::eval::evaluate_by(set, &mut |lr| {
                let (sr, st) = crate::infer::super_resolve(&model, &params, &plan, lr);
                stats = st;
                sr
            })
        })
        .collect();
    Ok((scores, stats))
}
