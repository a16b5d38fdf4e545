//! Training state: initial weights (random, a checkpoint, an official PyTorch state dict),
//! activation-range calibration before QAT, and checkpoints that hold everything a bit-identical
//! resume needs (weights, quantizer bounds, BatchNorm buffers, Adam moments and step, iteration,
//! the sampler's RNG position, and the metrics so far).

use super::adam::Adam;
use super::init::{InitWeights, LoadReport};
use crate::data::Sampler;
use crate::models::{Model, Params};
use crate::quant::calib::RangeAcc;
use crate::quant::offsets::{choose, spreads, ChannelStats, OffsetRow};
use crate::quant::{bound_names, offset_names, wcc_name, weight_bound_name, QuantPlan, WeightQ};
use crate::record::{self, MetricRow, NamedTensor};
use crate::spec::{Optim, Spec};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use std::collections::{BTreeMap, HashMap};
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
}

const CKPT: &str = "checkpoint.safetensors";

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

fn host_tensor<B: Backend>(v: &[f32], device: &B::Device) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), device)
}

/// The initial learned weight bound u_w of a layer: max(W) over the layer (or per output
/// channel), as AdaBM's `init_qparams_w` with its `minmax` quantizer.
fn weight_bound_init<B: Backend>(params: &Params<B>, layer: &str, per_channel: bool) -> Vec<f32> {
    let i = params.idx(&format!("{layer}.weight"));
    let v = params.tensors[i]
        .to_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("f32");
    let rows = if per_channel { params.shapes[i][0] } else { 1 };
    v.chunks(v.len() / rows)
        .map(|r| r.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)).max(1e-8))
        .collect()
}

/// Initialise activation bounds from `calib_batches` FP batches of the training stream (full
/// forward passes, so that every point sees the input it quantizes), choose the distribution
/// offsets from the same statistics, append bounds, offsets, learned weight bounds and WCC γ as
/// parameters, and switch the quantizers on. Returns the M_σ/M_μ table.
pub fn calibrate<B: Backend>(
    spec: &Spec,
    model: &Model,
    plan: &mut QuantPlan,
    params: &mut Params<B>,
    sampler: &mut Sampler,
    device: &B::Device,
) -> Vec<OffsetRow> {
    let Some((opts, form)) = spec.quant.opts_form() else {
        return Vec::new();
    };
    let init = spec.quant.range_init(&spec.model);
    let acts: Vec<usize> = (0..plan.layers.len())
        .filter(|&i| plan.layers[i].1.has_act())
        .collect();
    let mut accs: Vec<RangeAcc> = acts
        .iter()
        .map(|&i| {
            let l = &plan.layers[i].1;
            RangeAcc::new(init.clone(), form.symmetric(), l.per_channel, l.channels)
        })
        .collect();
    let mut chan = vec![ChannelStats::default(); acts.len()];
    plan.set_active(false);
    for _ in 0..opts.calib_batches {
        let b = sampler.next_batch();
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(b.lr, [b.n, 3, b.lr_side, b.lr_side]),
            device,
        );
        for (name, t) in crate::forward::planned_inputs(model, params, plan, x, true) {
            let k = acts
                .iter()
                .position(|&i| plan.layers[i].0 == name)
                .expect("planned activation point");
            let dims = t.dims();
            let data = t.to_data().convert::<f32>().to_vec::<f32>().expect("f32");
            accs[k].add(&data, dims);
            chan[k].add(&data, dims);
        }
    }
    let stats: Vec<(String, f64, f64)> = acts
        .iter()
        .zip(&chan)
        .map(|(&i, c)| {
            let (mu, sd) = c.mean_std();
            let (ms, mm) = spreads(&mu, &sd);
            (plan.layers[i].0.clone(), ms, mm)
        })
        .collect();
    let rows = choose(&spec.offsets, &stats);
    let mult = spec.quant.bound_lr_mult();
    for ((&i, acc), row) in acts.iter().zip(&accs).zip(&rows) {
        let (name, l) = &mut plan.layers[i];
        let (lo, hi) = acc.bounds();
        let (lo_n, hi_n) = bound_names(name);
        if !form.symmetric() {
            params.push(&lo_n, vec![lo.len()], host_tensor(&lo, device), mult);
        }
        params.push(&hi_n, vec![hi.len()], host_tensor(&hi, device), mult);
        let (sn, hn) = offset_names(name);
        l.scale = row.scale;
        l.shift = row.shift;
        if l.scale {
            let ones = vec![1.0; l.channels];
            params.push(&sn, vec![l.channels], host_tensor(&ones, device), 1.0);
        }
        if l.shift {
            let zeros = vec![0.0; l.channels];
            params.push(&hn, vec![l.channels], host_tensor(&zeros, device), 1.0);
        }
    }
    push_weight_bounds(plan, params, mult, device);
    plan.set_active(true);
    rows
}

