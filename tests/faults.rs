//! The fault campaign: one test per way a run can be lost, corrupted or crash on hostile input
//! (issue "never lose or silently corrupt a result"). Every test runs the `odm` binary as a
//! user would and checks what is left on disk against an uninterrupted run of the same spec.

mod common;

use common::{odm_bin, odm_ok, odm_user_error, tempdir, write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `odm` with `args` (and environment `env`) and return its output, whatever the exit code.
fn odm_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(odm_bin());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn odm(args: &[&str]) -> Output {
    odm_env(args, &[])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The last line of stderr: what `main` printed about the error.
fn last_line(o: &Output) -> String {
    stderr(o).trim().lines().last().unwrap_or("").to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The only run folder under `out` whose name starts with `name-`.
fn run_dir(out: &Path, name: &str) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .collect();
    assert_eq!(v.len(), 1, "one run folder of {name} in {}", out.display());
    v.remove(0)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A toy spec file `name.ron` in `dir` (see `common::toy_spec`).
fn toy_file(dir: &Path, name: &str, iterations: usize, extra: &str) -> PathBuf {
    write(
        dir,
        &format!("{name}.ron"),
        &common::toy_spec(name, 3, iterations, extra),
    )
}

/// An uninterrupted run of `file` into `dir/reference`: the folder.
fn reference(dir: &Path, file: &Path, name: &str, extra_args: &[&str]) -> PathBuf {
    let out = dir.join("reference");
    let mut args = vec![
        "run",
        s(file),
        "--quiet",
        "--threads",
        "2",
        "--out",
        s(&out),
    ];
    args.extend_from_slice(extra_args);
    odm_ok(&args);
    run_dir(&out, name)
}

/// `a` and `b` hold the same bytes in each of `files`.
fn same_files(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        assert!(
            read(&a.join(f)) == read(&b.join(f)),
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

const RESULT_FILES: [&str; 4] = [
    "checkpoint.safetensors",
    "metrics.csv",
    "per_image.csv",
    "summary.json",
];

/// A tmpfs of `bytes` mounted at `at` (root only), unmounted when dropped. `None` (with the
/// reason on stderr) where mounting is not allowed, unless CI=true, where it is a failure.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, bytes: u64) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes}"),
                "tmpfs",
                s(at),
            ])
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Mount(at.to_path_buf())),
            other => {
                let why = match other {
                    Ok(o) => stderr(&o),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").is_err(),
                    "CI=true: the disk-full test needs `mount -t tmpfs` (root): {why}"
                );
                eprintln!("SKIP: cannot mount a tmpfs here: {why}");
                None
            }
        }
    }

    fn resize(&self, bytes: u64) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}"), s(&self.0)])
            .output()
            .unwrap();
        assert!(o.status.success(), "remount: {}", stderr(&o));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

