//! Provenance names the build and the machine, and survives a resume: the binary's commit and
//! hash (checked against `git` and `sha256sum`), the CPU and kernel paths, and a resumed run's
//! first segment kept with one entry appended per segment.

mod common;
use common::*;
use std::process::Command;

fn out(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    assert!(o.status.success(), "{:?}", o);
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn provenance_names_the_binary_and_machine_and_keeps_every_segment() {
    let tmp = tempdir();
    let f = write(tmp.path(), "p.ron", &toy_spec("prov", 1, 4, ""));
    let res = tmp.path().join("results");
    let r = res.to_str().unwrap();
    odm_ok(&[
        "run",
        f.to_str().unwrap(),
        "--quiet",
        "--out",
        r,
        "--stop-after",
        "2",
    ]);
    let dir = std::fs::read_dir(&res)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let read = || -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join("provenance.json")).unwrap()).unwrap()
    };
    let first = read();
    odm_ok(&[
        "run",
        f.to_str().unwrap(),
        "--quiet",
        "--out",
        r,
        "--resume",
    ]);
    let p = read();

    // The build: the binary's own hash, and the commit it was built from.
    let b = &p["build"];
    let sha = out(Command::new("sha256sum").arg(odm_bin()));
    assert_eq!(b["binary_sha256"], sha.split_whitespace().next().unwrap());
    let repo = repo();
    if let Some(head) = Command::new("git")
        .args(["-C", repo.to_str().unwrap(), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
    {
        assert_eq!(b["commit"], String::from_utf8_lossy(&head.stdout).trim());
    }
    assert!(b["rustc"].as_str().unwrap().starts_with("rustc "), "{b}");
    // The machine: /proc/cpuinfo's model name, the kernel paths, the OS.
    let m = &p["machine"];
    if let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") {
        let model = info
            .lines()
            .find(|l| l.starts_with("model name"))
            .map(|l| l.split_once(':').unwrap().1.trim().to_string());
        if let Some(model) = model {
            assert_eq!(m["cpu"], model.as_str());
        }
    }
    assert!(
        m["kernel_paths"].as_str().unwrap().contains("gemm f32"),
        "{m}"
    );
    assert!(m["os"].as_str().unwrap().starts_with(std::env::consts::OS));

    // The resumed run keeps its first segment and appends the second.
    assert_eq!(p["started"], first["started"]);
    assert_eq!(p["data"], first["data"]);
    assert_eq!(p["resumed"], true);
    let segs = p["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 1, "{p}");
    assert_eq!(segs[0]["from_step"], 2);
    assert_eq!(segs[0]["build"]["binary_sha256"], b["binary_sha256"]);
    assert!(segs[0]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(!p["finished"].as_str().unwrap().is_empty());
}