/// The learned weight bounds (AdaBM's u_w, at the bounds' learning-rate multiplier) and WCC's γ
/// (at the base learning rate, ODM ECCV 2024) of the planned weight quantizers.
fn push_weight_bounds<B: Backend>(
    plan: &QuantPlan,
    params: &mut Params<B>,
    mult: f64,
    device: &B::Device,
) {
    for (name, l) in plan.layers.iter().filter(|(_, l)| l.has_weight()) {
        match l.weights {
            WeightQ::Learned => {
                let u = weight_bound_init(params, name, l.per_channel);
                let n = weight_bound_name(name);
                params.push(&n, vec![u.len()], host_tensor(&u, device), mult);
            }
            WeightQ::Wcc { .. } => {
                params.push(&wcc_name(name), vec![1], host_tensor(&[1.0], device), 1.0)
            }
            WeightQ::MaxAbs | WeightQ::Percentile { .. } => {}
        }
    }
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
    let offsets = calibrate(spec, model, &mut plan, &mut params, sampler, device);
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
    })
}

fn named<B: Backend>(params: &Params<B>, prefix: &str, ts: &[Tensor<B, 1>]) -> Vec<NamedTensor> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| NamedTensor {
            name: format!("{prefix}{}", params.names[i]),
            shape: params.shapes[i].clone(),
            data: t.to_data().convert::<f32>().to_vec::<f32>().expect("f32"),
        })
        .collect()
}

/// Write `checkpoint.safetensors` atomically: parameters (weights, bounds, buffers) under their
/// names, Adam moments under `adam.m.` / `adam.v.`, learning-rate multipliers, iteration, Adam
/// step and sampler RNG position as metadata.
pub fn save<B: Backend>(run_dir: &Path, st: &State<B>, sampler: &Sampler) -> anyhow::Result<()> {
    let mut tensors = named(&st.params, "", &st.params.tensors);
    tensors.extend(named(&st.params, "adam.m.", &st.adam.m));
    tensors.extend(named(&st.params, "adam.v.", &st.adam.v));
    if let Some(t) = &st.teacher {
        tensors.extend(named(t, "teacher.", &t.tensors));
    }
    let mut meta = BTreeMap::new();
    meta.insert("format".into(), "odm-checkpoint-1".into());
    meta.insert("iteration".into(), st.step.to_string());
    meta.insert("adam_t".into(), st.adam.t.to_string());
    meta.insert("lr_mult".into(), serde_json::to_string(&st.params.lr_mult)?);
    meta.insert("sampler".into(), serde_json::to_string(&sampler.state())?);
    let frozen: Vec<&String> = (st.params.names.iter().zip(&st.params.lr_mult))
        .filter(|(n, &m)| m == 0.0 && !n.ends_with(".running_mean") && !n.ends_with(".running_var"))
        .map(|(n, _)| n)
        .collect();
    meta.insert("frozen".into(), serde_json::to_string(&frozen)?);
    record::write_safetensors(&run_dir.join(CKPT), &tensors, &meta)
}

