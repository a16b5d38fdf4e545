//! Activation-range calibration before QAT: FP batches through full forward passes give every
//! quantization point its initial bounds (the preset's range initialisation), the per-channel
//! statistics that choose ODM's offsets (M_σ, M_μ), and the learned weight bounds and WCC γ.

use crate::data::Sampler;
use crate::models::params::host_tensor;
use crate::models::{Model, Params};
use crate::quant::calib::RangeAcc;
use crate::quant::ddtb::{push_gates, Ranking};
use crate::quant::offsets::{choose, spreads, ChannelStats, OffsetRow};
use crate::quant::{
    bound_names, offset_names, wcc_name, weight_bound_name, QForm, QuantPlan, WeightQ,
};
use crate::spec::Spec;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

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
    if let QForm::Daq { .. } = form {
        // DAQ's activation statistics are per input: nothing to calibrate or learn.
        plan.set_active(true);
        return Vec::new();
    }
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
    let mut rank = Ranking::default();
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
            rank.add(k, &data);
        }
    }
    let rows = offset_rows(spec, plan, &acts, &chan);
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
    choose_gates(spec, plan, &acts, &rank, params, device);
    plan.set_active(true);
    rows
}

/// DDTB: mark the points its ranking gates and append their gates' parameters.
fn choose_gates<B: Backend>(
    spec: &Spec,
    plan: &mut QuantPlan,
    acts: &[usize],
    rank: &Ranking,
    params: &mut Params<B>,
    device: &B::Device,
) {
    let Some((ratio, _)) = spec.quant.dynamic(&spec.model, spec.schedule.iterations) else {
        return;
    };
    for (&i, on) in acts.iter().zip(rank.select(ratio)) {
        plan.layers[i].1.dynamic = on;
    }
    push_gates(params, plan, spec.seed, device);
}

/// M_σ and M_μ of every calibrated point (its channels' statistics) and the offsets the spec's
/// policy chooses from them.
fn offset_rows(
    spec: &Spec,
    plan: &QuantPlan,
    acts: &[usize],
    chan: &[ChannelStats],
) -> Vec<OffsetRow> {
    let stats: Vec<(String, f64, f64)> = acts
        .iter()
        .zip(chan)
        .map(|(&i, c)| {
            let (mu, sd) = c.mean_std();
            let (ms, mm) = spreads(&mu, &sd);
            (plan.layers[i].0.clone(), ms, mm)
        })
        .collect();
    choose(&spec.offsets, &stats)
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
            WeightQ::MaxAbs | WeightQ::Percentile { .. } | WeightQ::Daq => {}
        }
    }
}
