//! Acceptance: a QAT toy run interrupted after a checkpoint and resumed ends bit-identical
//! (weights, quantizer bounds, Adam state, metrics) to an uninterrupted run.

mod common;

use odm::commands::{run, RunOpts};

#[test]
fn resumed_run_is_bit_identical_to_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = common::toy_spec(
        "resume",
        5,
        6,
        "quant: DdtbStatic(w_bits: 2, a_bits: 2, calib_batches: 2),",
    );
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
    ] {
        let a = std::fs::read(full.join(file)).unwrap();
        let b = std::fs::read(resumed.join(file)).unwrap();
        assert!(
            a == b,
            "{file} differs between the uninterrupted and the resumed run"
        );
    }
    // The checkpoint holds the quantizer bounds.
    let (ts, meta) = odm::record::read_safetensors(&full.join("checkpoint.safetensors")).unwrap();
    assert!(ts.iter().any(|t| t.name == "body.0.skip.act.lo"));
    assert!(ts.iter().any(|t| t.name == "body.1.res.act.hi"));
    assert!(!ts.iter().any(|t| t.name == "body.0.conv1.act.lo"), "DDTB leaves the first conv input FP");
    assert_eq!(meta["iteration"], "6");
}
