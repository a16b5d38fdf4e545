//! `odm bench`: timings of the pieces that decide training speed, each the median of several
//! repetitions after a warm-up, with an sgemm peak measured in the same run: one 3×3 conv
//! forward + backward at EDSR sizes, the activation fake quantizer forward + backward at the same
//! size (the fused kernel on CPU), a plain QAT step (EDSR, W4A4, the ODM/AdaBM quantizer on the
//! 32 block convs' inputs and weights) and a gated QAT step (the same plus the variance
//! regularizer's pass and the sign gate). On CPU by default, or on any
//! device [`crate::backend::pick`] accepts; every timed piece ends with `Backend::sync`, so
//! asynchronous (GPU) work is inside the time.
//!
//! Each step is also put against the floor of this CPU: its analytic FLOPs ([`flops`], convs
//! only) over its time, as a fraction of the sgemm peak measured in the same run. The kernel path
//! ([`crate::kernels::path`]; `ODM_KERNEL_PATH=avx2` forces AVX2 on an AVX-512 machine) is printed
//! with the figures, so both paths are measured on one machine.

mod eval;
pub mod flops;
pub use eval::EvalBench;

use crate::backend::{pick, with_backend};
use crate::data::{ImageSet, Pair, RgbImage, Sampler};
use crate::models::Model;
use crate::spec::{self, GateRule, Regularizer, Spec};
use crate::train::state;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Tensor};
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;

/// Problem sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Size {
    /// EDSR-baseline: 16 blocks, 64 features, batch 16, 48×48 LR patches, ×4.
    Full,
    /// A smoke size: 4 blocks, 16 features, batch 4, 16×16 LR patches, ×4.
    Small,
}

/// What `odm bench` measures.
#[derive(Serialize, Clone, Debug)]
pub struct BenchReport {
    pub size: Size,
    /// The device, as provenance records it.
    pub device: String,
    pub threads: usize,
    pub reps: usize,
    /// The f32 kernel path that ran ("AVX-512", "AVX2" or "scalar"; see
    /// [`crate::kernels::path`]) and every kernel's dispatch ([`crate::kernels::dispatch_paths`]).
    pub kernel_path: String,
    pub kernel_paths: String,
    /// The training pieces; absent with `--only inference`.
    #[serde(flatten)]
    pub training: Option<TrainingBench>,
    /// The inference lines; absent with `--only training`.
    #[serde(flatten)]
    pub inference: Option<InferenceBench>,
    /// Peak resident memory (VmHWM) at the end; MiB; 0 where /proc is absent.
    pub peak_rss_mib: f64,
}

/// Which parts `odm bench` runs (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parts {
    All,
    Training,
    Inference,
}

/// The training pieces of [`BenchReport`].
#[derive(Serialize, Clone, Debug)]
pub struct TrainingBench {
    /// Measured sgemm peak, GFLOP/s. CPU: the kernels' GEMM ([`crate::kernels::sgemm`], the
    /// `gemm` crate's micro-kernels on the kernel path), all threads, best of n = 512, 1024, 1536
    /// (see `cpu_sgemm_peak`); other devices: the backend's 1024³ matmul.
    pub sgemm_gflops: f64,
    pub conv_shape: [usize; 4],
    pub conv_fwd_bwd_ms: f64,
    /// Conv forward + backward FLOPs (3 × 2·N·H·W·C²·9) per second.
    pub conv_gflops: f64,
    pub conv_vs_sgemm_peak: f64,
    /// CPU only (null elsewhere): the same conv's three kernels alone
    /// ([`crate::kernels::cpu_conv`] forward, input and weight gradients on contiguous slices),
    /// without burn's autodiff around them (graph, the broadcast output gradient of `sum`, the
    /// gradient copies), which `conv_fwd_bwd_ms` includes; and their share of the sgemm peak.
    pub conv_kernels_ms: Option<f64>,
    pub conv_kernels_vs_sgemm_peak: Option<f64>,
    /// CPU only: the same three kernels as im2col + [`crate::kernels::sgemm`] (the kernels
    /// before [`crate::kernels::implicit`]'s implicit GEMM, kept for this comparison), timed in
    /// the same run, and `conv_kernels_ms` over it (below 1: the implicit GEMM is faster).
    pub conv_kernels_gemm_ms: Option<f64>,
    pub conv_kernels_vs_gemm: Option<f64>,
    /// The `conv_fwd_bwd_ms` loss alone (`sum()` forward and backward on the output's shape):
    /// the part of that line that is not the convolution.
    pub conv_loss_sum_ms: f64,
    /// 4-bit activation fake quantization of a `conv_shape` tensor, forward + backward (x and
    /// per-layer bounds), with the bound gradient through the step size (`Full`) and the clip
    /// only (`ClipOnly`).
    pub fake_quant_ms: f64,
    pub fake_quant_clip_only_ms: f64,
    pub plain_step_ms: f64,
    pub gated_step_ms: f64,
    pub gated_over_plain: f64,
    /// The same step in full precision (no fake quantization): what the FP stages run.
    pub fp_step_ms: f64,
    /// How the FLOPs below are counted ([`flops::FORMULA`]).
    pub flops_formula: String,
    /// Analytic FLOPs of one step (the same convs in the FP, plain and gated steps), and the floor
    /// of the gated step's extra regularizer (replay) pass; GFLOP.
    pub step_gflop: f64,
    pub replay_floor_gflop: f64,
    /// FLOP efficiency: FLOPs / time / `sgemm_gflops` (the gated step with its replay floor
    /// added to its FLOPs). `conv_vs_sgemm_peak` is the conv's.
    pub fp_step_efficiency: f64,
    pub plain_step_efficiency: f64,
    pub gated_step_efficiency: f64,
    /// Peak resident memory (VmHWM) after the plain step was measured (the sgemm, conv and
    /// fake-quant measurements come before it, and are smaller); MiB.
    pub peak_rss_plain_mib: f64,
}

