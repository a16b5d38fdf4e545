//! Acceptance (issue 27, part 4): the per-layer QAT diagnostics. Each statistic on hand-made
//! tensors with values derived by hand; the clipping/rounding split adding up to the mismatch
//! on a real quantizer's output; `diagnostics.csv` and `histogram.json` in every QAT run folder
//! (none in an FP one), with the grid of the AdaBM affine quantizer (2^b levels from l to u).

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::kernels::quantizer::{fake_quant, Quantizer};
use odm::spec::{BoundGrad, QForm};
use odm::train::diagnostics::{dead_fraction, point_stats, Hist, LayerHistogram, BINS};

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
        "{what}: {a} vs {b}"
    );
}

/// One image, two channels of two pixels, clip ranges [0, 1] and [0, 2]:
/// channel 0: x = −1 (clipped, q = 0: error 1), x = 0.5 (inside, q = 0: error 0.25);
/// channel 1: x = 1.25 (inside, q = 1: error 0.0625), x = 3 (clipped, q = 2: error 1).
/// clip² = 2, round² = 0.3125, mismatch² = 2.3125; 2 of 4 elements clipped; variances over
/// H×W: channel 0 mean −0.25, (0.75² + 0.75²)/2 = 0.5625; channel 1 mean 2.125, 0.875² =
/// 0.765625; their mean 0.6640625. The input has negatives: no dead-channel statistic.
#[test]
fn statistics_of_a_hand_made_tensor() {
    let x = [-1.0, 0.5, 1.25, 3.0];
    let q = [0.0, 0.0, 1.0, 2.0];
    let s = point_stats([1, 2, 1, 2], &x, &x, &q, &[0.0, 0.0], &[1.0, 2.0]);
    close(s.clip_err, 2f64.sqrt(), "clip_err");
    close(s.round_err, 0.3125f64.sqrt(), "round_err");
    close(s.mismatch, 2.3125f64.sqrt(), "mismatch");
    close(s.clip_frac, 0.5, "clip_frac");
    close(s.variance, 0.6640625, "variance");
    assert_eq!(s.dead_frac, None);
    // An element exactly at a bound is inside (its error is the rounding's).
    let s = point_stats(
        [1, 1, 1, 2],
        &[1.0, 2.0],
        &[1.0, 2.0],
        &[0.5, 2.0],
        &[1.0],
        &[2.0],
    );
    close(s.clip_frac, 0.0, "at the bounds");
    close(s.round_err, 0.5, "round_err at the bounds");
    // An unclipped range (DAQ after ReLU as its code runs: [0, ∞)).
    let s = point_stats(
        [1, 1, 1, 2],
        &[0.0, 9.0],
        &[0.0, 9.0],
        &[0.0, 8.0],
        &[0.0],
        &[f32::INFINITY],
    );
    close(s.clip_frac, 0.0, "unclipped");
    close(s.round_err, 1.0, "unclipped round_err");
}

/// Two images, three channels of two pixels: channel 0 is 0 everywhere (dead), channel 1 only
/// in image 0, channel 2 never: 1 of 3 dead. A negative value or no exact zero: not a ReLU's
/// output, no statistic.
#[test]
fn dead_channels_by_hand() {
    let raw = [
        0.0, 0.0, /* c1 */ 0.0, 0.0, /* c2 */ 1.0, 2.0, // image 0
        0.0, 0.0, /* c1 */ 0.0, 3.0, /* c2 */ 0.5, 0.0, // image 1
    ];
    assert_eq!(dead_fraction([2, 3, 1, 2], &raw), Some(1.0 / 3.0));
    assert_eq!(dead_fraction([1, 1, 1, 2], &[-1.0, 0.0]), None);
    assert_eq!(dead_fraction([1, 1, 1, 2], &[1.0, 2.0]), None);
    assert_eq!(dead_fraction([1, 2, 1, 1], &[0.0, 0.0]), Some(1.0));
}

