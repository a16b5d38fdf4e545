//! Acceptance (issue 24, "never lose or silently corrupt a result"): names that CSV must quote
//! round-trip through `per_image.csv`, `metrics.csv` and `odm report`; absurd sizes and counts
//! are refused at validation with their limit on one line (exit 2, nothing written); `odm cost`
//! refuses sides past its limit and counts exactly at the largest one; `odm eval --tile` refuses
//! 0 and absurd tiles.

mod common;

use serde::Deserialize;
use std::path::Path;

/// The records of a CSV file (RFC 4180), read by the `csv` crate with every row as long as the
/// header: `(header, rows)`.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| {
            rec.unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .iter()
                .map(String::from)
                .collect()
        })
        .collect();
    (head, rows)
}

#[test]
fn comma_and_quote_in_set_and_image_names_round_trip() {
    let tmp = common::tempdir();
    let holdout = common::repo().join("assets/cc0/holdout");
    let set = tmp.path().join("hold,out");
    std::fs::create_dir(&set).unwrap();
    for name in ["chel,sea.png", "chel\"sea.png"] {
        std::fs::copy(holdout.join("chelsea.png"), set.join(name)).unwrap();
    }
    let text = common::toy_spec("commas", 1, 2, "")
        .replace(&holdout.display().to_string(), &set.display().to_string());
    let run = common::run_text(tmp.path(), "commas", &text);

    let (head, rows) = read_csv(&run.join("per_image.csv"));
    assert_eq!(
        head,
        [
            "set",
            "image",
            "psnr_y",
            "ssim_y",
            "bicubic_psnr_y",
            "bicubic_ssim_y"
        ]
    );
    let mut images: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    images.sort_unstable();
    assert_eq!(images, ["chel\"sea", "chel,sea"]);
    for r in &rows {
        assert_eq!(r[0], "hold,out");
        for v in &r[2..] {
            assert!(v.parse::<f64>().unwrap().is_finite(), "{r:?}");
        }
    }
    // Both copies are the same picture: the same scores.
    assert_eq!(rows[0][2..], rows[1][2..]);

    let (head, rows) = read_csv(&run.join("metrics.csv"));
    assert_eq!(head, ["step", "split", "set", "metric", "value"]);
    let eval: Vec<&Vec<String>> = rows.iter().filter(|r| r[1] == "eval").collect();
    assert!(!eval.is_empty(), "no eval rows: {rows:?}");
    for r in eval {
        assert_eq!(r[2], "hold,out");
        assert_eq!(r[0], "2");
    }
    assert!(rows.iter().any(|r| r[1] == "train" && r[3] == "l1"));

    let out = tmp.path().join("report");
    common::odm_ok(&[
        "report",
        "--results",
        run.parent().unwrap().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let tables: Vec<_> = std::fs::read_dir(out.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        // The reproduction tables list reports/expected.ron's cells and claims, not these runs.
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("reproduction")
        })
        .collect();
    assert!(!tables.is_empty());
    let mut named = 0;
    for t in tables {
        let (head, rows) = read_csv(&t);
        let Some(col) = head.iter().position(|h| h == "set") else {
            continue;
        };
        for r in rows {
            assert_eq!(r[col], "hold,out", "{}: {r:?}", t.display());
            named += 1;
        }
    }
    assert!(named > 0, "no table names the set");

    // Files of plain names are what they were before quoting: every committed metrics.csv
    // parses and is written back byte for byte.
    for e in std::fs::read_dir(common::repo().join("results")).unwrap() {
        let p = e.unwrap().path().join("metrics.csv");
        if let Ok(text) = std::fs::read_to_string(&p) {
            let rows = odm::record::parse_metrics(&text).unwrap();
            assert_eq!(odm::record::metrics_csv(&rows), text, "{}", p.display());
        }
    }
}

/// `odm check` and `odm run` both refuse spec `text` (with `--set` overrides `sets`) with exit 2
/// and one line holding every string of `want`, and the run leaves nothing in its results folder.
fn refused(text: &str, sets: &[&str], want: &[&str]) {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "absurd.ron", text);
    let f = f.to_str().unwrap();
    let results = tmp.path().join("results");
    let mut set_args = Vec::new();
    for s in sets {
        set_args.extend(["--set", s]);
    }
    let check = if sets.is_empty() {
        common::odm_user_error(&["check", f], want[0])
    } else {
        // `odm check` takes no overrides; `odm run --list` loads the file with them.
        let mut a = vec!["run", f, "--list"];
        a.extend(&set_args);
        common::odm_user_error(&a, want[0])
    };
    let mut args = vec!["run", f, "--quiet", "--out", results.to_str().unwrap()];
    args.extend(&set_args);
    let run = common::odm_user_error(&args, want[0]);
    for line in [check, run] {
        for w in want {
            assert!(line.contains(w), "{w:?} missing from: {line}");
        }
    }
    let left = std::fs::read_dir(&results).map_or(0, |d| d.count());
    assert_eq!(left, 0, "something was written under {}", results.display());
}