/// The inference lines of [`BenchReport`].
#[derive(Serialize, Clone, Debug)]
pub struct InferenceBench {
    /// FP inference (forward only, no autodiff) of the step's model on one LR input of
    /// `inference_input` (w×h; ×4 output 1280×720 at the full size), and the same at W4A4.
    pub inference_input: [usize; 2],
    pub inference_ms: f64,
    pub inference_w4a4_ms: f64,
    /// The same FP model on the integer path's executor (`crate::infer`, every conv in float on
    /// host buffers; CPU only, else 0), and the faster of the two FP paths, against which every
    /// ratio is taken.
    pub inference_host_fp_ms: f64,
    pub inference_fp_best_ms: f64,
    /// The integer path (`odm infer`) on the same input at W4A4 and W2A2 (CPU only; 0 on other
    /// devices), and the split of the W4A4 path's last run.
    pub inference_int_w4a4_ms: f64,
    pub inference_int_w2a2_ms: f64,
    pub int_split: IntSplit,
    /// ONNX Runtime (CPU provider) on the same model exported by `odm export --onnx`, FP32 and
    /// W4A4 QDQ, when `ODM_ORT_PYTHON` names a Python with `onnxruntime`; else `None`.
    pub ort_fp_ms: Option<f64>,
    pub ort_w4a4_ms: Option<f64>,
    /// The dot-product instructions the integer convs used ("none" off the CPU).
    pub int_path: String,
    /// The `vpdpbusd` peak measured in the same run (G MAC/s, all threads; `None` without
    /// AVX-512 VNNI), and the W4A4 integer convs' rate against it.
    pub vnni_peak_gmacs: Option<f64>,
    pub int_conv_gmacs: f64,
    /// Evaluation speed and FLOP efficiency ([`EvalBench`]).
    #[serde(flatten)]
    pub eval: EvalBench,
}

/// Where the integer path's time goes (one run, milliseconds), and the ceiling it implies.
#[derive(Serialize, Clone, Debug, Default)]
pub struct IntSplit {
    pub quantize_ms: f64,
    pub int_conv_ms: f64,
    pub float_conv_ms: f64,
    /// Everything else (ReLU, residual adds, pixel shuffle, normalisation).
    pub other_ms: f64,
    /// FP32 time over the integer path's time without its quantizers and integer convs: the
    /// speed-up the integer path could reach if those cost nothing (Amdahl's bound).
    pub bound_vs_fp: f64,
}

/// Peak resident set size of this process in MiB (Linux `/proc/self/status` VmHWM).
pub fn peak_rss_mib() -> f64 {
    peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0))
}

/// Peak resident set size of this process in bytes: `VmHWM` of `/proc/self/status` (Linux; the
/// kernel reports whole KiB). `None` where that file is absent.
pub fn peak_rss_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut()>(warmup: usize, reps: usize, mut f: F) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

type Inner<AB> = <AB as AutodiffBackend>::InnerBackend;

fn sync<B: Backend>(d: &B::Device) {
    B::sync(d).expect("device sync");
}

