//! Evaluation outputs for the ledger and the qualitative figure: an evaluation-only run
//! (`iterations: 0` from given weights), scores right after calibration (`eval_at_start`), saved
//! crops with their PSNR, and `odm eval --save-sr`. PSNRs are recomputed here from the PNGs with
//! an independent BT.601 Y-PSNR.

mod common;

use odm::commands::{eval, run, RunOpts};
use odm::spec::Device;
use std::path::Path;

fn opts(root: &Path) -> RunOpts {
    RunOpts {
        out: root.join("results"),
        threads: Some(2),
        progress: false,
        ..Default::default()
    }
}

fn rgb(p: &Path) -> (Vec<u8>, usize, usize) {
    let img = image::open(p).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    (img.into_raw(), h as usize, w as usize)
}

/// Y-PSNR (BT.601, peak 255) of two RGB images, `shave` pixels left out on every side.
fn y_psnr(a: &[u8], b: &[u8], h: usize, w: usize, shave: usize) -> f64 {
    let y = |p: &[u8]| {
        16.0 + (65.481 * p[0] as f64 + 128.553 * p[1] as f64 + 24.966 * p[2] as f64) / 255.0
    };
    let (mut se, mut n) = (0.0, 0.0);
    for r in shave..h - shave {
        for c in shave..w - shave {
            let i = (r * w + c) * 3;
            let d = y(&a[i..i + 3]) - y(&b[i..i + 3]);
            se += d * d;
            n += 1.0;
        }
    }
    10.0 * (255.0f64 * 255.0 / (se / n)).log10()
}

fn metric_rows(dir: &Path, step: usize, metric: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0] == step.to_string() && f[1] == "eval" && f[3] == metric)
                .then(|| f[4].parse().unwrap())
        })
        .collect()
}

const CROP: &str = r#"crops: [(set: "holdout", image: "chelsea", x: 100, y: 40, w: 64, h: 48)],"#;

#[test]
fn evaluation_only_run_start_scores_crops_and_saved_sr_images_agree() {
    let tmp = common::tempdir();
    let o = opts(tmp.path());
    let fp = common::write(tmp.path(), "fp.ron", &common::toy_spec("fp", 3, 2, CROP));
    let fp_dir = run(&fp, &o).unwrap().remove(0);
    let init = format!(
        "init_from: Checkpoint(\"{}\"), quant: MinMax(w_bits: 2, a_bits: 2),",
        fp_dir.display()
    );
    // Evaluation only: calibrated 2-bit weights, no step.
    let spec = common::toy_spec("ptq", 3, 0, &format!("{init} {CROP}"));
    let ptq = run(&common::write(tmp.path(), "ptq.ron", &spec), &o)
        .unwrap()
        .remove(0);
    let ptq_psnr = metric_rows(&ptq, 0, "psnr_y");
    assert_eq!(ptq_psnr.len(), 1, "one final evaluation at iteration 0");
    assert!(ptq.join("summary.json").is_file());
    // The same start, trained 2 steps, scored before the first: the same PSNR.
    let spec = common::toy_spec(
        "qat",
        3,
        2,
        &format!("{init} eval_at_start: [\"holdout\"],"),
    );
    let qat = run(&common::write(tmp.path(), "qat.ron", &spec), &o)
        .unwrap()
        .remove(0);
    assert_eq!(metric_rows(&qat, 0, "psnr_y"), ptq_psnr);
    assert_eq!(metric_rows(&qat, 2, "psnr_y").len(), 1);

    // The crop files and their PSNRs, recomputed from the PNGs.
    let recs: Vec<odm::eval::crops::CropRecord> =
        serde_json::from_slice(&std::fs::read(ptq.join("crops.json")).unwrap()).unwrap();
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    let (sr, h, w) = rgb(&ptq.join(&r.sr));
    let (hr, _, _) = rgb(&ptq.join(&r.hr));
    let (bic, _, _) = rgb(&ptq.join(&r.bicubic));
    assert_eq!((h, w), (48, 64));
    assert!((y_psnr(&sr, &hr, h, w, 0) - r.psnr_y).abs() < 1e-9);
    assert!((y_psnr(&bic, &hr, h, w, 0) - r.bicubic_psnr_y).abs() < 1e-9);

    // `odm eval --save-sr`: the full image is the one scored, and the crop is cut from it.
    let data = [common::repo().join("assets/cc0/holdout")];
    let out = tmp.path().join("sr");
    let scores = eval(&ptq, &data, Some(2), Device::Cpu, Some((&out, true)), None).unwrap();
    // `--tile`: the same scores from tiles of 24 LR pixels.
    let tiled = eval(&ptq, &data, Some(2), Device::Cpu, None, Some(24)).unwrap();
    assert_eq!(tiled, scores);
    let (full, fh, fw) = rgb(&out.join("holdout/chelsea.png"));
    // The HR as the protocol crops it: to a multiple of the scale (2), top-left.
    let (raw, sh, sw) = rgb(&common::repo().join("assets/cc0/holdout/chelsea.png"));
    let (hh, hw) = (sh / 2 * 2, sw / 2 * 2);
    let hr_full = crop_rgb(&raw, sw, hh, hw);
    assert_eq!((fh, fw), (hh, hw));
    assert!((y_psnr(&full, &hr_full, fh, fw, 2) - scores[0].psnr_y).abs() < 1e-9);
    assert!((scores[0].psnr_y - ptq_psnr[0]).abs() < 1e-12);
    let mut cut = Vec::new();
    let c = &r.crop;
    for y in c.y..c.y + c.h {
        cut.extend_from_slice(&full[(y * fw + c.x) * 3..(y * fw + c.x + c.w) * 3]);
    }
    assert!(cut == sr, "the saved crop is cut from the scored SR image");
    // `--save-lr`: the LR input the model saw, the HR's bicubic ½ downscale.
    let (_, lh, lw) = rgb(&out.join("holdout/lr/chelsea.png"));
    assert_eq!((lh, lw), (hh / 2, hw / 2));
    let again = eval(&ptq, &data, Some(2), Device::Cpu, Some((&out, false)), None).unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");

    // The report's qualitative figure: rows HR, bicubic, FP, then the W2A2 run, one column (the
    // crop), each tile where the grid's layout puts it, zoomed by the layout's factor.
    let rep = tmp.path().join("reports");
    odm::report::report(&o.out, &rep, None).unwrap();
    let fig = image::open(rep.join("figures/qualitative.png"))
        .unwrap()
        .to_rgb8();
    let runs = odm::report::collect(&o.out).unwrap();
    let (rows, cols, cap) = odm::report::qualitative::grid(&runs).unwrap().unwrap();
    let l = odm::report::qualitative::grid_layout(&rows, &cols, &cap);
    assert_eq!(fig.dimensions(), l.size);
    assert_eq!(rows.len(), 4, "HR, bicubic, FP, W2A2");
    let z = l.zoom as u32;
    let at = |row: usize, cx: u32, cy: u32| {
        let t = l.tiles[row];
        fig.get_pixel(t.x as u32 + z * cx + z / 2, t.y as u32 + z * cy + z / 2)
    };
    for (k, want) in [&hr, &bic].into_iter().enumerate() {
        for (i, px) in want.chunks(3).enumerate() {
            let (cx, cy) = ((i % 64) as u32, (i / 64) as u32);
            assert_eq!(&at(k, cx, cy).0[..], px, "tile {k} pixel {i}");
        }
    }
    let (w2, _, _) = rgb(&ptq.join(&r.sr));
    assert_eq!(
        &at(3, 10, 20).0[..],
        &w2[(20 * 64 + 10) * 3..(20 * 64 + 10) * 3 + 3]
    );
    // The run stored the HR thumbnail; the column header shows it with the box.
    let (th, thh, thw) = rgb(&ptq.join(&r.thumb.as_ref().unwrap().file));
    assert_eq!(l.thumbs.len(), 1, "one column in one block");
    let t = l.thumbs[0];
    assert_eq!((t.w as usize, t.h as usize), (thw, thh));
    let p = fig.get_pixel(t.x as u32, t.y as u32);
    assert_eq!(&p.0[..], &th[..3], "the thumbnail's top-left pixel");
}

