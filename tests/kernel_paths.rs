//! `ODM_KERNEL_PATH` (src/kernels/path.rs): `avx2` forces our f32 kernels onto gemm's AVX2 + FMA
//! micro-kernels (and the integer convolution off VNNI), recorded in provenance; a value the CPU
//! cannot honour is a one-line user error. On an AVX-512 machine a short QAT run (64 features, so
//! the 3×3 convs' depth 576 is split into chunks, src/kernels/sgemm.rs; ODM's quantizer and the
//! variance regularizer, sign-gated) ends with the same checkpoint bytes and scores on the AVX2
//! path as on the AVX-512 one. burn-flex's own operations (element-wise ops, reductions, Adam)
//! follow the CPU, not this variable: they ran on the same path in both runs. `odm infer` on the
//! run scores the same on the integer path's AVX2 kernels as on its VNNI ones.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn spec(name: &str) -> String {
    let train = common::repo().join("assets/cc0/train");
    let eval = common::repo().join("assets/cc0/holdout");
    format!(
        r#"(
    name: "{name}",
    seed: 3,
    scale: 2,
    model: Edsr(n_resblocks: 1, n_feats: 64),
    quant: Odm(w_bits: 4, a_bits: 4, calib_batches: 1),
    regularizer: Variance(lambda: 1e-4),
    gating: (rule: Sign),
    data: (train: ["{}"], eval: ["{}"], patch_size: 24, batch_size: 2),
    optim: Adam(lr: 1e-3),
    schedule: (iterations: 3),
    log_every: 1,
)"#,
        train.display(),
        eval.display()
    )
}

/// Run `spec` with `ODM_KERNEL_PATH` = `path` (unset for `None`) into `dir/<tag>`.
fn run(dir: &Path, tag: &str, path: Option<&str>) -> PathBuf {
    let f = common::write(dir, &format!("{tag}.ron"), &spec("paths"));
    let out = dir.join(tag);
    let mut c = Command::new(common::odm_bin());
    c.args(["run", f.to_str().unwrap(), "--quiet", "--threads", "2"])
        .args(["--out", out.to_str().unwrap()]);
    match path {
        Some(p) => c.env("ODM_KERNEL_PATH", p),
        None => c.env_remove("ODM_KERNEL_PATH"),
    };
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(run.join("checkpoint.safetensors").is_file());
    run
}

fn kernel_paths(run: &Path) -> String {
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("provenance.json")).unwrap())
            .unwrap();
    p["machine"]["kernel_paths"].as_str().unwrap().to_string()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_path_gives_the_avx512_paths_checkpoint_bytes() {
    if !std::arch::is_x86_feature_detected!("avx512f") {
        eprintln!("no AVX-512 on this CPU: one path only, nothing to compare");
        return;
    }
    let tmp = common::tempdir();
    let a = run(tmp.path(), "avx512", None);
    let b = run(tmp.path(), "avx2", Some("avx2"));
    assert!(
        kernel_paths(&a).contains("AVX-512 (x86-64-v4)"),
        "{}",
        kernel_paths(&a)
    );
    let kb = kernel_paths(&b);
    assert!(
        kb.contains("AVX2+FMA (x86-64-v3)") && kb.contains("ODM_KERNEL_PATH=avx2"),
        "{kb}"
    );
    for f in ["checkpoint.safetensors", "per_image.csv"] {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between the AVX-512 and AVX2 paths");
    }
    assert_eq!(common::losses(&a), common::losses(&b));
    // The integer path (`odm infer`): VNNI by default, AVX2 when forced; the same scores.
    let holdout = common::repo().join("assets/cc0/holdout");
    let infer = |path: Option<&str>, json: bool| {
        let mut c = Command::new(common::odm_bin());
        c.args([
            "infer",
            a.to_str().unwrap(),
            "--data",
            holdout.to_str().unwrap(),
        ]);
        if json {
            c.arg("--json");
        }
        match path {
            Some(p) => c.env("ODM_KERNEL_PATH", p),
            None => c.env_remove("ODM_KERNEL_PATH"),
        };
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let w = infer(Some("avx2"), false);
    assert!(w.contains("Some(Avx2)"), "{w}");
    assert_eq!(infer(None, true), infer(Some("avx2"), true));
}

#[test]
fn unknown_kernel_path_is_a_user_error() {
    let o = Command::new(common::odm_bin())
        .args(["bench", "--size", "small", "--reps", "1"])
        .env("ODM_KERNEL_PATH", "avx1024")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ODM_KERNEL_PATH") && err.trim().lines().count() == 1,
        "{err}"
    );
}

/// burn-flex's f32 sums run in one fixed order on every x86-64 machine: built without its `simd`
/// feature (Cargo.toml), `sum` and `sum_dim` add in index order, so losses, regularizer terms,
/// gate statistics and calibration means do not depend on the CPU's vector width. The input
/// tells the orders apart: 2^24 followed by ones gives 2^24 left to right (each + 1 rounds back
/// to even) but 2^24 + 56 in 8 lanes and 2^24 + 60 in 16 (the ones of the other lanes survive).
#[test]
fn burn_sums_add_left_to_right() {
    use burn::tensor::Tensor;
    use odm::backend::{Cpu, CpuTrain};
    let mut v = vec![1.0f32; 64];
    v[0] = 16_777_216.0;
    let d = Default::default();
    let sum = Tensor::<Cpu, 1>::from_floats(v.as_slice(), &d).sum();
    assert_eq!(sum.into_scalar(), 16_777_216.0, "sum over one tensor");
    let rows = Tensor::<Cpu, 1>::from_floats(v.repeat(3).as_slice(), &d).reshape([3, 64]);
    let by_row: Vec<f32> = rows.clone().sum_dim(1).into_data().to_vec().unwrap();
    assert_eq!(by_row, vec![16_777_216.0; 3], "sum over the last dimension");
    // Over the first dimension (what autodiff does to a broadcast operand's gradient).
    let cols = rows.swap_dims(0, 1).into_data().to_vec::<f32>().unwrap();
    let cols = Tensor::<Cpu, 1>::from_floats(cols.as_slice(), &d).reshape([64, 3]);
    let by_col: Vec<f32> = cols.sum_dim(0).into_data().to_vec().unwrap();
    assert_eq!(
        by_col,
        vec![16_777_216.0; 3],
        "sum over the first dimension"
    );
    let train = Tensor::<CpuTrain, 1>::from_floats(v.as_slice(), &d).mean();
    assert_eq!(
        train.into_scalar(),
        16_777_216.0 / 64.0,
        "mean on the training backend"
    );
}
