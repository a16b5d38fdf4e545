//! Placement: which weights and which activations are quantized, at how many bits, in which form.
//!
//! A plan is a list of quantization points in forward order. A point is named after a
//! convolution (its weights and/or its input activation) or after a tensor inside a block that
//! is not a conv input (PAMS/DDTB's residual shortcut `body.{i}.skip` and block output
//! `body.{i}.res`). 32 bits means "not quantized" on that side, as in the sources' `k_bits = 32`.

pub use crate::models::QPoint;
use crate::spec::{BoundGrad, QuantSpec, RangeInit};
pub use crate::spec::{Placement, QForm, WeightQ};
use serde::Serialize;

/// How one point is quantized.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerQuant {
    /// Weight bits; 32 when the weights stay FP (or the point is not a conv).
    pub w_bits: u32,
    /// Activation bits; 32 when there is no activation quantizer here.
    pub a_bits: u32,
    /// The quantizer function of activations and weights.
    pub form: QForm,
    pub weights: WeightQ,
    pub bound_grad: BoundGrad,
    pub per_channel: bool,
    /// Channels of the activation (the size of a per-channel activation bound).
    pub channels: usize,
    /// A learned channel-wise scale before the quantizer (selected from M_σ).
    pub scale: bool,
    /// A learned channel-wise shift before the quantizer (selected from M_μ).
    pub shift: bool,
    /// DDTB: this point's bounds are rescaled per input by a gate (`quant::ddtb`), chosen at
    /// calibration. Left out of `quant_map.json` when false.
    #[serde(skip_serializing_if = "is_false")]
    pub dynamic: bool,
    /// False while calibrating (FP forward, inputs captured); true during QAT and evaluation.
    #[serde(skip)]
    pub active: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl LayerQuant {
    /// True when this point quantizes an activation.
    pub fn has_act(&self) -> bool {
        self.a_bits < 32
    }

    /// True when this point quantizes conv weights.
    pub fn has_weight(&self) -> bool {
        self.w_bits < 32
    }
}

/// The per-point map, in forward order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuantPlan {
    pub layers: Vec<(String, LayerQuant)>,
    /// DDTB's stage: the gated points use their per-input bounds (true), or their static bounds
    /// while the gate's logits are pulled to 0 (false; DDTB's epochs before
    /// `first_stage_epoch`).
    pub gates_live: bool,
}

impl QuantPlan {
    /// Nothing quantized.
    pub fn fp() -> Self {
        Self::default()
    }

    /// The plan of `spec` for `model`: see [`Self::for_layers`].
    pub fn from_spec(spec: &QuantSpec, model: &crate::models::Model) -> Self {
        let rdn = matches!(model.arch, crate::models::Arch::Rdn(_));
        Self::for_layers(spec, model.layers(), rdn)
    }

    /// The plan of `spec` for a backbone's declared `layers`: its points for the preset's
    /// placement at the spec's bits, plus head and tail (weights and input) at 8 bits when
    /// `head_tail_8bit` is set. `rdn`: DDTB's RDN code takes the full weight range (percentiles
    /// 0/100) where its other backbones clip at 1/99. Inactive until calibrated.
    pub fn for_layers(spec: &QuantSpec, model: &crate::models::Layers, rdn: bool) -> Self {
        let Some((opts, form)) = spec.opts_form() else {
            return Self::fp();
        };
        let entry = |w: u32, a: u32, channels: usize| LayerQuant {
            w_bits: w,
            a_bits: a,
            form,
            weights: spec.weight_range(rdn),
            bound_grad: opts.bound_grad,
            per_channel: opts.per_channel,
            channels,
            scale: false,
            shift: false,
            dynamic: false,
            active: false,
        };
        let convs = &model.convs;
        let mut layers = Vec::new();
        let edge = |name: &str| {
            opts.head_tail_8bit
                && (convs.first().is_some_and(|c| c.name == name)
                    || convs.last().is_some_and(|c| c.name == name))
        };
        if let Some(c) = convs.first().filter(|c| edge(&c.name)) {
            layers.push((c.name.clone(), entry(8, 8, c.cin)));
        }
        for p in model.quant_points(spec.placement()) {
            let w = if p.weight { opts.w_bits } else { 32 };
            let a = if p.act { opts.a_bits } else { 32 };
            layers.push((p.name, entry(w, a, p.channels)));
        }
        if let Some(c) = convs.last().filter(|c| edge(&c.name) && convs.len() > 1) {
            layers.push((c.name.clone(), entry(8, 8, c.cin)));
        }
        Self {
            layers,
            gates_live: false,
        }
    }