/// A full disk: the second checkpoint's write fails. The folder, its first checkpoint and
/// metrics.csv stay (no temporary left), `failed.json` and the one-line error name the file,
/// the bytes needed and free, and the command that continues; after the disk grows, that
/// command ends with the same bytes as an uninterrupted run.
#[test]
fn disk_full_keeps_the_checkpoint_and_resumes_to_the_same_bytes() {
    let tmp = tempdir();
    // 64 features: a checkpoint of about 1.8 MB, far larger than the folder's other files.
    let text = common::toy_spec("full", 3, 6, "").replace("n_feats: 8", "n_feats: 64");
    let f = write(tmp.path(), "full.ron", &text);
    let refd = reference(tmp.path(), &f, "full", &[]);
    let ckpt = read(&refd.join("checkpoint.safetensors")).len() as u64;
    assert!(ckpt > 1 << 20);
    // Room for the small files written before the second checkpoint (specs, provenance,
    // metrics, timing: well under 64 KiB), one checkpoint and half of another: the first
    // checkpoint fits, the temporary of the second does not.
    let pages = |b: u64| b.div_ceil(4096) * 4096;
    let size = (64 << 10) + pages(ckpt) + pages(ckpt / 2);
    let mnt = tmp.path().join("mnt");
    let Some(m) = Mount::tmpfs(&mnt, size) else {
        return;
    };
    let out = mnt.join("results");
    let o = odm(&["run", s(&f), "--quiet", "--threads", "2", "--out", s(&out)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = last_line(&o);
    let dir = run_dir(&out, "full");
    let want_cmd = format!(
        "odm run {} --out {} --threads 2 --resume",
        f.display(),
        out.display()
    );
    for want in [
        "No space left on device",
        "checkpoint.safetensors",
        "needs",
        "free",
        &want_cmd,
    ] {
        assert!(line.contains(want), "{want:?} missing from: {line}");
    }
    // The first checkpoint is intact, no temporary is left, and failed.json says what happened.
    let (_, meta) = odm::record::read_safetensors(&dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(meta["iteration"], "2");
    assert!(dir.join("metrics.csv").is_file());
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(temps.is_empty(), "temporaries left: {temps:?}");
    let failed: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("failed.json"))).unwrap();
    assert_eq!(failed["checkpoint_step"], 2);
    assert_eq!(failed["step"], 4);
    assert!(failed["path"]
        .as_str()
        .unwrap()
        .ends_with("checkpoint.safetensors"));
    assert_eq!(failed["resume"], want_cmd.as_str());
    // --list and the report see a failed run.
    let list = odm_ok(&["run", s(&f), "--list", "--out", s(&out)]);
    assert!(list.contains("failed (resumable)"), "{list}");

    m.resize(64 << 20);
    let args: Vec<&str> = want_cmd.split(' ').skip(1).collect();
    odm_ok(&args);
    same_files(&refd, &dir, &RESULT_FILES);
    assert!(!dir.join("failed.json").exists());
    let prov: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("provenance.json"))).unwrap();
    assert_eq!(prov["failures"][0]["step"], 4, "{prov}");
}

/// A run that diverges keeps its folder: metrics.csv with the loss curve up to the non-finite
/// loss, the last (finite) checkpoint, and failed.json with the cause.
#[test]
fn divergence_keeps_the_loss_curve_and_the_last_finite_checkpoint() {
    let tmp = tempdir();
    let text = common::toy_spec("div", 3, 40, "").replace("lr: 1e-3", "lr: 1e7");
    let f = write(tmp.path(), "div.ron", &text);
    let out = tmp.path().join("results");
    let o = odm(&[
        "run",
        s(&f),
        "--quiet",
        "--out",
        s(&out),
        "--set",
        "checkpoint_every=1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(last_line(&o).contains("diverged"), "{}", stderr(&o));
    let dir = run_dir(&out, "div");
    let failed: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("failed.json"))).unwrap();
    assert!(failed["cause"].as_str().unwrap().contains("diverged"));
    let rows =
        odm::record::parse_metrics(&std::fs::read_to_string(dir.join("metrics.csv")).unwrap())
            .unwrap();
    let l1: Vec<f64> = rows
        .iter()
        .filter(|r| r.metric == "l1")
        .map(|r| r.value)
        .collect();
    assert!(!l1.is_empty(), "the loss curve is kept");
    let step = failed["step"].as_u64().unwrap() as usize;
    let diverged = l1.last().unwrap();
    assert!(
        !diverged.is_finite() || step == 0,
        "the curve ends at the diverged loss: {l1:?}"
    );
    if let Ok((ts, meta)) = odm::record::read_safetensors(&dir.join("checkpoint.safetensors")) {
        assert!(ts.iter().all(|t| t.data.iter().all(|v| v.is_finite())));
        assert_eq!(meta["iteration"].parse::<usize>().unwrap(), step);
    }
    // The report lists it, with its cause, beside a finished run.
    let ok = toy_file(tmp.path(), "fine", 2, "");
    odm_ok(&["run", s(&ok), "--quiet", "--out", s(&out)]);
    let rep = tmp.path().join("rep");
    odm_ok(&["report", "--results", s(&out), "--out", s(&rep)]);
    let readme = std::fs::read_to_string(rep.join("README.md")).unwrap();
    let section = &readme[readme.find("## Failed or incomplete runs").expect(&readme)..];
    assert!(
        section.contains("div-") && section.contains("diverged"),
        "{section}"
    );
}

