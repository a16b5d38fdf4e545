//! Per-layer diagnostics of every QAT run (issue 27, part 4), on a fixed probe batch at every
//! log step, written to `diagnostics.csv` (one row per step × active activation point), and a
//! histogram of one layer's input against its grid at the end (`histogram.json`, the data of
//! ODM's Fig. 5).
//!
//! The probe: [`PROBE_PATCHES`] training patches drawn once from the spec seed's
//! [`PROBE_STREAM`] (the sampler's own stream is never touched, so a run's bits do not change),
//! run in evaluation mode (BatchNorm on running statistics, no parameter or RNG moves).
//!
//! Per point, with X the quantizer input (after offsets), q(X) the quantizer output the forward
//! used and [l, u] the range the quantizer clips X to (per image and channel for DAQ, per image
//! for DDTB's gated bounds, per channel or per layer otherwise), C the set of elements outside
//! [l, u]:
//! - `mismatch` = ‖X − q(X)‖₂ over the probe (ODM's L_M term of the layer);
//! - `clip_err` = ‖(X − q(X))·1_C‖₂ and `round_err` = ‖(X − q(X))·1_{not C}‖₂: the overload
//!   and granular parts of the quantization error (Gray & Neuhoff, "Quantization", IEEE Trans.
//!   Inf. Theory 44(6), 1998, §V: distortion split over the quantizer's overload and granular
//!   regions). The supports are disjoint, so mismatch² = clip_err² + round_err² exactly;
//! - `variance`: the mean over images and channels of the population variance of X over H×W
//!   (the statistic of ODM v1's per-channel variance regularizer);
//! - `clip_frac` = |C| / |X|;
//! - `dead_frac`: where the point's input before offsets is non-negative with an exact zero (a
//!   ReLU's output), the fraction of channels that are 0 on every probe pixel; empty elsewhere;
//! - `lo`, `hi`: the learned static bounds (the mean over channels when per channel; α_l, α_u of
//!   a DDTB gate); empty for DAQ, which has none;
//! - `wcc_gamma`: WCC's γ of the layer (the mean when per channel), where present.

use crate::data::Sampler;
use crate::error::user;
use crate::forward::{planned_inputs, Capture, Fwd, PointIo};
use crate::models::params::host_values;
use crate::models::{Model, Params};
use crate::quant::{act_bounds, daq, wcc_name, LayerQuant, QForm, QuantPlan, Quantizer};
use crate::record::atomic_write;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::path::Path;

/// RNG stream of the probe batch (weights use 1, the sampler 2, DDTB's gates 3).
pub const PROBE_STREAM: u64 = 4;
/// Patches in the probe batch.
pub const PROBE_PATCHES: usize = 2;
/// The per-step file in the run folder.
pub const FILE: &str = "diagnostics.csv";
/// The end-of-run histogram in the run folder.
pub const HIST_FILE: &str = "histogram.json";
/// Equal-width bins of a histogram.
pub const BINS: usize = 128;
const HEADER: &str =
    "step,layer,mismatch,clip_err,round_err,variance,clip_frac,dead_frac,lo,hi,wcc_gamma";

/// One point's statistics on the probe (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PointStats {
    pub mismatch: f64,
    pub clip_err: f64,
    pub round_err: f64,
    pub variance: f64,
    pub clip_frac: f64,
    pub dead_frac: Option<f64>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub wcc_gamma: Option<f64>,
}

/// One row of `diagnostics.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub step: usize,
    pub layer: String,
    pub stats: PointStats,
}

/// The statistics that need only values: `raw` (the input before offsets), `x` (the quantizer
/// input) and `q` (its output), N×C×H×W row-major as `dims`; `lo`, `hi` the clip range per image
/// and channel (N·C values, ±∞ where unclipped). Sums in f64, in element order.
pub fn point_stats(
    dims: [usize; 4],
    raw: &[f32],
    x: &[f32],
    q: &[f32],
    lo: &[f32],
    hi: &[f32],
) -> PointStats {
    let [n, c, h, w] = dims;
    let hw = h * w;
    let (mut clip2, mut round2, mut clipped, mut var_sum) = (0f64, 0f64, 0usize, 0f64);
    for nc in 0..n * c {
        let r = nc * hw..(nc + 1) * hw;
        let (xs, qs) = (&x[r.clone()], &q[r]);
        let (l, u) = (lo[nc], hi[nc]);
        for (&xv, &qv) in xs.iter().zip(qs) {
            let e = (xv as f64 - qv as f64).powi(2);
            if xv < l || xv > u {
                clip2 += e;
                clipped += 1;
            } else {
                round2 += e;
            }
        }
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / hw as f64;
        var_sum += xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / hw as f64;
    }
    PointStats {
        mismatch: (clip2 + round2).sqrt(),
        clip_err: clip2.sqrt(),
        round_err: round2.sqrt(),
        variance: var_sum / (n * c) as f64,
        clip_frac: clipped as f64 / x.len() as f64,
        dead_frac: dead_fraction(dims, raw),
        ..Default::default()
    }
}

