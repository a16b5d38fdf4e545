//! Acceptance (issue 14, DDTB): the gate's quantizers on hand-made values, its output shape and
//! range, the identity gate, the ranking that chooses the gated points, the placement and gate
//! counts on EDSR-baseline, RDN and SRResNet, the cost by hand, a golden fixture of the gate
//! (forward, BatchNorm statistics and gradients), and a run with bad options refused.
//!
//! The golden values were computed with PyTorch 2.15 (float32) by
//! `tests/fixtures/make_ddtb_values.py`, which re-implements zysxmu/DDTB@e21403d
//! `model/quant_ops.py` (`quant_activation`, `quant_weight`, `atten_c`, the dynamic branch of
//! `DDTB_quant_act_asym_dynamic_quantized.forward`) and the stage-one loss of
//! `main_limitrange_incremental.py`.

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::{Cpu, CpuTrain};
use odm::models::params::host_tensor;
use odm::models::{Model, Params};
use odm::quant::cost::{cost_with, mark_widest};
use odm::quant::ddtb::{gate, gated_quant, logit_loss, quant_minmax, quant_weight, Ranking};
use odm::quant::{fake_quant_act, LayerQuant, QForm, QuantPlan, WeightQ};
use odm::spec::{BoundGrad, EdsrSpec, ModelSpec, QuantOpts, QuantSpec, RdnSpec, SrResNetSpec};

type J = serde_json::Value;

fn floats(v: &J) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn lq(bits: u32, channels: usize) -> LayerQuant {
    LayerQuant {
        w_bits: 32,
        a_bits: bits,
        form: QForm::ZeroPoint,
        weights: WeightQ::Percentile {
            low: 1.0,
            high: 99.0,
        },
        bound_grad: BoundGrad::Full,
        per_channel: false,
        channels,
        scale: false,
        shift: false,
        dynamic: true,
        active: true,
    }
}

/// Gate parameters of a point `pt` (C input channels) and its bounds, from a fixture.
fn gate_params(fx: &J, c: usize) -> Params<Cpu> {
    let d = Default::default();
    let mut p = Params::<Cpu>::from_parts(vec![], vec![], vec![]);
    let mut put = |n: &str, shape: Vec<usize>, v: Vec<f32>| {
        p.push(n, shape, host_tensor(&v, &d), 1.0);
    };
    put(
        "pt.act.lo",
        vec![1],
        vec![fx["alpha_lower"].as_f64().unwrap() as f32],
    );
    put(
        "pt.act.hi",
        vec![1],
        vec![fx["alpha_upper"].as_f64().unwrap() as f32],
    );
    put(
        "pt.gate.conv1.weight",
        vec![32, c, 1, 1],
        floats(&fx["conv1"]),
    );
    for part in ["weight", "bias", "running_mean", "running_var"] {
        put(
            &format!("pt.gate.bn.{part}"),
            vec![32],
            floats(&fx[format!("bn_{part}").as_str()]),
        );
    }
    put(
        "pt.gate.conv2.weight",
        vec![2, 32, 1, 1],
        floats(&fx["conv2"]),
    );
    p
}

/// Within 1e-6 of the case's largest magnitude (at least 1).
fn close(got: Vec<f32>, want: Vec<f32>, what: &str) {
    let scale = want.iter().fold(1f32, |m, x| m.max(x.abs()));
    close_to(got, want, scale, what);
}

/// Within 1e-6 · `scale`. A parameter gradient is a sum over elements: its scale is the sum of
/// the magnitudes summed, as in `tests/quant_fixtures.rs`.
fn close_to(got: Vec<f32>, want: Vec<f32>, scale: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let tol = 1e-6 * (w.abs() + scale);
        assert!(
            (g - w).abs() <= tol,
            "{what}[{i}]: {g} vs {w} (tolerance {tol})"
        );
    }
}

fn vec_of<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

#[test]
fn gate_quantizers_match_ddtb_by_hand() {
    // 2 bits over [0, 3.5]: s = 3/3.5, z = round(0) + 2 = 2; (round(s·x − 2) + 2)/s gives
    // 0, 1.1667 (−1.14 → −1), 2.3333 (−0.29 → 0), 3.5.
    let mut v = [0.0f32, 1.0, 2.0, 3.5];
    quant_minmax(&mut v, 2);
    close(v.to_vec(), vec![0.0, 3.5 / 3.0, 7.0 / 3.0, 3.5], "minmax");
    // A constant input is left alone (the source divides by zero).
    let mut k = [0.5f32; 3];
    quant_minmax(&mut k, 2);
    assert_eq!(k, [0.5; 3]);
    // Ternary weights: m = 0.4 + 1e-8; round(w/m) = 1, −0, 0 (0.5 ties to even), −1.
    let w = quant_weight(&[0.3, -0.1, 0.2, -0.4], 2);
    close(w, vec![0.4, 0.0, 0.0, -0.4], "ternary");
}

