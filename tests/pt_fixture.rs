//! Loading an EDSR-PyTorch style `.pt` state dict and matching PyTorch's forward pass.
//!
//! Fixture (committed, < 50 kB): `tests/fixtures/edsr_tiny_x2.pt` and
//! `tests/fixtures/edsr_tiny_x2_ref.json`, made by `tests/fixtures/make_edsr_fixture.py` with
//! torch 2.15.0 (PyPI wheel 2.15.0+cu132, run on CPU) from the repository root:
//!
//! ```text
//! python3 -m venv /work/pt-venv && /work/pt-venv/bin/pip install torch numpy
//! /work/pt-venv/bin/python tests/fixtures/make_edsr_fixture.py
//! ```
//!
//! The script defines its own minimal EDSR with EDSR-PyTorch's state-dict keys (`sub_mean`,
//! `head.0`, `body.{i}.body.{0,2}`, `body.2`, `tail.0.0`, `tail.1`, `add_mean`) for n_resblocks=2,
//! n_feats=8, scale=2, res_scale=1, rgb_range=1; `torch.manual_seed(0)` and default init; the
//! float32 state dict is saved with `torch.save` (zip format). The input is
//! `torch.manual_seed(1); torch.rand(1, 3, 6, 7)` (float32, stored exactly in the JSON) and the
//! reference output is the same model run in float64 on that input. PyTorch is not a dependency
//! of this project.

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::forward::Fwd;
use odm::models::Model;
use odm::quant::QuantPlan;
use odm::spec::{EdsrSpec, ModelSpec};
use odm::train::state::{load_weights, read_weights};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn model(n_feats: usize) -> Model {
    Model::from_spec(
        &ModelSpec::Edsr(EdsrSpec {
            n_resblocks: 2,
            n_feats,
            res_scale: 1.0,
            rgb_range: 1.0,
            ..Default::default()
        }),
        2,
    )
}

struct Reference {
    input_shape: Vec<usize>,
    input: Vec<f32>,
    output_shape: Vec<usize>,
    output: Vec<f64>,
    head_weight: Vec<f32>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture("edsr_tiny_x2_ref.json")).expect("read ref json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("parse ref json");
    let f64s = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap_or_else(|| panic!("{k} is not an array"))
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    let usizes = |k: &str| -> Vec<usize> { f64s(k).into_iter().map(|x| x as usize).collect() };
    // The JSON holds the exact float32 values (as doubles), so this cast is lossless.
    let f32s = |k: &str| -> Vec<f32> { f64s(k).into_iter().map(|x| x as f32).collect() };
    Reference {
        input_shape: usizes("input_shape"),
        input: f32s("input"),
        output_shape: usizes("output_shape"),
        output: f64s("output"),
        head_weight: f32s("head_weight"),
    }
}

#[test]
fn pt_forward_matches_pytorch_float64() -> anyhow::Result<()> {
    let r = reference();
    assert_eq!(r.input_shape, vec![1, 3, 6, 7]);
    assert_eq!(r.output_shape, vec![1, 3, 12, 14]);

    let device = Default::default();
    let m = model(8);
    let params = load_weights::<Cpu>(&m, &fixture("edsr_tiny_x2.pt"), 0, &device)?;
    let plan = QuantPlan::fp();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(r.input.clone(), [1, 3, 6, 7]), &device);
    let y = m.forward(&Fwd::plain(&params, &plan), x);
    assert_eq!(y.dims(), [1, 3, 12, 14]);
    let y = y.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    assert_eq!(y.len(), r.output.len());
    let max_err = y
        .iter()
        .zip(&r.output)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0f64, f64::max);
    eprintln!("max |y - ref| = {max_err:e}");
    assert!(max_err < 1e-5, "max |y - ref| = {max_err:e}");
    Ok(())
}

#[test]
fn pt_tensors_are_bitwise_the_saved_float32() -> anyhow::Result<()> {
    let r = reference();
    let m = model(8);
    let found = read_weights(&m, &fixture("edsr_tiny_x2.pt"))?;
    // Every declared tensor is found under its EDSR-PyTorch key.
    for d in m.decls() {
        let t = found
            .get(&d.name)
            .unwrap_or_else(|| panic!("{} missing", d.name));
        assert_eq!(t.shape, d.shape, "{}", d.name);
    }
    let hw = &found["head.weight"];
    assert_eq!(hw.shape, vec![8, 3, 3, 3]);
    assert_eq!(hw.data.len(), r.head_weight.len());
    for (i, (a, b)) in hw.data.iter().zip(&r.head_weight).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "head.weight[{i}]: {a} vs {b}");
    }
    Ok(())
}

#[test]
fn pt_wrong_width_is_a_shape_error() {
    let err = load_weights::<Cpu>(
        &model(4),
        &fixture("edsr_tiny_x2.pt"),
        0,
        &Default::default(),
    )
    .expect_err("loading an n_feats=8 checkpoint into an n_feats=4 model must fail");
    let msg = err.to_string();
    assert!(msg.contains("shape"), "unexpected error: {msg}");
}
