//! Acceptance (quantizer, placement, cost): properties of the fake quantizer checked against
//! values computed independently (level counts, idempotence, nearest level, STE gradient, finite
//! differences of the clip for the bounds), the EDSR-baseline placement map, and a hand-checked
//! MAC total for `odm cost`.

mod common;

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::models::Model;
use odm::quant::cost::cost;
use odm::quant::{fake_quant, QForm, QuantPlan, Quantizer};
use odm::spec::{BoundGrad, EdsrSpec, ModelSpec, QuantOpts, QuantSpec};

type AD = Autodiff<Cpu>;

fn t1<B: burn::tensor::backend::Backend>(v: &[f32]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn host<B: burn::tensor::backend::Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    t.to_data().to_vec::<f32>().unwrap()
}

/// The AdaBM (affine) quantizer at `bits`, with the given bound gradient.
fn affine(bits: u32, grad: BoundGrad) -> Quantizer {
    Quantizer {
        bits,
        form: QForm::Affine,
        grad,
        split_ties: false,
    }
}

fn q(x: &[f32], l: f32, u: f32, bits: u32) -> Vec<f32> {
    let n = x.len();
    host(fake_quant(
        t1::<Cpu>(x),
        t1::<Cpu>(&[l]).expand([n]),
        t1::<Cpu>(&[u]).expand([n]),
        affine(bits, BoundGrad::Full),
    ))
}

fn dense(lo: f32, hi: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| lo + (hi - lo) * i as f32 / (n - 1) as f32)
        .collect()
}

#[test]
fn exactly_two_to_the_b_levels() {
    for bits in [2u32, 3, 4, 8] {
        let out = q(&dense(-2.0, 3.0, 20001), -1.0, 2.0, bits);
        let mut levels: Vec<i64> = out.iter().map(|v| (v * 1e5).round() as i64).collect();
        levels.sort();
        levels.dedup();
        assert_eq!(levels.len(), 1 << bits, "{bits} bits");
    }
}

#[test]
fn idempotent_and_nearest_level() {
    let (l, u) = (-0.7f32, 1.3f32);
    for bits in [2u32, 3, 4, 8] {
        let s = (u - l) / ((1u32 << bits) - 1) as f32;
        let x = dense(-1.5, 2.0, 3001);
        let y = q(&x, l, u, bits);
        let yy = q(&y, l, u, bits);
        for (a, b) in y.iter().zip(&yy) {
            assert!((a - b).abs() < 1e-6, "q(q(x)) != q(x): {a} {b}");
        }
        for (xi, yi) in x.iter().zip(&y) {
            let k = (yi - l) / s;
            assert!((k - k.round()).abs() < 1e-4, "{yi} is not a level");
            if *xi >= l && *xi <= u {
                // The nearest level: distance at most half a step, and no level is closer.
                assert!(
                    (yi - xi).abs() <= s / 2.0 + 1e-5,
                    "x {xi} -> {yi}, step {s}"
                );
            } else {
                let edge = if *xi < l { l } else { u };
                assert!((yi - edge).abs() < 1e-5, "outside values clip to the bound");
            }
        }
    }
}

#[test]
fn ste_gradient_is_one_inside_and_zero_outside() {
    let x: Vec<f32> = vec![-2.0, -1.01, -0.5, 0.0, 0.33, 1.99, 2.01, 5.0];
    let xt = t1::<AD>(&x).require_grad();
    let n = x.len();
    let y = fake_quant(
        xt.clone(),
        t1::<AD>(&[-1.0]).expand([n]),
        t1::<AD>(&[2.0]).expand([n]),
        affine(2, BoundGrad::Full),
    );
    let g = y.sum().backward();
    let gx = host(xt.grad(&g).unwrap());
    let expected: Vec<f32> = x
        .iter()
        .map(|&v| if (-1.0..=2.0).contains(&v) { 1.0 } else { 0.0 })
        .collect();
    assert_eq!(gx, expected);
}