#[test]
fn gate_shape_range_and_identity() {
    let fx = fixture();
    let shape: Vec<usize> = fx["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let p = gate_params(&fx, c);
    let d = Default::default();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(floats(&fx["x"]), [n, c, h, w]), &d);
    for train in [true, false] {
        let g = gate(&p, "pt", &x, train);
        assert_eq!(g.logits.dims(), [n, 2]);
        assert_eq!(g.batch_stats.is_some(), train);
        let s = vec_of(burn::tensor::activation::sigmoid(g.logits).mul_scalar(2.0));
        assert!(s.iter().all(|v| *v > 0.0 && *v < 2.0), "{s:?}");
    }
    // Logits 0 give 2σ(0) = 1: the gated quantizer is the static one.
    let zero = Tensor::<Cpu, 2>::zeros([n, 2], &d);
    for bits in [2, 4] {
        let l = lq(bits, c);
        let a = vec_of(gated_quant(&p, "pt", &l, x.clone(), zero.clone()));
        let b = vec_of(fake_quant_act(&p, "pt", &l, x.clone()));
        assert_eq!(a, b, "{bits} bits");
    }
    // The stage-one loss is the mean of c² over a point, averaged over points.
    let c1 = Tensor::<Cpu, 2>::from_data(TensorData::new(vec![1f32, -1., 2., 0.], [2, 2]), &d);
    let c2 = Tensor::<Cpu, 2>::from_data(TensorData::new(vec![3f32, 1., 1., 1.], [2, 2]), &d);
    let l = logit_loss(&[c1, c2]).unwrap().into_scalar();
    assert!((l - (1.5 + 3.0) / 2.0).abs() < 1e-6);
}

