//! A validation split (issue 27, part 5): named images of the training folders, held out of the
//! training pool and scored as an evaluation set of their own, so that hyperparameters (λ, the
//! regularizer variant, the cooperation scope) are chosen on images that neither train the
//! network nor judge the claims (Set5, Set14, B100, Urban100).
//!
//! The list is a text file, one image per line by its file stem (`100075`), `#` starting a
//! comment; blank lines are ignored. Every name must be the stem of exactly one image of the
//! training folders. The evaluation set is named after the file's stem
//! (`experiments/splits/bsd200_val.txt` → `bsd200_val`), its images in the list's order.

use super::images::ImageSet;
use crate::error::user;
use std::path::Path;
use std::sync::Arc;

/// The images a list holds out: their (training set, image) positions and the evaluation set
/// made of them.
pub struct Validation {
    pub held: Vec<(usize, usize)>,
    pub set: Arc<ImageSet>,
}

/// The names of a list file (see the module documentation); an error names the file, the line
/// and the fix for an unreadable or empty list or a name given twice.
pub fn read_list(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        user(format!(
            "{}: cannot read the validation list ({e}); fix data.validation",
            path.display()
        ))
    })?;
    let mut names: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let name = line.split('#').next().unwrap_or("").trim();
        if name.is_empty() {
            continue;
        }
        if names.iter().any(|n| n == name) {
            return Err(user(format!(
                "{}:{}: image {name:?} is listed twice; list it once",
                path.display(),
                i + 1
            )));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(user(format!(
            "{}: the validation list names no image (one file stem a line, e.g. 100075)",
            path.display()
        )));
    }
    Ok(names)
}

/// Find every name of `list` among the training sets: exactly one image each, else an error
/// naming the list file, the name and the folders searched.
pub fn validation(train: &[Arc<ImageSet>], list: &Path) -> anyhow::Result<Validation> {
    let names = read_list(list)?;
    let mut held = Vec::with_capacity(names.len());
    for n in &names {
        let hits: Vec<(usize, usize)> = train
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.pairs
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| &p.name == n)
                    .map(move |(pi, _)| (si, pi))
            })
            .collect();
        match hits.as_slice() {
            [one] => held.push(*one),
            [] => {
                return Err(user(format!(
                    "{}: image {n:?} is in none of data.train's folders ({}); fix the list or data.train",
                    list.display(),
                    folders(train)
                )))
            }
            _ => {
                return Err(user(format!(
                    "{}: image {n:?} is in more than one of data.train's folders ({}); rename one of them",
                    list.display(),
                    folders(train)
                )))
            }
        }
    }
    let name = set_name(list);
    let pairs = held
        .iter()
        .map(|&(si, pi)| {
            let p = &train[si].pairs[pi];
            super::Pair {
                name: p.name.clone(),
                file: p.file.clone(),
                hr: p.hr.clone(),
                lr: p.lr.clone(),
            }
        })
        .collect();
    let first = &train[held[0].0];
    let set = Arc::new(ImageSet {
        name,
        dir: first.dir.clone(),
        scale: first.scale,
        pairs,
    });
    Ok(Validation { held, set })
}

fn folders(train: &[Arc<ImageSet>]) -> String {
    train
        .iter()
        .map(|s| s.dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The evaluation set a validation list is scored as: the list file's stem
/// (`experiments/splits/bsd200_val.txt` → `bsd200_val`).
pub fn set_name(list: &Path) -> String {
    list.file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "validation".into())
}
