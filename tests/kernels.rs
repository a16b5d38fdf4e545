//! Our CPU kernels (src/kernels) against burn: the convolution against burn's conv2d (forward,
//! input, weight and bias gradients on random data with a fixed seed, bit-identical for 1 and 3
//! threads), the fused activation quantizer against `quant::fake_quant`'s composition and the
//! per-channel scale and shift against burn's broadcast ops.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use odm::backend::{Cpu, CpuTrain};
use odm::kernels::{
    channel_affine, channel_affine_composed, conv2d_same, conv2d_same_replay, fake_quant_channels,
    pixel_shuffle, pixel_shuffle_composed, AffineKind,
};

type T4 = Tensor<CpuTrain, 4>;

fn rand<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<CpuTrain, D> {
    <CpuTrain as burn::tensor::backend::Backend>::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

fn vals<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

/// Forward output and the gradients of Σ y·r w.r.t. x, w and b.
fn run(ours: bool, x: &T4, w: &T4, b: &Tensor<CpuTrain, 1>, r: &T4) -> [Vec<f32>; 4] {
    let (x, w, b) = (
        x.clone().require_grad(),
        w.clone().require_grad(),
        b.clone().require_grad(),
    );
    let k = w.dims()[2];
    let y = if ours {
        conv2d_same(x.clone(), w.clone(), b.clone())
    } else {
        let o = ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], 1);
        conv2d(x.clone(), w.clone(), Some(b.clone()), o)
    };
    let g = (y.clone() * r.clone()).sum().backward();
    [
        vals(y),
        vals(x.grad(&g).unwrap()),
        vals(w.grad(&g).unwrap()),
        vals(b.grad(&g).unwrap()),
    ]
}

/// `f` run on a fresh rayon pool of `t` threads.
fn on_threads<R: Send>(t: usize, f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build();
    pool.unwrap().install(f)
}

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        err / scale < 1e-4,
        "{what}: max error {err} vs scale {scale}"
    );
}

#[test]
fn matches_burn_conv2d_and_is_thread_count_independent() {
    for (i, &(n, ci, co, h, w, k)) in [
        (2, 5, 7, 9, 11, 3),
        (3, 3, 4, 6, 5, 1),
        (1, 4, 2, 7, 8, 5),
        (2, 16, 16, 48, 20, 3),
        // Depth 64·9 = 576 > 512 (k split into chunks, src/kernels/sgemm.rs) on a wide image
        // (bands of 3 rows, 390 pixels: not a multiple of the vector width).
        (1, 64, 8, 7, 130, 3),
        // Few output channels (the direct path of kernels/thin.rs): a tail-like 3×3 and a
        // SRResNet-like 9×9.
        (2, 16, 3, 33, 29, 3),
        (1, 8, 3, 20, 17, 9),
    ]
    .iter()
    .enumerate()
    {
        let s = 10 * i as u64;
        let (x, wt, b, r) = (
            rand([n, ci, h, w], s),
            rand([co, ci, k, k], s + 1),
            rand([co], s + 2),
            rand([n, co, h, w], s + 3),
        );
        let want = run(false, &x, &wt, &b, &r);
        let got = run(true, &x, &wt, &b, &r);
        for (j, what) in ["forward", "grad x", "grad w", "grad b"].iter().enumerate() {
            close(&got[j], &want[j], &format!("case {i} {what}"));
        }
        let one = on_threads(1, || run(true, &x, &wt, &b, &r));
        let three = on_threads(3, || run(true, &x, &wt, &b, &r));
        assert_eq!(one, three, "case {i}: 1 vs 3 threads");
        assert_eq!(one, got, "case {i}: repeat");
    }
}

