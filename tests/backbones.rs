//! RDN and SRResNet: parameter counts derived by hand, quantizable-body lists, forward shapes,
//! state-dict key spot checks and BatchNorm behaviour.

use burn::tensor::{Distribution, Tensor};
use odm::backend::Cpu;
use odm::forward::{Capture, Fwd};
use odm::models::layers::{batch_norm, BN_EPS};
use odm::models::Builder;
use odm::models::{Model, Params};
use odm::quant::QuantPlan;
use odm::spec::{ModelSpec, RdnSpec, SrResNetLayout, SrResNetSpec};
use std::cell::RefCell;

fn rdn(d: usize, c: usize, g: usize, g0: usize, scale: usize) -> Model {
    let spec = RdnSpec {
        d,
        c,
        g,
        g0,
        ..RdnSpec::default()
    };
    Model::from_spec(&ModelSpec::Rdn(spec), scale)
}

fn srresnet(n_resblocks: usize, n_feats: usize, scale: usize) -> Model {
    srresnet_in(SrResNetLayout::default(), n_resblocks, n_feats, scale)
}

fn srresnet_in(layout: SrResNetLayout, n_resblocks: usize, n_feats: usize, scale: usize) -> Model {
    let spec = SrResNetSpec {
        n_resblocks,
        n_feats,
        layout,
        ..SrResNetSpec::default()
    };
    Model::from_spec(&ModelSpec::SrResNet(spec), scale)
}

const LAYOUTS: [SrResNetLayout; 2] = [SrResNetLayout::Ddtb, SrResNetLayout::Daq];

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs()
}

fn values(t: Tensor<Cpu, 4>) -> Vec<f32> {
    t.to_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// RDN ×4, D = 16, C = 8, G = G0 = 64, counted by hand (every conv has a bias):
/// - SFENet1 3·64·9 + 64 = 1 792; SFENet2 64·64·9 + 64 = 36 928.
/// - One RDB: conv c has (64 + 64c) inputs: weights 64·9·64·(1 + c) = 36 864·(1 + c); over
///   c = 0..7 that is 36 864·36 = 1 327 104, plus 8·64 = 512 biases → 1 327 616.
///   LFF 1×1 (64 + 8·64 = 576)→64: 36 864 + 64 = 36 928. Block: 1 364 544; ×16 = 21 832 704.
/// - GFF: 1×1 1024→64: 65 536 + 64 = 65 600; 3×3 64→64: 36 928.
/// - UPNet ×4: conv 64→256: 147 456 + 256 = 147 712, twice (the second one G = 64 → 256)
///   = 295 424; last conv 64→3: 1 728 + 3 = 1 731.
///
/// Total: 1 792 + 36 928 + 21 832 704 + 65 600 + 36 928 + 295 424 + 1 731 = 22 271 107,
/// the 22.3 M EDSR-PyTorch and the quantization papers report (RDN paper: "about 22M").
#[test]
fn rdn_x4_parameter_count() {
    let m = rdn(16, 8, 64, 64, 4);
    assert_eq!(m.param_count(), 22_271_107);
    assert!(close(m.param_count() as f64, 22.3e6, 0.02));
    // No buffers: every declaration is trainable.
    assert_eq!(m.decls().iter().filter(|d| d.buffer).count(), 0);
}

/// SRResNet ×4, 16 blocks, 64 features, counted by hand (BN has γ, β trainable and running
/// mean/var as buffers, which `param_count` excludes; a PReLU has 1 slope).
///
/// `Ddtb` (zysxmu/DDTB `model/bnsrresnet.py`: no conv bias, a PReLU per block):
/// - head 9×9 3→64: 3·64·81 = 15 552; PReLU 1 → 15 553.
/// - block: two 3×3 convs 2·36 864 = 73 728; two BNs 2·128 = 256; PReLU 1 → 73 985;
///   ×16 = 1 183 760.
/// - body_end 36 864 + BN 128 = 36 992.
/// - two ×2 stages: conv 64→256 64·256·9 = 147 456 + PReLU 1 = 147 457; ×2 = 294 914.
/// - tail 9×9 64→3: 64·3·81 = 15 552.
///
/// Total: 15 553 + 1 183 760 + 36 992 + 294 914 + 15 552 = 1 546 771 ≈ 1.55 M (the SRGAN
/// paper's SRResNet is ≈ 1.5 M).
///
/// `Daq` (Cheeun/DAQ-pytorch `srresnet.py`): the same, except that a block has no PReLU (a
/// shared parameter-free ReLU) and its two convs have a bias: 2·(36 864 + 64) + 256 = 74 112;
/// ×16 = 1 185 792. Total: 15 553 + 1 185 792 + 36 992 + 294 914 + 15 552 = 1 548 803
/// (= 1 546 771 + 16·(128 − 1)).
///
/// Buffers, both: 33 BNs × 2 × 64 = 4 224 scalars.
#[test]
fn srresnet_x4_parameter_count() {
    for (layout, count) in [
        (SrResNetLayout::Ddtb, 1_546_771),
        (SrResNetLayout::Daq, 1_548_803),
    ] {
        let m = srresnet_in(layout, 16, 64, 4);
        assert_eq!(m.param_count(), count, "{layout:?}");
        assert!(close(m.param_count() as f64, 1.55e6, 0.02));
        let buffers: usize = m
            .decls()
            .iter()
            .filter(|d| d.buffer)
            .map(|d| d.shape.iter().product::<usize>())
            .sum();
        assert_eq!(buffers, 33 * 2 * 64, "{layout:?}");
    }
}

/// The convs with quantized weights under the conv-input placement.
fn quant_layers(m: &Model) -> Vec<String> {
    m.quant_points(odm::quant::Placement::ConvInput)
        .into_iter()
        .filter(|p| p.weight)
        .map(|p| p.name)
        .collect()
}

fn check_quant_layers(m: &Model) {
    check_quant_layers_with(m, &["weight", "bias"]);
}

/// [`check_quant_layers`], with the parameters every quantized conv must declare.
fn check_quant_layers_with(m: &Model, params: &[&str]) {
    let convs = m.convs();
    let decls = m.decls();
    for name in quant_layers(m) {
        assert!(convs.iter().any(|c| c.name == name), "{name} is not a conv");
        for p in params {
            let key = format!("{name}.{p}");
            assert!(decls.iter().any(|d| d.name == key), "{key} not declared");
        }
    }
    // Every conv is declared exactly once, with the shape convs() reports.
    for c in &convs {
        let w: Vec<_> = decls
            .iter()
            .filter(|d| d.name == format!("{}.weight", c.name))
            .collect();
        assert_eq!(w.len(), 1, "{}", c.name);
        assert_eq!(w[0].shape, vec![c.cout, c.cin, c.k, c.k], "{}", c.name);
    }
    // Names are unique.
    let mut names: Vec<_> = decls.iter().map(|d| d.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), decls.len());
}