/// A crash between the final checkpoint and summary.json: the run is not finished, and
/// --resume scores every set and writes the same result files as an uninterrupted run (also
/// taking over the dead process's lock).
#[test]
fn crash_before_the_summary_resumes_to_a_scored_result() {
    let tmp = tempdir();
    let f = toy_file(tmp.path(), "crash", 4, "");
    let refd = reference(tmp.path(), &f, "crash", &[]);
    let out = tmp.path().join("results");
    let o = odm_env(
        &["run", s(&f), "--quiet", "--threads", "2", "--out", s(&out)],
        &[("ODM_FAULT_AT", "after-final-checkpoint")],
    );
    assert_eq!(o.status.code(), Some(137), "{}", stderr(&o));
    let dir = run_dir(&out, "crash");
    assert!(!dir.join("summary.json").exists());
    assert!(dir.join("odm.lock").exists(), "a crash leaves its lock");
    let list = odm_ok(&["run", s(&f), "--list", "--out", s(&out)]);
    assert!(list.contains("unfinished (resumable)"), "{list}");
    odm_ok(&[
        "run",
        s(&f),
        "--quiet",
        "--threads",
        "2",
        "--out",
        s(&out),
        "--resume",
    ]);
    same_files(&refd, &dir, &RESULT_FILES);
    assert!(!dir.join("odm.lock").exists());

    // A summary without scores (what an older odm wrote in this case) is not a finished run:
    // --list, the report and `odm table` treat it as unfinished.
    let summary = dir.join("summary.json");
    let mut v: serde_json::Value = serde_json::from_slice(&read(&summary)).unwrap();
    v["eval"] = serde_json::json!([]);
    std::fs::write(&summary, v.to_string()).unwrap();
    let list = odm_ok(&["run", s(&f), "--list", "--out", s(&out)]);
    assert!(list.contains("unfinished (resumable)"), "{list}");
    let rep = tmp.path().join("rep");
    let o = odm(&["report", "--results", s(&out), "--out", s(&rep)]);
    assert_eq!(o.status.code(), Some(2), "no finished run: {}", stderr(&o));
}

/// A trained toy run (2 iterations) in `dir/trained`: its folder.
fn trained(dir: &Path, name: &str, extra: &str, feats: usize) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let text =
        common::toy_spec(name, 3, 2, extra).replace("n_feats: 8", &format!("n_feats: {feats}"));
    let f = write(dir, &format!("{name}.ron"), &text);
    let out = dir.join("trained");
    odm_ok(&["run", s(&f), "--quiet", "--out", s(&out)]);
    run_dir(&out, name)
}

/// Run spec `file` into `out` and stop after its checkpoint at iteration 2 (`--stop-after 2`).
fn stop_at_2(file: &Path, out: &Path) {
    odm_ok(&[
        "run",
        s(file),
        "--quiet",
        "--out",
        s(out),
        "--stop-after",
        "2",
    ]);
}

/// Copy the files of folder `from` into a new folder `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Two evaluation folders with the same base name are two sets: scores, saved images and the
/// set names keep them apart; the same folder twice is an error; `inspect --data` writes beside
/// the run's own statistics, never over them.
#[test]
fn colliding_set_names_stay_apart() {
    let tmp = tempdir();
    let run = trained(tmp.path(), "sets", "", 8);
    let holdout = common::repo().join("assets/cc0/holdout");
    let (a, b) = (tmp.path().join("a/holdout"), tmp.path().join("b/holdout"));
    copy_dir(&holdout, &a);
    copy_dir(&common::repo().join("assets/cc0/train"), &b);
    let sr = tmp.path().join("sr");
    let scores = common::odm_json(&[
        "eval",
        "--checkpoint",
        s(&run),
        "--data",
        s(&a),
        s(&b),
        "--json",
        "--save-sr",
        s(&sr),
    ]);
    let names: Vec<&str> = scores.iter().map(|v| v["set"].as_str().unwrap()).collect();
    assert_eq!(names, ["a/holdout", "b/holdout"]);
    assert_eq!(scores[0]["images"], 1);
    assert_eq!(scores[1]["images"], 3);
    assert!(sr.join("a/holdout/chelsea.png").is_file());
    assert!(sr.join("b/holdout/coffee.png").is_file());
    odm_user_error(
        &["eval", "--checkpoint", s(&run), "--data", s(&a), s(&a)],
        "listed twice",
    );

    let acts = read(&run.join("activations.json"));
    let cost = read(&run.join("cost.json"));
    let o = odm_ok(&["inspect", s(&run), "--data", s(&b)]);
    assert!(o.contains("activations-holdout.json"), "{o}");
    assert!(run.join("activations-holdout.json").is_file());
    assert!(read(&run.join("activations.json")) == acts, "overwritten");
    assert!(read(&run.join("cost.json")) == cost, "overwritten");
}

