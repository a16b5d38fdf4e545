//! Acceptance: a QAT toy run interrupted after a checkpoint and resumed ends bit-identical
//! (weights, quantizer bounds, Adam state, metrics) to an uninterrupted run.

mod common;

use odm::commands::{run, RunOpts};
use std::path::PathBuf;

/// Runs `quant` uninterrupted and interrupted + resumed; returns the checkpoint's tensor names.
fn resume_case(quant: &str) -> Vec<String> {
    let tmp = common::tempdir();
    let spec = common::toy_spec("resume", 5, 6, quant);
    let f = common::write(tmp.path(), "r.ron", &spec);
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    };
    let full = run(&f, &opts).unwrap().remove(0);

    let stopped = run(
        &f,
        &RunOpts {
            stop_after: Some(2),
            ..opts.clone()
        },
    )
    .unwrap()
    .remove(0);
    assert_ne!(stopped, full);
    assert!(
        !stopped.join("summary.json").exists(),
        "an interrupted run is not finished"
    );
    let resumed = run(
        &f,
        &RunOpts {
            resume: true,
            ..opts.clone()
        },
    )
    .unwrap()
    .remove(0);
    assert_eq!(resumed, stopped, "--resume continues the unfinished folder");

    for file in [
        "checkpoint.safetensors",
        "metrics.csv",
        "per_image.csv",
        "quant_map.json",
        "diagnostics.csv",
        "histogram.json",
    ] {
        let a = std::fs::read(full.join(file)).unwrap();
        let b = std::fs::read(resumed.join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between the uninterrupted and the resumed run"
        );
    }
    let (ts, meta) = odm::record::read_safetensors(&full.join("checkpoint.safetensors")).unwrap();
    assert_eq!(meta["iteration"], "6");
    ts.into_iter().map(|t| t.name).collect()
}

#[test]
fn resumed_run_is_bit_identical_to_uninterrupted_run() {
    // DDTB-static: block placement, rounded zero points, the SKT teacher (on by default).
    let names = resume_case("quant: DdtbStatic(w_bits: 2, a_bits: 2, calib_batches: 2),");
    let has = |n: &str| names.iter().any(|m| m == n);
    assert!(has("teacher.body.0.conv1.weight"));
    // The checkpoint holds the quantizer bounds.
    assert!(has("body.0.skip.act.lo") && has("body.1.res.act.hi"));
    assert!(
        !has("body.0.conv1.act.lo"),
        "DDTB leaves the first conv input FP"
    );
}

#[test]
fn resumed_odm_v2_run_is_bit_identical() {
    // ODM v2: learned weight bounds with WCC γ, the mismatch regularizer, cosine-weighted gate.
    let names = resume_case(
        "quant: Odm(w_bits: 2, a_bits: 2, calib_batches: 2, weight_clip: Wcc(percentile: 99.0)),
         regularizer: Mismatch(lambda: 1e-3), gating: (rule: CosineSoft(per_tensor: false)),",
    );
    assert!(names.iter().any(|n| n == "body.1.conv2.wcc.gamma"));
    assert!(names.iter().any(|n| n == "body.0.conv1.act.lo"));
    assert!(
        !names.iter().any(|n| n.starts_with("teacher.")),
        "no SKT in ODM"
    );
}

#[test]
fn resumed_run_with_the_mismatch_variants_is_bit_identical() {
    // q(X) held constant, the cosine over conv weights: metrics.csv (with the gate's per-group
    // rows) and the checkpoint match an uninterrupted run byte for byte.
    resume_case(
        "quant: Odm(w_bits: 2, a_bits: 2, calib_batches: 2),
         regularizer: Mismatch(lambda: 1e-3, residual: Detached),
         gating: (rule: CosineSoft(per_tensor: false), scope: ConvWeights, log_every: 1),",
    );
}

/// A checkpoint cut short (a full disk, a killed copy) is a one-line user error on --resume that
/// names the file, never a panic.
#[test]
fn truncated_checkpoint_is_a_user_error() {
    let tmp = common::tempdir();
    let spec = common::toy_spec("trunc", 5, 6, "quant: Odm(w_bits: 4, a_bits: 4),");
    let f = common::write(tmp.path(), "t.ron", &spec);
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(1),
        ..Default::default()
    };
    let dir = run(
        &f,
        &RunOpts {
            stop_after: Some(2),
            ..opts.clone()
        },
    )
    .unwrap()
    .remove(0);
    let ck = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    for keep in [4, 100, bytes.len() / 2, bytes.len() - 3] {
        std::fs::write(&ck, &bytes[..keep]).unwrap();
        let e = run(
            &f,
            &RunOpts {
                resume: true,
                ..opts.clone()
            },
        )
        .unwrap_err();
        assert!(
            e.downcast_ref::<odm::error::UserError>().is_some(),
            "{keep}: {e:#}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("checkpoint.safetensors") && !msg.contains('\n'),
            "{msg}"
        );
    }
}