    /// The point's quantizer, if planned.
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

    /// Activation quantizers planned.
    pub fn act_count(&self) -> usize {
        self.layers.iter().filter(|(_, l)| l.has_act()).count()
    }

    /// Convolutions with quantized weights planned.
    pub fn weight_count(&self) -> usize {
        self.layers.iter().filter(|(_, l)| l.has_weight()).count()
    }

    /// The printed map: one line per convolution of the model and per activation point that is
    /// not a conv input, in forward order, then the preset, its range initialisation and counts.
    pub fn table(&self, model: &crate::models::Model, spec: &QuantSpec) -> String {
        let mut s = String::from(
            "point                     W bits  A bits  form       granularity  weights          offsets\n",
        );
        let convs = model.convs();
        let row = |s: &mut String, name: &str, l: &LayerQuant| {
            let bits = |b: u32| if b < 32 { b.to_string() } else { "FP".into() };
            s.push_str(&format!(
                "{:<25} {:>6}  {:>6}  {:<9}  {:<11}  {:<15}  {}\n",
                name,
                bits(l.w_bits),
                bits(l.a_bits),
                match l.form {
                    QForm::Daq { sigma_bits, strict } => {
                        format!("Daq σ{sigma_bits}{}", if strict { " strict" } else { "" })
                    }
                    f if l.dynamic => format!("{f:?}+gate"),
                    f => format!("{f:?}"),
                },
                if l.per_channel {
                    "per-channel"
                } else {
                    "per-layer"
                },
                if l.has_weight() {
                    weight_label(&l.weights)
                } else {
                    "-".into()
                },
                match (l.scale, l.shift) {
                    (true, true) => "scale+shift",
                    (true, false) => "scale",
                    (false, true) => "shift",
                    _ => "-",
                }
            ))
        };
        // Points that are not conv inputs print right after the conv that precedes them in the
        // plan (or before the first planned conv).
        let pos = |n: &str| convs.iter().position(|c| c.name == n);
        let first = self.layers.iter().find_map(|(n, _)| pos(n)).unwrap_or(0);
        let mut after: Vec<Vec<(&String, &LayerQuant)>> = vec![Vec::new(); convs.len() + 1];
        let mut anchor = first; // slot k holds points printed before convs[k]
        for (n, l) in &self.layers {
            match pos(n) {
                Some(i) => anchor = i + 1,
                None => after[anchor].push((n, l)),
            }
        }
        for (k, c) in convs.iter().enumerate() {
            for (n, l) in &after[k] {
                row(&mut s, n, l);
            }
            match self.layer(&c.name) {
                Some(l) => row(&mut s, &c.name, l),
                None => s.push_str(&format!("{:<25} {:>6}  {:>6}  FP\n", c.name, "FP", "FP")),
            }
        }
        for (n, l) in &after[convs.len()] {
            row(&mut s, n, l);
        }
        let gated = self.layers.iter().filter(|(_, l)| l.dynamic).count();
        if gated > 0 {
            s.push_str(&format!("{gated} activation points gated (DDTB)\n"));
        }
        s.push_str(&format!(
            "preset {} ({:?} placement), range init {}\n{} quantized activations, {} quantized weight tensors\n",
            spec.label(),
            spec.placement(),
            match spec.preset().form {
                QForm::Daq { .. } => "none (statistics of each input)".into(),
                _ => init_label(&spec.range_init(&model.spec())),
            },
            self.act_count(),
            self.weight_count()
        ));
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

fn weight_label(w: &WeightQ) -> String {
    match w {
        WeightQ::MaxAbs => "max|W|".into(),
        WeightQ::Percentile { low, high } => format!("P{low}/P{high}(W)"),
        WeightQ::Learned => "learned u_w".into(),
        WeightQ::Wcc { percentile } => format!("WCC P{percentile}·γ"),
        WeightQ::Daq => "g(b)·std(W)".into(),
    }
}

fn init_label(r: &RangeInit) -> String {
    match r {
        RangeInit::MinMax => "min-max".into(),
        RangeInit::Percentile {
            low,
            high,
            first_batch,
        } => format!(
            "P{low}/P{high} ({})",
            if *first_batch {
                "first batch"
            } else {
                "averaged over batches"
            }
        ),
        RangeInit::EmaMax { decay } => format!("EMA({decay}) of per-image max|x|"),
        RangeInit::ImageMax => "last batch's mean per-image max|x|".into(),
        RangeInit::Ema { low, high, beta } => format!("EMA({beta}) of per-batch P{low}/P{high}"),
    }
}
