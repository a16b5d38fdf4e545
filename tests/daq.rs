//! Acceptance (issue 14, DAQ): the normalise–quantize–denormalise of Cheeun/DAQ-pytorch
//! `src/model/quantize.py` on hand-made tensors, both of its branches (a tensor whose minimum is
//! 0, "after ReLU", and one whose minimum is not), σ quantized at 8 and 2 bits and not at all, the
//! weight quantizer at 2 and 4 bits; the straight-through gradient; DAQ's placement on the three
//! backbones; its cost overhead by hand; and a smoke run.
//!
//! The expected values were computed with PyTorch 2.15 (float32) by
//! `tests/fixtures/make_daq_values.py`, which re-implements the formulas of `quantize.py`
//! (`Quantization.forward`, `Conv2d_Q.forward`, commit 533efbd): torch.round ties to even,
//! torch.std is unbiased, the Gaussian steps are `gaussian_steps[bits − 1]` (2 bits: 1.596,
//! 4 bits: 0.586).

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::{Cpu, CpuTrain};
use odm::models::Model;
use odm::quant::cost::cost;
use odm::quant::daq::{act, gaussian_step, quantize_act, weight};
use odm::quant::QuantPlan;
use odm::spec::{EdsrSpec, ModelSpec, Placement, QuantOpts, QuantSpec, RdnSpec, SrResNetSpec};

fn t(v: &[f32], shape: [usize; 4]) -> Tensor<Cpu, 4> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

