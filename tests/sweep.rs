//! Acceptance (issue 15): `odm sweep` against a live Slurm (set up by `.ci/slurm.sh up`; the tests
//! skip with a printed reason when `sbatch`/`sinfo` do not answer, except under `CI=true`, where
//! that is a failure), its local mode, and its bad-input errors. Every comparison is byte for
//! byte against the same point run locally with `odm run --point` (provenance.json aside: it
//! records times).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// SLURM_CONF for the child processes: the environment's, or `.ci/slurm.sh`'s default.
fn slurm_conf() -> Option<String> {
    std::env::var("SLURM_CONF").ok().or_else(|| {
        let p = Path::new("/tmp/odm-slurm/slurm.conf");
        p.is_file().then(|| p.display().to_string())
    })
}

fn slurm_cmd(bin: &str) -> Command {
    let mut c = Command::new(bin);
    if let Some(conf) = slurm_conf() {
        c.env("SLURM_CONF", conf);
    }
    c
}

/// Whether a Slurm answers here; under `CI=true` it must.
fn slurm_ready() -> bool {
    let ok = slurm_cmd("sinfo")
        .args(["-h", "-o", "%t"])
        .output()
        .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no Slurm answers (sinfo failed): run `bash .ci/slurm.sh up`"
        );
        eprintln!("skipped: no Slurm here (sinfo failed); `bash .ci/slurm.sh install && bash .ci/slurm.sh up` starts one");
    }
    ok
}