#[test]
fn rdn_quant_layers() {
    let m = rdn(16, 8, 64, 64, 4);
    let q = quant_layers(&m);
    assert_eq!(q.len(), 16 * 9 + 2);
    let mut expect = Vec::new();
    for i in 0..16 {
        for c in 0..8 {
            expect.push(format!("rdb.{i}.conv.{c}"));
        }
        expect.push(format!("rdb.{i}.lff"));
    }
    expect.extend(["gff.0".to_string(), "gff.1".to_string()]);
    assert_eq!(q, expect);
    check_quant_layers(&m);
    // SFE, upsampler and tail stay FP.
    for n in ["sfe1", "sfe2", "upsample.0", "upsample.1", "tail"] {
        assert!(!q.iter().any(|x| x == n), "{n}");
    }
    let lff = m
        .convs()
        .into_iter()
        .find(|c| c.name == "rdb.3.lff")
        .unwrap();
    assert_eq!((lff.cin, lff.cout, lff.k), (576, 64, 1));
}

#[test]
fn srresnet_quant_layers() {
    for layout in LAYOUTS {
        let m = srresnet_in(layout, 16, 64, 4);
        let q = quant_layers(&m);
        assert_eq!(q.len(), 32);
        assert_eq!(q[0], "body.0.conv1");
        assert_eq!(q[1], "body.0.conv2");
        assert_eq!(q[31], "body.15.conv2");
        match layout {
            SrResNetLayout::Ddtb => check_quant_layers_with(&m, &["weight"]),
            SrResNetLayout::Daq => check_quant_layers(&m),
        }
        let convs = m.convs();
        assert_eq!(convs[0].k, 9);
        assert_eq!(convs.last().unwrap().k, 9);
        assert_eq!(convs.last().unwrap().res, 4);
    }
}

