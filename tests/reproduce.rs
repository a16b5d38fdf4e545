//! `odm reproduce`: a toy run re-derived up to iteration 20 is identical; a planted change of
//! one recorded metrics row is found and named.

mod common;
use common::*;
use std::process::Command;

#[test]
fn reproduce_matches_a_toy_run_and_names_a_planted_difference() {
    let tmp = tempdir();
    let text = toy_spec("repro", 4, 30, "").replace("checkpoint_every: 2", "checkpoint_every: 10");
    let f = write(tmp.path(), "r.ron", &text);
    let res = tmp.path().join("results");
    odm_ok(&[
        "run",
        f.to_str().unwrap(),
        "--quiet",
        "--threads",
        "2",
        "--out",
        res.to_str().unwrap(),
    ]);
    let dir = std::fs::read_dir(&res)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let d = dir.to_str().unwrap();
    let o = odm_ok(&["reproduce", d, "--until", "20"]);
    // Rows up to 20: l1 and lr at every step (log_every 1), the final eval is at 30.
    assert!(
        o.starts_with("identical: 40 metrics rows up to iteration 20"),
        "{o}"
    );
    assert!(
        o.contains("recorded: binary") && o.contains("re-run  : binary"),
        "{o}"
    );

    // Plant a change in the l1 row of step 7 (the last digit of its value).
    let p = dir.join("metrics.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("7,train,-,l1,"))
        .unwrap()
        .to_string();
    let v: f64 = line.rsplit(',').next().unwrap().parse().unwrap();
    let planted = v * (1.0 + 1e-6);
    std::fs::write(&p, text.replace(&line, &format!("7,train,-,l1,{planted}"))).unwrap();
    let o = Command::new(odm_bin())
        .args(["reproduce", d, "--until", "20"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{s}");
    assert!(
        s.starts_with(&format!(
            "DIFFERENT: first at step 7, train, -, l1: recorded {planted}, re-run {v}"
        )),
        "{s}"
    );
    assert!(s.contains("relative difference 1.000e-6"), "{s}");
}
