//! Function-preserving feature rescaling (`models::rescale`, issue 27 part 1): on random inputs
//! every supported backbone computes the same output (within 1e-5 relative) after its features
//! are scaled by c, while its body feature is c× the original; so does an EDSR converted from
//! LIIF's `Symmetric` normalisation to `Centered` (every bias × rgb_range/2); leaving any single
//! factor out (one bias left unscaled, say) breaks that; the rescaled zoo EDSR-baseline is the
//! original with the conversion's factors, and scores as the original does (within 0.002 dB).

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::forward::{Capture, Fwd};
use odm::models::params::host_values;
use odm::models::params::ParamId;
use odm::models::rescale::{apply, apply_factors, factors, recentre};
use odm::models::{Init, Model, Params};
use odm::quant::QuantPlan;
use odm::spec::{EdsrSpec, InputNorm, ModelSpec, RdnSpec, SrResNetLayout, SrResNetSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;

/// Small instances of every backbone and variant: EDSR (mean shift with res_scale 0.1 at ×2,
/// LIIF's normalisation at ×4, ×3), RDN (×2, ×4), SRResNet in both layouts (×2, ×4).
fn backbones() -> Vec<(&'static str, Model)> {
    let edsr = |norm, res_scale, scale| {
        let s = EdsrSpec {
            n_resblocks: 2,
            n_feats: 8,
            res_scale,
            input_norm: norm,
            ..EdsrSpec::default()
        };
        Model::from_spec(&ModelSpec::Edsr(s), scale)
    };
    let rdn = |scale| {
        let s = RdnSpec {
            d: 2,
            c: 3,
            g: 4,
            g0: 6,
            ..RdnSpec::default()
        };
        Model::from_spec(&ModelSpec::Rdn(s), scale)
    };
    let srresnet = |layout, scale| {
        let s = SrResNetSpec {
            n_resblocks: 2,
            n_feats: 8,
            layout,
            ..SrResNetSpec::default()
        };
        Model::from_spec(&ModelSpec::SrResNet(s), scale)
    };
    vec![
        ("edsr mean shift ×2", edsr(InputNorm::MeanShift, 0.1, 2)),
        ("edsr symmetric ×4", edsr(InputNorm::Symmetric, 1.0, 4)),
        ("edsr mean shift ×3", edsr(InputNorm::MeanShift, 1.0, 3)),
        ("rdn ×2", rdn(2)),
        ("rdn ×4", rdn(4)),
        ("srresnet ddtb ×2", srresnet(SrResNetLayout::Ddtb, 2)),
        ("srresnet daq ×4", srresnet(SrResNetLayout::Daq, 4)),
    ]
}

/// Seeded weights where nothing sits at a special value: fan-in uniform weights, every bias
/// from U(0.2, 4) (DAQ's zero biases included; large enough that an unscaled one shows) and every
/// other constant-initialised tensor (BN γ, β, running mean and variance, PReLU slopes) from
/// U(0.2, 1), so that no factor multiplies a zero or a default.
fn weights(m: &Model, seed: u64) -> Params<Cpu> {
    let device = Default::default();
    let mut p = Params::<Cpu>::init(&m.decls(), seed, &device);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for d in m.decls() {
        let bias = d.name.ends_with(".bias");
        if matches!(d.init, Init::Const(_)) || bias {
            let n: usize = d.shape.iter().product();
            let hi = if bias { 4.0 } else { 1.0 };
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(0.2..hi)).collect();
            p.set(&d.name, Tensor::from_data(TensorData::new(v, [n]), &device));
        }
    }
    p
}

/// Two random LR images in [0, 255], 3×10×10.
fn input(seed: u64) -> Tensor<Cpu, 4> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..2 * 3 * 10 * 10)
        .map(|_| rng.random_range(0.0..255.0))
        .collect();
    Tensor::from_data(TensorData::new(v, [2, 3, 10, 10]), &Default::default())
}

/// The output and the body feature (`Ops::feature`) of an FP forward, in evaluation or
/// training mode (BatchNorm on running or batch statistics).
fn run(m: &Model, p: &Params<Cpu>, x: Tensor<Cpu, 4>, train: bool) -> (Vec<f32>, Vec<f32>) {
    let plan = QuantPlan::fp();
    let cap = RefCell::new(Capture::default());
    let f = Fwd {
        p,
        plan: &plan,
        capture: Some(&cap),
        train,
        body_only: false,
    };
    let y = host_values(m.forward(&f, x));
    let feat = host_values(cap.borrow().feature.clone().expect("a body feature"));
    (y, feat)
}

/// max |a − b| / max |b|.
fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    let m = b.iter().map(|y| y.abs()).fold(0f32, f32::max);
    d as f64 / m as f64
}