fn forward_shape(m: &Model, scale: usize) {
    let device = Default::default();
    let params = Params::<Cpu>::init(&m.decls(), 7, &device);
    let plan = QuantPlan::fp();
    let f = Fwd::plain(&params, &plan);
    let x = Tensor::<Cpu, 4>::random([1, 3, 8, 8], Distribution::Uniform(0.0, 255.0), &device);
    let y = m.forward(&f, x);
    assert_eq!(y.dims(), [1, 3, 8 * scale, 8 * scale]);
    assert!(values(y).iter().all(|v| v.is_finite()));
}

#[test]
fn rdn_forward_shapes() {
    for s in [2, 3, 4] {
        forward_shape(&rdn(2, 2, 8, 8, s), s);
    }
    // G ≠ G0 exercises the channel bookkeeping of the dense blocks and the upsampler.
    for s in [2, 3, 4] {
        forward_shape(&rdn(2, 3, 4, 6, s), s);
    }
}

#[test]
fn srresnet_forward_shapes() {
    for layout in LAYOUTS {
        for s in [2, 3, 4] {
            forward_shape(&srresnet_in(layout, 2, 8, s), s);
        }
    }
}

#[test]
fn rdn_pytorch_keys() {
    let x4 = rdn(16, 8, 64, 64, 4);
    let x2 = rdn(16, 8, 64, 64, 2);
    let pairs = [
        ("sfe1.weight", "SFENet1.weight"),
        ("sfe2.bias", "SFENet2.bias"),
        ("rdb.0.conv.0.weight", "RDBs.0.convs.0.conv.0.weight"),
        ("rdb.15.conv.7.bias", "RDBs.15.convs.7.conv.0.bias"),
        ("rdb.4.lff.weight", "RDBs.4.LFF.weight"),
        ("gff.0.weight", "GFF.0.weight"),
        ("gff.1.bias", "GFF.1.bias"),
        ("upsample.0.weight", "UPNet.0.weight"),
        ("upsample.1.weight", "UPNet.2.weight"),
        ("tail.weight", "UPNet.4.weight"),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(x4.pytorch_key(ours), theirs);
    }
    assert_eq!(x2.pytorch_key("upsample.0.weight"), "UPNet.0.weight");
    assert_eq!(x2.pytorch_key("tail.bias"), "UPNet.2.bias");
}

#[test]
fn srresnet_pytorch_keys() {
    // zysxmu/DDTB `model/bnsrresnet.py`.
    let ddtb = srresnet_in(SrResNetLayout::Ddtb, 16, 64, 4);
    let ddtb_pairs = [
        ("head.weight", "conv_input.weight"),
        ("head.prelu", "relu.weight"),
        ("body.0.conv1.weight", "residual.0.conv1.weight"),
        ("body.0.bn1.gamma", "residual.0.in1.weight"),
        ("body.0.bn1.beta", "residual.0.in1.bias"),
        ("body.3.prelu", "residual.3.relu.weight"),
        ("body.15.conv2.weight", "residual.15.conv2.weight"),
        ("body.15.bn2.running_var", "residual.15.in2.running_var"),
        ("body_end.weight", "conv_mid.weight"),
        ("body_end_bn.running_mean", "bn_mid.running_mean"),
        ("upsample.0.weight", "upscale.0.weight"),
        ("upsample.0.prelu", "upscale.2.weight"),
        ("upsample.1.weight", "upscale.3.weight"),
        ("upsample.1.prelu", "upscale.5.weight"),
        ("tail.weight", "conv_output.weight"),
    ];
    // Cheeun/DAQ-pytorch `src/model/srresnet.py` + `common_srresnet.py`.
    let daq = srresnet_in(SrResNetLayout::Daq, 16, 64, 4);
    let daq_pairs = [
        ("head.weight", "head.0.weight"),
        ("head.prelu", "head.1.weight"),
        ("body.0.conv1.weight", "body.0.conv1.weight"),
        ("body.0.conv1.bias", "body.0.conv1.bias"),
        ("body.0.bn1.gamma", "body.0.bn1.weight"),
        ("body.0.bn1.beta", "body.0.bn1.bias"),
        ("body.15.conv2.bias", "body.15.conv2.bias"),
        ("body.15.bn2.running_var", "body.15.bn2.running_var"),
        ("body_end.weight", "body.16.weight"),
        ("body_end_bn.running_mean", "body.17.running_mean"),
        ("body_end_bn.gamma", "body.17.weight"),
        ("upsample.0.prelu", "tail.0.2.weight"),
        ("upsample.1.weight", "tail.0.3.weight"),
        ("upsample.1.prelu", "tail.0.5.weight"),
        ("tail.weight", "tail.1.weight"),
    ];
    for (m, pairs) in [(&ddtb, &ddtb_pairs), (&daq, &daq_pairs)] {
        for (ours, theirs) in pairs {
            assert_eq!(m.pytorch_key(ours), *theirs);
        }
        // The mapping is injective over the declarations.
        let mut keys: Vec<_> = m.decls().iter().map(|d| m.pytorch_key(&d.name)).collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
    }
    // ×2: one stage; the tail keeps its name.
    let x2 = srresnet_in(SrResNetLayout::Ddtb, 16, 64, 2);
    assert_eq!(x2.pytorch_key("upsample.0.prelu"), "upscale.2.weight");
    assert!(!x2.decls().iter().any(|d| d.name.starts_with("upsample.1")));
}

