//! Acceptance (issue 6): `odm bench --json` runs at the small size and prints its fields. A smoke
//! run: no timing is asserted.

mod common;

#[test]
fn bench_small_prints_every_field() {
    let v = common::odm_json(&[
        "bench",
        "--size",
        "small",
        "--reps",
        "1",
        "--json",
        "--threads",
        "2",
    ]);
    assert_eq!(v.len(), 1, "exactly one line");
    let v = &v[0];
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
        "fp_step_ms",
        "inference_ms",
        "inference_w4a4_ms",
        "peak_rss_plain_mib",
        "peak_rss_mib",
    ] {
        let x = v[f]
            .as_f64()
            .unwrap_or_else(|| panic!("{f} missing in {v}"));
        assert!(x.is_finite() && x > 0.0, "{f} = {x}");
    }
    assert_eq!(v["size"], "Small");
    assert_eq!(v["conv_shape"], serde_json::json!([4, 16, 16, 16]));
}