/// The sgemm peak: the kernels' GEMM ([`crate::kernels::sgemm`]: the `gemm` crate's
/// micro-kernels on the kernel path, k in chunks of at most 512) on square column-major f32
/// matrices of side 512, 1024 and 1536 with rayon parallelism over all pool threads; the best of
/// the three sizes (median over `reps` each), in GFLOP/s.
fn cpu_sgemm_peak(reps: usize) -> f64 {
    use crate::kernels::sgemm::{sgemm, Mat, Parallelism};
    [512usize, 1024, 1536]
        .iter()
        .map(|&n| {
            let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 - 3.0).collect();
            let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 - 2.0).collect();
            let mut c = vec![0.0f32; n * n];
            let ms = time(1, reps.max(3), || {
                // SAFETY: a, b and c are n×n buffers, read column-major (the orientation gemm's
                // micro-kernels write; `gemm::gemm` turns a row-major product around to it).
                unsafe {
                    sgemm(
                        (n, n, n),
                        Mat::col_major(c.as_mut_ptr(), n),
                        true,
                        Mat::col_major(a.as_ptr(), n),
                        Mat::col_major(b.as_ptr(), n),
                        Parallelism::Rayon(0),
                    )
                }
            });
            2.0 * (n * n * n) as f64 / (ms * 1e-3) / 1e9
        })
        .fold(0.0, f64::max)
}

/// Whether `B` is the CPU backend, where our own kernels run.
fn is_cpu<B: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::backend::Cpu>()
}

fn sgemm_gflops<B: Backend>(reps: usize, d: &B::Device) -> f64 {
    if is_cpu::<B>() {
        return cpu_sgemm_peak(reps);
    }
    let n = 1024;
    let a = Tensor::<B, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), d);
    let b = Tensor::<B, 2>::random([n, n], Distribution::Uniform(-1.0, 1.0), d);
    let ms = time(1, reps, || {
        let _ = a.clone().matmul(b.clone()).into_data();
    });
    2.0 * (n * n * n) as f64 / (ms * 1e-3) / 1e9
}

fn conv_ms<AB: AutodiffBackend>(shape: [usize; 4], reps: usize, d: &AB::Device) -> f64 {
    let [n, c, h, w] = shape;
    let x0 = Tensor::<AB, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), d);
    let w0 = Tensor::<AB, 4>::random([c, c, 3, 3], Distribution::Normal(0.0, 0.05), d);
    let b0 = Tensor::<AB, 1>::zeros([c], d);
    time(1, reps, || {
        let x = x0.clone().require_grad();
        let wt = w0.clone().require_grad();
        // The convolution training uses (our kernel on CPU, burn's elsewhere).
        let y = crate::kernels::conv2d_same(x.clone(), wt.clone(), b0.clone());
        let g = y.sum().backward();
        let _ = (
            x.grad(&g).unwrap().into_data(),
            wt.grad(&g).unwrap().into_data(),
        );
    })
}

/// The loss of [`conv_ms`] alone: `sum()` of a tensor of the conv's output shape, forward and
/// backward (burn's sum backward multiplies a tensor of ones by the broadcast gradient), median
/// milliseconds. Part of `conv_fwd_bwd_ms`, and no part of the convolution.
fn sum_ms<AB: AutodiffBackend>(shape: [usize; 4], reps: usize, d: &AB::Device) -> f64 {
    let x0 = Tensor::<AB, 4>::random(shape, Distribution::Normal(0.0, 1.0), d);
    time(1, reps, || {
        let x = x0.clone().require_grad();
        let g = x.clone().sum().backward();
        let _ = x.grad(&g).unwrap().into_data();
    })
}

/// The conv of [`conv_ms`] through [`crate::kernels::cpu_conv`] alone (CPU): forward, input
/// gradient and weight gradient of one contiguous output gradient, median milliseconds; with
/// `gemm`, through its im2col + GEMM kernels instead of the implicit GEMM.
fn conv_kernels_ms(shape: [usize; 4], reps: usize, gemm: bool) -> f64 {
    use crate::kernels::cpu_conv::{self, Geom};
    let [n, c, h, w] = shape;
    let g = Geom {
        n,
        ci: c,
        co: c,
        h,
        w,
        k: 3,
    };
    let x: Vec<f32> = (0..n * c * h * w)
        .map(|i| (i % 13) as f32 / 6.0 - 1.0)
        .collect();
    let wt: Vec<f32> = (0..c * c * 9)
        .map(|i| (i % 7) as f32 / 60.0 - 0.05)
        .collect();
    let b = vec![0.0f32; c];
    time(1, reps, || {
        let out = if gemm {
            let y = cpu_conv::forward_gemm(&g, &x, &wt, Some(&b));
            let dx = cpu_conv::grad_input_gemm(&g, &y, &wt);
            (dx, cpu_conv::grad_weight_gemm(&g, &x, &y))
        } else {
            let y = cpu_conv::forward(&g, &x, &wt, Some(&b));
            let dx = cpu_conv::grad_input(&g, &y, &wt);
            (dx, cpu_conv::grad_weight(&g, &x, &y))
        };
        std::hint::black_box(out);
    })
}

