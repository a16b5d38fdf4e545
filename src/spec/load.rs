//! Reading a spec file: RON parse errors and validation errors both name the file, the line and
//! column, the field and the allowed values.

use super::value::{self, Node};
use super::{grid, validate, Spec};
use crate::error::user;
use ron::extensions::Extensions;
use std::path::{Path, PathBuf};

/// A parsed, validated spec file, expanded into one spec per run.
#[derive(Debug, Clone)]
pub struct LoadedSpec {
    /// The file as given.
    pub path: PathBuf,
    /// The file's text, stored verbatim in each run folder.
    pub source: String,
    /// One effective spec per run (a single one unless the file has a grid).
    pub runs: Vec<Spec>,
    /// True when the file declares a grid.
    pub grid: bool,
}

/// RON options: `implicit_some` (write `grad_clip: 0.5`, not `Some(0.5)`) and
/// `unwrap_variant_newtypes` (write `Edsr(n_feats: 64)`, not `Edsr((n_feats: 64))`).
pub fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(Extensions::IMPLICIT_SOME | Extensions::UNWRAP_VARIANT_NEWTYPES)
}

/// Parse a spec from text; `origin` names it in errors.
pub fn parse_str(origin: &str, text: &str) -> anyhow::Result<Spec> {
    let first = ron_options().from_str::<Spec>(text);
    if first.is_err() {
        // Run folders written before `unwrap_variant_newtypes` hold `Edsr((...))`.
        let legacy = ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME);
        if let Ok(s) = legacy.from_str::<Spec>(text) {
            return Ok(s);
        }
    }
    first.map_err(|e| {
        let (line, col) = (e.position.line, e.position.col);
        // A variant of the wrong shape (`rule: Sign(x: 1)`): ours names the field and the fix
        // where RON says "Expected comma".
        let ours = value::parse(text)
            .ok()
            .and_then(|n| value::decode::<Spec>(&n).err())
            .filter(|v| v.variant_shape);
        match ours {
            Some(v) => user(format!("{origin}:{line}:{col}: {v}")),
            None => user(format!(
                "{origin}:{line}:{col}: {} (see README.md, section 'Experiment spec', for the fields and their allowed values)",
                e.code
            )),
        }
    })
}

/// Load, validate and expand a spec file. Nothing is written.
pub fn load_file(path: &Path) -> anyhow::Result<LoadedSpec> {
    load_file_with(path, &[])
}

/// Apply `field=value` overrides to a parsed spec. Values are RON as in a spec file
/// (`gating.rule=Sign`, `quant=Pams(w_bits: 2, a_bits: 2)`); the tagged-map form
/// (`quant={"Pams": {"w_bits": 2, "a_bits": 2}}`) means the same ([`value`]).
pub fn apply_overrides(origin: &str, spec: Spec, overrides: &[String]) -> anyhow::Result<Spec> {
    if overrides.is_empty() {
        return Ok(spec);
    }
    let mut root = Node::from_json(&serde_json::to_value(&spec).expect("spec serializes"));
    let mut fields = Vec::new();
    for o in overrides {
        let (field, text) = o.split_once('=').ok_or_else(|| {
            user(format!(
                "--set {o:?}: expected FIELD=VALUE, e.g. schedule.iterations=2"
            ))
        })?;
        let v = value::parse(text).map_err(|e| {
            user(format!(
                "--set {field}: {text:?} is not a RON value ({e}); write it as in a spec file, e.g. --set gating.rule=Sign or --set 'quant=Pams(w_bits: 2, a_bits: 2)'"
            ))
        })?;
        let slot = value::slot(&mut root, field, true).ok_or_else(|| {
            user(format!("--set {field}: not a field of the spec in {origin}; use a dotted path such as schedule.iterations"))
        })?;
        *slot = v;
        fields.push((field, o));
    }
    value::decode(&root).map_err(|e| {
        // The override whose field holds the error's (the last one, as later ones win).
        let at = e.field();
        let within = |a: &str, b: &str| {
            a == b || a.starts_with(&format!("{b}.")) || a.starts_with(&format!("{b}["))
        };
        let culprit = (fields.iter().rev().find(|(f, _)| within(&at, f)))
            .or_else(|| fields.iter().rev().find(|(f, _)| within(f, &at)));
        match culprit {
            Some((_, o)) => user(format!("{origin}: --set {o}: {e}")),
            None => user(format!("{origin}: --set does not fit the spec: {e}")),
        }
    })
}

/// [`load_file`] with `--set` overrides applied before the grid is expanded.
pub fn load_file_with(path: &Path, overrides: &[String]) -> anyhow::Result<LoadedSpec> {
    load_checked(path, overrides, validate::validate)
}

/// Load a spec file checking only its fields, not that its data folders and initial weights
/// exist (for commands that read neither, such as `odm cost`).
pub fn load_file_fields(path: &Path) -> anyhow::Result<LoadedSpec> {
    load_checked(path, &[], validate::validate_fields)
}

fn load_checked(
    path: &Path,
    overrides: &[String],
    check: fn(&Spec) -> Result<(), FieldError>,
) -> anyhow::Result<LoadedSpec> {
    let origin = path.display().to_string();
    let source = read_text(path, "spec file")?;
    let spec = apply_overrides(&origin, parse_str(&origin, &source)?, overrides)?;
    let runs = grid::expand(&spec).map_err(|e| locate_err(&origin, &source, e))?;
    for run in &runs {
        check(run).map_err(|e| locate_err(&origin, &source, e))?;
    }
    Ok(LoadedSpec {
        path: path.to_path_buf(),
        source,
        grid: spec.grid.is_some(),
        runs,
    })
}

/// A validation failure for one field (dotted path) with a message.
#[derive(Debug)]
pub struct FieldError {
    pub field: String,
    pub msg: String,
}

fn locate_err(origin: &str, source: &str, e: FieldError) -> anyhow::Error {
    let last = e.field.rsplit('.').next().unwrap_or(&e.field);
    let last = last.split('[').next().unwrap_or(last);
    let (line, col) = locate(source, last).unwrap_or((1, 1));
    user(format!(
        "{origin}:{line}:{col}: field `{}`: {}",
        e.field, e.msg
    ))
}

/// 1-based line and column of the first `ident:` in `source` (comments skipped).
pub fn locate(source: &str, ident: &str) -> Option<(usize, usize)> {
    for (ln, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut start = 0;
        while let Some(pos) = code[start..].find(ident) {
            let at = start + pos;
            let before_ok = at == 0
                || !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = code[at + ident.len()..].trim_start();
            if before_ok && after.starts_with(':') {
                return Some((ln + 1, at + 1));
            }
            start = at + ident.len();
        }
    }
    None
}

/// The most bytes a text input (a spec, `expected.ron`) may have.
pub const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Read a text input of odm's (`what`: "spec file", ...) as UTF-8, at most
/// [`MAX_TEXT_BYTES`]: a device such as `/dev/zero` or a huge file is a user error naming the
/// path, never an endless read.
pub fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    use std::io::Read;
    let bad = |e: String| {
        user(format!(
            "{}: cannot read the {what}: {e} (check the path)",
            path.display()
        ))
    };
    let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        return Err(bad(format!(
            "larger than {} MiB; a {what} is a small text file",
            MAX_TEXT_BYTES >> 20
        )));
    }
    String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))
}
