//! Which finished runs the report uses: an edited spec under an old name is superseded by the
//! newer one (and the report says so); seeds of one group that differ in more than the seed are
//! an error naming both folders.

mod common;
use common::*;
use std::path::Path;

/// A synthetic finished run `root/<folder>`: spec, summary (Set5) and provenance (finished at
/// `finished`).
fn fake(root: &Path, folder: &str, name: &str, seed: u64, lr: &str, psnr: f64, finished: &str) {
    let spec = format!(
        r#"(name: "{name}", seed: {seed}, scale: 4, model: Edsr(n_resblocks: 2, n_feats: 8),
    data: (train: ["t"], eval: ["e"]), optim: Adam(lr: {lr}), schedule: (iterations: 10))"#
    );
    let eval = format!(
        r#"{{"set": "Set5", "scale": 4, "images": 5, "psnr_y": {psnr}, "ssim_y": 0.8, "bicubic_psnr_y": 28.0, "bicubic_ssim_y": 0.78}}"#
    );
    let prov = format!(r#"{{"started": "{finished}", "finished": "{finished}"}}"#);
    finished_run(&root.join(folder), name, &spec, &eval, Some(&prov));
}

fn report(results: &Path, out: &Path) -> std::process::Output {
    std::process::Command::new(odm_bin())
        .args(["report", "--results"])
        .arg(results)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn an_edited_spec_under_an_old_name_is_superseded_and_said() {
    let tmp = tempdir();
    let r = tmp.path().join("results");
    // The edited spec (lr 2e-3) finished later, but its folder sorts first.
    fake(
        &r,
        "x.seed-1-aaaa",
        "x.seed-1",
        1,
        "2e-3",
        30.5,
        "2026-02-01T00:00:00Z",
    );
    fake(
        &r,
        "x.seed-1-bbbb",
        "x.seed-1",
        1,
        "1e-3",
        29.0,
        "2026-01-01T00:00:00Z",
    );
    let out = tmp.path().join("rep");
    let o = report(&r, &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    let sec = &readme[readme.find("## Superseded runs").expect(&readme)..];
    assert!(
        sec.contains("| x.seed-1 | `x.seed-1-aaaa` | `x.seed-1-bbbb` |"),
        "{sec}"
    );
    let runs = odm::report::collect(&r).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].scores[0].psnr, 30.5, "the newer spec's score");
}

#[test]
fn seeds_of_one_group_that_differ_in_more_than_the_seed_are_an_error() {
    let tmp = tempdir();
    let r = tmp.path().join("results");
    fake(
        &r,
        "g.seed-1-aaaa",
        "g.seed-1",
        1,
        "1e-3",
        30.0,
        "2026-01-01T00:00:00Z",
    );
    fake(
        &r,
        "g.seed-2-bbbb",
        "g.seed-2",
        2,
        "2e-3",
        30.1,
        "2026-01-01T00:00:00Z",
    );
    let o = report(&r, &tmp.path().join("rep"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("g.seed-1-aaaa")
            && e.contains("g.seed-2-bbbb")
            && e.contains("more than the seed"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1);
    // The same two seeds with one spec are one group.
    std::fs::remove_dir_all(r.join("g.seed-2-bbbb")).unwrap();
    fake(
        &r,
        "g.seed-2-cccc",
        "g.seed-2",
        2,
        "1e-3",
        30.1,
        "2026-01-01T00:00:00Z",
    );
    assert!(report(&r, &tmp.path().join("rep2")).status.success());
}

/// Seeds of one group that ran on different builds are listed in the report's README.
#[test]
fn a_group_whose_seeds_ran_on_different_builds_is_flagged() {
    let tmp = tempdir();
    let r = tmp.path().join("results");
    fake(
        &r,
        "m.seed-1-aaaa",
        "m.seed-1",
        1,
        "1e-3",
        30.0,
        "2026-01-01T00:00:00Z",
    );
    fake(
        &r,
        "m.seed-2-bbbb",
        "m.seed-2",
        2,
        "1e-3",
        30.1,
        "2026-01-01T00:00:00Z",
    );
    let prov = |folder: &str, build: &str| {
        std::fs::write(
            r.join(folder).join("provenance.json"),
            format!(
                r#"{{"started": "x", "finished": "x", "build": {{"commit": "c0ffee", "dirty": "false", "binary": "odm", "binary_sha256": "{build}", "rustc": "rustc"}}}}"#
            ),
        )
        .unwrap()
    };
    prov("m.seed-1-aaaa", "1111111111aa");
    prov("m.seed-2-bbbb", "1111111111aa");
    let out = tmp.path().join("rep");
    assert!(report(&r, &out).status.success());
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(
        !readme.contains("different builds"),
        "one build: no section"
    );
    prov("m.seed-2-bbbb", "2222222222bb");
    let out = tmp.path().join("rep2");
    assert!(report(&r, &out).status.success());
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    let sec = &readme[readme
        .find("## Groups whose seeds ran on different builds")
        .expect(&readme)..];
    assert!(
        sec.contains("| m | `m.seed-1-aaaa` | binary 1111111111 (commit c0ffee) |"),
        "{sec}"
    );
    assert!(
        sec.contains("| m | `m.seed-2-bbbb` | binary 2222222222 (commit c0ffee) |"),
        "{sec}"
    );
}
