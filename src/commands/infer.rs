//! `odm infer RUN_DIR --data DIR... [--save-sr DIR [--save-lr]]`: evaluation with the integer
//! path (`crate::infer`).

use crate::backend::Cpu;
use crate::eval::SetScore;
use crate::infer::IntStats;
use std::path::{Path, PathBuf};

/// Scores of each folder under the integer path, and what the path did on the last image;
/// `save` as `odm eval`'s (see [`super::SaveSr`]).
pub fn infer(
    run_dir: &Path,
    data: &[PathBuf],
    threads: Option<usize>,
    save: Option<(&Path, bool)>,
) -> anyhow::Result<(Vec<SetScore>, IntStats)> {
    crate::backend::set_threads(threads);
    let save = save.map(|(o, lr)| super::SaveSr::new(o, lr)).transpose()?;
    let (s, model, plan, params) = super::load_run::<Cpu>(run_dir, &Default::default())?;
    let sets = super::load_eval_sets(data, s.scale)?;
    let prepared = crate::infer::prepare(&model, &params, &plan);
    let mut stats = IntStats::default();
    let mut scores = Vec::new();
    for set in &sets {
        let (mut i, mut err) = (0, None);
        scores.push(crate::eval::evaluate_by(set, &mut |lr| {
            let (sr, st) = crate::infer::super_resolve(&model, &params, &plan, &prepared, lr);
            stats = st;
            if let Some(w) = &save {
                if let Err(e) = w.write(set, &set.pairs[i].name, &sr) {
                    err.get_or_insert(e);
                }
            }
            i += 1;
            sr
        }));
        if let Some(e) = err {
            return Err(e);
        }
    }
    if let Some(w) = save {
        w.finish()?;
    }
    Ok((scores, stats))
}
