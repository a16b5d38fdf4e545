//! Shared helpers for integration tests.
#![allow(dead_code)]

pub mod ort;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh folder under the system's temporary directory, removed when dropped. (Our own, not
/// the `tempfile` crate: as a dev-dependency it switched on features of `fastrand` and `rustix`
/// that burn also uses, so `cargo test` after `cargo run` rebuilt the whole tree.)
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new empty [`TempDir`], unique per process, test thread and call.
pub fn tempdir() -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let thread = format!("{:?}", std::thread::current().id());
    let id: String = thread.chars().filter(char::is_ascii_digit).collect();
    let dir = std::env::temp_dir().join(format!(
        "odm-test-{}-{id}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// The shared data root (`ODM_DATA`, else `../shared/data`), or `None` with a printed reason.
/// Under `CI=true` missing data is a failure, never a silent skip.
pub fn data_root() -> Option<PathBuf> {
    let root = odm::spec::data_root();
    if root.join("benchmark").is_dir() {
        Some(root)
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true: shared data not found at {} (set ODM_DATA to the folder holding benchmark/ and train/)",
            root.display()
        );
        eprintln!(
            "SKIP: shared data not found at {} (set ODM_DATA to the folder holding benchmark/ and train/)",
            root.display()
        );
        None
    }
}

/// The repository root (tests run with the package root as working directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The compiled `odm` binary.
pub fn odm_bin() -> &'static str {
    env!("CARGO_BIN_EXE_odm")
}

/// Run `odm` with `args`, assert that it succeeded (printing its stderr if not), and return
/// its standard output.
pub fn odm_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    String::from_utf8(odm_output_ok(args).stdout).unwrap()
}

/// Run `odm` with `args`, assert that it succeeded (printing its stderr if not), and return
/// its whole output (standard output and standard error).
pub fn odm_output_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let out = std::process::Command::new(odm_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "odm {:?} failed: {}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Run `odm` with `args`, assert that it fails with exit code 2 and a one-line error containing
/// `want`, and return that line.
pub fn odm_user_error<S: AsRef<std::ffi::OsStr>>(args: &[S], want: &str) -> String {
    let o = std::process::Command::new(odm_bin())
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(want) && err.trim().lines().count() == 1,
        "{err}"
    );
    err
}

/// Run `odm … --json` (the caller passes `--json`) and parse its standard output: one JSON
/// object per line.
pub fn odm_json<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Vec<serde_json::Value> {
    odm_ok(args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A toy spec: a tiny EDSR trained for a few iterations on the committed CC0 photos.
pub fn toy_spec(name: &str, seed: u64, iterations: usize, extra: &str) -> String {
    let train = repo().join("assets/cc0/train");
    let eval = repo().join("assets/cc0/holdout");
    format!(
        r#"(
    name: "{name}",
    seed: {seed},
    scale: 2,
    model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["{}"], eval: ["{}"], patch_size: 32, batch_size: 2),
    optim: Adam(lr: 1e-3),
    schedule: (iterations: {iterations}),
    log_every: 1,
    checkpoint_every: 2,
    {extra}
)"#,
        train.display(),
        eval.display()
    )
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Loss values (metric `l1`) from a run's metrics.csv, in step order.
pub fn losses(run_dir: &Path) -> Vec<(usize, String)> {
    std::fs::read_to_string(run_dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[3] == "l1").then(|| (f[0].parse().unwrap(), f[4].to_string()))
        })
        .collect()
}

/// Run a toy spec (`toy_spec(name, 1, iterations, extra)`, or `text` when given) into
/// `dir/results` and return its run folder.
pub fn toy_run(dir: &Path, name: &str, iterations: usize, extra: &str) -> PathBuf {
    let text = toy_spec(name, 1, iterations, extra);
    run_text(dir, name, &text)
}

