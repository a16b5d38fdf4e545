//! ONNX Runtime for the export tests: the Python named by `ODM_ORT_PYTHON` (`.ci/run` makes a
//! throwaway venv with onnxruntime, numpy and Pillow) and `benches/onnx_parity.py`.

use std::path::Path;
use std::process::Command;

/// The Python with `onnxruntime`, or `None` (a printed skip) when `ODM_ORT_PYTHON` is unset;
/// under `CI=true` that is a failure.
pub fn python() -> Option<String> {
    match std::env::var("ODM_ORT_PYTHON") {
        Ok(p) => Some(p),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but ODM_ORT_PYTHON is unset (.ci/run installs onnxruntime into a venv)")
        }
        Err(_) => {
            eprintln!("ODM_ORT_PYTHON unset: skipping the ONNX Runtime parity check");
            None
        }
    }
}

/// `benches/onnx_parity.py --json` on `run` exported to `file`, over `data`; panics unless odm's
/// own SR images reproduce `odm eval`'s scores under the script's protocol (1e-6) and ONNX
/// Runtime's outputs score within 0.01 dB (Y-PSNR) and 0.001 (SSIM) of them, per set. Prints
/// the per-image agreement (identical values, largest difference).
pub fn parity(py: &str, run: &Path, file: &Path, data: &[&Path]) {
    let o = Command::new(py)
        .arg(super::repo().join("benches/onnx_parity.py"))
        .args(["--odm", super::odm_bin(), "--run", run.to_str().unwrap()])
        .arg("--onnx")
        .arg(file)
        .arg("--json")
        .arg("--data")
        .args(data)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    let name = run.file_name().unwrap().to_string_lossy();
    let res: serde_json::Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("{name}: no JSON from onnx_parity.py ({e}): {out}{err}"));
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    for i in res["images"].as_array().unwrap() {
        eprintln!(
            "{name} {}/{}: {:.4} % identical, max {}",
            i["set"].as_str().unwrap(),
            i["image"].as_str().unwrap(),
            100.0 * f(i, "identical_fraction"),
            i["max_diff"]
        );
    }
    let sets = res["sets"].as_array().unwrap();
    assert_eq!(sets.len(), data.len(), "{name}: {out}");
    for s in sets {
        let set = s["set"].as_str().unwrap();
        eprintln!(
            "{name} {set}: Y-PSNR {:.4} (odm eval) vs {:.4} (ONNX Runtime) dB, SSIM {:.5} vs {:.5}; {:.4} % identical, max {}",
            f(s, "eval_psnr"),
            f(s, "ort_psnr"),
            f(s, "eval_ssim"),
            f(s, "ort_ssim"),
            100.0 * f(s, "identical_fraction"),
            s["max_diff"]
        );
        // The script's protocol on odm's own SR images is odm eval's.
        assert!(
            (f(s, "odm_psnr") - f(s, "eval_psnr")).abs() <= 1e-6,
            "{name} {set}: {s}"
        );
        assert!(
            (f(s, "odm_ssim") - f(s, "eval_ssim")).abs() <= 1e-6,
            "{name} {set}: {s}"
        );
        assert!(
            (f(s, "ort_psnr") - f(s, "eval_psnr")).abs() <= 0.01,
            "{name} {set}: {s}"
        );
        assert!(
            (f(s, "ort_ssim") - f(s, "eval_ssim")).abs() <= 0.001,
            "{name} {set}: {s}"
        );
    }
    assert!(
        o.status.success(),
        "{name}: exit {:?}: {err}",
        o.status.code()
    );
}
