//! Mechanism comparisons (`reports/expected.ron`, `mechanisms`): run groups of possibly
//! different experiments, e.g. no regularizer / always-on ("naive") / cooperative, whose
//! diagnostics figures (`report::figures::diag`: per-layer ‖X − q(X)‖ over iterations, one
//! layer's input histogram against its grid, gate weights; ODM's Fig. 5) are drawn side by side.

use serde::Deserialize;

/// A declared comparison of the regularizer's mechanism (`reports/expected.ron`, `mechanisms`):
/// run groups by full name (`experiment.point`), each under the role it plays, drawn side by
/// side in this order in the diagnostics figures `<kind>-mechanism-<name>`.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mechanism {
    /// The figures' name (a file-name stem: letters, digits, `_` and `-`).
    pub name: String,
    /// (role, group), e.g. ("none", "selection_s255_stage1.wcc").
    pub arms: Vec<(String, String)>,
}

impl Mechanism {
    /// The name must be a plain file-name stem and the arms non-empty, with distinct groups.
    pub fn check(&self, file: &std::path::Path) -> anyhow::Result<()> {
        let bad = |why: String| {
            Err(crate::error::user(format!(
                "{}: mechanism {:?}: {why}",
                file.display(),
                self.name
            )))
        };
        let stem = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        if self.name.is_empty() || !self.name.chars().all(stem) {
            return bad("name must be letters, digits, `_` or `-` (it names the figures)".into());
        }
        if self.arms.is_empty() {
            return bad("arms is empty; give (role, \"experiment.point\") pairs".into());
        }
        for (i, (_, g)) in self.arms.iter().enumerate() {
            if self.arms[..i].iter().any(|(_, h)| h == g) {
                return bad(format!("group {g:?} is given twice; give each arm once"));
            }
        }
        Ok(())
    }
}
