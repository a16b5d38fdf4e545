//! The training loop: L1 loss, Adam, step decay, optional global-norm clipping, periodic
//! evaluation and checkpoints. Deterministic: the same spec, seed and thread count give the
//! same loss at every step and the same final bytes, also across an interruption and resume.

pub mod adam;
pub mod calibrate;
pub mod checkpoint;
pub mod diagnostics;
pub mod gating;
pub mod init;
pub mod regularize;
pub mod skt;
pub mod state;
pub mod timing;

use crate::data::{ImageSet, RgbImage, Sampler};
use crate::eval::{evaluate, evaluate_with, SetScore};
use crate::forward::{Capture, Fwd};
use crate::models::{Model, ParamId};
use crate::quant::{wcc_name, WeightQ};
use crate::record::{atomic_write, keys, metrics_csv, MetricRow};
use crate::spec::{GateParams, GateRule, Regularizer, Spec};
use adam::clip_global_norm;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Device, ElementConversion, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use state::State;
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use timing::Timing;

/// What a training run hands back.
pub struct Outcome {
    pub losses: Vec<f64>,
    pub final_scores: Vec<SetScore>,
    /// Time spent over all segments of the run (see [`timing`]).
    pub timing: timing::Timing,
    /// False when the run stopped early (`stop_after`, or SIGTERM / SIGINT) and can be
    /// resumed.
    pub finished: bool,
    /// True when SIGTERM or SIGINT stopped it (see [`crate::record::interrupt`]).
    pub interrupted: bool,
    /// The iteration it stopped at.
    pub step: usize,
    /// The last training loss (L1) recorded, at the last iteration.
    pub final_loss: Option<f64>,
}

/// Where a run stops early (none set: at its last iteration).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stop {
    /// After the first checkpoint at or past this iteration (`--stop-after`).
    pub after_checkpoint: Option<usize>,
    /// Right after this iteration, with `metrics.csv` written and no checkpoint
    /// (`odm reproduce --until`).
    pub at: Option<usize>,
}

/// A training failure, with the last iteration completed before it (the context of the error
/// `train` returns; `odm run` records it in `failed.json`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtStep(pub usize);

impl std::fmt::Display for AtStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "after iteration {}", self.0)
    }
}

type Inner<AB> = <AB as AutodiffBackend>::InnerBackend;

/// How a run starts.
pub enum Start<'a> {
    /// Fresh, from random init or from these weights.
    Fresh(Option<&'a init::InitWeights>),
    /// Resume from the run folder's checkpoint, with the metrics recorded so far.
    Resume(Vec<MetricRow>),
}

/// BatchNorm running statistics: r ← (1 − 0.1)·r + 0.1·batch (PyTorch's momentum 0.1).
fn update_bn<B: Backend>(st: &mut State<B>, stats: Vec<(String, Tensor<B, 1>, Tensor<B, 1>)>) {
    for (name, mean, var) in stats {
        for (suffix, v) in [("running_mean", mean), ("running_var", var)] {
            let n = format!("{name}.{suffix}");
            let cur = st.params.tensors[st.params.idx(&n)].clone();
            st.params.set(&n, cur.mul_scalar(0.9) + v.mul_scalar(0.1));
        }
    }
}

/// DDTB's stage at `step` completed iterations: the gated bounds are live from `dynamic_from`
/// on. Sets the plan's flag; no effect on other presets.
fn sync_stage<B: Backend>(spec: &Spec, st: &mut State<B>) {
    st.plan.gates_live = spec
        .quant
        .dynamic(&spec.model, spec.schedule.iterations)
        .is_some_and(|(_, from)| st.step >= from);
}

