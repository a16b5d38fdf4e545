//! The module layering of ARCHITECTURE.md holds: every `crate::…` reference in a source file
//! (comments and `#[cfg(test)]` modules aside) points to a module of an earlier layer, so there
//! is no import cycle between top-level modules; and no chain of `crate::…`/`super::…`
//! references between source files returns to where it started (a module and its own
//! submodules aside).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

/// Top-level modules, lowest layer first (ARCHITECTURE.md).
const LAYERS: [&str; 17] = [
    "error", "digest", "spec", "data", "kernels", "models", "quant", "forward", "record", "eval",
    "train", "backend", "export", "infer", "report", "commands", "bench",
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

/// A source file's module path: `src/report/tables.rs` → `report::tables`, `mod.rs` → its folder.
fn module_of(src: &Path, f: &Path) -> Vec<String> {
    let rel = f.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The module paths `code` (a file of module `me`) refers to through `crate::…` and `super::…`,
/// each resolved to the longest known module path.
fn file_references(
    code: &str,
    me: &[String],
    known: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let path_at = |s: &str| -> Vec<String> {
        s.split("::")
            .map(ident)
            .take_while(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (base, prefix) in [
        ("crate::", Vec::new()),
        ("super::", me[..me.len().saturating_sub(1)].to_vec()),
    ] {
        for (i, _) in code.match_indices(base) {
            if base == "super::" && i >= 7 && &code[i - 7..i] == "crate::" {
                continue;
            }
            let mut path = prefix.clone();
            path.extend(path_at(&code[i + base.len()..]));
            while !path.is_empty() && !known.contains(&path) {
                path.pop();
            }
            if !path.is_empty() {
                out.insert(path);
            }
        }
    }
    out
}

/// No two source files depend on each other through any chain (a parent module and its own
/// submodules aside): the file-level graph has no cycle.
#[test]
fn no_cycle_between_source_files() {
    let src = common::repo().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let files: Vec<_> = files
        .into_iter()
        .filter(|f| !matches!(f.file_name().unwrap().to_str(), Some("lib.rs" | "main.rs")))
        .collect();
    let known: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: std::collections::BTreeMap<Vec<String>, BTreeSet<Vec<String>>> =
        Default::default();
    for f in &files {
        let me = module_of(&src, f);
        let refs = file_references(&code(&std::fs::read_to_string(f).unwrap()), &me, &known);
        let related = |a: &[String], b: &[String]| a.starts_with(b) || b.starts_with(a);
        edges.insert(
            me.clone(),
            refs.into_iter().filter(|r| !related(r, &me)).collect(),
        );
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &Vec<String>,
        edges: &std::collections::BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut std::collections::BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in edges.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == m).unwrap();
                    let cycle: Vec<String> = stack[at..].iter().map(|s| s.join("::")).collect();
                    panic!("import cycle: {}", cycle.join(" → "));
                }
                Some(_) => {}
                None => visit(m, edges, state, stack),
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
    }
    let mut state: std::collections::BTreeMap<Vec<String>, u8> = Default::default();
    for n in edges.keys() {
        if !state.contains_key(n) {
            visit(n, &edges, &mut state, &mut Vec::new());
        }
    }
    assert!(known.len() > 50, "{} modules found", known.len());
}
