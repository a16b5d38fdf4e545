//! Training state: what the loop carries, and a fresh state's initial weights (random, a
//! checkpoint, an official PyTorch state dict) followed by calibration ([`super::calibrate`]).
//! Checkpoints that restore it bit for bit: [`super::checkpoint`].

use super::adam::Adam;
use super::init::{InitWeights, LoadReport};
use crate::data::Sampler;
use crate::models::params::host_tensor;
use crate::models::{Model, Params};
use crate::quant::offsets::OffsetRow;
use crate::quant::QuantPlan;
use crate::record::{MetricRow, NamedTensor};
use crate::spec::{Optim, Spec};
use burn::tensor::backend::Backend;
use std::collections::HashMap;
use std::path::Path;

/// Everything the loop carries between steps.
pub struct State<B: Backend> {
    pub params: Params<B>,
    pub adam: Adam<B>,
    pub plan: QuantPlan,
    /// Iterations done.
    pub step: usize,
    pub rows: Vec<MetricRow>,
    /// M_σ / M_μ per quantized layer and the offsets chosen (fresh QAT runs only).
    pub offsets: Vec<OffsetRow>,
    /// The FP teacher of PAMS's structured knowledge transfer: the initial weights, frozen.
    pub teacher: Option<Params<B>>,
    /// The rows of `diagnostics.csv` so far (QAT runs; [`super::diagnostics`]).
    pub diag: Vec<super::diagnostics::Row>,
}

/// Host tensors of a weights file by name (a strict load; see [`super::init::read`]).
pub fn read_weights(model: &Model, path: &Path) -> anyhow::Result<HashMap<String, NamedTensor>> {
    Ok(super::init::read(model, &InitWeights::plain(path.to_path_buf()))?.0)
}

/// The model's declared parameters taken from `path`; every declared trainable tensor must be
/// present with the declared shape (buffers fall back to their initial value).
pub fn load_weights<B: Backend>(
    model: &Model,
    path: &Path,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<Params<B>> {
    Ok(load_init(model, &InitWeights::plain(path.to_path_buf()), seed, device)?.0)
}

/// The model's parameters from `init`: what the file holds, the rest at their seeded initial
/// values (buffers always; trainable parameters only when not strict), with the load report.
pub fn load_init<B: Backend>(
    model: &Model,
    init: &InitWeights,
    seed: u64,
    device: &B::Device,
) -> anyhow::Result<(Params<B>, LoadReport)> {
    let (found, report) = super::init::read(model, init)?;
    let mut params = Params::<B>::init(&model.decls(), seed, device);
    for (name, t) in &found {
        params.set(name, host_tensor(&t.data, device));
    }
    let err = |m: String| crate::error::user(format!("{}: {m}", init.path.display()));
    if let Some(from) = init.from_input_norm {
        let f = crate::models::rescale::recentre(model, from).map_err(err)?;
        crate::models::rescale::apply_factors(&mut params, &f);
    }
    if let Some(c) = init.feature_scale {
        crate::models::rescale::apply(model, &mut params, c).map_err(err)?;
    }
    Ok((params, report))
}

/// Freeze every parameter whose name starts with none of `trainable` (learning-rate multiplier
/// 0: no gradient is taken, Adam never updates it). Returns the frozen names.
pub fn freeze<B: Backend>(params: &mut Params<B>, trainable: &[String]) -> Vec<String> {
    let mut frozen = Vec::new();
    for (n, m) in params.names.iter().zip(params.lr_mult.iter_mut()) {
        if *m > 0.0 && !trainable.iter().any(|t| n.starts_with(t.as_str())) {
            *m = 0.0;
            frozen.push(n.clone());
        }
    }
    frozen
}

/// A fresh state: initial weights, then calibration when the spec quantizes.
pub fn fresh<B: Backend>(
    spec: &Spec,
    model: &Model,
    init: Option<&InitWeights>,
    sampler: &mut Sampler,
    device: &B::Device,
) -> anyhow::Result<State<B>> {
    let mut params = match init {
        Some(i) => load_init(model, i, spec.seed, device)?.0,
        None => Params::init(&model.decls(), spec.seed, device),
    };
    if let Some(t) = &spec.trainable {
        freeze(&mut params, t);
    }
    let mut plan = QuantPlan::from_spec(&spec.quant, model);
    let teacher = (spec.quant.skt_weight() > 0.0).then(|| params.clone());
    let offsets = super::calibrate::calibrate(spec, model, &mut plan, &mut params, sampler, device);
    let Optim::Adam {
        beta1, beta2, eps, ..
    } = spec.optim;
    let adam = Adam::new(&params, beta1, beta2, eps);
    Ok(State {
        params,
        adam,
        plan,
        step: 0,
        rows: Vec::new(),
        offsets,
        teacher,
        diag: Vec::new(),
    })
}