fn fake_quant_ms<AB: AutodiffBackend>(
    shape: [usize; 4],
    grad: crate::spec::BoundGrad,
    reps: usize,
    d: &AB::Device,
) -> f64 {
    let x0 = Tensor::<AB, 4>::random(shape, Distribution::Normal(0.0, 1.0), d);
    let (l0, u0) = (
        Tensor::<AB, 1>::full([1], -1.5, d),
        Tensor::<AB, 1>::full([1], 2.0, d),
    );
    let qz = crate::quant::Quantizer {
        bits: 4,
        form: crate::quant::QForm::Affine,
        grad,
        split_ties: false,
    };
    time(1, reps, || {
        let (x, l, u) = (
            x0.clone().require_grad(),
            l0.clone().require_grad(),
            u0.clone().require_grad(),
        );
        let y = crate::kernels::fake_quant_channels(x.clone(), l.clone(), u.clone(), qz);
        let g = y.sum().backward();
        let _ = (
            x.grad(&g).unwrap().into_data(),
            l.grad(&g).unwrap().into_data(),
            u.grad(&g).unwrap().into_data(),
        );
    })
}

/// Which training step the benchmark times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Full precision.
    Fp,
    /// W4A4 QAT.
    Plain,
    /// W4A4 QAT with the variance regularizer, sign-gated.
    Gated,
}

/// Residual blocks and features of the bench model.
fn dims(size: Size) -> (usize, usize) {
    match size {
        Size::Full => (16, 64),
        Size::Small => (4, 16),
    }
}

/// The spec of the benchmark's QAT step.
pub fn bench_spec(size: Size, kind: StepKind) -> Spec {
    let gated = kind == StepKind::Gated;
    let (blocks, feats) = dims(size);
    let (batch, patch) = match size {
        Size::Full => (16, 192),
        Size::Small => (4, 64),
    };
    let text = format!(
        r#"(name: "bench", scale: 4, model: Edsr(n_resblocks: {blocks}, n_feats: {feats}),
            quant: Odm(w_bits: 4, a_bits: 4, calib_batches: 1),
            data: (train: ["."], patch_size: {patch}, batch_size: {batch}),
            schedule: (iterations: 1000))"#
    );
    let mut s = spec::load::parse_str("bench", &text).expect("bench spec");
    if kind == StepKind::Fp {
        s.quant = crate::spec::QuantSpec::Fp;
    }
    if gated {
        s.regularizer = Regularizer::Variance {
            lambda: 1e-4,
            stat: Default::default(),
            scope: Default::default(),
        };
        s.gating.rule = GateRule::Sign;
    }
    s
}

/// A synthetic h×w image (smooth gradients plus texture), so the bench needs no data.
fn synthetic_image(h: usize, w: usize) -> RgbImage {
    let data = (0..h * w * 3)
        .map(|i| {
            let (y, x, c) = (i / (w * 3), (i / 3) % w, i % 3);
            ((x * 3 + y * 2 + c * 40 + (x * y) % 17) % 256) as u8
        })
        .collect();
    RgbImage { h, w, data }
}

/// A synthetic training set of one 256×256 image.
fn synthetic_set(scale: usize) -> Arc<ImageSet> {
    let hr = synthetic_image(256, 256);
    let lr = hr.downscale(scale);
    Arc::new(ImageSet {
        name: "synthetic".into(),
        dir: ".".into(),
        scale,
        pairs: vec![Pair {
            name: "synthetic".into(),
            file: "synthetic.png".into(),
            hr,
            lr,
        }],
    })
}

/// The bench spec of `kind`, its model, a sampler over the synthetic image, and a fresh
/// (calibrated) state.
fn setup<B: Backend>(
    size: Size,
    kind: StepKind,
    d: &B::Device,
) -> anyhow::Result<(Spec, Model, Sampler, state::State<B>)> {
    let spec = bench_spec(size, kind);
    let model = Model::from_spec(&spec.model, spec.scale);
    let mut sampler = bench_sampler(&spec)?;
    let st = state::fresh::<B>(&spec, &model, None, &mut sampler, d)?;
    Ok((spec, model, sampler, st))
}