#[test]
fn inference_backend_matches_training_backend() {
    let x = rand([2, 3, 10, 12], 7);
    let w = rand([4, 3, 3, 3], 8);
    let b = rand([4], 9);
    let train = vals(conv2d_same(x.clone(), w.clone(), b.clone()));
    let d = Default::default();
    let y = conv2d_same(
        Tensor::<Cpu, 4>::from_data(x.into_data(), &d),
        Tensor::<Cpu, 4>::from_data(w.into_data(), &d),
        Tensor::<Cpu, 1>::from_data(b.into_data(), &d),
    );
    assert_eq!(y.into_data().to_vec::<f32>().unwrap(), train);
}

#[test]
fn fused_fake_quant_matches_composed() {
    use odm::quant::{QForm, Quantizer};
    use odm::spec::BoundGrad;
    let forms = [
        (QForm::Affine, false),
        (QForm::SymZero, true),
        (QForm::ZeroPoint, true),
    ];
    for (k, (form, split_ties)) in forms.into_iter().enumerate() {
        for grad in [BoundGrad::Full, BoundGrad::ClipOnly] {
            for (i, nb) in [5usize, 1].into_iter().enumerate() {
                let qz = Quantizer {
                    bits: 2 + (i + k) as u32 % 3,
                    form,
                    grad,
                    split_ties,
                };
                let s = 100 + 10 * i as u64 + k as u64;
                let x = rand([3, 5, 6, 7], s).mul_scalar(2.0);
                let hi = rand([nb], s + 1).abs().add_scalar(0.5);
                let lo = if form.symmetric() {
                    hi.clone().neg()
                } else {
                    rand([nb], s + 2).abs().neg().sub_scalar(0.3)
                };
                let r = rand([3, 5, 6, 7], s + 3);
                let run = |fused: bool| {
                    let (x, lo, hi) = (
                        x.clone().require_grad(),
                        lo.clone().require_grad(),
                        hi.clone().require_grad(),
                    );
                    let y = if fused {
                        fake_quant_channels(x.clone(), lo.clone(), hi.clone(), qz)
                    } else {
                        let shape = [1, nb, 1, 1];
                        let (l4, u4) = (lo.clone().reshape(shape), hi.clone().reshape(shape));
                        odm::quant::fake_quant(x.clone(), l4, u4, qz)
                    };
                    let g = (y.clone() * r.clone()).sum().backward();
                    [
                        vals(y),
                        vals(x.grad(&g).unwrap()),
                        vals(lo.grad(&g).unwrap()),
                        vals(hi.grad(&g).unwrap()),
                    ]
                };
                let (want, got) = (run(false), run(true));
                let case = format!("{qz:?} bounds {nb}");
                let (one, three) = (on_threads(1, || run(true)), on_threads(3, || run(true)));
                assert!(
                    one == three && one == got,
                    "{case}: 1 vs 3 threads vs default"
                );
                assert_eq!(got[0], want[0], "{case}: forward bit-identical");
                assert_eq!(got[1], want[1], "{case}: grad x");
                close(&got[2], &want[2], &format!("{case} grad lo"));
                close(&got[3], &want[3], &format!("{case} grad hi"));
            }
        }
    }
}

#[test]
fn replayed_conv_has_the_same_gradients() {
    let (x, w, b) = (
        rand([2, 4, 9, 8], 50),
        rand([6, 4, 3, 3], 51),
        rand([6], 52),
    );
    let r = rand([2, 6, 9, 8], 53);
    let grads = |known: Option<T4>| {
        let (x, w, b) = (
            x.clone().require_grad(),
            w.clone().require_grad(),
            b.clone().require_grad(),
        );
        let y = conv2d_same_replay(x.clone(), w.clone(), b.clone(), known);
        let g = (y.clone() * r.clone()).sum().backward();
        [
            vals(y),
            vals(x.grad(&g).unwrap()),
            vals(w.grad(&g).unwrap()),
            vals(b.grad(&g).unwrap()),
        ]
    };
    let first = conv2d_same(x.clone(), w.clone(), b.clone());
    assert_eq!(grads(Some(first)), grads(None));
}

