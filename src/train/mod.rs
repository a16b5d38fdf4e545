//! The training loop: L1 loss, Adam, step decay, optional global-norm clipping, periodic
//! evaluation and checkpoints. Deterministic: the same spec, seed and thread count give the
//! same loss at every step and the same final bytes.

pub mod adam;

use crate::data::{ImageSet, Sampler};
use crate::eval::{evaluate, SetScore};
use crate::models::{Model, Params};
use crate::record::{metrics_csv, MetricRow, NamedTensor};
use crate::spec::{Optim, Spec};
use adam::{clip_global_norm, Adam};
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What a finished training run hands back.
pub struct Outcome {
    pub losses: Vec<f64>,
    pub final_scores: Vec<SetScore>,
    pub wall_seconds: f64,
    pub train_seconds: f64,
}

type Inner<AB> = <AB as AutodiffBackend>::InnerBackend;

/// Train `model` as `spec` says, writing metrics and checkpoints into `run_dir`.
pub fn train<AB: AutodiffBackend>(
    spec: &Spec,
    model: &Model,
    sampler: &mut Sampler,
    eval_sets: &[Arc<ImageSet>],
    run_dir: &Path,
    device: &burn::tensor::Device<Inner<AB>>,
    progress: bool,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut params = Params::<Inner<AB>>::init(&model.decls(), spec.seed, device);
    let Optim::Adam {
        lr,
        beta1,
        beta2,
        eps,
    } = spec.optim;
    let mut adam = Adam::new(&params, beta1, beta2, eps);
    let iters = spec.schedule.iterations;
    let pb = if progress {
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
    let mut rows: Vec<MetricRow> = Vec::new();
    let mut losses = Vec::with_capacity(iters);
    let mut final_scores = Vec::new();
    let mut train_seconds = 0.0;
    for it in 0..iters {
        let t0 = Instant::now();
        let cur_lr = spec.schedule.lr_decay.lr_at(lr, it);
        let b = sampler.next_batch();
        let lr_t = Tensor::<AB, 4>::from_data(
            TensorData::new(b.lr, [b.n, 3, b.lr_side, b.lr_side]),
            device,
        );
        let hr_t = Tensor::<AB, 4>::from_data(
            TensorData::new(b.hr, [b.n, 3, b.hr_side, b.hr_side]),
            device,
        );
        let p_ad = params.to_autodiff::<AB>();
        let sr = model.forward(&p_ad, lr_t);
        let loss = (sr - hr_t).abs().mean();
        let loss_v: f64 = loss.clone().into_scalar().elem();
        let g = loss.backward();
        let mut grads = p_ad.grads(&g);
        drop(p_ad);
        if let Some(c) = spec.schedule.grad_clip {
            clip_global_norm(&mut grads, c);
        }
        adam.step(&mut params, grads, cur_lr);
        train_seconds += t0.elapsed().as_secs_f64();
        if !loss_v.is_finite() {
            anyhow::bail!("training diverged at iteration {}: loss is {loss_v} (lower optim.lr or set schedule.grad_clip)", it + 1);
        }
        losses.push(loss_v);
        let step = it + 1;
        if step % spec.log_every == 0 || step == iters {
            rows.push(row(step, "train", "-", "l1", loss_v));
            rows.push(row(step, "train", "-", "lr", cur_lr));
        }
        pb.set_message(format!("loss {loss_v:.3}"));
        pb.inc(1);
        let last = step == iters;
        if !eval_sets.is_empty() && (last || (spec.eval_every > 0 && step % spec.eval_every == 0)) {
            let scores: Vec<SetScore> = eval_sets
                .iter()
                .map(|s| evaluate(model, &params, s, device))
                .collect();
            for s in &scores {
                rows.push(row(step, "eval", &s.set, "psnr_y", s.psnr_y));
                rows.push(row(step, "eval", &s.set, "ssim_y", s.ssim_y));
                pb.suspend(|| {
                    eprintln!(
                        "odm: step {step}: {} PSNR-Y {:.3} dB, SSIM-Y {:.4}",
                        s.set, s.psnr_y, s.ssim_y
                    )
                });
            }
            if last {
                final_scores = scores;
            }
        }
        if last || (spec.checkpoint_every > 0 && step % spec.checkpoint_every == 0) {
            save_checkpoint(run_dir, &params, &adam, step, sampler)?;
        }
        if last || spec.eval_every > 0 && step % spec.eval_every == 0 {
            crate::record::atomic_write(
                &run_dir.join("metrics.csv"),
                metrics_csv(&rows).as_bytes(),
            )?;
        }
    }
    pb.finish_and_clear();
    Ok(Outcome {
        losses,
        final_scores,
        wall_seconds: started.elapsed().as_secs_f64(),
        train_seconds,
    })
}

fn row(step: usize, split: &'static str, set: &str, metric: &'static str, value: f64) -> MetricRow {
    MetricRow {
        step,
        split,
        set: set.to_string(),
        metric,
        value,
    }
}

/// Write `checkpoint.safetensors`: weights under their names, Adam moments under
/// `adam.m.<name>` / `adam.v.<name>`, and the iteration, Adam step and sampler RNG position as
/// metadata.
pub fn save_checkpoint<B: burn::tensor::backend::Backend>(
    run_dir: &Path,
    params: &Params<B>,
    adam: &Adam<B>,
    step: usize,
    sampler: &Sampler,
) -> anyhow::Result<()> {
    let mut tensors = named(params, "", &params.tensors);
    tensors.extend(named(params, "adam.m.", &adam.m));
    tensors.extend(named(params, "adam.v.", &adam.v));
    let mut meta = BTreeMap::new();
    meta.insert("format".into(), "odm-checkpoint-1".into());
    meta.insert("iteration".into(), step.to_string());
    meta.insert("adam_t".into(), adam.t.to_string());
    meta.insert("sampler".into(), serde_json::to_string(&sampler.state())?);
    crate::record::write_safetensors(&run_dir.join("checkpoint.safetensors"), &tensors, &meta)
}

fn named<B: burn::tensor::backend::Backend>(
    params: &Params<B>,
    prefix: &str,
    ts: &[Tensor<B, 1>],
) -> Vec<NamedTensor> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| NamedTensor {
            name: format!("{prefix}{}", params.names[i]),
            shape: params.shapes[i].clone(),
            data: t.to_data().convert::<f32>().to_vec::<f32>().expect("f32"),
        })
        .collect()
}
