//! The module layering of ARCHITECTURE.md holds: every `crate::…` reference in a source file
//! (comments and `#[cfg(test)]` modules aside) points to a module of an earlier layer, so there
//! is no import cycle between top-level modules.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

/// Top-level modules, lowest layer first (ARCHITECTURE.md).
const LAYERS: [&str; 15] = [
    "error", "digest", "spec", "data", "kernels", "models", "quant", "forward", "record", "eval",
    "train", "backend", "report", "commands", "bench",
];

/// Source without line comments and without a trailing `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a source file refers to: `crate::m` and `use crate::{m1, m2::…}`.
fn references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        out.insert(ident(&group[k..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest).to_string());
        }
    }
    out
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.extension().is_some_and(|x| x == "rs") {
            files.push(p);
        }
    }
}

#[test]
fn references_point_to_earlier_layers_only() {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut seen = BTreeSet::new();
    let mut wrong = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel.iter().next().unwrap().to_str().unwrap();
        let top = top.strip_suffix(".rs").unwrap_or(top);
        if top == "lib" || top == "main" {
            continue;
        }
        let me = LAYERS.iter().position(|l| *l == top);
        let me = me.unwrap_or_else(|| panic!("{top} is not in LAYERS: add it to the table"));
        seen.insert(top.to_string());
        for r in references(&code(&std::fs::read_to_string(&f).unwrap())) {
            match LAYERS.iter().position(|l| *l == r) {
                Some(k) if k > me => wrong.push(format!("{} -> {r}", rel.display())),
                Some(_) => {}
                None => panic!("{}: unknown module crate::{r}", rel.display()),
            }
        }
    }
    assert!(wrong.is_empty(), "upward references: {wrong:#?}");
    assert_eq!(seen.len(), LAYERS.len(), "every layer has source files");
}

#[test]
fn the_scanner_sees_groups_and_paths() {
    let c =
        code("use crate::{spec::Spec, data};\nlet x = crate::quant::levels(2); // crate::train\n");
    let r: Vec<String> = references(&c).into_iter().collect();
    assert_eq!(r, ["data", "quant", "spec"]);
}
