//! Acceptance (pretrained encoder, normalisation, freezing): a partial load of a LIIF-like
//! checkpoint (state dict under `model.sd`, keys prefixed `encoder.`, no upsampler or tail, extra
//! keys), its report, strict and shape errors naming the key; LIIF's symmetric pixel
//! normalisation against hand-derived values; frozen parameters bit-identical after training
//! while the trainable ones change; the run's provenance records the load and a fingerprint of
//! its data. Fixtures: `tests/fixtures/make_pretrained_fixture.py`.

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::commands::{run, RunOpts};
use odm::forward::{Capture, Fwd};
use odm::models::{Model, Params};
use odm::quant::QuantPlan;
use odm::spec::{EdsrSpec, InputNorm, ModelSpec};
use odm::train::init::{read, InitWeights};
use sha2::Digest;

fn tiny(norm: InputNorm) -> Model {
    let spec = EdsrSpec {
        n_resblocks: 1,
        n_feats: 4,
        input_norm: norm,
        ..Default::default()
    };
    Model::from_spec(&ModelSpec::Edsr(spec), 2)
}

fn fixture(name: &str) -> std::path::PathBuf {
    common::repo().join("tests/fixtures").join(name)
}

fn liif(name: &str, strict: bool) -> InitWeights {
    InitWeights {
        path: fixture(name),
        key: Some("model.sd".into()),
        strip_prefix: Some("encoder.".into()),
        strict,
        feature_scale: None,
        from_input_norm: None,
    }
}

#[test]
fn partial_load_reports_loaded_missing_and_unused() {
    let m = tiny(InputNorm::Symmetric);
    let (found, report) = read(&m, &liif("pretrained_tiny.pth", false)).unwrap();
    let mut loaded = report.loaded.clone();
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "body.0.conv1.bias",
            "body.0.conv1.weight",
            "body.0.conv2.bias",
            "body.0.conv2.weight",
            "body_end.bias",
            "body_end.weight",
            "head.bias",
            "head.weight"
        ]
    );
    assert_eq!(
        report.left_at_init,
        [
            "upsample.0.weight",
            "upsample.0.bias",
            "tail.weight",
            "tail.bias"
        ]
    );
    assert_eq!(
        report.unused,
        ["imnet.layers.0.weight", "sub_mean.bias", "sub_mean.weight"]
    );
    let sha = sha2::Sha256::digest(std::fs::read(fixture("pretrained_tiny.pth")).unwrap());
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(report.sha256, hex);
    // Values as the fixture script wrote them: arange·0.001 + offset.
    let hw = &found["head.weight"];
    assert_eq!(hw.shape, vec![4, 3, 3, 3]);
    assert!((hw.data[0] - 0.1).abs() < 1e-7 && (hw.data[5] - 0.105).abs() < 1e-7);
    assert!((found["body_end.bias"].data[3] - 0.803).abs() < 1e-7);
}

#[test]
fn strict_load_and_wrong_shape_are_errors_naming_the_key() {
    let m = tiny(InputNorm::Symmetric);
    let e = read(&m, &liif("pretrained_tiny.pth", true))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tail.0.0.weight") && e.contains("missing"),
        "{e}"
    );
    let e = read(&m, &liif("pretrained_tiny_wrong.pth", false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("body.0.body.2.weight") && e.contains("shape"),
        "{e}"
    );
    let bad_key = InitWeights {
        key: Some("model.state_dict".into()),
        ..liif("pretrained_tiny.pth", false)
    };
    let e = read(&m, &bad_key).unwrap_err().to_string();
    assert!(e.contains("no tensors under key"), "{e}");
}

/// With the head a centre-tap identity (channel c → c) and every body conv zero, the body output
/// (the captured feature) is the normalised input; with the tail zero, the output is the
/// restored zero: (0·0.5 + 0.5)·255 for `Symmetric`, the DIV2K mean·255 for `MeanShift`, 127.5
/// for `Centered` (whose feature is x − 127.5).
#[test]
fn symmetric_normalisation_by_hand() {
    for norm in [
        InputNorm::Symmetric,
        InputNorm::MeanShift,
        InputNorm::Centered,
    ] {
        let m = tiny(norm);
        let d = Default::default();
        let mut p = Params::<Cpu>::init(&m.decls(), 0, &d);
        for (i, n) in p.names.clone().iter().enumerate() {
            let len: usize = p.shapes[i].iter().product();
            let mut v = vec![0.0f32; len];
            if n == "head.weight" {
                for c in 0..3 {
                    v[((c * 3 + c) * 3 + 1) * 3 + 1] = 1.0;
                }
            }
            p.set(n, Tensor::from_data(TensorData::new(v, [len]), &d));
        }
        let px = [0.0f32, 51.0, 255.0];
        let x: Vec<f32> = (0..3).flat_map(|c| vec![px[c]; 4]).collect();
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(x, [1, 3, 2, 2]), &d);
        let plan = QuantPlan::fp();
        let cap = std::cell::RefCell::new(Capture::default());
        let f = Fwd {
            p: &p,
            plan: &plan,
            capture: Some(&cap),
            train: false,
            body_only: false,
        };
        let y: Vec<f32> = m.forward(&f, x).into_data().to_vec().unwrap();
        let feat: Vec<f32> = cap
            .into_inner()
            .feature
            .unwrap()
            .into_data()
            .to_vec()
            .unwrap();
        let mean = [0.4488f32, 0.4371, 0.4040];
        for c in 0..3 {
            let want = match norm {
                InputNorm::Symmetric => (px[c] / 255.0 - 0.5) / 0.5,
                InputNorm::MeanShift => px[c] - mean[c] * 255.0,
                InputNorm::Centered => px[c] - 127.5,
            };
            // Centre pixel of a 2×2 image: the 3×3 centre tap sees the pixel itself.
            assert!(
                (feat[c * 4] - want).abs() < 1e-5 * want.abs().max(1.0),
                "{norm:?} c{c}: {} vs {want}",
                feat[c * 4]
            );
            let out = match norm {
                InputNorm::Symmetric | InputNorm::Centered => 127.5,
                InputNorm::MeanShift => mean[c] * 255.0,
            };
            assert!(
                (y[c * 16] - out).abs() < 1e-4,
                "{norm:?} out c{c}: {}",
                y[c * 16]
            );
        }
    }
}