/// The fraction of channels that are 0 on every pixel of every image, when `raw` is
/// non-negative with at least one exact zero (a ReLU's output); `None` otherwise.
pub fn dead_fraction(dims: [usize; 4], raw: &[f32]) -> Option<f64> {
    let [n, c, h, w] = dims;
    let relu = raw.iter().all(|&v| v >= 0.0) && raw.contains(&0.0);
    if !relu {
        return None;
    }
    let hw = h * w;
    let dead = (0..c)
        .filter(|&ch| (0..n).all(|i| raw[(i * c + ch) * hw..][..hw].iter().all(|&v| v == 0.0)))
        .count();
    Some(dead as f64 / c as f64)
}

/// `v` (one value, or one per channel) repeated to one value per image and channel.
fn per_image_channel(v: &[f32], n: usize, c: usize) -> Vec<f32> {
    (0..n * c)
        .map(|i| if v.len() == 1 { v[0] } else { v[i % c] })
        .collect()
}

/// The mean of a tensor's values.
fn mean_of<B: Backend, const D: usize>(t: Tensor<B, D>) -> f64 {
    let v = host_values(t);
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

/// The clip range of point `pt` per image and channel (N·C values each) and its static bounds.
fn clip_range<B: Backend>(
    p: &Params<B>,
    lq: &LayerQuant,
    pt: &PointIo<B>,
) -> (Vec<f32>, Vec<f32>, Option<(f64, f64)>) {
    let [n, c, _, _] = pt.input.dims();
    if let QForm::Daq { sigma_bits, strict } = lq.form {
        let (lo, hi) = daq::clip_range(&pt.input, lq.a_bits, sigma_bits, strict);
        return (host_values(lo), host_values(hi), None);
    }
    let (lo, hi) = act_bounds(p, &pt.name, lq);
    let bounds = Some((mean_of(lo.clone()), mean_of(hi.clone())));
    if let Some(logits) = &pt.logits {
        // DDTB's gated bounds: u_n = 2σ(c_n0)·α_u, l_n = 2σ(c_n1)·α_l (`quant::ddtb`).
        let g = burn::tensor::activation::sigmoid(logits.clone()).mul_scalar(2.0);
        let gu = g.clone().slice([0..n, 0..1]).reshape([n]);
        let gl = g.slice([0..n, 1..2]).reshape([n]);
        let lo = host_values(gl * lo.expand([n]));
        let hi = host_values(gu * hi.expand([n]));
        let rep = |v: Vec<f32>| (0..n * c).map(|i| v[i / c]).collect::<Vec<f32>>();
        return (rep(lo), rep(hi), bounds);
    }
    let (lo, hi) = (host_values(lo), host_values(hi));
    (
        per_image_channel(&lo, n, c),
        per_image_channel(&hi, n, c),
        bounds,
    )
}

/// Statistics of every recorded point.
fn measure_points<B: Backend>(
    p: &Params<B>,
    plan: &QuantPlan,
    points: Vec<PointIo<B>>,
) -> Vec<(String, PointStats)> {
    points
        .into_iter()
        .map(|pt| {
            let lq = plan.layer(&pt.name).expect("recorded points are planned");
            let dims = pt.input.dims();
            let (lo, hi, bounds) = clip_range(p, lq, &pt);
            let raw = host_values(pt.raw.clone());
            let x = host_values(pt.input.clone());
            let q = host_values(pt.output.clone());
            let mut s = point_stats(dims, &raw, &x, &q, &lo, &hi);
            (s.lo, s.hi) = (bounds.map(|b| b.0), bounds.map(|b| b.1));
            let g = wcc_name(&pt.name);
            s.wcc_gamma = p.has(&g).then(|| mean_of(p.get::<1>(&g)));
            (pt.name, s)
        })
        .collect()
}

/// The fixed probe batch of a QAT run and the layer whose input the histogram shows.
pub struct Probe {
    lr: TensorData,
    /// The middle active activation point in forward order.
    pub layer: String,
}

impl Probe {
    /// The probe of a run whose training patches `sampler` draws; `None` for an FP plan.
    pub fn new(plan: &QuantPlan, sampler: &Sampler) -> Option<Self> {
        let acts: Vec<&String> = plan
            .layers
            .iter()
            .filter(|(_, l)| l.has_act())
            .map(|(n, _)| n)
            .collect();
        let layer = acts.get(acts.len() / 2)?.to_string();
        let b = sampler.fork(PROBE_STREAM, PROBE_PATCHES).next_batch();
        let lr = TensorData::new(b.lr, [b.n, 3, b.lr_side, b.lr_side]);
        Some(Self { lr, layer })
    }

    fn input<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        Tensor::from_data(self.lr.clone(), device)
    }

    /// The recorded points of one evaluation-mode forward of the quantized model.
    fn points<B: Backend>(
        &self,
        model: &Model,
        p: &Params<B>,
        plan: &QuantPlan,
        device: &B::Device,
    ) -> Vec<PointIo<B>> {
        let cap = RefCell::new(Capture::<B> {
            record_points: true,
            ..Default::default()
        });
        let f = Fwd {
            p,
            plan,
            capture: Some(&cap),
            train: false,
            body_only: false,
        };
        let _ = model.forward(&f, self.input(device));
        cap.into_inner().points
    }

    /// The rows of step `step`: every active activation point's statistics on the probe.
    pub fn measure<B: Backend>(
        &self,
        model: &Model,
        p: &Params<B>,
        plan: &QuantPlan,
        step: usize,
        device: &B::Device,
    ) -> Vec<Row> {
        let points = self.points(model, p, plan, device);
        measure_points(p, plan, points)
            .into_iter()
            .map(|(layer, stats)| Row { step, layer, stats })
            .collect()
    }

    /// The FP model's input at the histogram's layer (a fresh run's weights before QAT):
    /// written to `histogram.json` as its `fp` part.
    pub fn write_fp<B: Backend>(
        &self,
        model: &Model,
        p: &Params<B>,
        plan: &QuantPlan,
        run_dir: &Path,
        device: &B::Device,
    ) -> anyhow::Result<()> {
        let mut fp = plan.clone();
        fp.set_active(false);
        let x = planned_inputs(model, p, &fp, self.input(device), false)
            .into_iter()
            .find(|(n, _)| *n == self.layer)
            .map(|(_, x)| host_values(x))
            .expect("the histogram's layer is planned");
        let h = LayerHistogram {
            layer: self.layer.clone(),
            step: 0,
            fp: Some(Hist::of(&x)),
            qat: None,
            lo: None,
            hi: None,
            levels: Vec::new(),
        };
        write_json(run_dir, &h)
    }

    /// At the end of training: the quantized model's input at the histogram's layer, its bounds
    /// and grid levels, beside the `fp` part written at the start (absent when the run began
    /// before this file existed).
    pub fn write_final<B: Backend>(
        &self,
        model: &Model,
        p: &Params<B>,
        plan: &QuantPlan,
        (run_dir, step): (&Path, usize),
        device: &B::Device,
    ) -> anyhow::Result<()> {
        let pt = self
            .points(model, p, plan, device)
            .into_iter()
            .find(|pt| pt.name == self.layer)
            .expect("the histogram's layer is active");
        let lq = plan.layer(&self.layer).expect("planned");
        let (_, _, bounds) = clip_range(p, lq, &pt);
        let path = run_dir.join(HIST_FILE);
        let fp = match std::fs::read_to_string(&path) {
            Ok(t) => {
                serde_json::from_str::<LayerHistogram>(&t)
                    .map_err(|e| user(format!("{}: {e}; delete it", path.display())))?
                    .fp
            }
            Err(_) => None,
        };
        let h = LayerHistogram {
            layer: self.layer.clone(),
            step,
            fp,
            qat: Some(Hist::of(&host_values(pt.input.clone()))),
            lo: bounds.map(|b| b.0),
            hi: bounds.map(|b| b.1),
            levels: grid_levels(p, &self.layer, lq, device),
        };
        write_json(run_dir, &h)
    }
}

