//! Checkpoints that hold everything a bit-identical resume needs: weights, quantizer bounds,
//! BatchNorm buffers, Adam moments and step, iteration, the sampler's RNG position (the metrics
//! so far are in `metrics.csv`); and the quantization plan of a checkpointed run.

use super::adam::Adam;
use super::state::State;
use crate::data::Sampler;
use crate::models::params::host_tensor;
use crate::models::{Model, Params};
use crate::quant::{offset_names, QuantPlan};
use crate::record::{self, MetricRow, NamedTensor};
use crate::spec::{Optim, Spec};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const CKPT: &str = "checkpoint.safetensors";

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
    // A non-finite state never replaces the last good checkpoint.
    if let Some(t) = tensors
        .iter()
        .find(|t| t.data.iter().any(|v| !v.is_finite()))
    {
        anyhow::bail!(
            "training diverged: {} is not finite at iteration {} (lower optim.lr or set schedule.grad_clip); the checkpoint before it is kept",
            t.name,
            st.step
        );
    }
    record::write_safetensors(&run_dir.join(CKPT), &tensors, &meta)
}

/// Check the tensors of a checkpoint (or weights file) `path` against `model`: every declared
/// parameter present, in declaration order at the start (the order forward passes index), with
/// the declared shape; every stored value finite. The error names the file, the first offending
/// tensor and what was expected, on one line.
pub fn check_against(path: &Path, model: &Model, tensors: &[NamedTensor]) -> anyhow::Result<()> {
    let file = path.display();
    let foreign = "a checkpoint of another architecture or spec: name the run folder it belongs to";
    for (i, d) in model.decls().iter().enumerate() {
        let Some(t) = tensors.iter().find(|t| t.name == d.name) else {
            return Err(crate::error::user(format!(
                "{file}: lacks tensor {} of shape {:?} ({foreign})",
                d.name, d.shape
            )));
        };
        if t.shape != d.shape {
            return Err(crate::error::user(format!(
                "{file}: tensor {} has shape {:?}, the spec's model declares {:?} ({foreign})",
                d.name, t.shape, d.shape
            )));
        }
        if tensors.get(i).is_none_or(|u| u.name != d.name) {
            return Err(crate::error::user(format!(
                "{file}: tensor {} is stored out of the model's order ({foreign})",
                d.name
            )));
        }
    }
    if let Some(t) = tensors
        .iter()
        .find(|t| t.data.iter().any(|v| !v.is_finite()))
    {
        let bad = t.data.iter().filter(|v| !v.is_finite()).count();
        return Err(crate::error::user(format!(
            "{file}: tensor {} holds {bad} non-finite value(s) (NaN or infinity): the weights are unusable; use an earlier checkpoint or train again",
            t.name
        )));
    }
    Ok(())
}

/// Parameters, metadata and the other stored tensors (Adam moments, SKT teacher) of a checkpoint.
pub type StoredCheckpoint<B> = (Params<B>, BTreeMap<String, String>, Vec<NamedTensor>);

/// The parameters stored in a checkpoint (everything but the Adam moments and the SKT teacher,
/// which come back as the third element), in stored order.
pub fn checkpoint_params<B: Backend>(
    run_dir: &Path,
    model: &Model,
    device: &B::Device,
) -> anyhow::Result<StoredCheckpoint<B>> {
    let path = run_dir.join(CKPT);
    let (ts, meta) = record::read_safetensors(&path)?;
    check_against(&path, model, &ts)?;
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
    let (mut params, meta, opt) = checkpoint_params::<B>(run_dir, model, device)?;
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
        diag: super::diagnostics::read(run_dir, step)?,
    })
}

/// The active plan of a checkpointed run: offsets are on where their parameters exist, DDTB's
/// gates where theirs do, live (the trainer sets the stage of each step).
pub fn restore_plan<B: Backend>(spec: &Spec, model: &Model, params: &Params<B>) -> QuantPlan {
    let mut plan = QuantPlan::from_spec(&spec.quant, model);
    for (name, l) in &mut plan.layers {
        let (sn, hn) = offset_names(name);
        l.scale = params.has(&sn);
        l.shift = params.has(&hn);
        l.dynamic = params.has(&crate::quant::ddtb::GateNames::of(name).conv2);
    }
    plan.set_active(true);
    plan.gates_live = true;
    plan
}