/// Score `sets` at the state's current step: rows for `metrics.csv` and one line each on stderr.
/// SIGTERM or SIGINT is looked for after every image: once it has arrived the evaluation is
/// abandoned, nothing is recorded and `None` comes back (the caller stops on a checkpoint of this
/// step; a resumed run scores it again, see [`pending_eval`]), so a preemption during a long
/// evaluation loses at most one image's work.
fn score_sets<B: Backend>(
    model: &Model,
    st: &mut State<B>,
    sets: &[Arc<ImageSet>],
    device: &B::Device,
    pb: &ProgressBar,
) -> Option<Vec<SetScore>> {
    let step = st.step;
    let point = format!("eval-{step}");
    let mut stop = |_: &str, _: &RgbImage| {
        crate::record::interrupt::signal_point(&point);
        match crate::record::interrupt::requested() {
            true => Err(anyhow::anyhow!("interrupted")),
            false => Ok(()),
        }
    };
    let scores: Vec<SetScore> = sets
        .iter()
        .map(|s| evaluate_with(model, &st.params, &st.plan, s, None, device, &mut stop).ok())
        .collect::<Option<_>>()?;
    for s in &scores {
        st.rows.push(MetricRow::new(
            step,
            keys::EVAL,
            &s.set,
            keys::PSNR_Y,
            s.psnr_y,
        ));
        st.rows.push(MetricRow::new(
            step,
            keys::EVAL,
            &s.set,
            keys::SSIM_Y,
            s.ssim_y,
        ));
        pb.suspend(|| {
            eprintln!(
                "odm: step {step}: {} PSNR-Y {:.3} dB, SSIM-Y {:.4}",
                s.set, s.psnr_y, s.ssim_y
            )
        });
    }
    Some(scores)
}

/// Whether iteration `step` scores the evaluation sets (every `eval_every`, and the last).
fn evals_at(spec: &Spec, step: usize) -> bool {
    let every = spec.eval_every;
    step == spec.schedule.iterations || (every > 0 && step.is_multiple_of(every))
}

/// A run resumed from a checkpoint whose step's evaluation was interrupted ([`score_sets`]):
/// the step is an evaluation step and `metrics.csv` holds no evaluation row of it.
fn pending_eval<B: Backend>(spec: &Spec, st: &State<B>, eval_sets: &[Arc<ImageSet>]) -> bool {
    st.step > 0
        && !eval_sets.is_empty()
        && evals_at(spec, st.step)
        && !st
            .rows
            .iter()
            .any(|r| r.step == st.step && r.split == keys::EVAL)
}

/// Write `quant_map.{txt,json}` (fresh QAT runs) and `offsets.json` (runs with offsets).
fn write_plan<B: Backend>(
    spec: &Spec,
    model: &Model,
    st: &State<B>,
    run_dir: &Path,
) -> anyhow::Result<()> {
    if !st.plan.is_fp() && st.step == 0 {
        let map = st.plan.table(model, &spec.quant);
        eprint!("{map}");
        atomic_write(&run_dir.join("quant_map.txt"), map.as_bytes())?;
        atomic_write(
            &run_dir.join("quant_map.json"),
            serde_json::to_string_pretty(&st.plan.to_json())?.as_bytes(),
        )?;
    }
    if !st.offsets.is_empty() {
        atomic_write(
            &run_dir.join("offsets.json"),
            serde_json::to_string_pretty(&st.offsets)?.as_bytes(),
        )?;
    }
    Ok(())
}

fn progress_bar(show: bool, iters: usize, at: usize) -> ProgressBar {
    let pb = if show {
        ProgressBar::new(iters as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {per_sec} ETA {eta} {msg}",
        )
        .expect("template"),
    );
    pb.set_position(at as u64);
    pb
}

/// The gating statistics of iteration `it` as `gate` rows of `metrics.csv`: set `-`, then one
/// set per parameter group.
fn gate_rows(rows: &mut Vec<MetricRow>, it: usize, stats: &gating::GateStats, reg: f64) {
    for (metric, v) in [
        (keys::REG_LOSS, reg),
        (keys::CONFLICT_RATIO, stats.conflict_ratio),
        (keys::COSINE, stats.cosine),
        (keys::GATED_FRACTION, stats.gated_fraction),
    ] {
        rows.push(MetricRow::new(it, keys::GATE, "-", metric, v));
    }
    for (g, s) in gating::Group::ALL.iter().zip(&stats.groups) {
        for (metric, v) in [
            (keys::GRAD_NORM_REC, s.norm_rec),
            (keys::GRAD_NORM_REG, s.norm_reg),
            (keys::COSINE, s.cosine),
            (keys::GATE_WEIGHT, s.weight),
        ] {
            rows.push(MetricRow::new(it, keys::GATE, g.key(), metric, v));
        }
    }
}

