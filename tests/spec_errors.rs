//! Acceptance: bad specs exit 2 with one line naming the file and the field or path, and leave
//! no results folder behind.

mod common;

use std::path::Path;
use std::process::Command;

fn run_bad(dir: &Path, file: &Path) -> (i32, String) {
    run_bad_with(dir, file, &[])
}

fn run_bad_with(dir: &Path, file: &Path, args: &[&str]) -> (i32, String) {
    let out_dir = dir.join("results");
    let out = Command::new(common::odm_bin())
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(&out_dir)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let leftovers = std::fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        leftovers,
        0,
        "a results folder was left behind for {}",
        file.display()
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

fn check(name: &str, text: &str, must: &[&str]) {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), name, text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "exit code for {name}: {msg}");
    assert!(
        msg.contains(name),
        "message must name the file {name}: {msg}"
    );
    for m in must {
        assert!(
            msg.contains(m),
            "message for {name} must mention {m:?}: {msg}"
        );
    }
}

#[test]
fn malformed_file() {
    let text = common::toy_spec("bad", 1, 2, "").replace("scale: 2,", "scale: 2,,");
    check("malformed.ron", &text, &["malformed.ron:4:"]);
}

#[test]
fn unknown_field() {
    let text = common::toy_spec("bad", 1, 2, "learning_rate: 0.1,");
    check("unknown.ron", &text, &["learning_rate"]);
}

#[test]
fn scale_five() {
    let text = common::toy_spec("bad", 1, 2, "").replace("scale: 2,", "scale: 5,");
    check("scale5.ron", &text, &["scale", "2, 3, 4", ":4:"]);
}

#[test]
fn zero_iterations() {
    let text = common::toy_spec("bad", 1, 0, "");
    check("zero.ron", &text, &["schedule.iterations", "at least 1"]);
}

#[test]
fn missing_data_folder() {
    let text =
        common::toy_spec("bad", 1, 2, "").replace("assets/cc0/train", "assets/cc0/no-such-folder");
    check("missing.ron", &text, &["data.train", "no-such-folder"]);
}

#[test]
fn empty_data_folder() {
    let tmp = common::tempdir();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let text = common::toy_spec("bad", 1, 2, "").replace(
        &common::repo()
            .join("assets/cc0/train")
            .display()
            .to_string(),
        &empty.display().to_string(),
    );
    let f = common::write(tmp.path(), "empty.ron", &text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("empty") && msg.contains("no images"), "{msg}");
}

#[test]
fn corrupt_image_is_an_error_naming_the_file() {
    let tmp = common::tempdir();
    let d = tmp.path().join("imgs");
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(
        common::repo().join("assets/cc0/train/coffee.png"),
        d.join("a.png"),
    )
    .unwrap();
    std::fs::write(d.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really a png").unwrap();
    let text = common::toy_spec("bad", 1, 2, "").replace(
        &common::repo()
            .join("assets/cc0/train")
            .display()
            .to_string(),
        &d.display().to_string(),
    );
    let f = common::write(tmp.path(), "corrupt.ron", &text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("broken.png") && msg.contains("corrupt"),
        "{msg}"
    );
}

#[test]
fn image_smaller_than_a_patch() {
    let text = common::toy_spec("bad", 1, 2, "").replace("patch_size: 32", "patch_size: 1000");
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "bigpatch.ron", &text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("smaller than one 1000×1000 patch"), "{msg}");
}

#[test]
fn check_prints_effective_spec_with_defaults() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "ok.ron", &common::toy_spec("ok", 3, 2, ""));
    let out = Command::new(common::odm_bin())
        .arg("check")
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // Defaults made explicit: res_scale 1.0, rgb_range 255.0, beta2 0.999.
    assert!(
        text.contains("res_scale: 1.0") && text.contains("rgb_range: 255.0"),
        "{text}"
    );
    assert!(text.contains("beta2: 0.999"), "{text}");
    assert!(!tmp.path().join("results").exists());
}

#[test]
fn eval_image_too_small_for_ssim_is_an_error() {
    let tmp = common::tempdir();
    let d = tmp.path().join("tiny");
    std::fs::create_dir(&d).unwrap();
    image::RgbImage::from_pixel(14, 14, image::Rgb([9, 9, 9]))
        .save(d.join("t.png"))
        .unwrap();
    let text = common::toy_spec("bad", 1, 2, "").replace(
        &common::repo()
            .join("assets/cc0/holdout")
            .display()
            .to_string(),
        &d.display().to_string(),
    );
    let f = common::write(tmp.path(), "tiny.ron", &text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("tiny/t.png: image is 14×14") && msg.contains("SSIM"),
        "{msg}"
    );
}

/// Issue 6: in a build without the `cuda` feature, a CUDA device (in the file, or as
/// `--device cuda:0`) is an input error naming the field and the fix.
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_device_needs_the_cuda_feature() {
    let text = common::toy_spec("bad", 1, 2, "device: Cuda(0),");
    check(
        "cuda.ron",
        &text,
        &["cuda.ron:11:5:", "field `device`", "--features cuda", "Cpu"],
    );
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "flag.ron", &common::toy_spec("bad", 1, 2, ""));
    let (code, msg) = run_bad_with(tmp.path(), &f, &["--device", "cuda:0"]);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("flag.ron")
            && msg.contains("field `device`")
            && msg.contains("--features cuda"),
        "{msg}"
    );
}

/// Issue 6: with the `cuda` feature on a machine without a CUDA driver or GPU, `Cuda(0)` is an
/// input error (no panic, no results folder). Skipped where a GPU answers.
#[cfg(feature = "cuda")]
#[test]
fn cuda_device_without_a_gpu() {
    if let Ok(p) = odm::backend::pick(odm::spec::Device::Cuda(0)) {
        eprintln!("SKIP: a GPU is present ({})", p.describe(1));
        return;
    }
    let text = common::toy_spec("bad", 1, 2, "device: Cuda(0),");
    check(
        "cuda.ron",
        &text,
        &[
            "cuda.ron:11:5:",
            "field `device`",
            "Cuda(0) asked",
            "use device: Cpu",
        ],
    );
}

#[test]
fn bad_device_flag() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "ok.ron", &common::toy_spec("ok", 1, 2, ""));
    let (code, msg) = run_bad_with(tmp.path(), &f, &["--device", "tpu"]);
    assert_eq!(code, 2, "{msg}");
    assert!(msg.contains("--device") && msg.contains("cuda:N"), "{msg}");
}

#[test]
fn trainable_prefix_that_names_no_parameter() {
    let text = common::toy_spec("bad", 1, 2, r#"trainable: ["upsample", "tail2"],"#);
    check(
        "trainable.ron",
        &text,
        &["trainable", "\"tail2\"", "trainable.ron:"],
    );
}

#[test]
fn pretrained_weights_of_the_wrong_shape() {
    let pth = common::repo().join("tests/fixtures/pretrained_tiny_wrong.pth");
    let extra = format!(
        r#"init_from: Pretrained(path: "{}", key: Some("model.sd"), strip_prefix: Some("encoder."), strict: false),"#,
        pth.display()
    );
    let text = common::toy_spec("bad", 1, 2, &extra).replace(
        "Edsr(n_resblocks: 2, n_feats: 8)",
        "Edsr(n_resblocks: 1, n_feats: 4)",
    );
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "wrong.ron", &text);
    let (code, msg) = run_bad(tmp.path(), &f);
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("body.0.body.2.weight") && msg.contains("shape"),
        "{msg}"
    );
}