/// The bench's training stream: patches of the synthetic image.
fn bench_sampler(spec: &Spec) -> anyhow::Result<Sampler> {
    Sampler::new(
        vec![synthetic_set(4)],
        4,
        spec.data.patch_size,
        spec.data.batch_size,
        true,
        255.0,
        0,
    )
}

/// One step kind's time and analytic FLOPs.
#[derive(Clone, Copy, Debug)]
pub struct StepTime {
    /// Median milliseconds.
    pub ms: f64,
    /// [`flops::step_flops`] and [`flops::replay_floor_flops`] of the step (GFLOP).
    pub gflop: f64,
    pub replay_floor_gflop: f64,
}

impl StepTime {
    /// FLOPs (with the replay floor when `gated`) / time / `peak` GFLOP/s.
    fn efficiency(&self, peak: f64, gated: bool) -> f64 {
        let f = self.gflop + if gated { self.replay_floor_gflop } else { 0.0 };
        f / (self.ms * 1e-3) / peak
    }
}

/// One training step of `kind`: its median time and FLOPs.
pub fn step_ms<AB: AutodiffBackend>(
    size: Size,
    kind: StepKind,
    reps: usize,
    d: &AB::Device,
) -> anyhow::Result<StepTime> {
    let gated = kind == StepKind::Gated;
    let (spec, model, mut sampler, mut st) = setup::<Inner<AB>>(size, kind, d)?;
    let (n, side) = (spec.data.batch_size, spec.data.patch_size / spec.scale);
    let gflop = flops::step_flops(&model, n, side) / 1e9;
    let replay_floor_gflop = flops::replay_floor_flops(&model, &st.plan, n, side) / 1e9;
    let mut err = None;
    let ms = time(1, reps, || {
        let b = sampler.next_batch();
        if let Err(e) = crate::train::step::<AB>(&spec, &model, &mut st, b, 1e-4, gated, d) {
            err = Some(e);
        }
        sync::<Inner<AB>>(d);
    });
    match err {
        Some(e) => Err(e),
        None => Ok(StepTime {
            ms,
            gflop,
            replay_floor_gflop,
        }),
    }
}

/// Run the benchmark on `device` (`--device`; CPU by default).
pub fn run(
    size: Size,
    reps: usize,
    threads: usize,
    parts: Parts,
    device: spec::Device,
) -> anyhow::Result<BenchReport> {
    let picked =
        pick(device).map_err(|m| crate::error::user(format!("--device: {m}; use --device cpu")))?;
    with_backend!(&picked, |AB, d| run_on::<AB>(
        size,
        reps,
        threads,
        parts,
        picked.describe(threads),
        &d
    ))
}