/// Run spec `text` (named `name`) into `dir/results` and return its run folder.
pub fn run_text(dir: &Path, name: &str, text: &str) -> PathBuf {
    let f = write(dir, &format!("{name}.ron"), text);
    let out = dir.join("results");
    odm_ok(&[
        "run",
        f.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .unwrap()
}

/// `odm check` refuses the toy spec with `extra`: exit 2 and one line naming `field`.
pub fn assert_refused(dir: &Path, extra: &str, field: &str) {
    let f = write(dir, "bad.ron", &toy_spec("bad", 1, 3, extra));
    let o = std::process::Command::new(odm_bin())
        .args(["check", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{extra}");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains(field), "{extra}: {e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

/// A spec that starts EDSR-baseline ×4 from the zoo FP model and trains it `iterations` steps
/// (lr 1e-6) on the committed CC0 photos, evaluating on the held-out one; `extra` adds fields
/// (a quantizer).
pub fn zoo_spec(name: &str, iterations: usize, extra: &str) -> String {
    format!(
        r#"(
    name: "{name}",
    scale: 4,
    model: Edsr(n_resblocks: 16, n_feats: 64, res_scale: 1.0, rgb_range: 255.0, input_norm: Symmetric),
    init_from: Checkpoint("{zoo}"),
    data: (train: ["{train}"], eval: ["{eval}"], patch_size: 96, batch_size: 2),
    optim: Adam(lr: 1e-6),
    schedule: (iterations: {iterations}),
    {extra}
)"#,
        zoo = repo().join("zoo/edsr_baseline_x4.safetensors").display(),
        train = repo().join("assets/cc0/train").display(),
        eval = repo().join("assets/cc0/holdout").display(),
    )
}

/// Every box inside the canvas, no two overlapping, no text under 10 pt.
pub fn assert_clean(name: &str, l: &odm::report::figures::layout::Layout) {
    let canvas = odm::report::figures::layout::Rect {
        x: 0,
        y: 0,
        w: l.size.0 as i32,
        h: l.size.1 as i32,
    };
    let b = l.boxes();
    for (k, r) in &b {
        assert!(
            canvas.contains(r),
            "{name}: {k} {r:?} leaves the {canvas:?} canvas"
        );
    }
    for i in 0..b.len() {
        for j in i + 1..b.len() {
            assert!(
                !b[i].1.overlaps(&b[j].1),
                "{name}: {} {:?} overlaps {} {:?}",
                b[i].0,
                b[i].1,
                b[j].0,
                b[j].1
            );
        }
    }
    for (k, (leg, es)) in l.legends.iter().zip(&l.entries).enumerate() {
        for e in es {
            assert!(
                leg.contains(e),
                "{name}: legend {k} entry {e:?} leaves its box {leg:?}"
            );
        }
    }
    assert!(
        odm::report::figures::style::points(l.min_text_px) >= 10.0,
        "{name}: text under 10 pt"
    );
}

/// `git ARGS` in `dir` with a fixed identity, no hooks, no system config, and (when given) the
/// author and committer date `date` (seconds since the epoch, UTC); panics when git fails.
pub fn git(dir: &Path, date: Option<i64>, args: &[&str]) {
    let mut c = std::process::Command::new("git");
    c.current_dir(dir)
        .args([
            "-c",
            "user.name=odm test",
            "-c",
            "user.email=odm@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1");
    if let Some(d) = date {
        c.env("GIT_AUTHOR_DATE", format!("@{d} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{d} +0000"));
    }
    let o = c
        .output()
        .expect("git runs (CI clones the repository with it)");
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A synthetic finished run folder `dir`: `spec.effective.ron` (`spec` verbatim), `summary.json`
/// (10 iterations, one evaluation object `eval`, as JSON) and, when given, `provenance.json`.
pub fn finished_run(dir: &Path, name: &str, spec: &str, eval: &str, provenance: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("spec.effective.ron"), spec).unwrap();
    let summary = format!(r#"{{"name": "{name}", "iterations": 10, "eval": [{eval}]}}"#);
    std::fs::write(dir.join("summary.json"), summary).unwrap();
    if let Some(p) = provenance {
        std::fs::write(dir.join("provenance.json"), p).unwrap();
    }
}