/// DDTB's convs have no bias; DAQ's have one only on the two block convs (zero-initialised),
/// and DAQ's blocks use a parameter-free ReLU instead of a PReLU.
#[test]
fn srresnet_layout_biases_and_activations() {
    let has = |m: &Model, n: &str| m.decls().iter().any(|d| d.name == n);
    let ddtb = srresnet_in(SrResNetLayout::Ddtb, 2, 8, 4);
    assert!(!ddtb.decls().iter().any(|d| d.name.ends_with(".bias")));
    assert!(has(&ddtb, "body.0.prelu") && has(&ddtb, "body.1.prelu"));

    let daq = srresnet_in(SrResNetLayout::Daq, 2, 8, 4);
    assert!(!has(&daq, "head.bias"));
    assert!(has(&daq, "body.0.conv1.bias") && has(&daq, "body.1.conv2.bias"));
    assert!(!has(&daq, "body.0.prelu"));
    for n in [
        "body_end.bias",
        "upsample.0.bias",
        "upsample.1.bias",
        "tail.bias",
    ] {
        assert!(!has(&daq, n), "{n}");
    }
    let biases: Vec<_> = daq
        .decls()
        .into_iter()
        .filter(|d| d.name.ends_with(".bias"))
        .collect();
    assert_eq!(biases.len(), 4);
    assert!(biases
        .iter()
        .all(|d| d.init == odm::models::Init::Const(0.0) && d.shape == [8]));

    // No mean shift (and no bias away from 0 at init): a black image maps to exactly 0.
    let device = Default::default();
    let plan = QuantPlan::fp();
    for m in [ddtb, daq] {
        let params = Params::<Cpu>::init(&m.decls(), 1, &device);
        let y = m.forward(
            &Fwd::plain(&params, &plan),
            Tensor::zeros([1, 3, 4, 4], &device),
        );
        assert_eq!(y.dims(), [1, 3, 16, 16]);
        assert!(values(y).iter().all(|v| *v == 0.0));
    }
}

/// Per-channel (mean, biased variance) of an N×C×H×W tensor, computed on the host.
fn channel_stats(x: &Tensor<Cpu, 4>) -> Vec<(f64, f64)> {
    let [n, c, h, w] = x.dims();
    let v = values(x.clone());
    (0..c)
        .map(|ch| {
            let xs: Vec<f64> = (0..n)
                .flat_map(|b| (0..h * w).map(move |i| (b, i)))
                .map(|(b, i)| v[(b * c + ch) * h * w + i] as f64)
                .collect();
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
            (m, var)
        })
        .collect()
}