fn write_metrics<B: Backend>(run_dir: &Path, st: &State<B>) -> anyhow::Result<()> {
    diagnostics::write(run_dir, &st.diag)?;
    atomic_write(
        &run_dir.join("metrics.csv"),
        metrics_csv(&st.rows).as_bytes(),
    )
}

/// The probe of a QAT run (none for FP); a fresh run records its step 0 and the FP input of the
/// histogram's layer.
fn start_probe<B: Backend>(
    model: &Model,
    st: &mut State<B>,
    sampler: &Sampler,
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<Option<diagnostics::Probe>> {
    let Some(probe) = diagnostics::Probe::new(&st.plan, sampler) else {
        return Ok(None);
    };
    if st.step == 0 {
        let rows = probe.measure(model, &st.params, &st.plan, 0, device);
        st.diag.extend(rows);
        probe.write_fp(model, &st.params, &st.plan, run_dir, device)?;
    }
    Ok(Some(probe))
}

/// Before the first step: for a fresh run the `eval_at_start` sets, or, for an evaluation-only
/// run (`iterations: 0`), every set (returned as the final scores); for a resumed run whose
/// checkpoint's evaluation was interrupted ([`pending_eval`]), that evaluation (the final scores
/// when it is the last step's). `None`: interrupted during the evaluation.
fn score_first<B: Backend>(
    spec: &Spec,
    model: &Model,
    st: &mut State<B>,
    eval_sets: &[Arc<ImageSet>],
    run_dir: &Path,
    device: &B::Device,
    pb: &ProgressBar,
) -> anyhow::Result<Option<Vec<SetScore>>> {
    let iters = spec.schedule.iterations;
    sync_stage(spec, st);
    let sets: Vec<Arc<ImageSet>> = if iters == 0 || pending_eval(spec, st, eval_sets) {
        eval_sets.to_vec()
    } else if st.step == 0 {
        let at_start = |s: &&Arc<ImageSet>| spec.eval_at_start.contains(&s.name);
        eval_sets.iter().filter(at_start).cloned().collect()
    } else {
        vec![]
    };
    if sets.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let Some(scores) = score_sets(model, st, &sets, device, pb) else {
        return Ok(None);
    };
    write_metrics(run_dir, st)?;
    let last = st.step == iters;
    Ok(Some(if last { scores } else { Vec::new() }))
}

/// Record one step's rows: the gating statistics every `gating.log_every` iterations, the loss
/// and learning rate every `log_every`, and both at the last iteration.
fn log_step(
    spec: &Spec,
    rows: &mut Vec<MetricRow>,
    (step, iters): (usize, usize),
    (loss, lr): (f64, f64),
    done: &StepOut,
) {
    if let Some((stats, reg_v)) = &done.gate {
        if step.is_multiple_of(spec.gating.log_every) || step == iters {
            gate_rows(rows, step, stats, *reg_v);
        }
    }
    if logs_at(spec, step) {
        rows.push(MetricRow::new(step, keys::TRAIN, "-", keys::L1, loss));
        rows.push(MetricRow::new(step, keys::TRAIN, "-", keys::LR, lr));
        if let Some(v) = done.logit_loss {
            rows.push(MetricRow::new(step, keys::TRAIN, "-", keys::GATE_LOGIT, v));
        }
    }
}

/// Whether iteration `step` logs its loss (every `log_every`, and the last).
fn logs_at(spec: &Spec, step: usize) -> bool {
    step.is_multiple_of(spec.log_every) || step == spec.schedule.iterations
}

/// What one optimizer step reports.
pub struct StepOut {
    /// The L1 loss.
    pub loss: f64,
    /// The ODM gate's statistics and the regularizer's loss, when a regularizer runs.
    pub gate: Option<(gating::GateStats, f64)>,
    /// DDTB's stage-one loss on the gate logits, while it is in force.
    pub logit_loss: Option<f64>,
}

/// The state a run starts from, and the time already spent on it (none for a fresh run).
fn begin<B: Backend>(
    spec: &Spec,
    model: &Model,
    sampler: &mut Sampler,
    run_dir: &Path,
    device: &B::Device,
    start: Start,
) -> anyhow::Result<(State<B>, Timing)> {
    Ok(match start {
        Start::Fresh(init) => (
            state::fresh(spec, model, init, sampler, device)?,
            Timing::default(),
        ),
        Start::Resume(rows) => {
            let st = checkpoint::load(run_dir, spec, model, sampler, rows, device)?;
            let t = Timing::resumed(run_dir, st.step);
            (st, t)
        }
    })
}

/// The last L1 loss among the recorded rows (the summary's `final_loss`; the same value the
/// last step returned, also for a run resumed from its final checkpoint).
fn last_loss(rows: &[MetricRow]) -> Option<f64> {
    rows.iter()
        .rev()
        .find(|r| r.split == keys::TRAIN && r.metric == keys::L1)
        .map(|r| r.value)
}

/// Train `model` as `spec` says, writing metrics and checkpoints into `run_dir`. An error
/// carries the last completed iteration as its context ([`AtStep`]); `metrics.csv` then holds
/// every row recorded so far and the checkpoint is the last good one (a non-finite state is never
/// written).
#[allow(clippy::too_many_arguments)]
pub fn train<AB: AutodiffBackend>(
    spec: &Spec,
    model: &Model,
    sampler: &mut Sampler,
    eval_sets: &[Arc<ImageSet>],
    run_dir: &Path,
    device: &Device<Inner<AB>>,
    start: Start,
    stop: Stop,
    progress: bool,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let (mut st, before) = begin::<Inner<AB>>(spec, model, sampler, run_dir, device, start)
        .map_err(|e| e.context(AtStep(0)))?;
    let first = st.step;
    let mut out = Outcome {
        losses: Vec::new(),
        final_scores: Vec::new(),
        timing: before,
        finished: false,
        interrupted: false,
        step: st.step,
        final_loss: None,
    };
    let r = train_loop::<AB>(
        spec, model, sampler, eval_sets, run_dir, device, &mut st, &mut out, started, stop,
        progress,
    );
    out.step = st.step;
    match r {
        Ok(()) => Ok(out),
        Err(e) => {
            // Keep the loss curve that shows why: every row so far, beside the last checkpoint.
            if st.step > first || !st.rows.is_empty() {
                let _ = write_metrics(run_dir, &st);
            }
            Err(e.context(AtStep(st.step)))
        }
    }
}

/// The loop of [`train`]: steps, logging, evaluation, checkpoints, interruption.
#[allow(clippy::too_many_arguments)]
fn train_loop<AB: AutodiffBackend>(
    spec: &Spec,
    model: &Model,
    sampler: &mut Sampler,
    eval_sets: &[Arc<ImageSet>],
    run_dir: &Path,
    device: &Device<Inner<AB>>,
    st: &mut State<Inner<AB>>,
    out: &mut Outcome,
    started: Instant,
    stop: Stop,
    progress: bool,
) -> anyhow::Result<()> {
    let before = out.timing;
    write_plan(spec, model, st, run_dir)?;
    let probe = start_probe(model, st, sampler, run_dir, device)?;
    let reg_on = !st.plan.is_fp()
        && spec.regularizer != Regularizer::None
        && spec.gating.rule != GateRule::Never;
    let iters = spec.schedule.iterations;
    let pb = progress_bar(progress, iters, st.step);
    let mut train_seconds = 0.0;
    let mut saved_at = (st.step > 0).then_some(st.step);
    let Some(first) = score_first(spec, model, st, eval_sets, run_dir, device, &pb)? else {
        // Interrupted in the evaluation before the first step: a resumed run's checkpoint is
        // this step's, and a fresh run has none to keep.
        pb.abandon();
        out.interrupted = true;
        return Ok(());
    };
    out.final_scores = first;
    if iters == 0 {
        checkpoint::save(run_dir, st, sampler)?;
    }
    let timed = |step, train_seconds| before.plus(started, train_seconds, step);
    while st.step < iters {
        if crate::record::interrupt::requested() {
            let t = timed(st.step, train_seconds);
            return stop_here(run_dir, st, sampler, saved_at, t, out, &pb);
        }
        let t0 = Instant::now();
        let it = st.step;
        let cur_lr = spec.schedule.lr_decay.lr_at(spec.optim.lr(), it);
        let b = sampler.next_batch();
        let done = match step::<AB>(spec, model, st, b, cur_lr, reg_on, device) {
            Ok(d) => d,
            Err(e) => {
                if let Some(l) = e.downcast_ref::<Diverged>() {
                    // The diverged loss goes into the curve, at the iteration it was computed.
                    st.rows
                        .push(MetricRow::new(it + 1, keys::TRAIN, "-", keys::L1, l.0));
                }
                return Err(e);
            }
        };
        let (loss_v, step) = (done.loss, st.step);
        sync_stage(spec, st);
        log_step(spec, &mut st.rows, (step, iters), (loss_v, cur_lr), &done);
        if let Some(p) = probe.as_ref().filter(|_| logs_at(spec, step)) {
            let rows = p.measure(model, &st.params, &st.plan, step, device);
            st.diag.extend(rows);
        }
        train_seconds += t0.elapsed().as_secs_f64();
        out.losses.push(loss_v);
        pb.set_message(format!("loss {loss_v:.3}"));
        pb.inc(1);
        let last = step == iters;
        let every = |n: usize| n > 0 && step.is_multiple_of(n);
        let eval_now = evals_at(spec, step);
        if !eval_sets.is_empty() && eval_now {
            let Some(scores) = score_sets(model, st, eval_sets, device, &pb) else {
                // Interrupted in this step's evaluation: its checkpoint, scored on resume.
                let t = timed(st.step, train_seconds);
                return stop_here(run_dir, st, sampler, saved_at, t, out, &pb);
            };
            if last {
                out.final_scores = scores;
            }
        }
        let ckpt_now = last || every(spec.checkpoint_every);
        if ckpt_now || eval_now {
            write_metrics(run_dir, st)?;
        }
        if ckpt_now {
            checkpoint::save(run_dir, st, sampler)?;
            saved_at = Some(step);
            out.timing = timed(step, train_seconds);
            out.timing.save(run_dir)?;
            if last {
                crate::record::interrupt::fault_point("after-final-checkpoint");
            }
            if stop.after_checkpoint.is_some_and(|s| step >= s) && !last {
                pb.abandon();
                return Ok(());
            }
        }
        if stop.at == Some(step) && !last {
            // `odm reproduce --until`: the rows so far, no checkpoint.
            write_metrics(run_dir, st)?;
            pb.abandon();
            return Ok(());
        }
    }
    // Resumed from the final checkpoint (a crash before the summary): score every set again,
    // without adding rows (metrics.csv already holds this step's evaluation).
    if out.final_scores.is_empty() && !eval_sets.is_empty() && iters > 0 {
        out.final_scores = eval_sets
            .iter()
            .map(|s| evaluate(model, &st.params, &st.plan, s, device))
            .collect();
    }
    let (params, plan) = (&st.params, &st.plan);
    if let Some(p) = &probe {
        p.write_final(model, params, plan, (run_dir, st.step), device)?;
    }
    crate::eval::crops::save(&spec.crops, model, params, plan, eval_sets, run_dir, device)?;
    pb.finish_and_clear();
    out.timing = timed(st.step, train_seconds);
    out.final_loss = last_loss(&st.rows);
    out.finished = true;
    Ok(())
}

/// SIGTERM or SIGINT arrived: stop on a checkpoint of the last completed step (none before the
/// first step), with `timing` the time spent up to it.
fn stop_here<B: Backend>(
    run_dir: &Path,
    st: &State<B>,
    sampler: &Sampler,
    saved_at: Option<usize>,
    timing: Timing,
    out: &mut Outcome,
    pb: &ProgressBar,
) -> anyhow::Result<()> {
    pb.abandon();
    if st.step > 0 && saved_at != Some(st.step) {
        write_metrics(run_dir, st)?;
        checkpoint::save(run_dir, st, sampler)?;
        out.timing = timing;
        out.timing.save(run_dir)?;
    }
    out.interrupted = true;
    Ok(())
}

/// A training loss that is not finite (the error [`step`] returns; its value goes into the
/// loss curve).
#[derive(Debug, Clone, Copy)]
pub struct Diverged(pub f64);

impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "training diverged: loss is {} (lower optim.lr or set schedule.grad_clip)",
            self.0
        )
    }
}