#[test]
fn clip_only_bound_gradients_match_finite_differences_of_the_clip() {
    // L = Σ w_i · q(x_i); with `ClipOnly` the bounds see clip(x, l, u) only, so dL/du and dL/dl
    // must equal the finite differences of Σ w_i · clip(x_i, l, u), computed on the host in f64.
    let x: Vec<f32> = (0..200)
        .map(|i| -3.0 + 6.0 * ((i * 37 % 200) as f32 + 0.5) / 200.0)
        .collect();
    let w: Vec<f32> = (0..200)
        .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
        .collect();
    let (l0, u0) = (-1.234f32, 1.567f32);
    let lt = t1::<AD>(&[l0]).require_grad();
    let ut = t1::<AD>(&[u0]).require_grad();
    let n = x.len();
    let y = fake_quant(
        t1::<AD>(&x),
        lt.clone().expand([n]),
        ut.clone().expand([n]),
        affine(3, BoundGrad::ClipOnly),
    );
    let g = (y * t1::<AD>(&w)).sum().backward();
    let gl = host(lt.grad(&g).unwrap())[0] as f64;
    let gu = host(ut.grad(&g).unwrap())[0] as f64;
    let f = |l: f64, u: f64| -> f64 {
        x.iter()
            .zip(&w)
            .map(|(&xi, &wi)| wi as f64 * (xi as f64).clamp(l, u))
            .sum()
    };
    let h = 1e-4;
    let fd_l = (f(l0 as f64 + h, u0 as f64) - f(l0 as f64 - h, u0 as f64)) / (2.0 * h);
    let fd_u = (f(l0 as f64, u0 as f64 + h) - f(l0 as f64, u0 as f64 - h)) / (2.0 * h);
    assert!(
        (gl - fd_l).abs() < 1e-4,
        "dL/dl {gl} vs finite difference {fd_l}"
    );
    assert!(
        (gu - fd_u).abs() < 1e-4,
        "dL/du {gu} vs finite difference {fd_u}"
    );
    assert!(
        gl.abs() > 0.1 && gu.abs() > 0.1,
        "test must exercise both bounds"
    );
}

fn opts(bits: u32, head_tail: bool) -> QuantOpts {
    QuantOpts {
        calib_batches: 1,
        head_tail_8bit: head_tail,
        ..QuantOpts::bits(bits, bits)
    }
}

#[test]
fn full_bound_gradient_by_hand() {
    // One element inside [l, u] = [0, 3] at 2 bits (levels 0, 1, 2, 3): x = 1.2 → q = 1.
    // Full: ∂q/∂u = (q − x)/(u − l) = −0.2/3, ∂q/∂l = −(q − x)/(u − l) = +0.2/3, ∂q/∂x = 1.
    // One element above u (x = 4): ∂q/∂u = 1 + (3 − 3)/3 = 1. Sum with weights 1 and 10.
    let xt = t1::<AD>(&[1.2, 4.0]).require_grad();
    let lt = t1::<AD>(&[0.0]).require_grad();
    let ut = t1::<AD>(&[3.0]).require_grad();
    let y = fake_quant(
        xt.clone(),
        lt.clone().expand([2]),
        ut.clone().expand([2]),
        affine(2, BoundGrad::Full),
    );
    assert_eq!(host(y.clone().inner()), vec![1.0, 3.0]);
    let g = (y * t1::<AD>(&[1.0, 10.0])).sum().backward();
    let gu = host(ut.grad(&g).unwrap())[0];
    let gl = host(lt.grad(&g).unwrap())[0];
    assert!((gu - (-0.2 / 3.0 + 10.0)).abs() < 1e-6, "{gu}");
    assert!((gl - 0.2 / 3.0).abs() < 1e-6, "{gl}");
    assert_eq!(host(xt.grad(&g).unwrap()), vec![1.0, 0.0]);
}

fn edsr_baseline() -> Model {
    Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), 4)
}