fn run_on<AB: AutodiffBackend>(
    size: Size,
    reps: usize,
    threads: usize,
    parts: Parts,
    device: String,
    d: &AB::Device,
) -> anyhow::Result<BenchReport> {
    let reps = reps.max(1);
    let training = match parts {
        Parts::Inference => None,
        _ => Some(training::<AB>(size, reps, d)?),
    };
    let inference = match parts {
        Parts::Training => None,
        _ => Some(inference::<AB>(size, reps, &device, d)?),
    };
    Ok(BenchReport {
        size,
        device,
        threads,
        reps,
        kernel_path: crate::kernels::path::current().label().into(),
        kernel_paths: crate::kernels::dispatch_paths(),
        training,
        inference,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// The training pieces.
fn training<AB: AutodiffBackend>(
    size: Size,
    reps: usize,
    d: &AB::Device,
) -> anyhow::Result<TrainingBench> {
    let conv_shape = match size {
        Size::Full => [16, 64, 48, 48],
        Size::Small => [4, 16, 16, 16],
    };
    let sgemm = sgemm_gflops::<Inner<AB>>(reps, d);
    let conv = conv_ms::<AB>(conv_shape, reps, d);
    let conv_loss_sum_ms = sum_ms::<AB>(conv_shape, reps, d);
    let [n, c, h, w] = conv_shape;
    let conv_flops = 3.0 * 2.0 * (n * h * w * c * c * 9) as f64;
    let conv_gflops = conv_flops / (conv * 1e-3) / 1e9;
    // The two kernel versions alternate, so that both see the same machine state.
    let (conv_kernels, conv_gemm) = match is_cpu::<Inner<AB>>() {
        true => {
            let mut v = (vec![], vec![]);
            for _ in 0..3 {
                v.0.push(conv_kernels_ms(conv_shape, reps, false));
                v.1.push(conv_kernels_ms(conv_shape, reps, true));
            }
            (Some(median(v.0)), Some(median(v.1)))
        }
        false => (None, None),
    };
    let fq = fake_quant_ms::<AB>(conv_shape, crate::spec::BoundGrad::Full, reps, d);
    let fq_clip = fake_quant_ms::<AB>(conv_shape, crate::spec::BoundGrad::ClipOnly, reps, d);
    let plain = step_ms::<AB>(size, StepKind::Plain, reps, d)?;
    let peak_rss_plain_mib = peak_rss_mib();
    let gated = step_ms::<AB>(size, StepKind::Gated, reps, d)?;
    let fp_step = step_ms::<AB>(size, StepKind::Fp, reps, d)?;
    Ok(TrainingBench {
        flops_formula: flops::FORMULA.into(),
        step_gflop: plain.gflop,
        replay_floor_gflop: gated.replay_floor_gflop,
        fp_step_efficiency: fp_step.efficiency(sgemm, false),
        plain_step_efficiency: plain.efficiency(sgemm, false),
        gated_step_efficiency: gated.efficiency(sgemm, true),
        sgemm_gflops: sgemm,
        conv_shape,
        conv_fwd_bwd_ms: conv,
        conv_gflops,
        conv_vs_sgemm_peak: conv_gflops / sgemm,
        conv_kernels_ms: conv_kernels,
        conv_kernels_vs_sgemm_peak: conv_kernels.map(|ms| conv_flops / (ms * 1e-3) / 1e9 / sgemm),
        conv_kernels_gemm_ms: conv_gemm,
        conv_loss_sum_ms,
        conv_kernels_vs_gemm: conv_kernels.zip(conv_gemm).map(|(a, b)| a / b),
        fake_quant_ms: fq,
        fake_quant_clip_only_ms: fq_clip,
        plain_step_ms: plain.ms,
        gated_step_ms: gated.ms,
        gated_over_plain: gated.ms / plain.ms,
        fp_step_ms: fp_step.ms,
        peak_rss_plain_mib,
    })
}

/// The inference lines.
fn inference<AB: AutodiffBackend>(
    size: Size,
    reps: usize,
    device: &str,
    d: &AB::Device,
) -> anyhow::Result<InferenceBench> {
    let input = match size {
        Size::Full => [320, 180],
        Size::Small => [64, 48],
    };
    let fp = inference_ms::<Inner<AB>>(size, StepKind::Fp, input, reps, d)?;
    let fq = inference_ms::<Inner<AB>>(size, StepKind::Plain, input, reps, d)?;
    let cpu = device.starts_with("CPU") || device.starts_with("cpu");
    let (host_fp, int4, int2, mut split, path) = if cpu {
        let (f, _, _) = int_inference_ms(size, None, input, reps)?;
        let (a, split, p) = int_inference_ms(size, Some(4), input, reps)?;
        let (b, _, _) = int_inference_ms(size, Some(2), input, reps)?;
        (f, a, b, split, p)
    } else {
        (0.0, 0.0, 0.0, IntSplit::default(), "none".to_string())
    };
    let best = if cpu { fp.min(host_fp) } else { fp };
    if cpu {
        split.bound_vs_fp = best / (split.float_conv_ms + split.other_ms).max(1e-9);
    }
    let ort = |kind| cpu.then(|| ort_ms(size, kind, input, reps)).flatten();
    let peak = cpu
        .then(|| crate::kernels::int_conv::vnni_peak_gmacs(20_000_000))
        .flatten();
    let int_conv_gmacs = int_macs(size, input) / (split.int_conv_ms * 1e-3).max(1e-12) / 1e9;
    let eval = eval::eval_bench::<Inner<AB>>(size, reps, d)?;
    Ok(InferenceBench {
        inference_input: input,
        inference_ms: fp,
        inference_w4a4_ms: fq,
        inference_host_fp_ms: host_fp,
        inference_fp_best_ms: best,
        inference_int_w4a4_ms: int4,
        inference_int_w2a2_ms: int2,
        int_split: split,
        ort_fp_ms: ort(StepKind::Fp),
        ort_w4a4_ms: ort(StepKind::Plain),
        int_path: path,
        vnni_peak_gmacs: peak,
        int_conv_gmacs,
        eval,
    })
}

/// Multiply-accumulates of the bench model's quantized convs (the residual blocks' 3×3 convs) on
/// one `[w, h]` input.
fn int_macs(size: Size, [w, h]: [usize; 2]) -> f64 {
    let (blocks, feats) = dims(size);
    (2 * blocks * feats * feats * 9 * w * h) as f64
}

/// Median milliseconds of one forward-only inference of the bench model (FP, or W4A4 after
/// calibration on the synthetic image) on a `[w, h]` LR input, on the inner (non-autodiff)
/// backend, as `odm eval` runs it.
fn inference_ms<B: Backend>(
    size: Size,
    kind: StepKind,
    [w, h]: [usize; 2],
    reps: usize,
    d: &B::Device,
) -> anyhow::Result<f64> {
    let (_, model, _, st) = setup::<B>(size, kind, d)?;
    let x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 37) % 256) as f32).collect();
    let x =
        burn::tensor::Tensor::<B, 4>::from_data(burn::tensor::TensorData::new(x, [1, 3, h, w]), d);
    let f = crate::forward::Fwd::plain(&st.params, &st.plan);
    Ok(time(1, reps, || {
        let y = model.forward(&f, x.clone());
        let _ = y.into_data();
    }))
}