/// The split adds up on the affine quantizer at 2 and 4 bits over [−1, 2], for a ramp that
/// crosses both bounds: mismatch² = clip² + round², the mismatch is ‖x − q‖ computed here, and
/// the clipped share is the ramp's share outside [−1, 2].
#[test]
fn the_split_adds_up_on_a_real_quantizer() {
    let n = 1000;
    let x: Vec<f32> = (0..n).map(|i| -3.0 + 8.0 * i as f32 / n as f32).collect();
    let dev = Default::default();
    for bits in [2, 4] {
        let xt = Tensor::<Cpu, 4>::from_data(TensorData::new(x.clone(), [1, 1, 1, n]), &dev);
        let l = Tensor::<Cpu, 4>::from_data(TensorData::new(vec![-1f32], [1, 1, 1, 1]), &dev);
        let u = Tensor::<Cpu, 4>::from_data(TensorData::new(vec![2f32], [1, 1, 1, 1]), &dev);
        let qz = Quantizer {
            bits,
            form: QForm::Affine,
            grad: BoundGrad::Full,
            split_ties: false,
        };
        let q: Vec<f32> = fake_quant(xt, l, u, qz).into_data().to_vec().unwrap();
        let s = point_stats([1, 1, 1, n], &x, &x, &q, &[-1.0], &[2.0]);
        let direct: f64 = x
            .iter()
            .zip(&q)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum();
        close(s.mismatch.powi(2), direct, "mismatch² = Σ(x − q)²");
        close(
            s.clip_err.powi(2) + s.round_err.powi(2),
            s.mismatch.powi(2),
            "clip² + round²",
        );
        let outside = x.iter().filter(|&&v| !(-1.0..=2.0).contains(&v)).count();
        close(s.clip_frac, outside as f64 / n as f64, "clip_frac");
        assert!(s.clip_err > 0.0 && s.round_err > 0.0, "{s:?}");
    }
}

#[test]
fn histogram_bins_by_hand() {
    let h = Hist::of(&[0.0, 1.0, 1.0, 4.0]);
    assert_eq!((h.min, h.max), (0.0, 4.0));
    assert_eq!(h.counts.len(), BINS);
    // Width 4/BINS: 0 in bin 0, 1 in bin BINS/4, the maximum in the last (closed) bin.
    assert_eq!(h.counts[0], 1);
    assert_eq!(h.counts[BINS / 4], 2);
    assert_eq!(h.counts[BINS - 1], 1);
    assert_eq!(h.counts.iter().sum::<u64>(), 4);
}

fn run_toy(tmp: &std::path::Path, name: &str, extra: &str) -> std::path::PathBuf {
    let dir = tmp.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    common::run_text(&dir, name, &common::toy_spec(name, 2, 4, extra))
}

/// A W4A4 ODM run with WCC (log_every 1, 4 iterations): one row per step 0–4 and active
/// activation point (those of `quant_map.json`), each adding up; WCC's γ starts at 1; the
/// histogram's grid is the affine quantizer's 16 levels from l to u, equally spaced. An FP run
/// writes neither file.
#[test]
fn every_qat_run_folder_has_the_diagnostics() {
    let tmp = common::tempdir();
    let dir = run_toy(
        tmp.path(),
        "diag",
        "quant: Odm(w_bits: 4, a_bits: 4, weight_clip: Wcc()), regularizer: Mismatch(lambda: 1e-4),",
    );
    let map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("quant_map.json")).unwrap())
            .unwrap();
    let points: Vec<String> = map
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["quant"]["a_bits"].as_u64().unwrap() < 32)
        .map(|p| p["layer"].as_str().unwrap().to_string())
        .collect();
    assert!(!points.is_empty(), "{map}");
    let text = std::fs::read_to_string(dir.join("diagnostics.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "step,layer,mismatch,clip_err,round_err,variance,clip_frac,dead_frac,lo,hi,wcc_gamma"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5 * points.len());
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0], (i / points.len()).to_string());
        assert_eq!(r[1], points[i % points.len()]);
        let v = |k: usize| r[k].parse::<f64>().unwrap();
        let (m, c, ro) = (v(2), v(3), v(4));
        assert!((m * m - c * c - ro * ro).abs() <= 1e-9 * m * m, "{r:?}");
        assert!((0.0..=1.0).contains(&v(6)) && v(8) < v(9), "{r:?}");
        if r[0] == "0" {
            assert_eq!(r[10], "1", "WCC's γ starts at 1");
        }
    }
    let h: LayerHistogram =
        serde_json::from_str(&std::fs::read_to_string(dir.join("histogram.json")).unwrap())
            .unwrap();
    assert_eq!(h.step, 4);
    assert!(points.contains(&h.layer));
    assert!(h.fp.is_some() && h.qat.is_some());
    let (l, u) = (h.lo.unwrap(), h.hi.unwrap());
    assert_eq!(h.levels.len(), 16, "{:?}", h.levels);
    for (k, v) in h.levels.iter().enumerate() {
        let want = l + (u - l) * k as f64 / 15.0;
        assert!(
            (v - want).abs() <= 1e-5 * (u - l),
            "level {k}: {v} vs {want}"
        );
    }

    let fp = run_toy(tmp.path(), "fp", "");
    assert!(!fp.join("diagnostics.csv").exists() && !fp.join("histogram.json").exists());
}