#[test]
fn edsr_baseline_conv_input_placement_is_the_32_block_convs() {
    // DAQ, AdaBM and ODM: the 32 block convs, weights and inputs.
    let model = edsr_baseline();
    for spec in [
        QuantSpec::MinMax(opts(4, false)),
        QuantSpec::Odm(opts(2, false)),
    ] {
        let plan = QuantPlan::from_spec(&spec, &model);
        let names: Vec<&str> = plan.layers.iter().map(|(n, _)| n.as_str()).collect();
        let expected: Vec<String> = (0..16)
            .flat_map(|i| [format!("body.{i}.conv1"), format!("body.{i}.conv2")])
            .collect();
        assert_eq!(
            names,
            expected.iter().map(|s| s.as_str()).collect::<Vec<_>>()
        );
        assert_eq!((plan.act_count(), plan.weight_count()), (32, 32));
        let table = plan.table(&model, &spec);
        assert!(
            table.contains("32 quantized activations, 32 quantized weight tensors"),
            "{table}"
        );
        assert!(table.contains("ConvInput placement"), "{table}");
        for fp in ["head", "body_end", "upsample.0", "tail"] {
            assert!(
                table.lines().any(|l| l.starts_with(fp) && l.contains("FP")),
                "{fp}: {table}"
            );
        }
    }
    let plan8 = QuantPlan::from_spec(&QuantSpec::MinMax(opts(2, true)), &model);
    assert_eq!(plan8.layers.len(), 34);
    assert_eq!(plan8.layers[0].0, "head");
    assert_eq!(plan8.layers[33].0, "tail");
    assert_eq!(plan8.layer("head").unwrap().w_bits, 8);
    assert_eq!(plan8.layer("tail").unwrap().a_bits, 8);
    assert_eq!(plan8.layer("body.3.conv2").unwrap().w_bits, 2);
    assert!(QuantPlan::from_spec(&QuantSpec::Fp, &model).is_fp());
}

#[test]
fn edsr_baseline_pams_and_ddtb_placement_is_three_activations_per_block() {
    // colorjam/PAMS and zysxmu/DDTB `model/edsr.py`: per block quant_act1 on the shortcut,
    // quant_act2 after the ReLU (the second conv's input), quant_act3 on the block output; the
    // first conv sees the unquantized block input. 16 blocks: 48 activations, 32 weights.
    let model = edsr_baseline();
    for spec in [
        QuantSpec::Pams(opts(4, false)),
        QuantSpec::DdtbStatic(opts(2, false)),
    ] {
        let plan = QuantPlan::from_spec(&spec, &model);
        assert_eq!((plan.act_count(), plan.weight_count()), (48, 32));
        let first: Vec<(&str, bool, bool)> = plan.layers[..4]
            .iter()
            .map(|(n, l)| (n.as_str(), l.has_weight(), l.has_act()))
            .collect();
        assert_eq!(
            first,
            vec![
                ("body.0.skip", false, true),
                ("body.0.conv1", true, false),
                ("body.0.conv2", true, true),
                ("body.0.res", false, true),
            ]
        );
        let table = plan.table(&model, &spec);
        assert!(
            table.contains("48 quantized activations, 32 quantized weight tensors"),
            "{table}"
        );
        assert!(table.contains("Block placement"), "{table}");
        // Printed in forward order: head, then block 0's shortcut, convs and output.
        let rows: Vec<&str> = table
            .lines()
            .skip(1)
            .take(6)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            rows,
            vec![
                "head",
                "body.0.skip",
                "body.0.conv1",
                "body.0.conv2",
                "body.0.res",
                "body.1.skip"
            ]
        );
    }
    let pams = QuantPlan::from_spec(&QuantSpec::Pams(opts(4, false)), &model);
    assert_eq!(pams.layer("body.0.skip").unwrap().form, QForm::SymZero);
    let ddtb = QuantPlan::from_spec(&QuantSpec::DdtbStatic(opts(4, false)), &model);
    assert_eq!(ddtb.layer("body.0.res").unwrap().form, QForm::ZeroPoint);
}

