//! Acceptance (issue 6): `odm bench --json` runs at the small size and prints its fields. A smoke
//! run: no timing is asserted.

mod common;

use std::process::Command;

#[test]
fn bench_small_prints_every_field() {
    let out = Command::new(common::odm_bin())
        .args([
            "bench",
            "--size",
            "small",
            "--reps",
            "1",
            "--json",
            "--threads",
            "2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    for f in [
        "sgemm_gflops",
        "conv_fwd_bwd_ms",
        "conv_gflops",
        "conv_vs_sgemm_peak",
        "fake_quant_ms",
        "fake_quant_clip_only_ms",
        "plain_step_ms",
        "gated_step_ms",
        "gated_over_plain",
    ] {
        let x = v[f]
            .as_f64()
            .unwrap_or_else(|| panic!("{f} missing in {v}"));
        assert!(x.is_finite() && x > 0.0, "{f} = {x}");
    }
    assert_eq!(v["size"], "Small");
    assert_eq!(v["conv_shape"], serde_json::json!([4, 16, 16, 16]));
}
