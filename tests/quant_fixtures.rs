//! Acceptance (quantizer fidelity): every preset's quantizer against golden fixtures made by
//! `tests/fixtures/make_quant_fixtures.py`, which re-implements each source's forward in PyTorch
//! (AdaBM `QConv2d`, PAMS `pams_quant_act`/`quant_weight`, DDTB
//! `DDTB_quant_act_asym_dynamic_quantized`/`quant_weight_asym99`, ODM's WCC on AdaBM's weight
//! quantizer) and takes the gradients from autograd. Forward values and every gradient (x and
//! each learned bound) are compared for the preset path (`fake_quant_act`/`fake_quant_weight`:
//! the fused CPU kernel, with our weight ranges) and for the composed reference
//! `quant::fake_quant`. Tolerance: 1e-6 relative, where a parameter gradient (a sum over
//! elements) is relative to |ref| + Σ|g|, the natural scale of its f32 summation error.

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::models::Params;
use odm::quant::{
    act_bounds, fake_quant, fake_quant_act, fake_quant_weight, weight_range, LayerQuant, QForm,
    Quantizer, WeightQ,
};
use odm::spec::BoundGrad;
use serde_json::Value;
use std::path::Path;

type AD = Autodiff<Cpu>;

fn list(v: &Value, key: &str) -> Vec<f32> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("fixture lacks {key}"))
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn t1(v: &[f32]) -> Tensor<AD, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn host<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn check(name: &str, what: &str, got: &[f32], want: &[f32], scale: f32) {
    assert_eq!(got.len(), want.len(), "{name} {what}: length");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let tol = 1e-6 * (b.abs() + scale).max(1e-6);
        assert!(
            (a - b).abs() <= tol,
            "{name} {what}[{i}]: ours {a}, source {b} (tolerance {tol})"
        );
    }
}

/// The point's settings for a fixture kind: (form, weights, is a weight fixture).
fn setting(kind: &str) -> (QForm, WeightQ, bool) {
    match kind {
        "adabm_act" | "adabm_act_pc" => (QForm::Affine, WeightQ::Learned, false),
        "pams_act" => (QForm::SymZero, WeightQ::MaxAbs, false),
        "ddtb_act" => (
            QForm::ZeroPoint,
            WeightQ::Percentile {
                low: 1.0,
                high: 99.0,
            },
            false,
        ),
        "adabm_weight" => (QForm::Affine, WeightQ::Learned, true),
        "wcc_weight" => (QForm::Affine, WeightQ::Wcc { percentile: 99.0 }, true),
        "pams_weight" => (QForm::SymZero, WeightQ::MaxAbs, true),
        k if k.starts_with("ddtb_weight") => (
            QForm::ZeroPoint,
            WeightQ::Percentile {
                low: 1.0,
                high: 99.0,
            },
            true,
        ),
        k => panic!("unknown fixture kind {k}"),
    }
}

/// Learned parameters of a fixture: (our name, fixture key, fixture gradient key).
fn learned(kind: &str) -> Vec<(&'static str, &'static str, &'static str)> {
    match kind {
        "adabm_act" | "adabm_act_pc" | "ddtb_act" => {
            vec![("p.act.lo", "l", "dl"), ("p.act.hi", "u", "du")]
        }
        "pams_act" => vec![("p.act.hi", "alpha", "dalpha")],
        "adabm_weight" => vec![("p.wq.hi", "u_w", "du_w")],
        "wcc_weight" => vec![("p.wcc.gamma", "gamma", "dgamma")],
        _ => vec![],
    }
}

/// Runs one fixture through the preset path (fused kernel) or the composed reference and
/// returns (q, dx, parameter gradients in `learned` order).
fn run(fx: &Value, fused: bool) -> (Vec<f32>, Vec<f32>, Vec<Vec<f32>>) {
    let kind = fx["kind"].as_str().unwrap();
    let bits = fx["bits"].as_u64().unwrap() as u32;
    let shape: Vec<usize> = fx["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let shape: [usize; 4] = shape.try_into().unwrap();
    let (form, weights, is_weight) = setting(kind);
    let pars = learned(kind);
    let x = t1(&list(fx, "x")).reshape(shape).require_grad();
    let tensors: Vec<Tensor<AD, 1>> = pars
        .iter()
        .map(|(_, k, _)| t1(&list(fx, k)).require_grad())
        .collect();
    let channels = tensors.first().map(|t| t.dims()[0]).unwrap_or(1);
    let p = Params::<AD>::from_parts(
        pars.iter().map(|(n, _, _)| n.to_string()).collect(),
        tensors.iter().map(|t| vec![t.dims()[0]]).collect(),
        tensors.clone(),
    );
    let lq = LayerQuant {
        w_bits: if is_weight { bits } else { 32 },
        a_bits: if is_weight { 32 } else { bits },
        form,
        weights,
        bound_grad: BoundGrad::Full,
        per_channel: channels > 1,
        channels,
        scale: false,
        shift: false,
        dynamic: false,
        active: true,
    };
    let y = match (is_weight, fused) {
        (false, true) => fake_quant_act(&p, "p", &lq, x.clone()),
        (true, true) => fake_quant_weight(&p, "p", &lq, x.clone()),
        (false, false) => {
            let (l, u) = act_bounds(&p, "p", &lq);
            let c = l.dims()[0];
            let q = Quantizer::act(&lq);
            fake_quant(
                x.clone(),
                l.reshape([1, c, 1, 1]),
                u.reshape([1, c, 1, 1]),
                q,
            )
        }
        (true, false) => {
            let (l, u) = weight_range(&p, "p", &lq, &x);
            let q = Quantizer::weight(&lq);
            fake_quant(
                x.clone(),
                l.reshape([1, 1, 1, 1]),
                u.reshape([1, 1, 1, 1]),
                q,
            )
        }
    };
    let g = t1(&list(fx, "g")).reshape(shape);
    let grads = (y.clone() * g).sum().backward();
    let dx = host(x.grad(&grads).expect("dx"));
    let dp = tensors
        .iter()
        .map(|t| host(t.grad(&grads).expect("parameter gradient")))
        .collect();
    (host(y.inner()), dx, dp)
}

#[test]
fn every_preset_quantizer_matches_its_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quant");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/quant")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut kinds = std::collections::BTreeSet::new();
    for f in &files {
        let fx: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let kind = fx["kind"].as_str().unwrap().to_string();
        let g = list(&fx, "g");
        let gsum: f32 = g.iter().map(|v| v.abs()).sum();
        let q_scale = list(&fx, "q").iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for fused in [true, false] {
            let path = if fused { "preset/fused" } else { "reference" };
            let (q, dx, dp) = run(&fx, fused);
            check(&name, &format!("{path} q"), &q, &list(&fx, "q"), q_scale);
            check(&name, &format!("{path} dx"), &dx, &list(&fx, "dx"), 0.0);
            for ((_, _, gk), d) in learned(&kind).iter().zip(&dp) {
                check(&name, &format!("{path} {gk}"), d, &list(&fx, gk), gsum);
            }
        }
        kinds.insert(kind);
    }
    for k in [
        "adabm_act",
        "adabm_act_pc",
        "adabm_weight",
        "wcc_weight",
        "pams_act",
        "pams_weight",
        "ddtb_act",
        "ddtb_weight",
    ] {
        assert!(
            kinds.contains(k),
            "no fixture of kind {k} in {}",
            dir.display()
        );
    }
    assert!(files.len() >= 25, "{} fixture files", files.len());
}