fn check(got: Tensor<Cpu, 4>, want: &[f32], what: &str) {
    let got = got.into_data().to_vec::<f32>().unwrap();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 2e-5 * (1.0 + w.abs()),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn gaussian_steps_are_daqs_table() {
    assert_eq!(gaussian_step(2), 1.596);
    assert_eq!(gaussian_step(3), 0.996);
    assert_eq!(gaussian_step(4), 0.586);
    assert_eq!(gaussian_step(8), 0.057);
}

#[test]
fn activation_quantizer_matches_daq_by_hand() {
    // Minimum 1 ≠ 0: mean 3, unbiased std √(14/3) = 2.1602, step 1.596·σ = 3.4477; the codes
    // round((x − μ)/s + ½) are 0, 0, 0 (0.5 ties to even) and 1: μ ∓ s/2.
    let x = t(&[1., 2., 3., 6.], [1, 1, 2, 2]);
    check(
        act(x, 2, 32),
        &[1.276123, 1.276123, 1.276123, 4.723877],
        "plain a2",
    );
    // Minimum 0, "after ReLU": n = 3 + 1, μ = 2, σ = √(30/4 − 4) = 1.8708, step 0.586·σ, a grid
    // offset by thr = 7.5·step and not clipped.
    let x = t(&[0., 1., 2., 5.], [1, 1, 2, 2]);
    check(
        act(x, 4, 32),
        &[0.0, 1.096306, 2.192611, 5.481528],
        "relu a4",
    );
    // Three channels: σ quantized per image over the channels at 8 and at 2 bits.
    let v = [1., 2., 3., 6., -1., 0.5, 4., 2., 10., 12., 9., 20.];
    check(
        act(t(&v, [1, 3, 2, 2]), 2, 8),
        &[
            1.23885, 1.23885, 1.23885, 4.76115, -0.311473, -0.311473, 3.061473, 3.061473, 8.748535,
            8.748535, 8.748535, 16.751465,
        ],
        "σ at 8 bits, a2",
    );
    check(
        act(t(&v, [1, 3, 2, 2]), 4, 2),
        &[
            1.430243, 2.476748, 2.476748, 5.616261, -1.241261, 0.851748, 3.991261, 1.898252,
            8.877043, 11.459015, 8.877043, 19.204927,
        ],
        "σ at 2 bits, a4",
    );
}

#[test]
fn weight_quantizer_matches_daq_by_hand() {
    let w = t(&[0.1, -0.2, 0.3, 0.05, -0.4, 0.25], [1, 1, 2, 3]);
    check(
        weight(w.clone(), 2),
        &[0.215115, -0.215115, 0.215115, 0.215115, -0.215115, 0.215115],
        "w2",
    );
    check(
        weight(w, 4),
        &[0.078983, -0.23695, 0.23695, 0.078983, -0.394916, 0.23695],
        "w4",
    );
}

#[test]
fn gradients_are_straight_through() {
    let d = Default::default();
    let x = Tensor::<CpuTrain, 4>::from_data(
        TensorData::new(vec![1f32, 2., 3., 6., -1., 0.5, 4., 2.], [1, 2, 2, 2]),
        &d,
    )
    .require_grad();
    let r = Tensor::<CpuTrain, 4>::from_data(
        TensorData::new(vec![0.3f32, -1., 2., 0.5, 1., 1., -2., 0.25], [1, 2, 2, 2]),
        &d,
    );
    let g = (act(x.clone(), 2, 8) * r.clone()).sum().backward();
    let gx = x.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap();
    assert_eq!(gx, r.clone().into_data().to_vec::<f32>().unwrap());
    let w = x.clone().detach().require_grad();
    let g = (weight(w.clone(), 4) * r.clone()).sum().backward();
    let gw = w.grad(&g).unwrap().into_data().to_vec::<f32>().unwrap();
    assert_eq!(gw, r.into_data().to_vec::<f32>().unwrap());
}

#[test]
fn placement_per_backbone() {
    let count = |m: &ModelSpec, p: Placement| {
        let pts = Model::from_spec(m, 4).quant_points(p);
        (
            pts.iter().filter(|q| q.act).count(),
            pts.iter().filter(|q| q.weight).count(),
        )
    };
    // EDSR-baseline and SRResNet: both convs of the 16 blocks, inputs and weights.
    assert_eq!(
        count(&ModelSpec::Edsr(EdsrSpec::default()), Placement::Daq),
        (32, 32)
    );
    let srr = ModelSpec::SrResNet(SrResNetSpec::default());
    assert_eq!(count(&srr, Placement::Daq), (32, 32));
    // RDN (16 blocks of 8 dense convs): the dense convs only; conv-input placement adds the 16
    // LFF and the 2 GFF convs.
    let rdn = ModelSpec::Rdn(RdnSpec::default());
    assert_eq!(count(&rdn, Placement::Daq), (128, 128));
    assert_eq!(count(&rdn, Placement::ConvInput), (146, 146));
    assert_eq!(
        QuantSpec::Daq(QuantOpts::bits(2, 2)).placement(),
        Placement::Daq
    );
}

/// EDSR-baseline ×4 at a 320×180 LR input: 32 quantized inputs of 64 channels at LR resolution,
/// 4 FP32 operations per element at 32×32 BitOPs: 32·64·57 600·4·1024 = 483 183 820 800 ≈ 0.48 T
/// BitOPs beyond the static W2A2 cost (the ODM paper quotes about 0.5 T for DAQ).
#[test]
fn cost_overhead_by_hand() {
    let m = Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), 4);
    let daq = QuantPlan::from_spec(&QuantSpec::Daq(QuantOpts::bits(2, 2)), &m);
    let minmax = QuantPlan::from_spec(&QuantSpec::MinMax(QuantOpts::bits(2, 2)), &m);
    let (a, b) = (cost(&m, &daq, 320, 180), cost(&m, &minmax, 320, 180));
    assert_eq!(a.total_bitops - b.total_bitops, 483_183_820_800);
    let ops: u128 = a.layers.iter().map(|l| l.dynamic_ops).sum();
    assert_eq!(ops, 32 * 64 * 320 * 180 * 4);
    assert_eq!(
        a.total_params, b.total_params,
        "DAQ stores no extra parameters"
    );
}