impl std::error::Error for Diverged {}

/// The regularizer's pass: a second forward through the body only (burn keeps no graph after a
/// backward, and L_reg needs nothing past the last quantized layer), its gradient g_reg, and the
/// gated combination with g_rec. The convolutions reuse the reconstruction pass's outputs
/// (`replay`: same parameters and input, so the same values) and only record their backward.
/// Returns the combined gradients, the gate's statistics and L_reg.
fn regularizer_pass<AB: AutodiffBackend>(
    spec: &Spec,
    model: &Model,
    st: &State<Inner<AB>>,
    lr: TensorData,
    g_rec: Vec<Tensor<Inner<AB>, 1>>,
    replay: Vec<(String, Tensor<AB, 4>)>,
    device: &Device<Inner<AB>>,
) -> (Vec<Tensor<Inner<AB>, 1>>, gating::GateStats, f64) {
    let p = st.params.to_autodiff::<AB>();
    let cap = RefCell::new(Capture::<AB> {
        replay: replay.into(),
        ..Default::default()
    });
    let f = Fwd {
        p: &p,
        plan: &st.plan,
        capture: Some(&cap),
        train: true,
        body_only: true,
    };
    let _ = model.forward(&f, Tensor::<AB, 4>::from_data(lr, device));
    let acts = cap.into_inner().act_inputs;
    let l = regularize::reg_loss(&spec.regularizer, &p, &st.plan, &acts).expect("quantized layers");
    let reg_v: f64 = l.clone().into_scalar().elem();
    let g_reg = p.grads(&l.backward());
    // WCC's γ learns from ∇L_R only (ODM, ECCV 2024): the regularizer never reaches it.
    let wcc: Vec<String> = st
        .plan
        .layers
        .iter()
        .filter(|(_, l)| matches!(l.weights, WeightQ::Wcc { .. }))
        .map(|(n, _)| wcc_name(n))
        .collect();
    let weights = &model.layers().conv_weights;
    let scope: Vec<bool> = (0..st.params.names.len())
        .map(|i| {
            st.params.lr_mult[i] > 0.0
                && !wcc.contains(&st.params.names[i])
                && (spec.gating.params == GateParams::All || weights.contains(&ParamId(i)))
        })
        .collect();
    let groups = param_groups(&st.params, weights);
    let gate = gating::Gate {
        rule: spec.gating.rule,
        scope: spec.gating.scope,
        lambda: spec.regularizer.lambda(),
        in_scope: &scope,
        groups: &groups,
    };
    let (g, stats) = gate.combine(g_rec, g_reg);
    (g, stats, reg_v)
}

