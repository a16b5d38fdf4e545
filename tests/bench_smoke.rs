//! Acceptance (issue 6): `odm bench --json` runs at the small size and prints its fields. A smoke
//! run: no timing is asserted.

mod common;

#[test]
fn bench_small_prints_every_field() {
    let v = small_bench(&[]);
    assert_eq!(v.len(), 1, "exactly one line");
    let v = &v[0];
    for f in [
        "sgemm_gflops",
        "conv_fwd_bwd_ms",
        "conv_gflops",
        "conv_vs_sgemm_peak",
        "conv_kernels_ms",
        "conv_kernels_vs_sgemm_peak",
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
        "step_gflop",
        "replay_floor_gflop",
        "fp_step_efficiency",
        "plain_step_efficiency",
        "gated_step_efficiency",
        "eval_ms",
        "eval_gflop",
        "eval_efficiency",
    ] {
        positive(v, f);
    }
    assert!(v["flops_formula"].as_str().unwrap().contains("MACs"), "{v}");
    let path = v["kernel_path"].as_str().unwrap();
    assert!(["AVX-512", "AVX2", "scalar"].contains(&path), "{path}");
    // The small model: head 3→16, 9 body convs 16→16, upsampler 16→64 at ×1 and ×2, tail
    // 16→3 at ×4, all 3×3, batch 4 of 16×16 LR patches (see bench::flops).
    let px = 4.0 * 16.0 * 16.0;
    let macs = |n: f64, ci: f64, co: f64, res: f64| n * px * res * res * ci * co * 9.0;
    let want = 4.0 * macs(1.0, 3.0, 16.0, 1.0)
        + 6.0
            * (macs(9.0, 16.0, 16.0, 1.0)
                + macs(1.0, 16.0, 64.0, 1.0)
                + macs(1.0, 16.0, 64.0, 2.0)
                + macs(1.0, 16.0, 3.0, 4.0));
    let got = v["step_gflop"].as_f64().unwrap() * 1e9;
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    assert_eq!(v["size"], "Small");
    assert_eq!(v["conv_shape"], serde_json::json!([4, 16, 16, 16]));
}

/// `--only inference` prints the inference fields (with the integer path's split and the VNNI
/// peak where measured) and none of the training ones; an unknown part is a one-line error.
#[test]
fn bench_only_inference_and_bad_part() {
    let v = small_bench(&["--only", "inference"]);
    let v = &v[0];
    for f in [
        "inference_ms",
        "inference_host_fp_ms",
        "inference_int_w4a4_ms",
        "inference_int_w2a2_ms",
        "int_conv_gmacs",
        "eval_ms",
        "eval_w4a4_ms",
        "eval_w4a4_per_forward_ms",
    ] {
        positive(v, f);
    }
    let bound = v["int_split"]["bound_vs_fp"].as_f64().unwrap();
    assert!(bound.is_finite() && bound > 0.0, "{v}");
    for f in ["sgemm_gflops", "plain_step_ms", "peak_rss_plain_mib"] {
        assert!(v.get(f).is_none(), "{f} present with --only inference");
    }
    common::odm_user_error(&["bench", "--only", "everything"], "--only");
}

/// Field `f` of `v` is a finite positive number.
fn positive(v: &serde_json::Value, f: &str) {
    let x = v[f]
        .as_f64()
        .unwrap_or_else(|| panic!("{f} missing in {v}"));
    assert!(x.is_finite() && x > 0.0, "{f} = {x}");
}

/// `odm bench` at the small size, one repetition, 2 threads, JSON, plus `extra`.
fn small_bench(extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "bench",
        "--size",
        "small",
        "--reps",
        "1",
        "--json",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    common::odm_json(&args)
}