#[test]
fn a_daq_run_trains_and_bad_options_are_refused() {
    let tmp = common::tempdir();
    let spec = common::toy_spec("daq", 1, 3, "quant: Daq(w_bits: 4, a_bits: 4),");
    let f = common::write(tmp.path(), "daq.ron", &spec);
    let out = tmp.path().join("results");
    common::odm_ok(&[
        "run",
        f.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let s = odm::record::Summary::read(&dir).unwrap();
    assert!(s.eval[0].psnr_y.is_finite() && s.eval[0].psnr_y > 10.0);
    let map = std::fs::read_to_string(dir.join("quant_map.txt")).unwrap();
    assert!(map.contains("Daq σ8"), "{map}");
    for (extra, field) in [
        (
            "quant: Daq(w_bits: 2, a_bits: 2), regularizer: Mismatch(lambda: 1e-5),",
            "regularizer",
        ),
        (
            "quant: MinMax(w_bits: 2, a_bits: 2, sigma_bits: 8),",
            "quant.sigma_bits",
        ),
        (
            "quant: Daq(w_bits: 2, a_bits: 2, sigma_bits: 12),",
            "quant.sigma_bits",
        ),
        (
            "quant: Pams(w_bits: 2, a_bits: 2, strict: true),",
            "quant.strict",
        ),
    ] {
        common::assert_refused(tmp.path(), extra, field);
    }
}

/// The golden fixture of `tests/fixtures/make_daq_values.py` (seeded random inputs, both
/// branches, 2/3/4 bits, σ at 8 bits and unquantized; weights at 2/3/4 bits) within 1e-6 of
/// each case's largest magnitude.
#[test]
fn matches_the_pytorch_golden_fixture() {
    let p = common::repo().join("tests/fixtures/daq/golden.json");
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    let v = |k: &serde_json::Value| -> Vec<f32> {
        k.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let dims = |k: &serde_json::Value| -> [usize; 4] {
        let d: Vec<usize> = k
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [d[0], d[1], d[2], d[3]]
    };
    let close = |got: Tensor<Cpu, 4>, want: Vec<f32>, what: String| {
        let got = got.into_data().to_vec::<f32>().unwrap();
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 * scale.max(1.0),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    };
    let shape = dims(&fx["shape"]);
    for c in fx["activations"].as_array().unwrap() {
        let input = c["input"].as_str().unwrap();
        let (bits, qq) = (
            c["bits"].as_u64().unwrap() as u32,
            c["sigma_bits"].as_u64().unwrap() as u32,
        );
        let got = act(t(&v(&fx[input]), shape), bits, qq);
        close(got, v(&c["q"]), format!("{input} a{bits} σ{qq}"));
    }
    let ws = dims(&fx["weight_shape"]);
    for c in fx["weights"].as_array().unwrap() {
        let bits = c["bits"].as_u64().unwrap() as u32;
        close(
            weight(t(&v(&fx["weight"]), ws), bits),
            v(&c["q"]),
            format!("w{bits}"),
        );
    }
}

/// DAQ strict (issue 27, part 6) on one after-ReLU channel of 256 pixels: a ramp 0, 1, …, 254
/// and one outlier 800. By hand (module documentation of `quant::daq`): n = #(x > 0) + 1 = 256,
/// μ = Σx/n = (32 385 + 800)/256, σ = √(Σx²/n − μ²) with Σx² = 254·255·509/6 + 800², step
/// s = g(b)·σ; as DAQ's code runs, q = (round((x − thr)/s + ½) − ½)·s + thr with
/// thr = (2^b/2 − ½)·s, i.e. q = round(x/s)·s, unbounded (the outlier lands on 6s at 2 bits);
/// strict clips the code to 2^b − 1: q = min(round(x/s), 2^b − 1)·s. At 2 bits the strict
/// outputs are exactly the 4 levels {0, s, 2s, 3s}; as the code runs there are 4 different
/// ones, {0, s, 2s, 6s}. At 3 bits every strict output is one of the 8 levels {0, …, 7s}.
#[test]
fn strict_daq_has_exactly_the_b_bit_grid() {
    let mut v: Vec<f32> = (0..255).map(|i| i as f32).collect();
    v.push(800.0);
    let n = 256.0;
    let sum: f64 = 254.0 * 255.0 / 2.0 + 800.0;
    let sum2: f64 = 254.0 * 255.0 * 509.0 / 6.0 + 640_000.0;
    let mu = sum / n;
    let sigma = (sum2 / n - mu * mu).sqrt();
    let distinct = |q: &[f32]| {
        let mut d: Vec<f32> = q.to_vec();
        d.sort_by(f32::total_cmp);
        d.dedup_by(|a, b| (*a - *b).abs() <= 1e-3 * b.abs().max(1.0));
        d
    };
    for bits in [2u32, 3] {
        let s = gaussian_step(bits) * sigma;
        let top = ((1u32 << bits) - 1) as f64;
        let x = t(&v, [1, 1, 16, 16]);
        let strict: Vec<f32> = quantize_act(x.clone(), bits, 32, true)
            .into_data()
            .to_vec()
            .unwrap();
        let daq: Vec<f32> = quantize_act(x, bits, 32, false)
            .into_data()
            .to_vec()
            .unwrap();
        for (i, &xi) in v.iter().enumerate() {
            let code = (xi as f64 / s).round();
            let (want_s, want_d) = ((code.min(top) * s) as f32, (code * s) as f32);
            assert!(
                (strict[i] - want_s).abs() <= 1e-4 * want_s.max(1.0),
                "{bits} bits strict, x = {xi}: {} vs {want_s}",
                strict[i]
            );
            assert!(
                (daq[i] - want_d).abs() <= 1e-4 * want_d.max(1.0),
                "{bits} bits as the code runs, x = {xi}: {} vs {want_d}",
                daq[i]
            );
        }
        if bits == 2 {
            let grid: Vec<f32> = (0..4).map(|k| (k as f64 * s) as f32).collect();
            let got = distinct(&strict);
            assert_eq!(got.len(), 4, "{got:?}");
            for (g, w) in got.iter().zip(&grid) {
                assert!((g - w).abs() <= 1e-4 * w.max(1.0), "{got:?} vs {grid:?}");
            }
            let unclipped = distinct(&daq);
            assert!(
                (unclipped[3] - (6.0 * s) as f32).abs() <= 1e-3 * unclipped[3],
                "{unclipped:?}"
            );
        }
    }
}

/// A DAQ strict run is labelled as such (quant map, report label), a plain DAQ run is not, and
/// a DAQ spec without `strict` serializes as before (no `strict` field: earlier hashes hold).
#[test]
fn strict_is_labelled_and_leaves_plain_daq_hashes_alone() {
    let plain = QuantSpec::Daq(QuantOpts::bits(2, 2));
    let mut o = QuantOpts::bits(2, 2);
    o.strict = true;
    let strict = QuantSpec::Daq(o);
    assert_eq!(plain.label(), "DAQ");
    assert_eq!(strict.label(), "DAQ strict");
    assert!(!serde_json::to_string(&plain).unwrap().contains("strict"));
    assert!(serde_json::to_string(&strict)
        .unwrap()
        .contains("\"strict\":true"));
    let mut spec = odm::spec::load::parse_str("toy", &common::toy_spec("s", 1, 2, "")).unwrap();
    spec.quant = strict;
    assert_eq!(odm::report::runs::method(&spec).0, "DAQ strict");
    spec.quant = plain;
    assert_eq!(odm::report::runs::method(&spec).0, "DAQ");

    let tmp = common::tempdir();
    let dir = common::toy_run(
        tmp.path(),
        "s",
        2,
        "quant: Daq(w_bits: 2, a_bits: 2, strict: true),",
    );
    let map = std::fs::read_to_string(dir.join("quant_map.txt")).unwrap();
    assert!(map.contains("Daq σ8 strict"), "{map}");
}