/// EDSR-baseline ×4 at an LR input of 320×180 (a 720p output), by hand:
/// LR pixels P = 320·180 = 57 600; a 64→64 3×3 conv costs P·64·64·9 = 2 123 366 400 MACs.
/// head 3→64: P·64·3·9 = 99 532 800; body: 32 block convs + body_end = 33 · 2 123 366 400
/// = 70 071 091 200; upsample.0 (64→256 at LR): P·256·64·9 = 8 493 465 600; upsample.1 (at 2×:
/// 640·360 = 230 400 px): 230 400·256·64·9 = 33 973 862 400; tail (3 outputs at 1280·720 =
/// 921 600 px): 921 600·3·64·9 = 1 592 524 800. Total = 114 230 476 800 MACs.
/// At W2A2 the 32 block convs (67 947 724 800 MACs) cost ×4 BitOPs and the rest
/// (46 282 752 000 MACs) ×1024, so FP/quantized BitOPs = 114 230 476 800·1024 /
/// (67 947 724 800·4 + 46 282 752 000·1024).
#[test]
fn cost_of_edsr_baseline_x4_by_hand() {
    let model = Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), 4);
    let fp = cost(&model, &QuantPlan::fp(), 320, 180);
    assert_eq!(fp.total_macs, 114_230_476_800);
    assert_eq!(fp.total_bitops, 114_230_476_800u128 * 1024);
    assert_eq!(
        fp.layers
            .iter()
            .find(|l| l.layer == "upsample.1")
            .unwrap()
            .macs,
        33_973_862_400
    );
    let plan = QuantPlan::from_spec(&QuantSpec::MinMax(opts(2, false)), &model);
    let q = cost(&model, &plan, 320, 180);
    let quant_macs: u64 = 32 * 2_123_366_400;
    assert_eq!(quant_macs, 67_947_724_800);
    let expected_bitops =
        quant_macs as u128 * 4 + (114_230_476_800u128 - quant_macs as u128) * 1024;
    assert_eq!(q.total_bitops, expected_bitops);
    let ratio = (114_230_476_800f64 * 1024.0) / expected_bitops as f64;
    assert!((q.bitops_ratio - ratio).abs() < 1e-12);
    assert!((ratio - 2.4541).abs() < 1e-3, "{ratio}");
    // Storage: 32 block convs' weights (36 864 each) at 2 bits instead of 32.
    let saved_bits = 32u64 * 36_864 * 30;
    assert_eq!(fp.total_storage_bits - q.total_storage_bits, saved_bits);
    // PAMS/DDTB placement: the first conv of each block reads the unquantized block input, so
    // its 16 convs cost 2·32 bits per MAC; the second conv 2·2.
    let pams = QuantPlan::from_spec(&QuantSpec::Pams(opts(2, false)), &model);
    let qp = cost(&model, &pams, 320, 180);
    let half: u128 = 16 * 2_123_366_400;
    assert_eq!(
        qp.total_bitops,
        half * 64 + half * 4 + (114_230_476_800u128 - 2 * half) * 1024
    );
}