/// Parameters, metadata and the other stored tensors (Adam moments, SKT teacher) of a checkpoint.
pub type StoredCheckpoint<B> = (Params<B>, BTreeMap<String, String>, Vec<NamedTensor>);

/// The parameters stored in a checkpoint (everything but the Adam moments and the SKT teacher,
/// which come back as the third element), in stored order.
pub fn checkpoint_params<B: Backend>(
    run_dir: &Path,
    device: &B::Device,
) -> anyhow::Result<StoredCheckpoint<B>> {
    let (ts, meta) = record::read_safetensors(&run_dir.join(CKPT))?;
    let (opt, ps): (Vec<_>, Vec<_>) = ts
        .into_iter()
        .partition(|t| t.name.starts_with("adam.") || t.name.starts_with("teacher."));
    let params = Params::from_host(
        ps.iter().map(|t| t.name.clone()).collect(),
        ps.iter().map(|t| t.shape.clone()).collect(),
        ps.into_iter().map(|t| t.data).collect(),
        device,
    );
    Ok((params, meta, opt))
}

/// Restore a state written by [`save`]; `rows` are the metrics recorded up to that iteration.
pub fn load<B: Backend>(
    run_dir: &Path,
    spec: &Spec,
    model: &Model,
    sampler: &mut Sampler,
    rows: Vec<MetricRow>,
    device: &B::Device,
) -> anyhow::Result<State<B>> {
    let (mut params, meta, opt) = checkpoint_params::<B>(run_dir, device)?;
    let get = |k: &str| {
        meta.get(k).ok_or_else(|| {
            crate::error::user(format!(
                "{}: metadata lacks {k} (a damaged checkpoint); delete the run folder or run without --resume",
                run_dir.join(CKPT).display()
            ))
        })
    };
    params.lr_mult = serde_json::from_str(get("lr_mult")?)?;
    sampler.set_state(&serde_json::from_str(get("sampler")?)?);
    let step: usize = get("iteration")?.parse()?;
    let Optim::Adam {
        beta1, beta2, eps, ..
    } = spec.optim;
    let mut adam = Adam::new(&params, beta1, beta2, eps);
    adam.t = get("adam_t")?.parse()?;
    let (teach, opt): (Vec<_>, Vec<_>) = opt
        .into_iter()
        .partition(|t| t.name.starts_with("teacher."));
    let teacher = (!teach.is_empty()).then(|| {
        Params::from_host(
            teach
                .iter()
                .map(|t| t.name["teacher.".len()..].to_string())
                .collect(),
            teach.iter().map(|t| t.shape.clone()).collect(),
            teach.into_iter().map(|t| t.data).collect(),
            device,
        )
    });
    let by: HashMap<_, _> = opt.into_iter().map(|t| (t.name.clone(), t)).collect();
    let moment = |k: String| {
        by.get(&k).map(|t| host_tensor(&t.data, device)).ok_or_else(|| {
            crate::error::user(format!(
                "{}: lacks {k} (a damaged checkpoint, or one of another spec); delete the run folder or run without --resume",
                run_dir.join(CKPT).display()
            ))
        })
    };
    for (i, n) in params.names.iter().enumerate() {
        adam.m[i] = moment(format!("adam.m.{n}"))?;
        adam.v[i] = moment(format!("adam.v.{n}"))?;
    }
    let plan = restore_plan(spec, model, &params);
    let rows = rows.into_iter().filter(|r| r.step <= step).collect();
    Ok(State {
        params,
        adam,
        plan,
        step,
        rows,
        offsets: vec![],
        teacher,
    })
}

/// The active plan of a checkpointed run: offsets are on where their parameters exist.
pub fn restore_plan<B: Backend>(spec: &Spec, model: &Model, params: &Params<B>) -> QuantPlan {
    let mut plan = QuantPlan::from_spec(&spec.quant, model);
    for (name, l) in &mut plan.layers {
        let (sn, hn) = offset_names(name);
        l.scale = params.has(&sn);
        l.shift = params.has(&hn);
    }
    plan.set_active(true);
    plan
}
