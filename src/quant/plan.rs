//! Placement: which convolutions are quantized, at how many bits, in which form.

use crate::spec::QuantSpec;
use serde::Serialize;

/// Activation quantizer form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ActForm {
    /// [−α, α] with one learned α (PAMS).
    Symmetric,
    /// [l, u], both learned.
    Asymmetric,
}

/// How one layer is quantized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerQuant {
    pub w_bits: u32,
    pub a_bits: u32,
    pub act: ActForm,
    pub per_channel: bool,
    /// Input channels (the size of a per-channel activation bound).
    pub channels: usize,
    /// Weight-clipping correction percentile (u_w = P(|W|)·γ), or `None` for max|W|.
    pub wcc: Option<f64>,
    /// A learned channel-wise scale before the quantizer (selected from M_σ).
    pub scale: bool,
    /// A learned channel-wise shift before the quantizer (selected from M_μ).
    pub shift: bool,
    /// False while calibrating (FP forward, inputs captured); true during QAT and evaluation.
    #[serde(skip)]
    pub active: bool,
}

/// The per-layer map, in forward order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantPlan {
    pub layers: Vec<(String, LayerQuant)>,
}

impl QuantPlan {
    /// Nothing quantized.
    pub fn fp() -> Self {
        Self::default()
    }

    /// The plan of `spec` for `model`: the model's quantizable body at the spec's bits, plus
    /// head and tail at 8 bits when `head_tail_8bit` is set. Inactive until calibrated.
    pub fn from_spec(spec: &QuantSpec, model: &crate::models::Model) -> Self {
        let Some((opts, form)) = spec.opts_form() else {
            return Self::fp();
        };
        let body = model.quant_layers();
        let convs = model.convs();
        let first = convs.first().map(|c| c.name.clone());
        let last = convs.last().map(|c| c.name.clone());
        let mut layers = Vec::new();
        for c in &convs {
            let in_body = body.contains(&c.name);
            let edge = opts.head_tail_8bit
                && (Some(&c.name) == first.as_ref() || Some(&c.name) == last.as_ref());
            if in_body || edge {
                let (w, a) = if in_body {
                    (opts.w_bits, opts.a_bits)
                } else {
                    (8, 8)
                };
                layers.push((
                    c.name.clone(),
                    LayerQuant {
                        w_bits: w,
                        a_bits: a,
                        act: form,
                        per_channel: opts.per_channel,
                        channels: c.cin,
                        wcc: match &opts.weight_clip {
                            crate::spec::WeightClip::MaxAbs => None,
                            crate::spec::WeightClip::Wcc { percentile } => Some(*percentile),
                        },
                        scale: false,
                        shift: false,
                        active: false,
                    },
                ));
            }
        }
        Self { layers }
    }

    /// The layer's quantizer, if planned.
    pub fn layer(&self, name: &str) -> Option<&LayerQuant> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, l)| l)
    }

    /// Switch every planned quantizer on or off.
    pub fn set_active(&mut self, on: bool) {
        for (_, l) in &mut self.layers {
            l.active = on;
        }
    }

    /// True when nothing is quantized.
    pub fn is_fp(&self) -> bool {
        self.layers.is_empty()
    }

    /// The printed per-layer map: one line per convolution of the model.
    pub fn table(&self, model: &crate::models::Model) -> String {
        let mut s = String::from(
            "layer                     W bits  A bits  activation   granularity  weights  offsets\n",
        );
        for c in model.convs() {
            match self.layer(&c.name) {
                Some(l) => s.push_str(&format!(
                    "{:<25} {:>6}  {:>6}  {:<11}  {:<11}  {:<7}  {}\n",
                    c.name,
                    l.w_bits,
                    l.a_bits,
                    format!("{:?}", l.act),
                    if l.per_channel {
                        "per-channel"
                    } else {
                        "per-layer"
                    },
                    if l.wcc.is_some() { "WCC" } else { "max|W|" },
                    match (l.scale, l.shift) {
                        (true, true) => "scale+shift",
                        (true, false) => "scale",
                        (false, true) => "shift",
                        _ => "-",
                    }
                )),
                None => s.push_str(&format!("{:<25} {:>6}  {:>6}  FP\n", c.name, 32, 32)),
            }
        }
        s.push_str(&format!("{} quantized convolutions\n", self.layers.len()));
        s
    }

    /// JSON form of the map, saved as `quant_map.json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!(self
            .layers
            .iter()
            .map(|(n, l)| serde_json::json!({"layer": n, "quant": l}))
            .collect::<Vec<_>>())
    }
}
