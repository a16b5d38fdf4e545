//! Acceptance (issue 16, integer inference): the integer convolution kernel against burn's conv
//! and across its paths (AVX-512 VNNI, AVX2, scalar) and thread counts; the integer path against
//! the fake-quant path layer by layer on toy EDSRs at 2, 3, 4 and 8 bits in each quantizer form,
//! and on a toy RDN and SRResNet;
//! and `odm infer`.

mod common;

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::infer::{layer_checks, Host};
use odm::kernels::int_conv::{conv, conv_rescaled, pick, IntPath, IntWeights, Padded, Rescale};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Integer sums of small codes are exact in f32, so burn's float conv is an exact reference.
#[test]
fn integer_conv_matches_burn_and_every_path() {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for (ci, co, k, h, w, umax, wmax) in [
        (8, 5, 3, 7, 9, 15, 7),
        (3, 4, 3, 5, 4, 127, 127),
        (16, 3, 1, 6, 6, 255, 100),
        (70, 6, 3, 4, 5, 3, 1),
        (4, 2, 3, 3, 3, 255, 300),
        // Every VNNI register block: 70 = 64 + 6 output channels (4 and 1 vectors), 33 = 2
        // vectors + 1 channel; widths 13 = 6 + 6 + 1 and 11 = 6 + 5 pixels.
        (64, 70, 3, 5, 13, 255, 127),
        (12, 33, 3, 4, 11, 200, 50),
        (5, 40, 1, 3, 10, 15, 7),
    ] {
        let u: Vec<u8> = (0..ci * h * w)
            .map(|_| rng.random_range(0..=umax) as u8)
            .collect();
        let wc: Vec<i32> = (0..co * ci * k * k)
            .map(|_| rng.random_range(-wmax..=wmax))
            .collect();
        let iw = IntWeights::new(&wc, co, ci, k);
        let reference = conv(&u, h, w, &iw, IntPath::Scalar);
        let d = Default::default();
        let x = Tensor::<Cpu, 4>::from_data(
            TensorData::new(
                u.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                [1, ci, h, w],
            ),
            &d,
        );
        let wt = Tensor::<Cpu, 4>::from_data(
            TensorData::new(
                wc.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                [co, ci, k, k],
            ),
            &d,
        );
        let y = odm::kernels::conv2d_same(x, wt, Tensor::zeros([co], &d));
        let yv = y.into_data().to_vec::<f32>().unwrap();
        // The kernel's output is pixel-major (H × W × C_out).
        let yv: Vec<f32> = (0..h * w * co)
            .map(|i| yv[(i % co) * h * w + i / co])
            .collect();
        assert_eq!(
            reference,
            yv.iter().map(|&v| v as i32).collect::<Vec<_>>(),
            "scalar vs burn {ci}x{co}x{k}"
        );
        let best = pick(umax, &iw);
        assert_eq!(conv(&u, h, w, &iw, best), reference, "{best:?}");
        #[cfg(target_arch = "x86_64")]
        if umax <= 127 && wmax <= 127 && std::arch::is_x86_feature_detected!("avx2") {
            assert_eq!(conv(&u, h, w, &iw, IntPath::Avx2), reference, "avx2");
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(
            one.install(|| conv(&u, h, w, &iw, best)),
            reference,
            "1 thread"
        );
        // The rescale (in registers on the VNNI path) against the formula on the exact
        // accumulators, bit for bit: (a·s)·acc + (o·s)·Σ_valid c + b.
        let scale: Vec<f32> = (0..co).map(|_| rng.random_range(0.01..0.2)).collect();
        let bias: Vec<f32> = (0..co).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (a, o) = (0.037f32, -0.61f32);
        let rs = Rescale::new(&iw, &scale, Some(&bias), (a, o), (h, w));
        let padded = Padded::from_chw(&u, (ci, h, w), k / 2);
        for path in [best, IntPath::Scalar] {
            let mut y = vec![std::mem::MaybeUninit::<f32>::uninit(); h * w * co];
            conv_rescaled(&padded, &iw, path, &rs, &mut y);
            for (i, v) in y.iter().enumerate() {
                let (px, oc) = (i / co, i % co);
                let (yy, xx) = (px / w, px % w);
                // Σ_valid c by brute force: the codes of the taps inside the image.
                let mut sv = 0i64;
                for c in 0..ci {
                    for ti in 0..k {
                        for tj in 0..k {
                            let (sy, sx) = (yy + ti, xx + tj);
                            if sy >= k / 2 && sy - k / 2 < h && sx >= k / 2 && sx - k / 2 < w {
                                sv += wc[((oc * ci + c) * k + ti) * k + tj] as i64;
                            }
                        }
                    }
                }
                let want =
                    a * scale[oc] * reference[i] as f32 + o * scale[oc] * sv as f32 + bias[oc];
                // SAFETY: `conv_rescaled` writes every value.
                let got = unsafe { v.assume_init() };
                assert_eq!(got.to_bits(), want.to_bits(), "{path:?} {ci}x{co} at {i}");
            }
        }
    }
}

/// Layer by layer on the held-out photo's ½ LR: the integer path's real input values are the
/// fake quantizer's bit for bit, its conv outputs agree to float rounding (1e-5 of the largest),
/// and end to end at most 0.1 % of the codes of any point differ from the fake-quant forward's.
#[test]
fn integer_path_matches_fake_quant_layer_by_layer() {
    let tmp = common::tempdir();
    let cases = [
        ("odm2", "quant: Odm(w_bits: 2, a_bits: 2),"),
        ("odm3", "quant: Odm(w_bits: 3, a_bits: 3),"),
        ("odm4", "quant: Odm(w_bits: 4, a_bits: 4),"),
        // Scale and shift offsets before every quantizer.
        (
            "odm3off",
            "quant: Odm(w_bits: 3, a_bits: 3), offsets: AllBoth,",
        ),
        ("odm8", "quant: Odm(w_bits: 8, a_bits: 8),"),
        ("pams4", "quant: Pams(w_bits: 4, a_bits: 4),"),
        ("ddtb3", "quant: DdtbStatic(w_bits: 3, a_bits: 3),"),
        ("minmax8", "quant: MinMax(w_bits: 8, a_bits: 8),"),
        // RDN (conv-input placement: every dense conv, LFF and GFF) and SRResNet.
        (
            "rdn4",
            "model: Rdn(d: 2, c: 2, g: 4, g0: 8), quant: Odm(w_bits: 4, a_bits: 4),",
        ),
        (
            "srr4",
            "model: SrResNet(n_resblocks: 2, n_feats: 16), quant: MinMax(w_bits: 4, a_bits: 4),",
        ),
    ];
    let img = image::open(common::repo().join("assets/cc0/holdout/chelsea.png"))
        .unwrap()
        .to_rgb8();
    let (w, h) = (img.width() as usize / 4, img.height() as usize / 4);
    let small = image::imageops::resize(
        &img,
        w as u32,
        h as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut v = vec![0f32; 3 * h * w];
    for (i, px) in small.pixels().enumerate() {
        for c in 0..3 {
            v[c * h * w + i] = px[c] as f32;
        }
    }
    let x = Host::new(3, h, w, v);
    for (name, extra) in cases {
        let mut text = common::toy_spec(name, 1, 3, extra);
        if extra.starts_with("model:") {
            text = text.replace("model: Edsr(n_resblocks: 2, n_feats: 8),", "");
        }
        let run = common::run_text(tmp.path(), name, &text);
        let (_, model, plan, params) =
            odm::commands::load_run::<Cpu>(&run, &Default::default()).unwrap();
        let checks = layer_checks(&model, &params, &plan, &x);
        assert!(!checks.is_empty(), "{name}: no integer conv");
        let (f, t, n): (usize, usize, usize) = checks.iter().fold((0, 0, 0), |a, c| {
            (a.0 + c.code_flips, a.1 + c.near_ties, a.2 + c.codes)
        });
        let worst = checks
            .iter()
            .map(|c| c.max_diff / c.max_abs.max(1.0))
            .fold(0f32, f32::max);
        eprintln!("{name}: {} integer convs, code flips {f} of {n} ({t} near a tie), worst relative conv difference {worst:.1e}", checks.len());
        for c in &checks {
            assert_eq!(c.value_mismatches, 0, "{name} {}", c.layer);
            assert!(
                c.max_diff <= 1e-5 * c.max_abs.max(1.0),
                "{name} {}: {c:?}",
                c.layer
            );
            assert!(c.code_flips * 1000 <= c.codes, "{name} {}: {c:?}", c.layer);
        }
    }
}

#[test]
fn odm_infer_scores_like_eval() {
    let tmp = common::tempdir();
    let run = common::toy_run(tmp.path(), "inf", 3, "quant: Pams(w_bits: 4, a_bits: 4),");
    let data = common::repo().join("assets/cc0/holdout");
    let args = |cmd: &str| -> Vec<String> {
        let mut a = vec![cmd.to_string()];
        if cmd == "eval" {
            a.push("--checkpoint".into());
        }
        a.extend([
            run.display().to_string(),
            "--data".into(),
            data.display().to_string(),
            "--json".into(),
        ]);
        a
    };
    let psnr = |s: &str| -> f64 {
        let v: serde_json::Value = serde_json::from_str(s.lines().next().unwrap()).unwrap();
        v["psnr_y"].as_f64().unwrap()
    };
    let (e, i) = (
        common::odm_ok(&args("eval")),
        common::odm_ok(&args("infer")),
    );
    assert!((psnr(&e) - psnr(&i)).abs() < 0.01, "{e} {i}");
    // --save-sr writes the scored images (and --save-lr the inputs); an existing folder is
    // refused in one line with exit code 2.
    let out = tmp.path().join("sr");
    let mut a = args("infer");
    a.extend([
        "--save-sr".into(),
        out.display().to_string(),
        "--save-lr".into(),
    ]);
    common::odm_ok(&a);
    let sr = image::open(out.join("holdout/chelsea.png")).unwrap();
    let lr = image::open(out.join("holdout/lr/chelsea.png")).unwrap();
    assert_eq!(
        (sr.width(), sr.height()),
        (lr.width() * 2, lr.height() * 2),
        "×2 output"
    );
    common::odm_user_error(&a, "already exists");
}
