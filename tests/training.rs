//! Acceptance: a toy training run's loss falls, and the trained toy model beats bicubic PSNR on
//! the held-out CC0 image (chelsea.png, never trained on). Also: `odm eval` on the run's
//! checkpoint reproduces the run's own final numbers.

mod common;

use odm::commands::{run, RunOpts};
use std::process::Command;

#[test]
fn toy_training_falls_and_beats_bicubic_on_held_out_image() {
    let tmp = common::tempdir();
    let train = common::repo().join("assets/cc0/train");
    let eval = common::repo().join("assets/cc0/holdout");
    let spec = format!(
        r#"(
    name: "toy-beats-bicubic",
    seed: 3,
    scale: 4,
    model: Edsr(n_resblocks: 2, n_feats: 32),
    data: (train: ["{}"], eval: ["{}"], patch_size: 96, batch_size: 4),
    optim: Adam(lr: 1e-3),
    schedule: (iterations: 400, lr_decay: Step(every: 150, gamma: 0.5)),
    log_every: 1,
)"#,
        train.display(),
        eval.display()
    );
    let f = common::write(tmp.path(), "toy.ron", &spec);
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    };
    let dir = run(&f, &opts).unwrap().remove(0);
    let losses: Vec<f64> = common::losses(&dir)
        .into_iter()
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    let head: f64 = losses[..20].iter().sum::<f64>() / 20.0;
    let tail: f64 = losses[losses.len() - 20..].iter().sum::<f64>() / 20.0;
    assert!(
        tail < 0.5 * head,
        "loss did not fall: first 20 mean {head}, last 20 mean {tail}"
    );

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let e = &summary["eval"][0];
    let (m, b) = (
        e["psnr_y"].as_f64().unwrap(),
        e["bicubic_psnr_y"].as_f64().unwrap(),
    );
    eprintln!("held-out chelsea ×4: model {m:.3} dB, bicubic {b:.3} dB");
    assert!(m > b, "model {m} dB does not beat bicubic {b} dB");

    // Bicubic of the same image computed independently through the bicubic command.
    let bic = odm::commands::bicubic_cmd(&eval, 4).unwrap();
    assert!((bic.psnr_y - b).abs() < 1e-9);

    // `odm eval --json` on the checkpoint gives the run's final figure.
    let v = common::odm_json(&[
        "eval".as_ref(),
        "--json".as_ref(),
        "--checkpoint".as_ref(),
        dir.as_os_str(),
        "--data".as_ref(),
        eval.as_os_str(),
    ]);
    assert_eq!(v.len(), 1, "exactly one line");
    let v = &v[0];
    assert_eq!(v["set"], "holdout");
    assert_eq!(v["images"], 1);
    assert!((v["psnr_y"].as_f64().unwrap() - m).abs() < 1e-9);

    // W8A8 everywhere, head and tail included (`head_tail_8bit`): calibration runs full forward
    // passes, so the tail's input range is the tail's real one and the model stays within 0.5 dB
    // of FP. (A body-only calibration never saw the tail's input and collapsed its range.)
    let q8 = format!(
        r#"(
    name: "toy-w8a8-head-tail",
    seed: 3,
    scale: 4,
    model: Edsr(n_resblocks: 2, n_feats: 32),
    init_from: Checkpoint("{}"),
    quant: MinMax(w_bits: 8, a_bits: 8, head_tail_8bit: true, calib_batches: 2),
    data: (train: ["{}"], eval: ["{}"], patch_size: 96, batch_size: 4),
    optim: Adam(lr: 1e-9),
    schedule: (iterations: 1),
)"#,
        dir.display(),
        train.display(),
        eval.display()
    );
    let f8 = common::write(tmp.path(), "w8a8.ron", &q8);
    let dir8 = run(&f8, &opts).unwrap().remove(0);
    let map = std::fs::read_to_string(dir8.join("quant_map.txt")).unwrap();
    assert!(
        map.lines()
            .any(|l| l.starts_with("tail ") && l.contains(" 8 ")),
        "{map}"
    );
    let s8: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir8.join("summary.json")).unwrap()).unwrap();
    let q = s8["eval"][0]["psnr_y"].as_f64().unwrap();
    eprintln!("held-out chelsea ×4: W8A8 with 8-bit head/tail {q:.3} dB, FP {m:.3} dB");
    assert!(q > m - 0.5, "8-bit head/tail model {q} dB vs FP {m} dB");
}

/// `$ODM_DATA/...` data paths resolve for training, evaluation and the provenance's data
/// fingerprint alike (here ODM_DATA points at the committed CC0 photos).
#[test]
fn odm_data_paths_resolve_everywhere() {
    let tmp = common::tempdir();
    let spec = r#"(
    name: "odm-data",
    scale: 4,
    model: Edsr(n_resblocks: 1, n_feats: 8),
    data: (train: ["$ODM_DATA/train"], eval: ["$ODM_DATA/holdout"], patch_size: 96, batch_size: 2),
    schedule: (iterations: 1),
)"#;
    let f = common::write(tmp.path(), "d.ron", spec);
    let out = Command::new(common::odm_bin())
        .arg("run")
        .arg(&f)
        .arg("--out")
        .arg(tmp.path().join("results"))
        .env("ODM_DATA", common::repo().join("assets/cc0"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_dir(tmp.path().join("results"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let prov: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("provenance.json")).unwrap())
            .unwrap();
    assert_eq!(prov["data"][0]["files"].as_array().unwrap().len(), 3);
    assert_eq!(prov["data"][1]["files"][0]["name"], "chelsea.png");
}