#[test]
fn frozen_parameters_stay_bit_identical_and_the_run_records_the_load() {
    let tmp = common::tempdir();
    let extra = format!(
        r#"init_from: Pretrained(path: "{}", key: Some("model.sd"), strip_prefix: Some("encoder."), strict: false),
    trainable: ["upsample", "tail"],"#,
        fixture("pretrained_tiny.pth").display()
    );
    let spec = common::toy_spec("frozen", 2, 4, &extra).replace(
        "Edsr(n_resblocks: 2, n_feats: 8)",
        "Edsr(n_resblocks: 1, n_feats: 4, input_norm: Symmetric)",
    );
    let f = common::write(tmp.path(), "f.ron", &spec);
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    };
    let dir = run(&f, &opts).unwrap().remove(0);
    let (ts, meta) = odm::record::read_safetensors(&dir.join("checkpoint.safetensors")).unwrap();
    let get = |n: &str| ts.iter().find(|t| t.name == n).unwrap().data.clone();
    let (found, _) = read(
        &tiny(InputNorm::Symmetric),
        &liif("pretrained_tiny.pth", false),
    )
    .unwrap();
    for n in ["head.weight", "body.0.conv2.weight", "body_end.bias"] {
        let a: Vec<u32> = get(n).iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = found[n].data.iter().map(|v| v.to_bits()).collect();
        assert_eq!(a, b, "{n} is frozen: bit-identical to the file");
        assert!(
            get(&format!("adam.m.{n}")).iter().all(|&v| v == 0.0),
            "{n}: no Adam state"
        );
    }
    // The trainable ones moved away from their seeded initial values.
    let m = tiny(InputNorm::Symmetric);
    let init = Params::<Cpu>::init(&m.decls(), 2, &Default::default());
    let i = init.idx("tail.weight");
    let t0: Vec<f32> = init.tensors[i].clone().into_data().to_vec().unwrap();
    assert_ne!(get("tail.weight"), t0, "tail trains");
    let frozen: Vec<String> = serde_json::from_str(&meta["frozen"]).unwrap();
    assert!(frozen.contains(&"head.weight".to_string()));
    assert!(!frozen.iter().any(|n| n.starts_with("tail")));
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(prov["init"]["left_at_init"].as_array().unwrap().len(), 4);
    assert_eq!(prov["init"]["loaded"].as_array().unwrap().len(), 8);
    assert_eq!(prov["init"]["sha256"].as_str().unwrap().len(), 64);
    // The data fingerprint: every training and evaluation image with its size and SHA-256.
    let data = prov["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "one training and one evaluation folder");
    let names: Vec<&str> = data[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["astronaut.png", "coffee.png", "rocket.jpg"]);
    let chelsea = common::repo().join("assets/cc0/holdout/chelsea.png");
    let bytes = std::fs::read(&chelsea).unwrap();
    let f = &data[1]["files"][0];
    assert_eq!(f["name"], "chelsea.png");
    assert_eq!(f["bytes"].as_u64().unwrap(), bytes.len() as u64);
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(f["sha256"].as_str().unwrap(), hex);

    // `odm export` publishes the FP run as weights only, with a card holding its SHA-256, and a
    // run can start from the file; exporting onto an existing file is refused.
    let zoo = tmp.path().join("zoo/tiny.safetensors");
    let (w, card) = odm::commands::export::export(&dir, &zoo).unwrap();
    let bytes = std::fs::read(&w).unwrap();
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(card).unwrap()).unwrap();
    let hex: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(card["sha256"].as_str().unwrap(), hex);
    assert_eq!(card["scores"][0]["set"], "holdout");
    let (zt, _) = odm::record::read_safetensors(&w).unwrap();
    let m = tiny(InputNorm::Symmetric);
    assert_eq!(zt.len(), m.decls().len(), "weights only");
    let (found, report) = read(&m, &InitWeights::plain(w.clone())).unwrap();
    assert!(report.left_at_init.is_empty() && report.unused.is_empty());
    assert_eq!(found["tail.weight"].data, get("tail.weight"));
    let e = odm::commands::export::export(&dir, &zoo)
        .unwrap_err()
        .to_string();
    assert!(e.contains("never overwritten"), "{e}");
}