/// Replace the checkpoint of `dir` by `tensors` with the same metadata.
fn rewrite_checkpoint(dir: &Path, f: impl Fn(&mut Vec<odm::record::NamedTensor>)) {
    let p = dir.join("checkpoint.safetensors");
    let (mut ts, meta) = odm::record::read_safetensors(&p).unwrap();
    f(&mut ts);
    odm::record::write_safetensors(&p, &ts, &meta).unwrap();
}

/// A checkpoint with a NaN weight, or of another architecture, is a one-line error (exit 2)
/// naming the tensor in eval, infer, inspect, export and --resume: never a panic, never a score.
#[test]
fn nan_and_foreign_checkpoints_are_refused_everywhere() {
    let tmp = tempdir();
    let quant = "quant: Pams(w_bits: 4, a_bits: 4),";
    let run = trained(tmp.path(), "ck", quant, 8);
    let holdout = common::repo().join("assets/cc0/holdout");
    let h = s(&holdout);
    let cases = |dir: &Path, want: &str| {
        let d = s(dir);
        let onnx = tmp.path().join("x.onnx");
        let zoo = tmp.path().join("x.safetensors");
        for args in [
            vec!["eval", "--checkpoint", d, "--data", h],
            vec!["infer", d, "--data", h],
            vec!["inspect", d],
            vec!["export", d, "--onnx", s(&onnx)],
            vec!["cost", d],
        ] {
            odm_user_error(&args, want);
        }
        assert!(!onnx.exists() && !zoo.exists());
    };

    let nan = tmp.path().join("nan");
    copy_dir(&run, &nan);
    rewrite_checkpoint(&nan, |ts| {
        let t = ts
            .iter_mut()
            .find(|t| t.name == "body.1.conv1.weight")
            .unwrap();
        t.data[5] = f32::NAN;
    });
    cases(&nan, "body.1.conv1.weight holds 1 non-finite value");

    // The same spec with 16 features: its checkpoint in the 8-feature run's folder.
    let wide = trained(&tmp.path().join("w"), "ck", quant, 16);
    let foreign = tmp.path().join("foreign");
    copy_dir(&run, &foreign);
    std::fs::copy(
        wide.join("checkpoint.safetensors"),
        foreign.join("checkpoint.safetensors"),
    )
    .unwrap();
    cases(
        &foreign,
        "has shape [16, 3, 3, 3], the spec's model declares [8, 3, 3, 3]",
    );

    // --resume of an unfinished run whose checkpoint is foreign.
    let f = toy_file(tmp.path(), "rs", 6, quant);
    let out = tmp.path().join("resume");
    stop_at_2(&f, &out);
    let d = run_dir(&out, "rs");
    rewrite_checkpoint(&d, |ts| {
        let t = ts.iter_mut().find(|t| t.name == "tail.weight").unwrap();
        t.data[0] = f32::INFINITY;
    });
    odm_user_error(
        &["run", s(&f), "--quiet", "--out", s(&out), "--resume"],
        "tail.weight holds 1 non-finite value",
    );
    assert!(d.join("checkpoint.safetensors").is_file(), "kept");
}