fn write_json(run_dir: &Path, h: &LayerHistogram) -> anyhow::Result<()> {
    atomic_write(
        &run_dir.join(HIST_FILE),
        serde_json::to_string_pretty(h)?.as_bytes(),
    )
}

/// A histogram: [`BINS`] equal-width bins over [min, max] of the values (the last bin closed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hist {
    pub min: f64,
    pub max: f64,
    pub counts: Vec<u64>,
}

impl Hist {
    /// The histogram of `v` (not empty).
    pub fn of(v: &[f32]) -> Self {
        let min = v.iter().fold(f64::INFINITY, |m, &x| m.min(x as f64));
        let max = v.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
        let mut counts = vec![0u64; BINS];
        let width = (max - min) / BINS as f64;
        for &x in v {
            let i = if width > 0.0 {
                (((x as f64 - min) / width) as usize).min(BINS - 1)
            } else {
                0
            };
            counts[i] += 1;
        }
        Self { min, max, counts }
    }
}

/// `histogram.json`: one layer's input on the probe, for the FP model (`fp`) and the quantized
/// model at the end (`qat`), with the layer's static bounds and its quantizer's grid levels
/// (empty for DAQ and for per-channel bounds, whose grids differ per input or channel).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerHistogram {
    pub layer: String,
    pub step: usize,
    pub fp: Option<Hist>,
    pub qat: Option<Hist>,
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub levels: Vec<f64>,
}

