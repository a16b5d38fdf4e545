//! Our CPU convolution (src/kernels) against burn's conv2d: forward, input, weight and bias
//! gradients on random data with a fixed seed, and bit-identical results for 1 and 3 threads.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use odm::backend::{Cpu, CpuTrain};
use odm::kernels::conv2d_same;

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

fn close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: length");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let err = a
        .iter()
        .zip(b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(err / scale < 1e-4, "{what}: max error {err} vs scale {scale}");
}

#[test]
fn matches_burn_conv2d_and_is_thread_count_independent() {
    for (i, &(n, ci, co, h, w, k)) in [
        (2, 5, 7, 9, 11, 3),
        (3, 3, 4, 6, 5, 1),
        (1, 4, 2, 7, 8, 5),
        (2, 16, 16, 48, 20, 3),
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
        let pool = |t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap();
        let one = pool(1).install(|| run(true, &x, &wt, &b, &r));
        let three = pool(3).install(|| run(true, &x, &wt, &b, &r));
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
