//! Acceptance: two toy runs with the same seed and thread count give identical loss sequences and
//! identical checkpoint bytes; a different seed differs. An identical rerun goes to a new folder.

mod common;

use odm::commands::{run, RunOpts};

#[test]
fn same_seed_is_bit_identical_and_other_seed_differs() {
    let tmp = common::tempdir();
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    };
    let spec_a = common::write(tmp.path(), "a.ron", &common::toy_spec("det", 7, 6, ""));
    let spec_b = common::write(tmp.path(), "b.ron", &common::toy_spec("det", 8, 6, ""));
    let a1 = run(&spec_a, &opts).unwrap().remove(0);
    let a2 = run(&spec_a, &opts).unwrap().remove(0);
    let b = run(&spec_b, &opts).unwrap().remove(0);
    assert_ne!(a1, a2, "an identical rerun must go to a new folder");
    assert!(
        a2.file_name().unwrap().to_string_lossy().ends_with("-2"),
        "{}",
        a2.display()
    );

    let (l1, l2, lb) = (common::losses(&a1), common::losses(&a2), common::losses(&b));
    assert_eq!(l1.len(), 6);
    assert_eq!(l1, l2, "loss sequences differ between identical runs");
    assert_ne!(
        l1, lb,
        "a different seed must give a different loss sequence"
    );

    let w1 = std::fs::read(a1.join("checkpoint.safetensors")).unwrap();
    let w2 = std::fs::read(a2.join("checkpoint.safetensors")).unwrap();
    let wb = std::fs::read(b.join("checkpoint.safetensors")).unwrap();
    assert_eq!(w1, w2, "final weights differ between identical runs");
    assert_ne!(w1, wb);
    for f in [
        "spec.ron",
        "spec.effective.ron",
        "provenance.json",
        "metrics.csv",
        "per_image.csv",
        "summary.json",
    ] {
        assert!(a1.join(f).is_file(), "{f} missing");
    }
}