#[test]
fn rescaled_backbones_compute_the_same_function_on_scaled_features() {
    for (name, m) in backbones() {
        let p = weights(&m, 7);
        let x = input(11);
        let mut worst = 0f64;
        for c in [127.5, 3.0, 0.02] {
            let mut q = p.clone();
            apply(&m, &mut q, c).unwrap();
            // SRResNet's BatchNorm reads batch statistics in training mode: rescaling must hold
            // there too (EDSR and RDN have no mode-dependent layer; both modes are checked).
            for train in [false, true] {
                let (y0, f0) = run(&m, &p, x.clone(), train);
                let (y1, f1) = run(&m, &q, x.clone(), train);
                let r = rel(&y1, &y0);
                assert!(
                    r <= 1e-5,
                    "{name}, c = {c}, train {train}: output off by {r:e}"
                );
                let scaled: Vec<f32> = f0.iter().map(|v| v * c as f32).collect();
                let rf = rel(&f1, &scaled);
                assert!(
                    rf <= 1e-5,
                    "{name}, c = {c}: body feature is not c× ({rf:e})"
                );
                worst = worst.max(r);
            }
        }
        eprintln!("{name}: largest relative output difference {worst:.2e}");
    }
}

/// The check above can fail: with any one factor left out (one bias left unscaled, the tail's
/// weights not divided, a BatchNorm β not scaled, …) the output moves by more than 1e-4, ten
/// times the tolerance above.
#[test]
fn leaving_out_any_one_factor_breaks_the_function() {
    for (name, m) in backbones() {
        let p = weights(&m, 7);
        let x = input(11);
        let (y0, _) = run(&m, &p, x.clone(), false);
        let all = factors(&m, 127.5).unwrap();
        let mut smallest = f64::INFINITY;
        for skip in 0..all.len() {
            let mut partial = all.clone();
            let (id, _) = partial.remove(skip);
            let mut q = p.clone();
            apply_factors(&mut q, &partial);
            let (y1, _) = run(&m, &q, x.clone(), false);
            let r = rel(&y1, &y0);
            let what = &m.decls()[id.0].name;
            assert!(
                r > 1e-4,
                "{name}: leaving {what} unscaled moved the output by only {r:e}"
            );
            smallest = smallest.min(r);
        }
        eprintln!(
            "{name}: {} factors; smallest effect of leaving one out {smallest:.2e}",
            all.len()
        );
    }
}

/// An EDSR of 2 blocks and 8 features at `scale` with normalisation `norm`.
fn edsr(norm: InputNorm, scale: usize) -> Model {
    let s = EdsrSpec {
        n_resblocks: 2,
        n_feats: 8,
        input_norm: norm,
        ..EdsrSpec::default()
    };
    Model::from_spec(&ModelSpec::Edsr(s), scale)
}

/// `Symmetric` weights converted into a `Centered` EDSR compute the same function, with the
/// body feature 127.5× (rgb_range/2); leaving any one bias out of the conversion breaks it.
#[test]
fn recentring_symmetric_edsr_weights_is_exact() {
    for scale in [2, 3, 4] {
        let (sym, cen) = (
            edsr(InputNorm::Symmetric, scale),
            edsr(InputNorm::Centered, scale),
        );
        let p = weights(&sym, 5);
        let x = input(13);
        let (y0, f0) = run(&sym, &p, x.clone(), false);
        let all = recentre(&cen, InputNorm::Symmetric).unwrap();
        let convert = |f: &[(ParamId, f64)]| {
            let mut q = p.clone();
            apply_factors(&mut q, f);
            run(&cen, &q, x.clone(), false)
        };
        let (y1, f1) = convert(&all);
        let r = rel(&y1, &y0);
        assert!(r <= 1e-5, "×{scale}: output off by {r:e}");
        let scaled: Vec<f32> = f0.iter().map(|v| v * 127.5).collect();
        assert!(
            rel(&f1, &scaled) <= 1e-5,
            "×{scale}: body feature is not 127.5×"
        );
        // Every weight stays as it was: only biases move.
        for (id, _) in &all {
            assert!(cen.decls()[id.0].name.ends_with(".bias"));
        }
        for skip in 0..all.len() {
            let mut partial = all.clone();
            let (id, _) = partial.remove(skip);
            let r = rel(&convert(&partial).0, &y0);
            let what = &cen.decls()[id.0].name;
            assert!(
                r > 1e-4,
                "×{scale}: leaving {what} out moved the output by only {r:e}"
            );
        }
    }
    // Other pairs are not exact: refused with what is allowed.
    let e = recentre(&edsr(InputNorm::MeanShift, 2), InputNorm::Symmetric).unwrap_err();
    assert!(e.contains("Centered"), "{e}");
    let e = recentre(&edsr(InputNorm::Centered, 2), InputNorm::MeanShift).unwrap_err();
    assert!(e.contains("Symmetric"), "{e}");
}

#[test]
fn a_scale_that_is_not_positive_and_finite_is_refused() {
    let (_, m) = &backbones()[0];
    for c in [0.0, -2.0, f64::NAN, f64::INFINITY] {
        let e = factors(m, c).unwrap_err();
        assert!(e.contains("c > 0"), "{e}");
    }
}

