//! Acceptance (issue 27, parts 2 and 3): the new spec fields keep every earlier hash at their
//! defaults, and every run with a regularizer logs, at each gate log step, per parameter group
//! ‖g_rec‖, ‖λ·w ⊙ g_reg‖, their cosine and the mean gate weight in `metrics.csv`.

mod common;

use odm::commands::{canonical, run, RunOpts};
use odm::record::{keys, parse_metrics};
use odm::report::runs::group_log;

fn spec(extra: &str) -> odm::spec::Spec {
    let text = common::toy_spec("h", 1, 4, extra);
    odm::spec::load::parse_str("h.ron", &text).unwrap()
}

#[test]
fn defaults_of_the_new_fields_keep_the_hash() {
    let base = "quant: Odm(w_bits: 2, a_bits: 2), regularizer: Mismatch(lambda: 1e-3), \
                gating: (rule: CosineSoft(per_tensor: false)),";
    let explicit = "quant: Odm(w_bits: 2, a_bits: 2), \
                    regularizer: Mismatch(lambda: 1e-3, residual: Ste), \
                    gating: (rule: CosineSoft(per_tensor: false), scope: All),";
    let (text, hash) = canonical(&spec(base));
    assert_eq!(hash, canonical(&spec(explicit)).1);
    assert!(!text.contains("residual") && !text.contains("scope"));
    for other in [
        "quant: Odm(w_bits: 2, a_bits: 2), \
         regularizer: Mismatch(lambda: 1e-3, residual: Detached), \
         gating: (rule: CosineSoft(per_tensor: false)),",
        "quant: Odm(w_bits: 2, a_bits: 2), regularizer: Mismatch(lambda: 1e-3), \
         gating: (rule: CosineSoft(per_tensor: false), scope: ConvWeights),",
    ] {
        assert_ne!(hash, canonical(&spec(other)).1, "{other}");
    }
}

#[test]
fn scope_with_a_rule_that_pools_nothing_is_refused() {
    let tmp = common::tempdir();
    let text = common::toy_spec(
        "s",
        1,
        4,
        "quant: Odm(w_bits: 2, a_bits: 2), regularizer: Mismatch(lambda: 1e-3), \
         gating: (rule: Sign, scope: PerTensor),",
    );
    let f = common::write(tmp.path(), "scope.ron", &text);
    let out = std::process::Command::new(common::odm_bin())
        .arg("run")
        .arg(&f)
        .arg("--out")
        .arg(tmp.path().join("results"))
        .output()
        .unwrap();
    let msg = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("scope.ron") && msg.contains("gating.scope"),
        "{msg}"
    );
    assert_eq!(msg.trim().lines().count(), 1, "{msg}");
    assert!(
        !tmp.path().join("results").exists()
            || std::fs::read_dir(tmp.path().join("results"))
                .unwrap()
                .count()
                == 0
    );
}