#[test]
fn rdn_and_srresnet_placement_maps_follow_their_sources() {
    use odm::spec::{RdnSpec, SrResNetSpec};
    // RDN (D = 16, C = 8), AdaBM (`MinMax`/`Odm`): the 8 dense convs and the LFF of every block
    // plus both GFF convs, weights and inputs: 16·9 + 2 = 146.
    let rdn = Model::from_spec(&ModelSpec::Rdn(RdnSpec::default()), 4);
    let spec = QuantSpec::MinMax(opts(3, false));
    let plan = QuantPlan::from_spec(&spec, &rdn);
    let mut expected: Vec<String> = (0..16)
        .flat_map(|i| {
            (0..8)
                .map(move |c| format!("rdb.{i}.conv.{c}"))
                .chain([format!("rdb.{i}.lff")])
        })
        .collect();
    expected.extend(["gff.0".to_string(), "gff.1".to_string()]);
    assert_eq!(
        plan.layers
            .iter()
            .map(|(n, _)| n.clone())
            .collect::<Vec<_>>(),
        expected
    );
    assert!(plan
        .table(&rdn, &spec)
        .contains("146 quantized activations, 146 quantized weight tensors"));
    for f in ["sfe1", "sfe2", "upsample.0", "tail"] {
        assert!(plan.layer(f).is_none(), "{f} stays FP");
    }
    // PAMS/DDTB: per block the input (act1), the dense inputs after the first, the LFF input
    // (9 activations) and 9 weight tensors; GFF 1×1 weights and input, GFF 3×3 weights only.
    for spec in [
        QuantSpec::Pams(opts(4, false)),
        QuantSpec::DdtbStatic(opts(2, false)),
    ] {
        let plan = QuantPlan::from_spec(&spec, &rdn);
        assert_eq!(
            (plan.act_count(), plan.weight_count()),
            (16 * 9 + 1, 16 * 9 + 2)
        );
        let l = |n: &str| plan.layer(n).map(|l| (l.has_weight(), l.has_act()));
        assert_eq!(l("rdb.0.in"), Some((false, true)));
        assert_eq!(l("rdb.0.conv.0"), Some((true, false)));
        assert_eq!(l("rdb.0.conv.1"), Some((true, true)));
        assert_eq!(l("gff.1"), Some((true, false)));
    }
    // DDTB clips RDN weights at min–max (its `QuantConv2d_asym`).
    let ddtb = QuantPlan::from_spec(&QuantSpec::DdtbStatic(opts(2, false)), &rdn);
    assert_eq!(
        ddtb.layer("rdb.3.lff").unwrap().weights,
        odm::quant::WeightQ::Percentile {
            low: 0.0,
            high: 100.0
        }
    );
    // SRResNet: the two 3×3 convs of each of the 16 blocks, inputs and weights, under every
    // preset (DDTB's `bnsrresnet.py` has no shortcut quantizer); the 9×9 head and tail stay FP.
    let srr = Model::from_spec(&ModelSpec::SrResNet(SrResNetSpec::default()), 4);
    for spec in [
        QuantSpec::MinMax(opts(4, false)),
        QuantSpec::DdtbStatic(opts(4, false)),
    ] {
        let plan = QuantPlan::from_spec(&spec, &srr);
        assert_eq!((plan.act_count(), plan.weight_count()), (32, 32));
        assert!(plan.layer("head").is_none() && plan.layer("body_end").is_none());
        assert_eq!(plan.layer("body.15.conv2").unwrap().channels, 64);
    }
}

/// `odm cost` reads no data and no weights: a spec whose training folder and initial weights do
/// not exist (as on a machine without the datasets) still gets its cost, the hand-derived W2A2
/// figure of [`cost_of_edsr_baseline_x4_by_hand`].
#[test]
fn cost_needs_no_data_or_weights() {
    let tmp = common::tempdir();
    let spec = r#"(
    name: "cost-only",
    seed: 1,
    scale: 4,
    model: Edsr(),
    init_from: Checkpoint("/nonexistent/fp.safetensors"),
    quant: MinMax(w_bits: 2, a_bits: 2),
    data: (train: ["/nonexistent/DIV2K"], eval: ["/nonexistent/Set5"]),
    optim: Adam(lr: 1e-4),
    schedule: (iterations: 10),
)"#;
    let f = common::write(tmp.path(), "cost.ron", spec);
    let v = common::odm_json(&["cost".as_ref(), f.as_os_str(), "--json".as_ref()]);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["run"], "cost-only");
    let quant_macs: u128 = 67_947_724_800;
    let want = quant_macs * 4 + (114_230_476_800u128 - quant_macs) * 1024;
    assert_eq!(v[0]["cost"]["total_bitops"].as_u64().unwrap() as u128, want);
    // `odm run` still refuses it, naming the missing folder.
    let out = std::process::Command::new(common::odm_bin())
        .arg("run")
        .arg(&f)
        .arg("--out")
        .arg(tmp.path().join("results"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
}