fn odm(args: &[&str], cwd: &Path) -> Output {
    slurm_cmd(common::odm_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

/// A toy grid of `lrs` × seeds [1, 2].
fn grid(dir: &Path, file: &str, iterations: usize, ckpt: usize, extra: &str) -> PathBuf {
    let text = common::toy_spec("toy", 1, iterations, extra).replace(
        "checkpoint_every: 2,",
        &format!("checkpoint_every: {ckpt},\n    grid: (axes: [(field: \"optim.lr\", values: [1e-3, 2e-3])], seeds: [1, 2]),"),
    );
    common::write(dir, file, &text)
}

/// The job id from `odm sweep`'s `array job <id>: …` line.
fn array_job(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("array job "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no array job in: {out}"))
        .to_string()
}

/// Wait (at most 10 min) until `job` has left the queue.
fn drain(job: &str) {
    let t = Instant::now();
    loop {
        let o = slurm_cmd("squeue")
            .args(["-h", "-j", job])
            .output()
            .unwrap();
        if o.stdout.is_empty() {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(600),
            "job {job} still queued after 10 min"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The one run folder of `name` under `root`.
fn run_dir(root: &Path, name: &str) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            f.starts_with(&format!("{name}-")) && p.is_dir()
        })
        .collect();
    assert_eq!(v.len(), 1, "{name} under {}: {v:?}", root.display());
    v.remove(0)
}

/// Every file of `a` equals `b`'s, byte for byte (provenance.json aside).
fn same_files(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "provenance.json")
        .collect();
    names.sort();
    assert!(names.iter().any(|n| n == "summary.json"), "{}", a.display());
    for n in names {
        let (x, y) = (a.join(&n), b.join(&n));
        if x.is_dir() {
            continue;
        }
        assert!(
            std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap_or_default(),
            "{} differs from {}",
            x.display(),
            y.display()
        );
    }
}

const NAMES: [&str; 4] = [
    "toy.lr-0.001.seed-1",
    "toy.lr-0.001.seed-2",
    "toy.lr-0.002.seed-1",
    "toy.lr-0.002.seed-2",
];

/// The points run one by one with `odm run --point I --threads 1`.
fn reference(tmp: &Path, f: &Path) -> PathBuf {
    let root = tmp.join("ref");
    for i in 0..4 {
        let p = i.to_string();
        ok(odm(
            &[
                "run",
                f.to_str().unwrap(),
                "--point",
                &p,
                "--threads",
                "1",
                "--quiet",
                "--out",
                root.to_str().unwrap(),
            ],
            tmp,
        ));
    }
    root
}

#[test]
fn slurm_array_and_local_jobs_equal_local_runs() {
    if !slurm_ready() {
        return;
    }
    let tmp = common::tempdir();
    let f = grid(tmp.path(), "grid.ron", 6, 2, "");
    let refs = reference(tmp.path(), &f);
    let out = ok(odm(
        &[
            "sweep",
            "grid.ron",
            "--slurm",
            "--submit",
            "--cpus-per-task",
            "1",
            "--out",
            "slurm",
        ],
        tmp.path(),
    ));
    drain(&array_job(&out));
    let sweeps = tmp.path().join("slurm/sweeps");
    let sweep = std::fs::read_dir(&sweeps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let status = ok(odm(
        &["sweep", "status", sweep.to_str().unwrap()],
        tmp.path(),
    ));
    assert!(status.contains("# 4 finished"), "{status}");
    for n in NAMES {
        same_files(&run_dir(&tmp.path().join("slurm"), n), &run_dir(&refs, n));
    }
    // Sweeping again submits nothing: every point is finished.
    let again = ok(odm(
        &["sweep", "grid.ron", "--slurm", "--submit", "--out", "slurm"],
        tmp.path(),
    ));
    assert!(again.contains("nothing to submit"), "{again}");
    // Two local processes of one thread each: the same bytes.
    ok(odm(
        &[
            "sweep",
            "grid.ron",
            "--local",
            "--jobs",
            "2",
            "--threads",
            "2",
            "--out",
            "local",
        ],
        tmp.path(),
    ));
    for n in NAMES {
        same_files(&run_dir(&tmp.path().join("local"), n), &run_dir(&refs, n));
    }
}

/// `--local` needs no Slurm: two processes of one thread each give the bytes of `odm run --point`,
/// and a second sweep finds nothing left to run.
#[test]
fn local_sweep_equals_local_runs() {
    let tmp = common::tempdir();
    let f = grid(tmp.path(), "grid.ron", 6, 2, "");
    let refs = reference(tmp.path(), &f);
    let args = [
        "sweep",
        "grid.ron",
        "--local",
        "--jobs",
        "2",
        "--threads",
        "2",
        "--out",
        "local",
    ];
    let out = ok(odm(&args, tmp.path()));
    assert!(
        out.contains("4 point(s) finished with 2 process(es) of 1 thread(s)"),
        "{out}"
    );
    for n in NAMES {
        same_files(&run_dir(&tmp.path().join("local"), n), &run_dir(&refs, n));
    }
    let again = ok(odm(&args, tmp.path()));
    assert!(again.contains("0 point(s) finished"), "{again}");
    let sweeps = tmp.path().join("local/sweeps");
    let sweep = std::fs::read_dir(sweeps)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let status = ok(odm(
        &["sweep", "status", sweep.to_str().unwrap()],
        tmp.path(),
    ));
    assert!(status.contains("# 4 finished"), "{status}");
}

#[test]
fn a_cancelled_task_resumes_bit_identically_and_finished_points_stay() {
    if !slurm_ready() {
        return;
    }
    let tmp = common::tempdir();
    let f = grid(tmp.path(), "long.ron", 3000, 100, "");
    let out = ok(odm(
        &[
            "sweep", "long.ron", "--slurm", "--submit", "--point", "0,1", "--out", "slurm",
        ],
        tmp.path(),
    ));
    let job = array_job(&out);
    // Cancel point 0 once it has written its first checkpoint.
    let t = Instant::now();
    let ckpt = loop {
        let found = std::fs::read_dir(tmp.path().join("slurm"))
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with(NAMES[0])
                    })
                    .map(|p| p.join("checkpoint.safetensors"))
                    .filter(|c| c.is_file())
            });
        if let Some(c) = found {
            break c;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "no checkpoint of point 0"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    ok(slurm_cmd("scancel")
        .arg(format!("{job}_0"))
        .output()
        .unwrap());
    drain(&job);
    let d0 = ckpt.parent().unwrap().to_path_buf();
    assert!(
        !d0.join("summary.json").exists(),
        "point 0 finished before the cancel; make the run longer"
    );
    let d1 = run_dir(&tmp.path().join("slurm"), NAMES[1]);
    let finished_at = std::fs::metadata(d1.join("summary.json"))
        .unwrap()
        .modified()
        .unwrap();
    // Re-submitting runs only point 0, from its checkpoint.
    let out = ok(odm(
        &[
            "sweep", "long.ron", "--slurm", "--submit", "--point", "0,1", "--out", "slurm",
        ],
        tmp.path(),
    ));
    assert!(
        out.contains(": points 0\n") || out.trim_end().ends_with(": points 0"),
        "{out}"
    );
    drain(&array_job(&out));
    assert_eq!(
        std::fs::metadata(d1.join("summary.json"))
            .unwrap()
            .modified()
            .unwrap(),
        finished_at
    );
    let prov = std::fs::read_to_string(d0.join("provenance.json")).unwrap();
    assert!(prov.contains("\"resumed\": true"), "{prov}");
    // The uninterrupted reference.
    let r = tmp.path().join("ref");
    ok(odm(
        &[
            "run",
            f.to_str().unwrap(),
            "--point",
            "0",
            "--threads",
            "1",
            "--quiet",
            "--out",
            r.to_str().unwrap(),
        ],
        tmp.path(),
    ));
    same_files(&d0, &run_dir(&r, NAMES[0]));
}

#[test]
fn stages_chain_with_afterok() {
    if !slurm_ready() {
        return;
    }
    let tmp = common::tempdir();
    common::write(tmp.path(), "fp.ron", &common::toy_spec("fp", 1, 4, ""));
    let qat = common::toy_spec("qat", 1, 4, "quant: MinMax(w_bits: 4, a_bits: 4), init_from: Experiment(\"fp.ron\"), grid: (axes: [], seeds: [1, 2]),");
    common::write(tmp.path(), "qat.ron", &qat);
    let out = ok(odm(
        &["sweep", "qat.ron", "--slurm", "--submit", "--out", "slurm"],
        tmp.path(),
    ));
    assert!(out.contains("stage job "), "{out}");
    let job = array_job(&out);
    drain(&job);
    let fp = run_dir(&tmp.path().join("slurm"), "fp");
    for n in ["qat.seed-1", "qat.seed-2"] {
        let d = run_dir(&tmp.path().join("slurm"), n);
        assert!(d.join("summary.json").is_file(), "{}", d.display());
        let prov = std::fs::read_to_string(d.join("provenance.json")).unwrap();
        assert!(
            prov.contains(fp.file_name().unwrap().to_str().unwrap()),
            "{prov}"
        );
    }
    // The array waited for the stage: it started after the stage ended.
    let sweep = std::fs::read_dir(tmp.path().join("slurm/sweeps"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        m["submissions"][0]["stage_jobs"].as_array().unwrap().len(),
        1
    );
    assert_eq!(m["stages"][0]["name"], "fp");
    let array = std::fs::read_to_string(sweep.join("submit.sh")).unwrap();
    assert!(array.contains("--dependency=afterok:$after"), "{array}");
}

#[test]
fn bad_sweeps_are_one_line_errors_and_write_nothing() {
    let tmp = common::tempdir();
    grid(tmp.path(), "grid.ron", 2, 2, "");
    let run = |args: &[&str], path: Option<&str>| {
        let mut c = Command::new(common::odm_bin());
        c.args(args).current_dir(tmp.path());
        if let Some(p) = path {
            c.env("PATH", p);
        }
        c.output().unwrap()
    };
    let err = |o: &Output| String::from_utf8_lossy(&o.stderr).trim().to_string();
    // No sbatch on PATH with --submit.
    let o = run(
        &["sweep", "grid.ron", "--slurm", "--submit", "--out", "r"],
        Some("/nonexistent"),
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert!(
        err(&o).contains("sbatch") && err(&o).lines().count() == 1,
        "{}",
        err(&o)
    );
    assert!(!tmp.path().join("r").exists());
    // A point index out of range.
    let o = run(
        &["sweep", "grid.ron", "--slurm", "--point", "7", "--out", "r"],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err(&o).contains("--point 7") && err(&o).contains("0 to 3"),
        "{}",
        err(&o)
    );
    assert!(!tmp.path().join("r").exists());
    // Without --submit the scripts are written and nothing is submitted.
    let o = run(&["sweep", "grid.ron", "--slurm", "--out", "r"], None);
    assert!(o.status.success(), "{}", err(&o));
    let sweep = std::fs::read_dir(tmp.path().join("r/sweeps"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let script = std::fs::read_to_string(sweep.join("array.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-3\n"), "{script}");
    assert!(
        script.contains("'--point' \"$SLURM_ARRAY_TASK_ID\" '--resume'"),
        "{script}"
    );
    // A manifest that no longer matches its spec.
    let frozen = sweep.join("spec.ron");
    let text = std::fs::read_to_string(&frozen)
        .unwrap()
        .replace("seeds: [1, 2]", "seeds: [1, 2, 3]");
    std::fs::write(&frozen, text).unwrap();
    let o = run(&["sweep", "status", sweep.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("no longer matches"), "{}", err(&o));
}

#[test]
fn an_sbatch_refusal_is_a_user_error_and_removes_the_new_sweep() {
    if !slurm_ready() {
        return;
    }
    let tmp = common::tempdir();
    grid(tmp.path(), "grid.ron", 2, 2, "");
    let o = odm(
        &[
            "sweep",
            "grid.ron",
            "--slurm",
            "--submit",
            "--partition",
            "no-such-partition",
            "--out",
            "r",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("sbatch refused"), "{e}");
    assert!(!tmp
        .path()
        .join("r/sweeps")
        .read_dir()
        .is_ok_and(|mut d| d.next().is_some()));
}