#[test]
fn every_regularized_run_logs_the_groups_at_each_gate_log_step() {
    let tmp = common::tempdir();
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    };
    for (name, extra) in [
        (
            "sg",
            "quant: Odm(w_bits: 2, a_bits: 2, calib_batches: 2), \
             regularizer: Mismatch(lambda: 1e-3, residual: Detached), \
             gating: (rule: CosineSoft(per_tensor: false), scope: ConvWeights, log_every: 2),",
        ),
        (
            "var",
            "quant: Pams(w_bits: 2, a_bits: 2, calib_batches: 2), \
             regularizer: Variance(lambda: 1e-3), gating: (rule: Sign, log_every: 2),",
        ),
    ] {
        let f = common::write(
            tmp.path(),
            &format!("{name}.ron"),
            &common::toy_spec(name, 2, 4, extra),
        );
        let dir = run(&f, &opts).unwrap().remove(0);
        let rows =
            parse_metrics(&std::fs::read_to_string(dir.join("metrics.csv")).unwrap()).unwrap();
        let log = group_log(&rows);
        let steps: Vec<usize> = log.iter().map(|g| g.step).collect();
        assert_eq!(steps, [2, 2, 2, 4, 4, 4], "{name}");
        let groups: Vec<&str> = log.iter().take(3).map(|g| g.group.as_str()).collect();
        assert_eq!(groups, ["conv_weights", "bounds", "other"], "{name}");
        for g in &log {
            for v in [g.norm_rec, g.norm_reg, g.cosine, g.weight] {
                assert!(v.is_finite(), "{name}: {g:?}");
            }
            assert!(
                g.norm_rec > 0.0 && (-1.0..=1.0).contains(&g.cosine),
                "{name}: {g:?}"
            );
            assert!((0.0..=1.0).contains(&g.weight), "{name}: {g:?}");
        }
        // The run-wide gate rows stay as they were.
        let plain = rows
            .iter()
            .filter(|r| r.split == keys::GATE && r.set == "-")
            .count();
        assert_eq!(plain, 2 * 4, "{name}");
        if name == "sg" {
            // One weight for every tensor in scope (all trainable ones here), so each group's
            // mean weight is the run-wide gated fraction.
            for g in &log {
                let frac = rows
                    .iter()
                    .find(|r| r.step == g.step && r.metric == keys::GATED_FRACTION)
                    .unwrap()
                    .value;
                assert!((g.weight - frac).abs() < 1e-12, "{g:?} vs {frac}");
            }
        }
    }
    // The report tabulates each experiment's gate log, a row per parameter group.
    let out = tmp.path().join("reports");
    odm::report::report(&opts.out, &out, None).unwrap();
    for exp in ["sg", "var"] {
        let t = std::fs::read_to_string(out.join(format!("tables/gate-{exp}.md"))).unwrap();
        for group in ["conv_weights", "bounds", "other"] {
            assert_eq!(t.matches(&format!("| {group} |")).count(), 1, "{exp}: {t}");
        }
    }
}

#[test]
fn metrics_without_the_group_log_read_as_none() {
    let rows =
        parse_metrics("step,split,set,metric,value\n10,gate,-,cosine,0.1\n10,train,-,l1,0.5\n")
            .unwrap();
    assert!(group_log(&rows).is_empty());
}

/// The gate-log table's summary, hand-derived: per run the mean over logged steps (missing
/// values skipped; the ratio per step and only where ‖g_rec‖ > 0), then the mean over runs.
#[test]
fn the_gate_table_averages_steps_then_seeds() {
    use odm::report::gatelog::summarize;
    use odm::report::runs::GroupLog;
    let g = |step, group: &str, rec, reg, cos, w| GroupLog {
        step,
        group: group.into(),
        norm_rec: rec,
        norm_reg: reg,
        cosine: cos,
        weight: w,
    };
    let a = vec![
        g(10, "conv_weights", 2.0, 0.1, 0.2, 0.6),
        g(10, "bounds", 0.0, 1.0, 0.5, 1.0),
        g(20, "conv_weights", 4.0, 0.4, f64::NAN, 0.4),
    ];
    let b = vec![g(10, "conv_weights", 1.0, 0.3, -0.2, 0.5)];
    let s = summarize(&[a, b]);
    assert_eq!(s.len(), 2, "{s:?}");
    let c = &s[0];
    assert_eq!((c.group.as_str(), c.runs, c.steps), ("conv_weights", 2, 2));
    // norm_rec: mean(mean(2, 4), 1) = 2; norm_reg: mean(0.25, 0.3); ratio: mean(mean(0.05, 0.1), 0.3).
    for (got, want) in [
        (c.norm_rec, 2.0),
        (c.norm_reg, 0.275),
        (c.ratio, 0.1875),
        (c.cosine, 0.0),
        (c.weight, 0.5),
    ] {
        assert!((got - want).abs() < 1e-12, "{c:?}");
    }
    let b = &s[1];
    assert_eq!((b.group.as_str(), b.runs, b.steps), ("bounds", 1, 1));
    assert!(
        b.ratio.is_nan() && b.norm_reg == 1.0 && b.weight == 1.0,
        "{b:?}"
    );
}