/// A training image that changed between a run's segments: --resume refuses it naming the file;
/// --allow-data-change continues and provenance keeps both fingerprints.
#[test]
fn changed_training_image_is_refused_on_resume() {
    let tmp = tempdir();
    let train = tmp.path().join("train");
    copy_dir(&common::repo().join("assets/cc0/train"), &train);
    let text = common::toy_spec("data", 3, 6, "").replace(
        &common::repo()
            .join("assets/cc0/train")
            .display()
            .to_string(),
        s(&train),
    );
    let f = write(tmp.path(), "data.ron", &text);
    let out = tmp.path().join("results");
    stop_at_2(&f, &out);
    // coffee.png replaced by another valid image.
    std::fs::copy(train.join("astronaut.png"), train.join("coffee.png")).unwrap();
    let resume = ["run", s(&f), "--quiet", "--out", s(&out), "--resume"];
    odm_user_error(&resume, "coffee.png changed");
    let mut allow = resume.to_vec();
    allow.push("--allow-data-change");
    odm_ok(&allow);
    let dir = run_dir(&out, "data");
    let prov: serde_json::Value =
        serde_json::from_slice(&read(&dir.join("provenance.json"))).unwrap();
    let seg = &prov["segments"][0];
    assert_eq!(seg["allowed_data_change"], true, "{prov}");
    assert_eq!(seg["from_step"], 2);
    let first = |v: &serde_json::Value| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|d| d["folder"] == s(&train))
            .unwrap()["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "coffee.png")
            .unwrap()["sha256"]
            .clone()
    };
    assert_ne!(first(&prov["data"]), first(&seg["data_changed"]));
}

/// A dangling symlink named like an image is an error naming it, not a silently smaller set.
#[test]
fn dangling_symlink_in_a_data_folder_is_named() {
    let tmp = tempdir();
    let d = tmp.path().join("set");
    copy_dir(&common::repo().join("assets/cc0/holdout"), &d);
    std::os::unix::fs::symlink(tmp.path().join("gone.png"), d.join("ghost.png")).unwrap();
    let e = odm_user_error(
        &["bicubic", "--data", s(&d), "--scale", "2"],
        "dangling symlink",
    );
    assert!(e.contains("ghost.png"), "{e}");
    // A dangling link that is not an image is no image of the set: ignored.
    std::fs::remove_file(d.join("ghost.png")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("gone"), d.join("notes.txt")).unwrap();
    odm_ok(&["bicubic", "--data", s(&d), "--scale", "2"]);
}

/// Experiments that start from each other in a cycle: a one-line error naming the chain, not a
/// stack overflow; nothing written.
#[test]
fn init_from_cycle_is_refused() {
    let tmp = tempdir();
    let a = tmp.path().join("a.ron");
    let b = tmp.path().join("b.ron");
    let init = |other: &Path| format!("init_from: Experiment(\"{}\"),", other.display());
    std::fs::write(&a, common::toy_spec("a", 1, 2, &init(&b))).unwrap();
    std::fs::write(&b, common::toy_spec("b", 1, 2, &init(&a))).unwrap();
    let out = tmp.path().join("results");
    let e = odm_user_error(&["run", s(&a), "--quiet", "--out", s(&out)], "cycle");
    assert!(e.contains("a.ron") && e.contains("b.ron"), "{e}");
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing written: {left:?}");
    let c = tmp.path().join("c.ron");
    std::fs::write(&c, common::toy_spec("c", 1, 2, &init(&c))).unwrap();
    odm_user_error(&["run", s(&c), "--quiet", "--out", s(&out)], "cycle");
}

