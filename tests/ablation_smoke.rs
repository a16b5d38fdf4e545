//! Acceptance: experiments/ablation.ron, with the reduced-size override its header documents,
//! completes on CPU and writes every grid point; a rerun skips the finished points.

mod common;

use odm::commands::{run, table, RunOpts};

fn overrides() -> Vec<String> {
    let r = common::repo();
    vec![
        "init_from=None".into(),
        "schedule.iterations=2".into(),
        "data.patch_size=32".into(),
        "data.batch_size=2".into(),
        format!("data.train=[\"{}\"]", r.join("assets/cc0/train").display()),
        format!("data.eval=[\"{}\"]", r.join("assets/cc0/holdout").display()),
        "model={\"Edsr\": {\"n_resblocks\": 1, \"n_feats\": 8}}".into(),
        "quant.calib_batches=1".into(),
    ]
}

#[test]
fn reduced_ablation_writes_every_grid_point() {
    let tmp = common::tempdir();
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(2),
        overrides: overrides(),
        ..Default::default()
    };
    let file = common::repo().join("experiments/ablation.ron");
    let dirs = run(&file, &opts).unwrap();
    assert_eq!(dirs.len(), 5 * 2 * 2 * 3);
    for d in &dirs {
        assert!(
            d.join("summary.json").is_file(),
            "{} unfinished",
            d.display()
        );
    }
    let names: std::collections::HashSet<_> = dirs.iter().collect();
    assert_eq!(names.len(), 60, "every grid point has its own folder");
    // Gated points log the gate; offsets points save the M table.
    let sign = dirs
        .iter()
        .find(|d| {
            d.to_string_lossy()
                .contains("rule-sign.offsets-selective.weight_clip-wcc.seed-1")
        })
        .unwrap();
    let m = std::fs::read_to_string(sign.join("metrics.csv")).unwrap();
    assert!(
        m.contains(",gate,-,conflict_ratio,"),
        "gate statistics are logged"
    );
    assert!(sign.join("offsets.json").is_file());
    // Rerunning skips everything that finished.
    let again = run(&file, &opts).unwrap();
    assert_eq!(again, dirs);
    assert_eq!(
        std::fs::read_dir(tmp.path().join("results"))
            .unwrap()
            .count(),
        60
    );
    let t = table(&file, &opts.out, &opts.overrides).unwrap();
    assert_eq!(
        t.lines().filter(|l| l.starts_with("| ablation.")).count(),
        20,
        "{t}"
    );
    assert!(t.contains("| 3 |"), "three seeds per row: {t}");
}