#[test]
fn absurd_sizes_and_counts_are_refused_with_their_limit() {
    let toy = |iterations: usize| common::toy_spec("absurd", 1, iterations, "");
    refused(
        &toy(1_000_000_000_000),
        &[],
        &["schedule.iterations", "1000000000000", "limit of 10000000"],
    );
    refused(
        &toy(2).replace("batch_size: 2", "batch_size: 1000000"),
        &[],
        &["data.batch_size", "1000000", "limit of 4096"],
    );
    refused(
        &toy(2),
        &["data.batch_size=1000000"],
        &["data.batch_size", "limit of 4096"],
    );
    refused(
        &toy(2).replace("patch_size: 32", "patch_size: 1000000"),
        &[],
        &["data.patch_size", "limit of 4096"],
    );
    // Each within its own limit, together past the memory limit: 4096 patches of 4096² px.
    refused(
        &toy(2).replace(
            "patch_size: 32, batch_size: 2",
            "patch_size: 4096, batch_size: 4096",
        ),
        &[],
        &["data.batch_size", "GiB", "limit of 1024 GiB"],
    );
    refused(
        &toy(2).replace("log_every: 1,", "log_every: 100000000,"),
        &[],
        &["log_every", "limit of 10000000"],
    );
    refused(
        &toy(2).replace("n_feats: 8", "n_feats: 1000000000"),
        &[],
        &["model.n_feats", "limit of 4096"],
    );
    refused(
        &toy(2).replace("n_resblocks: 2", "n_resblocks: 1000000000"),
        &[],
        &["model.n_resblocks", "limit of 1024"],
    );
}

#[test]
fn cost_refuses_sides_past_its_limit() {
    let tmp = common::tempdir();
    let f = common::write(tmp.path(), "toy.ron", &common::toy_spec("toy", 1, 2, ""));
    let f = f.to_str().unwrap();
    for size in ["99999999x99999999", "65537x1", "1x65537"] {
        common::odm_user_error(&["cost", f, "--size", size], "65536");
    }
    common::odm_user_error(&["cost", f, "--size", "0x5"], "--size");
}

#[derive(Deserialize)]
struct CostLine {
    cost: Cost,
}

#[derive(Deserialize)]
struct Cost {
    input_w: u128,
    input_h: u128,
    total_macs: u128,
    total_bitops: u128,
    layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct Layer {
    layer: String,
    macs: u128,
}

/// EDSR ×2 with 16 blocks of 4096 features at the largest LR input, 65536×65536: 2^32 pixels
/// times 9·4096² MACs per body conv, 37 such convs' worth in all: past 2^64, so the counts must
/// not wrap around.
#[test]
fn cost_at_the_largest_size_counts_exactly() {
    let tmp = common::tempdir();
    let text = common::toy_spec("wide", 1, 2, "")
        .replace(
            "n_resblocks: 2, n_feats: 8",
            "n_resblocks: 16, n_feats: 4096",
        )
        .replace(
            "patch_size: 32, batch_size: 2",
            "patch_size: 2, batch_size: 1",
        );
    let f = common::write(tmp.path(), "wide.ron", &text);
    let v = common::odm_ok(&[
        "cost",
        f.to_str().unwrap(),
        "--size",
        "65536x65536",
        "--json",
    ]);
    let c: CostLine = serde_json::from_str(v.trim()).unwrap();
    let c = c.cost;
    assert_eq!((c.input_w, c.input_h), (65_536, 65_536));
    let (hw, f, k2): (u128, u128, u128) = (65_536 * 65_536, 4096, 9);
    // One 3×3 conv, 4096 → 4096 channels at LR resolution: H·W·C_in·C_out·9.
    let body = c.layers.iter().find(|l| l.layer == "body.0.conv1").unwrap();
    assert_eq!(body.macs, hw * f * f * k2);
    assert_eq!(body.macs, 648_518_346_341_351_424);
    // head 3→f, 33 f→f body convs (2 per block + the last), upsampler f→4f at LR resolution,
    // tail f→3 at HR resolution (4·H·W pixels).
    let want = hw * k2 * (3 * f + 33 * f * f + 4 * f * f) + 4 * hw * k2 * f * 3;
    assert!(want > u64::MAX as u128);
    assert_eq!(c.total_macs, want);
    assert_eq!(c.total_bitops, want * 1024, "FP: 32·32 bits per MAC");
}

#[test]
fn eval_refuses_a_zero_or_absurd_tile() {
    let tmp = common::tempdir();
    let run = common::toy_run(tmp.path(), "tiles", 2, "");
    let run = run.to_str().unwrap();
    let data = common::repo().join("assets/cc0/holdout");
    let data = data.to_str().unwrap();
    let eval = |tile: &str| {
        ["eval", "--checkpoint", run, "--data", data, "--tile", tile].map(String::from)
    };
    for t in ["99999999", "65537", "0"] {
        let e = common::odm_user_error(&eval(t), &format!("--tile {t}"));
        assert!(e.contains("1 to 65536"), "{e}");
    }
    // At the limit: a tile larger than the image runs it whole.
    common::odm_ok(&eval("65536"));
}