fn fixture() -> J {
    let p = common::repo().join("tests/fixtures/ddtb/golden.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The gate and the gated quantizer against the PyTorch re-implementation: logits, output,
/// BatchNorm batch statistics, and the gradients of Σ q·r (x, both bounds, the last gate conv)
/// and of the stage-one loss, in training and evaluation mode at 2 and 4 bits.
#[test]
fn matches_the_pytorch_golden_fixture() {
    let fx = fixture();
    let s: Vec<usize> = fx["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let d = Default::default();
    let base = gate_params(&fx, c);
    let r = Tensor::<CpuTrain, 4>::from_data(TensorData::new(floats(&fx["r"]), [n, c, h, w]), &d);
    for case in fx["cases"].as_array().unwrap() {
        let train = case["train"].as_bool().unwrap();
        let bits = case["bits"].as_u64().unwrap() as u32;
        let what = format!("train {train} a{bits}");
        let p = base.to_autodiff::<CpuTrain>();
        let x =
            Tensor::<CpuTrain, 4>::from_data(TensorData::new(floats(&fx["x"]), [n, c, h, w]), &d)
                .require_grad();
        let g = gate(&p, "pt", &x, train);
        close(
            vec_of(g.logits.clone().inner()),
            floats(&case["logits"]),
            &format!("{what} logits"),
        );
        if let Some((name, m, v)) = g.batch_stats {
            assert_eq!(name, "pt.gate.bn");
            close(
                vec_of(m.inner()),
                floats(&case["bn_batch_mean"]),
                &format!("{what} mean"),
            );
            close(
                vec_of(v.inner()),
                floats(&case["bn_batch_var"]),
                &format!("{what} var"),
            );
        }
        let q = gated_quant(&p, "pt", &lq(bits, c), x.clone(), g.logits);
        close(
            vec_of(q.clone().inner()),
            floats(&case["q"]),
            &format!("{what} q"),
        );
        let grads = (q * r.clone()).sum().backward();
        let gx = x.grad(&grads).unwrap();
        close(vec_of(gx), floats(&case["grad_x"]), &format!("{what} dx"));
        let gp = p.grads(&grads);
        // |∂q/∂u'| ≤ 1 and the gate ≤ 2: Σ 2|r| bounds the terms each bound's gradient sums.
        let sum_r = 2.0 * floats(&fx["r"]).iter().map(|v| v.abs()).sum::<f32>();
        for (k, key) in [
            (0, "grad_alpha_lower"),
            (1, "grad_alpha_upper"),
            (7, "grad_conv2"),
        ] {
            let (got, want) = (vec_of(gp[k].clone()), floats(&case[key]));
            close_to(got, want, sum_r, &format!("{what} {key}"));
        }
        // Conv 1 and the BatchNorm affine get no gradient (the second quantizer detaches).
        for (k, g) in gp.iter().enumerate().take(5).skip(2) {
            assert!(
                vec_of(g.clone()).iter().all(|v| *v == 0.0),
                "{what} param {k}"
            );
        }
        let p = base.to_autodiff::<CpuTrain>();
        let x =
            Tensor::<CpuTrain, 4>::from_data(TensorData::new(floats(&fx["x"]), [n, c, h, w]), &d);
        let l = logit_loss(&[gate(&p, "pt", &x, false).logits]).unwrap();
        let gp = p.grads(&l.backward());
        let key = "grad_conv2_logit_mse_eval";
        close(
            vec_of(gp[7].clone()),
            floats(&case[key]),
            &format!("{what} {key}"),
        );
    }
}

/// The ranking: var(max) + var(min) per point, the first ⌊n·ratio⌋ by descending score, ties in
/// point order.
#[test]
fn ranking_chooses_as_ddtb() {
    let mut r = Ranking::default();
    // Point 0: max 1, 3 and min 0, 0 → 1; point 1: max 2, 2, min −1, −3 → 1; point 2: 4.
    for (k, a, b) in [
        (0, [0f32, 1.], [0f32, 3.]),
        (1, [-1., 2.], [-3., 2.]),
        (2, [0., 0.], [0., 4.]),
    ] {
        r.add(k, &a);
        r.add(k, &b);
    }
    assert_eq!(r.scores(), vec![1.0, 1.0, 4.0]);
    assert_eq!(r.select(0.5), vec![false, false, true]);
    assert_eq!(r.select(0.7), vec![true, false, true]);
    assert_eq!(r.select(1.0), vec![true, true, true]);
}

/// DDTB's placement (`Block`, as `DdtbStatic`) and its gate counts with `run.sh`'s ratios:
/// EDSR-baseline 48 points, ⌊48·0.3⌋ = 14 gated; RDN 145, ⌊145·0.5⌋ = 72; SRResNet 32,
/// ⌊32·0.1⌋ = 3. On EDSR-baseline ×4 at a 320×180 input each gate has 32·64 + 64 + 64 = 2,176
/// parameters (14 run: 30,464; 48 stored: 104,448), 32·64 + 64 = 2,112 2-bit MACs and
/// 64·57,600 pooling additions: 14·(64·57,600 + 32)·1024 + 14·2,112·4 BitOPs.
#[test]
fn placement_gate_counts_and_cost() {
    let counts = [
        (ModelSpec::Edsr(EdsrSpec::default()), 48, 14),
        (ModelSpec::Rdn(RdnSpec::default()), 145, 72),
        (ModelSpec::SrResNet(SrResNetSpec::default()), 32, 3),
    ];
    let q = QuantSpec::Ddtb(QuantOpts::bits(2, 2));
    for (m, points, gated) in counts {
        let model = Model::from_spec(&m, 4);
        let mut plan = QuantPlan::from_spec(&q, &model);
        assert_eq!(plan.act_count(), points, "{m:?}");
        let stat = QuantPlan::from_spec(&QuantSpec::DdtbStatic(QuantOpts::bits(2, 2)), &model);
        assert_eq!(plan.layers, stat.layers, "the static preset's placement");
        let (ratio, from) = q.dynamic(&m, 400).unwrap();
        assert_eq!(from, 27, "4/59 of 400 iterations");
        mark_widest(&mut plan, ratio);
        assert_eq!(plan.layers.iter().filter(|(_, l)| l.dynamic).count(), gated);
    }
    let model = Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), 4);
    let mut plan = QuantPlan::from_spec(&q, &model);
    let exact = mark_widest(&mut plan, 0.3);
    let g = cost_with(&model, &plan, 320, 180, exact).gates.unwrap();
    assert!(g.exact);
    assert_eq!((g.gated, g.points), (14, 48));
    assert_eq!((g.params_run, g.params_stored), (30_464, 104_448));
    assert_eq!(g.macs, 14 * 2_112);
    assert_eq!(g.pool_adds, 14 * 64 * 57_600);
    assert_eq!(g.bitops, 14 * (64 * 57_600 + 32) * 1024 + 14 * 2_112 * 4);
}

#[test]
fn a_ddtb_run_trains_and_bad_options_are_refused() {
    let tmp = common::tempdir();
    let extra = "quant: Ddtb(w_bits: 4, a_bits: 4, dynamic_ratio: 0.5, dynamic_from: 2),";
    let dir = common::toy_run(tmp.path(), "ddtb", 4, extra);
    let s = odm::record::Summary::read(&dir).unwrap();
    assert!(s.eval[0].psnr_y.is_finite() && s.eval[0].psnr_y > 10.0);
    let map = std::fs::read_to_string(dir.join("quant_map.txt")).unwrap();
    // The toy EDSR's 2 blocks have 6 points: 3 gated.
    assert!(map.contains("3 activation points gated (DDTB)"), "{map}");
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let logit_rows: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("gate_logit_mse"))
        .collect();
    assert_eq!(
        logit_rows.len(),
        2,
        "stage one is iterations 1 and 2: {metrics}"
    );
    for (extra, field) in [
        (
            "quant: Pams(w_bits: 2, a_bits: 2, dynamic_ratio: 0.3),",
            "quant.dynamic_ratio",
        ),
        (
            "quant: Ddtb(w_bits: 2, a_bits: 2, dynamic_ratio: 0.0),",
            "quant.dynamic_ratio",
        ),
        (
            "quant: Ddtb(w_bits: 2, a_bits: 2, dynamic_from: 9),",
            "quant.dynamic_from",
        ),
        (
            "quant: Ddtb(w_bits: 2, a_bits: 2, calib_batches: 1),",
            "quant.calib_batches",
        ),
        (
            "quant: Ddtb(w_bits: 2, a_bits: 2, per_channel: true),",
            "quant.per_channel",
        ),
    ] {
        common::assert_refused(tmp.path(), extra, field);
    }
}
