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
fn bad_lr_milestones() {
    let sched = |m: &str| {
        common::toy_spec("bad", 1, 10, "").replace(
            "schedule: (iterations: 10)",
            &format!(
                "schedule: (iterations: 10, lr_decay: MultiStep(milestones: {m}, gamma: 0.5))"
            ),
        )
    };
    check(
        "unsorted.ron",
        &sched("[6, 4]"),
        &["schedule.lr_decay.milestones", "increasing"],
    );
    check(
        "late.ron",
        &sched("[4, 10]"),
        &["schedule.lr_decay.milestones", "1..10"],
    );
    check(
        "none.ron",
        &sched("[]"),
        &["schedule.lr_decay.milestones", "Constant"],
    );
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

/// `odm check FILE --set ...`: stdout, asserting success.
fn check_ok(file: &Path, sets: &[&str]) -> String {
    let mut c = Command::new(common::odm_bin());
    c.arg("check").arg(file);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{sets:?}: {err}");
    String::from_utf8(o.stdout).unwrap()
}

/// The `// run NAME-HASH: ...` line of `odm check`.
fn run_line(out: &str) -> &str {
    out.lines().next().unwrap()
}

/// Issue 30, part 4: `--set` takes the RON a spec file takes; the tagged-map form of earlier
/// command lines means the same; both give the spec (and hash) of a file that writes the fields.
#[test]
fn set_takes_the_ron_of_a_spec_file() {
    let tmp = common::tempdir();
    let plain = common::write(tmp.path(), "ok.ron", &common::toy_spec("ok", 1, 2, ""));
    let direct = common::write(
        tmp.path(),
        "direct.ron",
        &common::toy_spec(
            "ok",
            1,
            2,
            "gating: (rule: Sign), quant: Pams(w_bits: 2, a_bits: 2), regularizer: Mismatch(lambda: 1e-5),",
        ),
    );
    let want = check_ok(&direct, &[]);
    let ron = check_ok(
        &plain,
        &[
            "gating.rule=Sign",
            "quant=Pams(w_bits: 2, a_bits: 2)",
            "regularizer=Mismatch(lambda: 1e-5)",
        ],
    );
    let tagged = check_ok(
        &plain,
        &[
            r#"gating.rule="Sign""#,
            r#"quant={"Pams": {"w_bits": 2, "a_bits": 2}}"#,
            r#"regularizer={"Mismatch": {"lambda": 1e-5}}"#,
        ],
    );
    assert_eq!(run_line(&ron), run_line(&want));
    assert_eq!(run_line(&tagged), run_line(&want));
    assert_ne!(run_line(&check_ok(&plain, &[])), run_line(&want));
    // `None` is an absent option in one field and a unit variant in another.
    let out = check_ok(
        &plain,
        &["schedule.grad_clip=None", "offsets=None", "optim.lr=2e-3"],
    );
    assert!(
        out.contains("grad_clip: None") && out.contains("lr: 0.002"),
        "{out}"
    );
}

/// A bad `--set` value names the field and what it allows, on one line, exit 2, nothing written.
#[test]
fn bad_set_value_names_the_field_and_the_allowed_values() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "ok.ron", &common::toy_spec("ok", 1, 2, ""));
    let cases: [(&str, &[&str]); 5] = [
        (
            "gating.rule=Sgn",
            &[
                "--set gating.rule=Sgn",
                "field `gating.rule`",
                "`Never`",
                "`Sign`",
                "`CosineSoft`",
            ],
        ),
        (
            "gating.rule=Sign(x: 1)",
            &["field `gating.rule`", "`Sign` takes no fields"],
        ),
        (
            "regularizer=Mismatch",
            &["field `regularizer`", "Mismatch(lambda: …, residual: …)"],
        ),
        (
            "schedule.iteratons=3",
            &["unknown field `iteratons`", "`iterations`"],
        ),
        (
            "quant=Pams(w_bits: 2",
            &[
                "--set quant",
                "not a RON value",
                "Pams(w_bits: 2, a_bits: 2)",
            ],
        ),
    ];
    for (set, must) in cases {
        let (code, msg) = run_bad_with(tmp.path(), &f, &["--set", set]);
        assert_eq!(code, 2, "{set}: {msg}");
        assert!(
            msg.contains("ok.ron") || set.starts_with("quant"),
            "{set}: {msg}"
        );
        for m in must {
            assert!(msg.contains(m), "{set}: must mention {m:?}: {msg}");
        }
        assert!(!msg.contains("invalid type: null"), "{set}: {msg}");
    }
}

/// `Variant(field: …)` on a unit variant in a spec file: the variant takes no fields (with the
/// file's line and column), not RON's "Expected comma".
#[test]
fn fields_on_a_unit_variant_in_a_file() {
    let text = common::toy_spec("bad", 1, 2, "gating: (rule: Sign(per_tensor: false)),");
    check(
        "unitfields.ron",
        &text,
        &[
            "unitfields.ron:11:",
            "field `gating.rule`",
            "`Sign` takes no fields",
        ],
    );
}

/// `odm check --set` validates an override without running anything.
#[test]
fn check_validates_set_overrides_without_running() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "ok.ron", &common::toy_spec("ok", 1, 2, ""));
    let out = check_ok(&f, &["schedule.iterations=7"]);
    assert!(out.contains("iterations: 7"), "{out}");
    let o = Command::new(common::odm_bin())
        .current_dir(tmp.path())
        .args(["check", "ok.ron", "--set", "schedule.iterations=0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("schedule.iterations") && err.contains("at least 1"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!tmp.path().join("results").exists());
}