/// The one-pass pixel shuffle equals burn's reshape–permute–reshape exactly, forward and
/// gradient, on the training and the inference backend.
#[test]
fn pixel_shuffle_matches_the_composed_ops() {
    for (shape, r, seed) in [
        ([2, 12, 5, 7], 2, 40),
        ([1, 18, 4, 3], 3, 41),
        ([3, 16, 6, 6], 4, 42),
    ] {
        let x = rand(shape, seed);
        let [n, c, h, w] = shape;
        let g = rand([n, c / (r * r), h * r, w * r], seed + 100);
        let run = |ours: bool| {
            let x = x.clone().require_grad();
            let y = if ours {
                pixel_shuffle(x.clone(), r)
            } else {
                pixel_shuffle_composed(x.clone(), r)
            };
            let grads = (y.clone() * g.clone()).sum().backward();
            (vals(y), vals(x.grad(&grads).unwrap()))
        };
        assert_eq!(run(true), run(false), "{shape:?} r={r}");
        let d = Default::default();
        let xi = Tensor::<Cpu, 4>::from_data(x.clone().into_data(), &d);
        assert_eq!(
            vals(pixel_shuffle(xi.clone(), r)),
            vals(pixel_shuffle_composed(xi, r))
        );
    }
}

/// The one-pass per-channel scale and shift against burn's broadcast ops: forward values and the
/// input's gradient bit for bit, the offsets' gradients (sums in another order) to float
/// tolerance and against a hand-computed sum, the same bits on 1 and 3 threads, and on the
/// inference backend; planes of 35 values exercise the lanes' remainder.
#[test]
fn channel_affine_matches_broadcast_ops() {
    for (k, kind) in [AffineKind::Scale, AffineKind::Shift]
        .into_iter()
        .enumerate()
    {
        let s = 300 + 10 * k as u64;
        let x = rand([3, 4, 5, 7], s);
        let p = rand([4], s + 1);
        let r = rand([3, 4, 5, 7], s + 2);
        let run = |ours: bool| {
            let (x, p) = (x.clone().require_grad(), p.clone().require_grad());
            let y = if ours {
                channel_affine(x.clone(), p.clone(), kind)
            } else {
                channel_affine_composed(x.clone(), p.clone(), kind)
            };
            let g = (y.clone() * r.clone()).sum().backward();
            [
                vals(y),
                vals(x.grad(&g).unwrap()),
                vals(p.grad(&g).unwrap()),
            ]
        };
        let (want, got) = (run(false), run(true));
        assert_eq!(got[0], want[0], "{kind:?}: forward bit-identical");
        assert_eq!(got[1], want[1], "{kind:?}: grad x bit-identical");
        close(&got[2], &want[2], &format!("{kind:?}: grad of the offsets"));
        // By hand, in f64: d/dp_c of Σ y·r is Σ r·x (scale) or Σ r (shift) over n, h, w.
        let (xv, rv) = (vals(x.clone()), vals(r.clone()));
        for (c, &gc) in got[2].iter().enumerate() {
            let mut sum = 0f64;
            for n in 0..3 {
                for i in 0..35 {
                    let j = (n * 4 + c) * 35 + i;
                    let f = if kind == AffineKind::Scale {
                        xv[j] as f64
                    } else {
                        1.0
                    };
                    sum += rv[j] as f64 * f;
                }
            }
            assert!(
                (gc as f64 - sum).abs() < 1e-5 * sum.abs().max(1.0),
                "{kind:?} c={c}"
            );
        }
        let (one, three) = (on_threads(1, || run(true)), on_threads(3, || run(true)));
        assert!(
            one == three && one == got,
            "{kind:?}: 1 vs 3 threads vs default"
        );
        let d = Default::default();
        let xi = Tensor::<Cpu, 4>::from_data(x.clone().into_data(), &d);
        let pi = Tensor::<Cpu, 1>::from_data(p.clone().into_data(), &d);
        assert_eq!(
            vals(channel_affine(xi.clone(), pi.clone(), kind)),
            vals(channel_affine_composed(xi, pi, kind)),
            "{kind:?}: inference backend"
        );
    }
}