#[test]
fn batch_norm_eval_and_train() {
    let device = Default::default();
    let mut b = Builder::new();
    let bn = b.bn("bn", "bn", 4);
    let params = Params::<Cpu>::init(&b.finish().decls, 1, &device);
    let plan = QuantPlan::fp();
    let x = Tensor::<Cpu, 4>::random([3, 4, 5, 6], Distribution::Normal(2.0, 3.0), &device);

    // Eval, default buffers: x / sqrt(1 + eps).
    let y = batch_norm(&Fwd::plain(&params, &plan), &bn, x.clone());
    let k = 1.0 / (1.0 + BN_EPS).sqrt();
    for (a, b) in values(x.clone()).iter().zip(values(y)) {
        assert!((*a as f64 * k - b as f64).abs() < 1e-5 * (1.0 + a.abs() as f64));
    }

    // Train: per-channel mean 0, biased variance var/(var + eps) ≈ 1; captured stats are the
    // batch mean and the unbiased batch variance.
    let cap = RefCell::new(Capture::default());
    let f = Fwd {
        p: &params,
        plan: &plan,
        capture: Some(&cap),
        train: true,
        body_only: false,
    };
    let y = batch_norm(&f, &bn, x.clone());
    for (m, v) in channel_stats(&y) {
        assert!(m.abs() < 1e-4, "mean {m}");
        assert!((v - 1.0).abs() < 1e-3, "var {v}");
    }
    let cap = cap.into_inner();
    assert_eq!(cap.bn_batch.len(), 1);
    let (name, mean, var) = &cap.bn_batch[0];
    assert_eq!(name, "bn");
    let mean = mean.to_data().to_vec::<f32>().unwrap();
    let var = var.to_data().to_vec::<f32>().unwrap();
    let cnt = (3 * 5 * 6) as f64;
    for (ch, (m, v)) in channel_stats(&x).into_iter().enumerate() {
        assert!(
            (mean[ch] as f64 - m).abs() < 1e-4 * (1.0 + m.abs()),
            "mean ch{ch}"
        );
        let unbiased = v * cnt / (cnt - 1.0);
        assert!(close(var[ch] as f64, unbiased, 1e-4), "var ch{ch}");
    }
}

#[test]
fn srresnet_train_mode_captures_every_bn() {
    let device = Default::default();
    let m = srresnet(2, 8, 2);
    let params = Params::<Cpu>::init(&m.decls(), 3, &device);
    let plan = QuantPlan::fp();
    let x = Tensor::<Cpu, 4>::random([2, 3, 8, 8], Distribution::Uniform(0.0, 255.0), &device);

    // Eval mode records nothing.
    let cap = RefCell::new(Capture::default());
    let f = Fwd {
        p: &params,
        plan: &plan,
        capture: Some(&cap),
        train: false,
        body_only: false,
    };
    let y_eval = m.forward(&f, x.clone());
    assert!(cap.borrow().bn_batch.is_empty());

    let cap = RefCell::new(Capture::default());
    let f = Fwd {
        p: &params,
        plan: &plan,
        capture: Some(&cap),
        train: true,
        body_only: false,
    };
    let y_train = m.forward(&f, x);
    assert_eq!(y_train.dims(), [2, 3, 16, 16]);
    assert!(values(y_train.clone()).iter().all(|v| v.is_finite()));
    // Batch statistics differ from the default running ones, so the outputs differ.
    let diff = (y_train - y_eval).abs().max().into_scalar();
    assert!(diff > 1e-3);

    let bn = cap.into_inner().bn_batch;
    let names: Vec<_> = bn.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "body.0.bn1",
            "body.0.bn2",
            "body.1.bn1",
            "body.1.bn2",
            "body_end_bn"
        ]
    );
    for (n, mean, var) in &bn {
        assert_eq!(mean.dims(), [8], "{n}");
        assert_eq!(var.dims(), [8], "{n}");
        assert!(var
            .to_data()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|v| *v >= 0.0));
    }
}

#[test]
fn backbones_backpropagate_in_train_mode() {
    use odm::backend::CpuTrain;
    let device = Default::default();
    for m in [rdn(1, 2, 4, 4, 2), srresnet(1, 4, 2)] {
        let params = Params::<Cpu>::init(&m.decls(), 5, &device).to_autodiff::<CpuTrain>();
        let plan = QuantPlan::fp();
        let cap = RefCell::new(Capture::default());
        let f = Fwd {
            p: &params,
            plan: &plan,
            capture: Some(&cap),
            train: true,
            body_only: false,
        };
        let x =
            Tensor::<CpuTrain, 4>::random([2, 3, 6, 6], Distribution::Uniform(0.0, 255.0), &device);
        let loss = m.forward(&f, x).abs().mean();
        let grads = params.grads(&loss.backward());
        for (i, name) in params.names.iter().enumerate() {
            let g = grads[i].to_data().convert::<f32>().to_vec::<f32>().unwrap();
            assert!(g.iter().all(|v| v.is_finite()), "{name}");
            let buffer = name.ends_with("running_mean") || name.ends_with("running_var");
            let nonzero = g.iter().any(|v| *v != 0.0);
            // Buffers get no gradient; every trainable parameter does.
            assert_eq!(nonzero, !buffer, "{name}");
        }
    }
}
