//! Acceptance (issues 16 and 30, ONNX export): `odm export RUN --onnx` on toy EDSRs trained
//! briefly with each static preset, checked by `benches/onnx_parity.py` in ONNX Runtime against
//! `odm eval` on the held-out CC0 photo, Set5 and Set14: per set, the Y-PSNR and SSIM of ONNX
//! Runtime's outputs (odm's protocol, reimplemented in the script and checked on odm's own SR
//! images) within 0.01 dB and 0.001 of `odm eval`'s; per image, the fraction of identical
//! values and the largest difference are printed, not required (float rounding flips a few
//! quantizer codes; `tests/onnx_audit.rs` checks that those flips are rounding). Also the
//! graph's structure (Q/DQ pairs per quantized point and conv, DepthToSpace), on EDSR, RDN and
//! SRResNet; the real EDSR-baseline ×4 (the zoo FP model, and PAMS W2A2 after 2 iterations
//! from it); and the refusals (a dynamic preset, an existing file), each one line with exit
//! code 2.
//!
//! The parity part needs a Python with `onnxruntime` and `numpy`, named by `ODM_ORT_PYTHON`
//! (`.ci/run` makes a throwaway venv); without it the test says so and skips that part, except
//! under `CI=true`, where a missing interpreter is a failure.

mod common;

use std::path::Path;
use std::process::Command;

fn export(run: &Path, file: &Path) -> std::process::Output {
    Command::new(common::odm_bin())
        .args([
            "export",
            run.to_str().unwrap(),
            "--onnx",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap()
}

/// Counts of each operator in a serialized ONNX model (op_type strings are stored verbatim).
fn count(bytes: &[u8], op: &str) -> usize {
    bytes
        .windows(op.len() + 2)
        .filter(|w| w[0] == 0x22 && w[1] as usize == op.len() && &w[2..] == op.as_bytes())
        .count()
}

#[test]
#[cfg_attr(
    odm_no_shared_data,
    ignore = "shared data not found: set ODM_DATA to the folder holding benchmark/"
)]
fn static_presets_export_and_match_onnx_runtime() {
    let tmp = common::tempdir();
    // (name, backbone (None: the toy EDSR), quantizer, quantized activations, weights).
    let rdn = "model: Rdn(d: 2, c: 2, g: 4, g0: 8),";
    let srr = "model: SrResNet(n_resblocks: 2, n_feats: 16),";
    let presets = [
        ("pams", None, "quant: Pams(w_bits: 2, a_bits: 2),", 6, 4),
        (
            "ddtb",
            None,
            "quant: DdtbStatic(w_bits: 4, a_bits: 4),",
            6,
            4,
        ),
        (
            "odm",
            None,
            "quant: Odm(w_bits: 3, a_bits: 3), offsets: AllBoth,",
            4,
            4,
        ),
        (
            "minmax",
            None,
            "quant: MinMax(w_bits: 8, a_bits: 8, per_channel: true),",
            4,
            4,
        ),
        ("rdn", Some(rdn), "quant: Pams(w_bits: 4, a_bits: 4),", 7, 8),
        (
            "srresnet",
            Some(srr),
            "quant: DdtbStatic(w_bits: 4, a_bits: 4),",
            4,
            4,
        ),
    ];
    let Some(data) = common::data_root() else {
        return;
    };
    let (set5, set14) = (data.join("benchmark/Set5"), data.join("benchmark/Set14"));
    let holdout = common::repo().join("assets/cc0/holdout");
    for (name, model, extra, acts, weights) in presets {
        let mut text = common::toy_spec(name, 1, 4, extra);
        if let Some(m) = model {
            text = text.replace("model: Edsr(n_resblocks: 2, n_feats: 8),", m);
        }
        let run = common::run_text(tmp.path(), name, &text);
        let file = tmp.path().join(format!("{name}.onnx"));
        let o = export(&run, &file);
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let bytes = std::fs::read(&file).unwrap();
        // One Q/DQ pair per quantized activation point, one DequantizeLinear per quantized conv;
        // ×2 is one DepthToSpace (RDN's blocks: input, second dense conv, LFF, plus the GFF 1×1
        // input; SRResNet: both convs of both blocks).
        assert_eq!(count(&bytes, "QuantizeLinear"), acts, "{name}");
        assert_eq!(count(&bytes, "DequantizeLinear"), acts + weights, "{name}");
        assert_eq!(count(&bytes, "DepthToSpace"), 1, "{name}");
        // An existing file is never overwritten.
        let o = export(&run, &file);
        assert_eq!(o.status.code(), Some(2), "{name}");
        let Some(py) = common::ort::python() else {
            continue;
        };
        common::ort::parity(&py, &run, &file, &[&holdout, &set5, &set14]);
    }
}

/// The real model: EDSR-baseline ×4 from the zoo, in FP and after 2 PAMS W2A2 iterations (the
/// placement whose quantized residual stream keeps float-noise flips local; see the README on
/// the conv-input placement), on the CC0 photo, Set5 and Set14.
#[test]
#[cfg_attr(
    odm_no_shared_data,
    ignore = "shared data not found: set ODM_DATA to the folder holding benchmark/"
)]
fn edsr_baseline_from_the_zoo_matches_onnx_runtime() {
    let Some(py) = common::ort::python() else {
        return;
    };
    let Some(data) = common::data_root() else {
        return;
    };
    let (set5, set14) = (data.join("benchmark/Set5"), data.join("benchmark/Set14"));
    let tmp = common::tempdir();
    let holdout = common::repo().join("assets/cc0/holdout");
    for (name, extra, iterations) in [
        ("zoo_fp", "", 1),
        (
            "zoo_pams",
            "quant: Pams(w_bits: 2, a_bits: 2, calib_batches: 1),",
            2,
        ),
    ] {
        let text = common::zoo_spec(name, iterations, extra);
        let run = common::run_text(tmp.path(), name, &text);
        let file = tmp.path().join(format!("{name}.onnx"));
        let o = export(&run, &file);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // PAMS quantizes each block's input (conv1's and the shortcut's), conv2's input and the
        // residual branch's output: 3 points × 16 blocks.
        let q = count(&std::fs::read(&file).unwrap(), "QuantizeLinear");
        assert_eq!(q, if extra.is_empty() { 0 } else { 48 }, "{name}");
        common::ort::parity(&py, &run, &file, &[&holdout, &set5, &set14]);
    }
}

#[test]
fn dynamic_presets_are_refused() {
    let tmp = common::tempdir();
    let cases = [
        ("daq", "quant: Daq(w_bits: 4, a_bits: 4),", "DAQ"),
        (
            "gate",
            "quant: Ddtb(w_bits: 4, a_bits: 4, dynamic_ratio: 0.5),",
            "DDTB's gate",
        ),
    ];
    for (name, extra, what) in cases {
        let run = common::toy_run(tmp.path(), name, 4, extra);
        let o = export(&run, &tmp.path().join(format!("{name}.onnx")));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(what) && err.trim().lines().count() == 1,
            "{err}"
        );
        assert!(!tmp.path().join(format!("{name}.onnx")).exists());
    }
}