/// The gate log's group of each trainable parameter (`None`: frozen).
fn param_groups<B: Backend>(
    p: &crate::models::Params<B>,
    conv_weights: &[ParamId],
) -> Vec<Option<gating::Group>> {
    (0..p.names.len())
        .map(|i| {
            (p.lr_mult[i] > 0.0).then(|| {
                if conv_weights.contains(&ParamId(i)) {
                    gating::Group::ConvWeights
                } else if crate::quant::is_bound_name(&p.names[i]) {
                    gating::Group::Bounds
                } else {
                    gating::Group::Other
                }
            })
        })
        .collect()
}

/// The FP teacher's body output on an LR batch (evaluation mode, no graph).
fn teacher_feature<B: Backend>(
    model: &Model,
    teacher: &crate::models::Params<B>,
    lr: TensorData,
    device: &B::Device,
) -> Tensor<B, 4> {
    let fp = crate::quant::QuantPlan::fp();
    let cap = RefCell::new(Capture::<B>::default());
    let f = Fwd {
        p: teacher,
        plan: &fp,
        capture: Some(&cap),
        train: false,
        body_only: false,
    };
    let _ = model.forward(&f, Tensor::<B, 4>::from_data(lr, device));
    cap.into_inner()
        .feature
        .expect("the model marks its feature")
}