/// Runs a toy QAT spec to iteration 2, lets `edit` change the stopped folder, resumes it and
/// returns (the stopped run's provenance, the finished run's provenance).
fn stop_edit_resume(
    name: &str,
    edit: impl Fn(&std::path::Path),
) -> (serde_json::Value, serde_json::Value) {
    let tmp = common::tempdir();
    let spec = common::toy_spec(name, 5, 6, "quant: Odm(w_bits: 4, a_bits: 4),");
    let f = common::write(tmp.path(), "t.ron", &spec);
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(1),
        ..Default::default()
    };
    let prov = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("provenance.json")).unwrap()).unwrap()
    };
    let stop = RunOpts {
        stop_after: Some(2),
        ..opts.clone()
    };
    let dir = run(&f, &stop).unwrap().remove(0);
    let first = prov(&dir);
    edit(&dir);
    let resume = RunOpts {
        resume: true,
        ..opts.clone()
    };
    assert_eq!(run(&f, &resume).unwrap().remove(0), dir);
    assert!(
        !dir.join("timing.json").exists(),
        "the totals moved into provenance.json"
    );
    (first, prov(&dir))
}

/// A resumed run's provenance counts the time of every segment, not only the last one, and
/// keeps the first segment's start.
#[test]
fn resumed_run_counts_time_of_all_segments() {
    // The first segment's time, made large so that the last segment alone cannot reach it.
    let (first, done) = stop_edit_resume("timing", |dir| {
        let t: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("timing.json")).unwrap())
                .unwrap();
        assert_eq!(t["at_step"], 2, "{t}");
        assert_eq!(t["from_step"], 0, "{t}");
        let fake =
            r#"{"wall_seconds": 1000.0, "train_seconds": 400.0, "from_step": 0, "at_step": 2}"#;
        std::fs::write(dir.join("timing.json"), fake).unwrap();
    });
    assert_eq!(done["started"], first["started"]);
    assert_eq!(done["resumed"], true);
    let wall = done["wall_seconds"].as_f64().unwrap();
    let ips = done["iterations_per_second"].as_f64().unwrap();
    assert!(wall > 1000.0, "{wall}");
    // 6 iterations in 400 s plus the second segment's (positive) time.
    assert!(ips < 6.0 / 400.0 && ips > 0.0, "{ips}");
    assert!(done.get("timed_from_step").is_none(), "{done}");
}

/// Without `timing.json` (a checkpoint of an older odm) the rates count the resumed segment's
/// iterations only, and provenance says from which iteration.
#[test]
fn resume_without_timing_counts_from_the_checkpoint() {
    let (_, done) = stop_edit_resume("untimed", |dir| {
        std::fs::remove_file(dir.join("timing.json")).unwrap();
    });
    assert_eq!(done["timed_from_step"], 2, "{done}");
    assert!(done["wall_seconds"].as_f64().unwrap() > 0.0);
}

/// `--resume` cannot continue a folder stopped before its first checkpoint: it starts a new one
/// and names the stale folder on stderr, leaving it in place.
#[test]
fn resume_names_an_unfinished_folder_without_checkpoint() {
    let tmp = common::tempdir();
    let spec = common::toy_spec("stale", 5, 4, "quant: Odm(w_bits: 4, a_bits: 4),");
    let f = common::write(tmp.path(), "s.ron", &spec);
    let out = tmp.path().join("results");
    let stop = RunOpts {
        out: out.clone(),
        threads: Some(1),
        stop_after: Some(2),
        ..Default::default()
    };
    let stale = run(&f, &stop).unwrap().remove(0);
    std::fs::remove_file(stale.join("checkpoint.safetensors")).unwrap();
    let (out, f) = (out.to_str().unwrap(), f.to_str().unwrap());
    let args = [
        "run",
        "--quiet",
        "--resume",
        "--threads",
        "1",
        "--out",
        out,
        f,
    ];
    let o = common::odm_output_ok(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("has no checkpoint"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&stale.display().to_string()), "{line}");
    assert!(stale.is_dir(), "the stale folder stays");
    let fresh = PathBuf::from(format!("{}-2", stale.display()));
    assert!(fresh.join("summary.json").is_file(), "{err}");
}