/// The distinct outputs of a layer-wise static activation quantizer over a dense ramp across
/// [l − (u − l), u + (u − l)]: its grid levels, ascending (64 ramp points per level).
fn grid_levels<B: Backend>(
    p: &Params<B>,
    layer: &str,
    lq: &LayerQuant,
    device: &B::Device,
) -> Vec<f64> {
    if matches!(lq.form, QForm::Daq { .. }) || lq.per_channel {
        return Vec::new();
    }
    let (lo, hi) = act_bounds(p, layer, lq);
    let (l, u) = (mean_of(lo.clone()), mean_of(hi.clone()));
    let m = 64 * (1usize << lq.a_bits.min(12)) + 1;
    let ramp: Vec<f32> = (0..m)
        .map(|i| (l - (u - l) + 3.0 * (u - l) * i as f64 / (m - 1) as f64) as f32)
        .collect();
    let x = Tensor::<B, 4>::from_data(TensorData::new(ramp, [1, 1, 1, m]), device);
    let q = host_values(crate::kernels::fake_quant_channels(
        x,
        lo,
        hi,
        Quantizer::act(lq),
    ));
    let mut levels: Vec<f64> = q.iter().map(|&v| v as f64).collect();
    levels.dedup();
    levels
}

/// Format an optional value (empty when absent).
fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// `diagnostics.csv` of `rows`.
pub fn csv(rows: &[Row]) -> String {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let t = &r.stats;
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.step,
            r.layer,
            t.mismatch,
            t.clip_err,
            t.round_err,
            t.variance,
            t.clip_frac,
            opt(t.dead_frac),
            opt(t.lo),
            opt(t.hi),
            opt(t.wcc_gamma)
        ));
    }
    s
}

/// Parse one line of `diagnostics.csv`.
fn parse_row(line: &str) -> Option<Row> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 11 {
        return None;
    }
    let num = |i: usize| f[i].parse::<f64>().ok();
    let opt = |i: usize| {
        if f[i].is_empty() {
            Some(None)
        } else {
            num(i).map(Some)
        }
    };
    Some(Row {
        step: f[0].parse().ok()?,
        layer: f[1].to_string(),
        stats: PointStats {
            mismatch: num(2)?,
            clip_err: num(3)?,
            round_err: num(4)?,
            variance: num(5)?,
            clip_frac: num(6)?,
            dead_frac: opt(7)?,
            lo: opt(8)?,
            hi: opt(9)?,
            wcc_gamma: opt(10)?,
        },
    })
}

/// The rows of a run folder's `diagnostics.csv` up to iteration `step` (a resumed run keeps
/// them); none when the file is absent (a run begun before it existed).
pub fn read(run_dir: &Path, step: usize) -> anyhow::Result<Vec<Row>> {
    let path = run_dir.join(FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let r = parse_row(line).ok_or_else(|| {
            user(format!(
                "{}:{}: not a diagnostics row (a damaged file): delete it to resume without the rows before iteration {step}",
                path.display(),
                i + 1
            ))
        })?;
        if r.step <= step {
            rows.push(r);
        }
    }
    Ok(rows)
}

/// Write `diagnostics.csv` (nothing when there are no rows: an FP run).
pub fn write(run_dir: &Path, rows: &[Row]) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    atomic_write(&run_dir.join(FILE), csv(rows).as_bytes())
}
