//! Activation statistics of the quantized layers' inputs on a fixed set of benchmark images, for
//! the distribution figures: the per-channel ranges and per-image histograms of ODM's Figure 1
//! (Hong & Lee, "Overcoming Distribution Mismatch in Quantizing Image Super-Resolution
//! Networks") and the channel spreads M_σ = std_c(σ_c)/mean_c(σ_c), M_μ = std_c(μ_c)/mean_c(σ_c)
//! of its Figure 3. Written to `activations.json` at the end of `odm run` and by `odm inspect`;
//! `odm report` only reads it.
//!
//! An FP model has no quantizers, so its statistics are taken at the inputs of the layers the
//! quantization papers quantize (the body convolutions): the same placement as the QAT runs.
//! A quantized model's statistics are taken where its activation quantizer reads them (after the
//! distribution offsets, before the clip), with the quantizer's learned bounds beside them.

use crate::data::ImageSet;
use crate::models::{Model, Params};
use crate::quant::calib::percentile;
use crate::quant::offsets::ChannelStats;
use crate::quant::{bound_names, QuantPlan};
use crate::spec::{QuantOpts, QuantSpec};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Images inspected: the first `IMAGES` of the first evaluation set, in its sorted order.
pub const IMAGES: usize = 5;
/// Histogram bins per image and layer.
pub const BINS: usize = 64;

/// One channel's range over all inspected pixels.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ChannelRange {
    pub min: f64,
    pub p01: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
}

/// One layer's input statistics.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LayerStats {
    pub layer: String,
    pub channels: Vec<ChannelRange>,
    pub m_sigma: f64,
    pub m_mu: f64,
    /// The activation quantizer's clip range [l, u] (channel 0 for per-channel bounds), if any.
    pub bounds: Option<(f64, f64)>,
    /// Histogram range, shared by all images of the layer: [min, max] over everything.
    pub hist_lo: f64,
    pub hist_hi: f64,
    /// Per image (in `images` order): `BINS` counts over [hist_lo, hist_hi].
    pub hist: Vec<Vec<u64>>,
}

/// Everything `activations.json` holds.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ActStats {
    pub set: String,
    pub images: Vec<String>,
    pub quantized: bool,
    pub layers: Vec<LayerStats>,
}

/// The plan the statistics are taken under: the run's own, or for an FP run the papers'
/// placement (body convolutions), inactive.
fn probe_plan(model: &Model, plan: &QuantPlan) -> QuantPlan {
    if !plan.is_fp() {
        return plan.clone();
    }
    let opts: QuantOpts = ron::from_str("(w_bits: 4, a_bits: 4)").expect("default options");
    let mut p = QuantPlan::from_spec(&QuantSpec::MinMax(opts), model);
    p.set_active(false);
    p
}

fn bounds<B: Backend>(p: &Params<B>, plan: &QuantPlan, layer: &str) -> Option<(f64, f64)> {
    let l = plan.layer(layer).filter(|l| l.active && l.has_act())?;
    // DAQ's range is per input: no learned clip range to report.
    if let crate::quant::QForm::Daq { .. } = l.form {
        return None;
    }
    let (lo_n, hi_n) = bound_names(layer);
    let first = |n: &str| -> f64 {
        let t: Tensor<B, 1> = p.get(n);
        t.to_data().convert::<f64>().to_vec::<f64>().expect("f64")[0]
    };
    let hi = first(&hi_n);
    let lo = if l.form.symmetric() {
        -hi
    } else {
        first(&lo_n)
    };
    Some((lo, hi))
}

/// Capture every probed layer's input for one LR image: (layer, NCHW host data, dims).
fn capture_image<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    lr: &crate::data::RgbImage,
    device: &B::Device,
) -> Vec<(String, Vec<f32>, [usize; 4])> {
    let x = super::lr_tensor::<B>(model, lr, device);
    crate::forward::planned_inputs(model, params, plan, x, false)
        .into_iter()
        .map(|(name, t)| {
            let d = t.dims();
            let v = t.to_data().convert::<f32>().to_vec::<f32>().expect("f32");
            (name, v, d)
        })
        .collect()
}

/// Per-channel values of an NCHW (N = 1) buffer.
fn channel(v: &[f32], [_, c, h, w]: [usize; 4], ch: usize) -> &[f32] {
    debug_assert!(ch < c);
    &v[ch * h * w..(ch + 1) * h * w]
}

/// Statistics of the quantized layers' inputs on the first `IMAGES` images of `set`.
pub fn inspect<B: Backend>(
    model: &Model,
    params: &Params<B>,
    plan: &QuantPlan,
    set: &ImageSet,
    device: &B::Device,
) -> ActStats {
    let probe = probe_plan(model, plan);
    let pairs: Vec<_> = set.pairs.iter().take(IMAGES).collect();
    let caps: Vec<_> = pairs
        .iter()
        .map(|p| capture_image(model, params, &probe, &p.lr, device))
        .collect();
    let names: Vec<String> = caps
        .first()
        .map(|c| c.iter().map(|(n, _, _)| n.clone()).collect())
        .unwrap_or_default();
    let layers = names
        .iter()
        .enumerate()
        .map(|(li, name)| {
            let per_img: Vec<(&[f32], [usize; 4])> =
                caps.iter().map(|c| (&c[li].1[..], c[li].2)).collect();
            layer_stats(name, &per_img, bounds(params, &probe, name))
        })
        .collect();
    ActStats {
        set: set.name.clone(),
        images: pairs.iter().map(|p| p.name.clone()).collect(),
        quantized: !plan.is_fp(),
        layers,
    }
}

/// One layer's statistics from its per-image inputs (each N = 1, NCHW).
pub fn layer_stats(
    name: &str,
    per_img: &[(&[f32], [usize; 4])],
    bounds: Option<(f64, f64)>,
) -> LayerStats {
    let c = per_img.first().map(|(_, d)| d[1]).unwrap_or(0);
    let mut cs = ChannelStats::default();
    for (v, d) in per_img {
        cs.add(v, *d);
    }
    let (mu, sd) = cs.mean_std();
    let channels: Vec<ChannelRange> = (0..c)
        .map(|ch| {
            let mut all: Vec<f32> = per_img
                .iter()
                .flat_map(|(v, d)| channel(v, *d, ch).iter().copied())
                .collect();
            let min = all.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let max = all.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            ChannelRange {
                min,
                p01: percentile(&mut all, 1.0),
                p99: percentile(&mut all, 99.0),
                max,
                mean: mu[ch],
                std: sd[ch],
            }
        })
        .collect();
    let (m_sigma, m_mu) = crate::quant::offsets::spreads(&mu, &sd);
    let lo = channels.iter().map(|r| r.min).fold(f64::INFINITY, f64::min);
    let hi = channels
        .iter()
        .map(|r| r.max)
        .fold(f64::NEG_INFINITY, f64::max);
    let width = (hi - lo).max(1e-12);
    let hist = per_img
        .iter()
        .map(|(v, _)| {
            let mut h = vec![0u64; BINS];
            for &x in v.iter() {
                let b = (((x as f64 - lo) / width) * BINS as f64) as usize;
                h[b.min(BINS - 1)] += 1;
            }
            h
        })
        .collect();
    LayerStats {
        layer: name.to_string(),
        channels,
        m_sigma,
        m_mu,
        bounds,
        hist_lo: lo,
        hist_hi: hi,
        hist,
    }
}