/// Top-left `h` × `w` of an RGB image `src_w` pixels wide (the HR mod-crop).
fn crop_rgb(raw: &[u8], src_w: usize, h: usize, w: usize) -> Vec<u8> {
    (0..h)
        .flat_map(|y| raw[y * src_w * 3..(y * src_w + w) * 3].iter().copied())
        .collect()
}

#[test]
fn bad_crops_and_evaluation_only_without_weights_are_errors_before_any_folder() {
    let tmp = common::tempdir();
    let o = opts(tmp.path());
    let bad = r#"crops: [(set: "holdout", image: "nope", x: 0, y: 0, w: 16, h: 16)],"#;
    let f = common::write(tmp.path(), "bad.ron", &common::toy_spec("bad", 1, 1, bad));
    let e = run(&f, &o).unwrap_err().to_string();
    assert!(
        e.contains("crops[0]") && e.contains("nope") && e.contains("bad.ron"),
        "{e}"
    );
    let outside = r#"crops: [(set: "holdout", image: "chelsea", x: 440, y: 0, w: 16, h: 16)],"#;
    let f = common::write(
        tmp.path(),
        "out.ron",
        &common::toy_spec("out", 1, 1, outside),
    );
    let e = run(&f, &o).unwrap_err().to_string();
    assert!(e.contains("crops[0]") && e.contains("leaves"), "{e}");
    let start = r#"eval_at_start: ["Set5"],"#;
    let f = common::write(tmp.path(), "st.ron", &common::toy_spec("st", 1, 1, start));
    let e = run(&f, &o).unwrap_err().to_string();
    assert!(e.contains("eval_at_start") && e.contains("holdout"), "{e}");
    let f = common::write(tmp.path(), "zero.ron", &common::toy_spec("zero", 1, 0, ""));
    let e = run(&f, &o).unwrap_err().to_string();
    assert!(
        e.contains("schedule.iterations") && e.contains("init_from"),
        "{e}"
    );
    assert!(
        !tmp.path().join("results").exists()
            || std::fs::read_dir(tmp.path().join("results"))
                .unwrap()
                .next()
                .is_none(),
        "no run folder is left behind"
    );
}