/// One optimizer step on a batch: the reconstruction pass (L1, SKT, DDTB's logit loss), the
/// regularizer's pass and gate when `reg_on`, clipping, Adam and the BatchNorm buffers.
#[allow(clippy::too_many_arguments)]
pub fn step<AB: AutodiffBackend>(
    spec: &Spec,
    model: &Model,
    st: &mut State<Inner<AB>>,
    b: crate::data::Batch,
    lr: f64,
    reg_on: bool,
    device: &Device<Inner<AB>>,
) -> anyhow::Result<StepOut> {
    sync_stage(spec, st);
    let lr_data = TensorData::new(b.lr, [b.n, 3, b.lr_side, b.lr_side]);
    let lr_t = Tensor::<AB, 4>::from_data(lr_data.clone(), device);
    let hr_t = Tensor::<AB, 4>::from_data(
        TensorData::new(b.hr, [b.n, 3, b.hr_side, b.hr_side]),
        device,
    );
    let p_ad = st.params.to_autodiff::<AB>();
    let cap = RefCell::new(Capture::<AB> {
        record_convs: reg_on,
        ..Default::default()
    });
    let f = Fwd {
        p: &p_ad,
        plan: &st.plan,
        capture: Some(&cap),
        train: true,
        body_only: false,
    };
    let sr = model.forward(&f, lr_t);
    let mut loss = (sr - hr_t).abs().mean();
    let loss_v: f64 = loss.clone().into_scalar().elem();
    if let Some(teacher) = &st.teacher {
        let student = cap
            .borrow_mut()
            .feature
            .take()
            .expect("the model marks its feature");
        let t = teacher_feature(model, teacher, lr_data.clone(), device);
        let w = spec.quant.skt_weight();
        loss = loss + skt::at_loss(student, Tensor::from_inner(t)).mul_scalar(w);
    }
    let logits = std::mem::take(&mut cap.borrow_mut().gate_logits);
    let mut logit_loss = None;
    if let Some(l) = crate::quant::ddtb::logit_loss(&logits) {
        logit_loss = Some(l.clone().into_scalar().elem::<f64>());
        loss = loss + l;
    }
    let mut grads = p_ad.grads(&loss.backward());
    let cap = cap.into_inner();
    let replay = cap.conv_out;
    let bn: Vec<_> = cap
        .bn_batch
        .into_iter()
        .map(|(n, m, v)| (n, m.inner(), v.inner()))
        .collect();
    drop(p_ad);
    if !loss_v.is_finite() {
        return Err(anyhow::Error::new(Diverged(loss_v)));
    }
    let mut gate = None;
    if reg_on {
        let (g, stats, reg_v) =
            regularizer_pass::<AB>(spec, model, st, lr_data, grads, replay, device);
        grads = g;
        gate = Some((stats, reg_v));
    }
    if let Some(c) = spec.schedule.grad_clip {
        clip_global_norm(&mut grads, c);
    }
    st.adam.step(&mut st.params, grads, lr);
    update_bn(st, bn);
    st.step += 1;
    Ok(StepOut {
        loss: loss_v,
        gate,
        logit_loss,
    })
}