/// Wait until `p` exists (at most `secs` seconds).
fn wait_for(p: &Path, secs: u64) {
    let t = std::time::Instant::now();
    while !p.exists() {
        assert!(
            t.elapsed().as_secs() < secs,
            "{} did not appear in {secs} s",
            p.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Two `--resume` of one folder: the second names the holder of the lock and exits 2; the first
/// finishes. A lock left by a dead process is taken over.
#[test]
fn concurrent_resumes_do_not_both_write() {
    let tmp = tempdir();
    let f = toy_file(tmp.path(), "lock", 40, "");
    let out = tmp.path().join("results");
    stop_at_2(&f, &out);
    let dir = run_dir(&out, "lock");
    let args = ["run", s(&f), "--quiet", "--out", s(&out), "--resume"];
    let mut first = Command::new(odm_bin())
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.join("odm.lock"), 60);
    let e = odm_user_error(&args, "being written by odm pid");
    assert!(e.contains(&first.id().to_string()), "{e}");
    assert!(first.wait().unwrap().success());
    assert!(dir.join("summary.json").is_file());

    // A stale lock (a pid that has exited, this host) is taken over.
    let f2 = toy_file(tmp.path(), "stale", 4, "");
    stop_at_2(&f2, &out);
    let d2 = run_dir(&out, "stale");
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(
        d2.join("odm.lock"),
        serde_json::json!({"pid": gone.id(), "host": host.trim(), "since": "then"}).to_string(),
    )
    .unwrap();
    odm_ok(&["run", s(&f2), "--quiet", "--out", s(&out), "--resume"]);
    assert!(d2.join("summary.json").is_file());
}

/// SIGTERM mid-run: the run stops on a checkpoint of the last completed step, says where and
/// how to continue, exits 130; resuming ends with the same bytes as an uninterrupted run.
#[test]
fn sigterm_stops_on_a_checkpoint_and_resumes_to_the_same_bytes() {
    let tmp = tempdir();
    let f = toy_file(tmp.path(), "term", 30, "");
    let sets = ["--set", "checkpoint_every=1000", "--set", "eval_every=3"];
    let refd = reference(tmp.path(), &f, "term", &sets);
    let out = tmp.path().join("results");
    let mut args = vec!["run", s(&f), "--quiet", "--threads", "2", "--out", s(&out)];
    args.extend_from_slice(&sets);
    let child = Command::new(odm_bin())
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = first_metrics(&out);
    let k = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    let line = last_line(&o);
    assert!(
        line.contains("interrupted after iteration") && line.contains("--resume"),
        "{line}"
    );
    let (_, meta) = odm::record::read_safetensors(&dir.join("checkpoint.safetensors")).unwrap();
    let at: usize = meta["iteration"].parse().unwrap();
    assert!((3..30).contains(&at), "stopped at {at}");
    assert!(!dir.join("summary.json").exists());
    let mut resume = args.clone();
    resume.push("--resume");
    odm_ok(&resume);
    same_files(&refd, &dir, &RESULT_FILES);
}

/// SIGTERM during an evaluation, mid-run and at the last step (delivered at the evaluation's
/// first image through `ODM_SIGNAL_AT`, the handler's own path): the evaluation is abandoned,
/// the run stops on a checkpoint of that step with none of its evaluation rows, says so, exits
/// 130; resuming scores that step first and ends with the bytes of an uninterrupted run.
#[test]
fn sigterm_in_an_evaluation_stops_on_that_step_and_resumes_to_the_same_bytes() {
    let tmp = tempdir();
    let f = toy_file(tmp.path(), "evterm", 6, "");
    let sets = ["--set", "checkpoint_every=1000", "--set", "eval_every=3"];
    let refd = reference(tmp.path(), &f, "evterm", &sets);
    for at in [3, 6] {
        let out = tmp.path().join(format!("results-{at}"));
        let mut args = vec!["run", s(&f), "--quiet", "--threads", "2", "--out", s(&out)];
        args.extend_from_slice(&sets);
        let o = odm_env(&args, &[("ODM_SIGNAL_AT", &format!("eval-{at}"))]);
        assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
        let line = last_line(&o);
        let want = format!("interrupted after iteration {at}; ");
        let kept = format!("holds the checkpoint of iteration {at}; ");
        assert!(line.contains(&want) && line.contains(&kept), "{line}");
        let dir = run_dir(&out, "evterm");
        let metrics = String::from_utf8(read(&dir.join("metrics.csv"))).unwrap();
        let row = format!("{at},eval,");
        assert!(!metrics.lines().any(|l| l.starts_with(&row)), "{metrics}");
        assert!(metrics
            .lines()
            .any(|l| l.starts_with(&format!("{at},train,"))));
        assert!(!dir.join("summary.json").exists());
        args.push("--resume");
        odm_ok(&args);
        same_files(&refd, &dir, &RESULT_FILES);
    }
}

/// The run folder under `out` once its `metrics.csv` exists (written at the first evaluation,
/// inside the training loop).
fn first_metrics(out: &Path) -> PathBuf {
    let t = std::time::Instant::now();
    loop {
        let found = std::fs::read_dir(out).ok().and_then(|mut d| {
            d.find_map(|e| Some(e.ok()?.path()).filter(|p| p.join("metrics.csv").exists()))
        });
        if let Some(d) = found {
            return d;
        }
        assert!(t.elapsed().as_secs() < 120, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Ctrl-C (a real SIGINT, sent with `kill(2)`) in the first point of a two-point grid: the run
/// stops on a checkpoint, exits 130 and ends with one line holding the exact command that
/// continues everything the interrupted command was to run; that command, run as printed by a
/// shell, finishes both points with the bytes of an uninterrupted run.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn ctrl_c_leaves_a_resumable_folder_and_the_exact_resume_command() {
    let tmp = tempdir();
    let grid = r#"grid: (axes: [(field: "optim.lr", values: [1e-3, 2e-3])]),"#;
    let f = toy_file(tmp.path(), "intr", 30, grid);
    let sets = ["--set", "checkpoint_every=1000", "--set", "eval_every=3"];
    let common = |out: &Path| {
        let mut a = vec!["run".to_string(), s(&f).into(), "--quiet".into()];
        a.extend(["--threads", "2", "--out", s(out)].map(String::from));
        a.extend(sets.map(String::from));
        a
    };
    let refs = tmp.path().join("reference");
    odm_ok(&common(&refs));
    let out = tmp.path().join("results");
    let child = Command::new(odm_bin())
        .args(common(&out))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = first_metrics(&out);
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with a live child's pid and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let (_, meta) = odm::record::read_safetensors(&dir.join("checkpoint.safetensors")).unwrap();
    let at: usize = meta["iteration"].parse().unwrap();
    assert!((3..30).contains(&at), "stopped at {at}");
    assert!(!dir.join("summary.json").exists());
    let want = format!(
        "odm: interrupted after iteration {at}; {} holds the checkpoint of iteration {at}; continue with: odm run {} --out {} --set checkpoint_every=1000 --set eval_every=3 --threads 2 --resume",
        dir.display(),
        f.display(),
        out.display()
    );
    assert_eq!(last_line(&o), want);
    // The printed command, as a shell runs it, with this build's `odm` first on PATH.
    let cmd = want.split_once("continue with: ").unwrap().1;
    let bin = Path::new(odm_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = Command::new("sh")
        .args(["-c", cmd])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(r.status.success(), "{cmd}: {}", stderr(&r));
    let names: Vec<_> = std::fs::read_dir(&refs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2);
    for n in names {
        same_files(&refs.join(&n), &out.join(&n), &RESULT_FILES);
    }
}

/// Exit code 2 and `want` in the error; nothing panicked.
fn refused(args: &[&str], want: &str) {
    let o = odm(args);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
    assert!(e.contains(want) && !e.contains("panicked"), "{args:?}: {e}");
}

/// Absurd numbers and endless inputs on the command line: refused at once with the limit, never
/// an allocation abort, a hang or a thread bomb.
#[test]
fn absurd_command_line_numbers_and_endless_inputs_are_refused() {
    let tmp = tempdir();
    let f = toy_file(tmp.path(), "cli", 2, "");
    refused(
        &["run", s(&f), "--list", "--point", "0-99999999999"],
        "expected indices and ranges",
    );
    refused(
        &["run", s(&f), "--list", "--threads", "100000"],
        "1 to 1024",
    );
    refused(&["run", s(&f), "--list", "--threads", "0"], "1 to 1024");
    let t = std::time::Instant::now();
    refused(&["check", "/dev/zero"], "larger than 16 MiB");
    assert!(t.elapsed().as_secs() < 30);
    // A grid of 10^12 points (six axes of 100 values).
    let values: Vec<String> = (0..100).map(|i| format!("{}", i + 1)).collect();
    let axes: Vec<String> = (0..6)
        .map(|_| format!("(field: \"log_every\", values: [{}])", values.join(",")))
        .collect();
    let g = write(
        tmp.path(),
        "huge.ron",
        &common::toy_spec(
            "huge",
            1,
            2,
            &format!("grid: (axes: [{}]),", axes.join(",")),
        ),
    );
    refused(&["check", s(&g)], "more than 100000 runs");
}