/// Median milliseconds of ONNX Runtime (the Python named by `ODM_ORT_PYTHON`, CPU provider) on
/// the bench model of `kind` exported as `odm export --onnx` writes it, for one `[w, h]` input;
/// `None` without that Python or when it fails (the reason on stderr).
fn ort_ms(size: Size, kind: StepKind, [w, h]: [usize; 2], reps: usize) -> Option<f64> {
    let py = std::env::var("ODM_ORT_PYTHON").ok()?;
    let (_, model, _, st) = setup::<crate::backend::Cpu>(size, kind, &Default::default()).ok()?;
    let bytes = crate::export::onnx(&model, &st.params, &st.plan, &[]).ok()?;
    let file = std::env::temp_dir().join(format!("odm-bench-{}-{kind:?}.onnx", std::process::id()));
    std::fs::write(&file, bytes).ok()?;
    let script = format!(
        "import numpy as np, onnxruntime as ort, time\n\
         s = ort.InferenceSession({f:?}, providers=['CPUExecutionProvider'])\n\
         x = (np.arange(3*{h}*{w}) * 37 % 256).astype(np.uint8).reshape(1, 3, {h}, {w})\n\
         s.run(['sr'], {{'lr': x}})\n\
         t = []\n\
         for _ in range({reps}):\n    a = time.perf_counter(); s.run(['sr'], {{'lr': x}}); t.append((time.perf_counter() - a) * 1e3)\n\
         print(sorted(t)[len(t) // 2])\n",
        f = file.display().to_string()
    );
    let out = std::process::Command::new(py)
        .args(["-c", &script])
        .output()
        .ok();
    let _ = std::fs::remove_file(&file);
    let out = out?;
    if !out.status.success() {
        eprintln!(
            "odm bench: ONNX Runtime failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Median milliseconds of the integer path (`crate::infer`) of the bench model quantized at
/// W`bits`A`bits` (ODM's quantizer, calibrated on the synthetic image), or in FP (`None`), on a
/// `[w, h]` LR input, the split of its last run, and the dot-product path it used.
fn int_inference_ms(
    size: Size,
    bits: Option<u32>,
    [w, h]: [usize; 2],
    reps: usize,
) -> anyhow::Result<(f64, IntSplit, String)> {
    let mut spec = bench_spec(size, StepKind::Plain);
    spec.quant = match bits {
        Some(b) => crate::spec::QuantSpec::Odm(crate::spec::QuantOpts {
            calib_batches: 1,
            ..crate::spec::QuantOpts::bits(b, b)
        }),
        None => crate::spec::QuantSpec::Fp,
    };
    let model = Model::from_spec(&spec.model, spec.scale);
    let mut sampler = bench_sampler(&spec)?;
    let st = state::fresh::<crate::backend::Cpu>(
        &spec,
        &model,
        None,
        &mut sampler,
        &Default::default(),
    )?;
    let v: Vec<f32> = (0..3 * h * w).map(|i| ((i * 37) % 256) as f32).collect();
    let x = crate::infer::Host::new(3, h, w, v);
    let mut last = (IntSplit::default(), String::from("none"));
    let prepared = crate::infer::prepare(&model, &st.params, &st.plan);
    let ms = time(1, reps, || {
        let t = Instant::now();
        let (_, s) =
            crate::infer::forward(&model, &st.params, &st.plan, &prepared, x.clone(), false);
        let total = t.elapsed().as_secs_f64() * 1e3;
        let split = IntSplit {
            quantize_ms: s.ms_quantize,
            int_conv_ms: s.ms_int_conv,
            float_conv_ms: s.ms_float_conv,
            other_ms: total - s.ms_quantize - s.ms_int_conv - s.ms_float_conv,
            bound_vs_fp: 0.0,
        };
        last = (split, format!("{:?}", s.path));
    });
    Ok((ms, last.0, last.1))
}

/// "x ms (r× our FP)", or "–" when not measured.
fn ort(ms: Option<f64>, fp: f64) -> String {
    ms.map_or("–".into(), |m| {
        format!("{m:.1} ms ({:.2}× our FP)", fp / m)
    })
}

impl BenchReport {
    /// Human-readable lines.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "odm bench ({:?} on {}, median of {}; kernel path {}: {}):\n",
            self.size, self.device, self.reps, self.kernel_path, self.kernel_paths
        );
        if let Some(t) = &self.training {
            s += &t.describe();
        }
        if let Some(i) = &self.inference {
            s += &i.describe();
        }
        s + &format!("  peak memory: {:.0} MiB at the end\n", self.peak_rss_mib)
    }
}

impl TrainingBench {
    fn describe(&self) -> String {
        let pct = |e: f64| 100.0 * e;
        format!(
            "  sgemm peak: {:.1} GFLOP/s\n  conv3x3 {:?} fwd+bwd: {:.2} ms (its loss, sum(), alone: {:.2} ms), {:.1} GFLOP/s = {:.0}% of sgemm{}\n  fake quant {:?} fwd+bwd: {:.2} ms (clip-only bound gradient {:.2} ms)\n  step FLOPs: {:.1} GFLOP ({})\n  plain QAT step: {:.1} ms = {:.0}% of sgemm ({:.0} MiB peak)\n  gated QAT step: {:.1} ms ({:.2}× plain; the replay pass's FLOP floor {:.1} GFLOP = {:.2}× the step's) = {:.0}% of sgemm\n  FP step: {:.1} ms = {:.0}% of sgemm\n",
            self.sgemm_gflops,
            self.conv_shape,
            self.conv_fwd_bwd_ms,
            self.conv_loss_sum_ms,
            self.conv_gflops,
            pct(self.conv_vs_sgemm_peak),
            match (self.conv_kernels_ms, self.conv_kernels_vs_sgemm_peak, self.conv_kernels_gemm_ms) {
                (Some(ms), Some(e), Some(gm)) => format!(
                    " (its kernels alone, without autodiff: {ms:.2} ms = {:.0}% of sgemm; as im2col + GEMM: {gm:.2} ms, {:.2}× the implicit GEMM's time)",
                    pct(e), gm / ms
                ),
                _ => String::new(),
            },
            self.conv_shape,
            self.fake_quant_ms,
            self.fake_quant_clip_only_ms,
            self.step_gflop,
            self.flops_formula,
            self.plain_step_ms,
            pct(self.plain_step_efficiency),
            self.peak_rss_plain_mib,
            self.gated_step_ms,
            self.gated_over_plain,
            self.replay_floor_gflop,
            self.replay_floor_gflop / self.step_gflop.max(1e-12),
            pct(self.gated_step_efficiency),
            self.fp_step_ms,
            pct(self.fp_step_efficiency),
        )
    }
}

impl InferenceBench {
    fn describe(&self) -> String {
        let sp = &self.int_split;
        format!(
            "  inference {}×{} LR: FP {:.1} ms (host executor {:.1} ms), W4A4 fake-quant {:.1} ms\n  integer path ({}): W4A4 {:.1} ms ({:.2}× our fastest FP), W2A2 {:.1} ms ({:.2}× FP)\n    W4A4 split: quantizers {:.0} ms, integer convs {:.0} ms ({:.0} G MAC/s; vpdpbusd peak {}), float convs {:.0} ms, other {:.0} ms; ceiling with free quantizers and integer convs {:.2}× our fastest FP\n  ONNX Runtime: FP {} / W4A4 QDQ {}\n",
            self.inference_input[0],
            self.inference_input[1],
            self.inference_ms,
            self.inference_host_fp_ms,
            self.inference_w4a4_ms,
            self.int_path,
            self.inference_int_w4a4_ms,
            self.inference_fp_best_ms / self.inference_int_w4a4_ms.max(1e-9),
            self.inference_int_w2a2_ms,
            self.inference_fp_best_ms / self.inference_int_w2a2_ms.max(1e-9),
            sp.quantize_ms,
            sp.int_conv_ms,
            self.int_conv_gmacs,
            self.vnni_peak_gmacs
                .map_or("–".into(), |p| format!("{p:.0} G MAC/s")),
            sp.float_conv_ms,
            sp.other_ms,
            sp.bound_vs_fp,
            ort(self.ort_fp_ms, self.inference_fp_best_ms),
            ort(self.ort_w4a4_ms, self.inference_fp_best_ms),
        ) + &self.eval.describe()
    }
}