/// `init_from: Pretrained(..., feature_scale: c)` is checked with the spec: c ≤ 0 and a
/// non-strict load are refused with one line naming the field.
#[test]
fn spec_refuses_a_bad_feature_scale() {
    let tmp = common::tempdir();
    let w = common::repo().join("zoo/edsr_baseline_x4.safetensors");
    for (extra, want) in [
        ("feature_scale: -1.0", "init_from.feature_scale"),
        ("feature_scale: 2.0, strict: false", "strict: true"),
        // The toy spec's EDSR uses the mean shift: no exact conversion into it.
        ("from_input_norm: Symmetric", "init_from.from_input_norm"),
    ] {
        let init = format!("init_from: Pretrained(path: \"{}\", {extra}),", w.display());
        common::assert_refused(tmp.path(), &init, want);
    }
}

/// The EDSR-baseline ×4 of the zoo: LIIF's input normalisation (`Symmetric`), or `Centered`
/// for the rescaled one.
fn zoo_model(norm: InputNorm) -> Model {
    let s = EdsrSpec {
        input_norm: norm,
        ..EdsrSpec::default()
    };
    Model::from_spec(&ModelSpec::Edsr(s), 4)
}

fn zoo_params(m: &Model, file: &str) -> Params<Cpu> {
    let path = common::repo().join("zoo").join(file);
    odm::train::state::load_weights(m, &path, 0, &Default::default()).unwrap()
}

/// The republished file holds exactly the original's weights with the conversion's factors
/// applied (the same f32 products), and its card's hash is the file's.
#[test]
fn the_rescaled_zoo_model_is_the_original_times_its_factors() {
    let (sym, cen) = (
        zoo_model(InputNorm::Symmetric),
        zoo_model(InputNorm::Centered),
    );
    let mut want = zoo_params(&sym, "edsr_baseline_x4.safetensors");
    apply_factors(&mut want, &recentre(&cen, InputNorm::Symmetric).unwrap());
    let got = zoo_params(&cen, "edsr_baseline_x4_s255.safetensors");
    for (i, n) in got.names.iter().enumerate() {
        let (a, b) = (
            host_values(got.tensors[i].clone()),
            host_values(want.tensors[i].clone()),
        );
        assert!(a == b, "{n} differs from the original ×factor");
    }
    let bytes =
        std::fs::read(common::repo().join("zoo/edsr_baseline_x4_s255.safetensors")).unwrap();
    let card: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("zoo/edsr_baseline_x4_s255.json")).unwrap(),
    )
    .unwrap();
    let sha = odm::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    assert_eq!(card["sha256"], sha);
}

/// Both zoo models score within 0.002 dB of each other: Set5 and Set14 evaluated here, and all
/// four sets in the two cards (each card's scores come from its own full evaluation run).
#[test]
#[cfg_attr(
    odm_no_shared_data,
    ignore = "shared data not found: set ODM_DATA to the folder holding benchmark/"
)]
fn both_zoo_models_score_alike() {
    let Some(root) = common::data_root() else {
        return;
    };
    let card = |f: &str| -> serde_json::Value {
        let t = std::fs::read_to_string(common::repo().join("zoo").join(f)).unwrap();
        serde_json::from_str(&t).unwrap()
    };
    let (a, b) = (
        card("edsr_baseline_x4.json"),
        card("edsr_baseline_x4_s255.json"),
    );
    for set in ["Set5", "Set14", "B100", "Urban100"] {
        let psnr = |c: &serde_json::Value| {
            c["scores"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["set"] == set)
                .unwrap_or_else(|| panic!("card lacks {set}"))["psnr_y"]
                .as_f64()
                .unwrap()
        };
        let d = psnr(&b) - psnr(&a);
        assert!(d.abs() < 0.002, "cards: {set} differs by {d:+.5} dB");
    }
    let (sym, cen) = (
        zoo_model(InputNorm::Symmetric),
        zoo_model(InputNorm::Centered),
    );
    let (p0, p1) = (
        zoo_params(&sym, "edsr_baseline_x4.safetensors"),
        zoo_params(&cen, "edsr_baseline_x4_s255.safetensors"),
    );
    let plan = QuantPlan::fp();
    let device = Default::default();
    for set in ["Set5", "Set14"] {
        let s = odm::data::load_set(&root.join("benchmark").join(set), 4).unwrap();
        let s0 = odm::eval::evaluate(&sym, &p0, &plan, &s, &device);
        let s1 = odm::eval::evaluate(&cen, &p1, &plan, &s, &device);
        let d = s1.psnr_y - s0.psnr_y;
        eprintln!("{set}: {:.5} vs {:.5} dB ({d:+.6})", s0.psnr_y, s1.psnr_y);
        assert!(d.abs() < 0.002, "{set}: {d:+.5} dB");
        let card_psnr = a["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["set"] == set)
            .unwrap()["psnr_y"]
            .as_f64()
            .unwrap();
        // The card's scores came from the im2col + GEMM convolution; the implicit GEMM sums
        // each output in another order, which flips the 8-bit rounding of a few output pixels
        // (Set5 moved by −3.1e-6 dB): each flip moves a set's mean PSNR by about 1e-5 dB, a
        // wrong model or protocol by tenths.
        assert!(
            (s0.psnr_y - card_psnr).abs() < 1e-4,
            "{set}: original off its card: {:.9} vs {card_psnr:.9}",
            s0.psnr_y
        );
    }
}
