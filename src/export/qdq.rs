//! Quantizers as ONNX QuantizeLinear/DequantizeLinear pairs (ONNX operators, opset 13+:
//! y = saturate(round(x/scale) + zero_point), rounding half to even; x' = (y − zero_point)·scale).
//! Each of odm's forms (README, "QAT") maps onto them exactly, up to float rounding of the scale:
//! - rounded zero point (DDTB): clip to [l, u], scale 1/s, zero point −z (int8), s = n/(u − l),
//!   z = round(s·l) + 2^(b−1), since round(s·c − z) + z = round(s·c) for an integer z;
//! - symmetric with a zero level (PAMS): clip to [−α, α], scale α/Q, zero point 0 (int8);
//! - affine (AdaBM/ODM): its grid l + kΔ need not hold 0, so the clipped input is shifted by −l,
//!   quantized with scale Δ = (u − l)/n and zero point 0 (uint8) and shifted back by +l;
//!   weights (l = −u) are the integers 2k − n on scale Δ/2.
//!
//! Weights are stored as integer codes with a DequantizeLinear (per output channel along axis 0
//! when the plan says so), the codes taken from odm's own fake-quantized weights and checked to
//! dequantize back to them.

use super::graph::{attr_i, Graph};
use crate::backend::Cpu;
use crate::models::params::host_values;
use crate::models::Params;
use crate::quant::{act_bounds, fake_quant_weight, weight_range, LayerQuant, QForm};
use burn::tensor::Tensor;

/// Levels n = 2^b − 1.
fn levels(bits: u32) -> f32 {
    ((1u64 << bits) - 1) as f32
}

/// (scale, zero point) per group of one quantizer over the ranges (l, u) in `form`, and whether
/// the codes are signed. Affine activations quantize x − l.
pub fn scales(
    form: QForm,
    bits: u32,
    lo: &[f32],
    hi: &[f32],
    weight: bool,
) -> (Vec<f32>, Vec<i32>) {
    let n = levels(bits);
    lo.iter()
        .zip(hi)
        .map(|(&l, &u)| match form {
            QForm::ZeroPoint => {
                let s = n / (u - l);
                let z = (s * l).round_ties_even() + (1u64 << (bits - 1)) as f32;
                (1.0 / s, -(z as i32))
            }
            QForm::SymZero => (u / ((1u64 << (bits - 1)) - 1) as f32, 0),
            QForm::Affine if weight => ((u - l) / n / 2.0, 0),
            QForm::Affine => ((u - l) / n, 0),
            QForm::Daq { .. } => unreachable!("refused before"),
        })
        .unzip()
}

/// A per-group constant shaped to broadcast over N×C×H×W: a scalar, or 1×C×1×1.
fn bcast(g: &mut Graph, hint: &str, v: &[f32]) -> String {
    if v.len() == 1 {
        g.f32s(hint, &[], v)
    } else {
        g.f32s(hint, &[1, v.len(), 1, 1], v)
    }
}

/// A quantization parameter: a scalar, or a vector along `axis`.
fn qparam_attrs(groups: usize, axis: i64) -> Vec<onnx_protobuf::AttributeProto> {
    if groups > 1 {
        vec![attr_i("axis", axis)]
    } else {
        vec![]
    }
}

fn qparams(g: &mut Graph, scale: &[f32], zp: &[i32], signed: bool) -> (String, String) {
    let dims: &[usize] = if scale.len() == 1 {
        &[]
    } else {
        &[scale.len()]
    };
    let dims = dims.to_vec();
    (
        g.f32s("scale", &dims, scale),
        g.i8s("zero_point", &dims, zp, signed),
    )
}

/// The values of one activation quantizer in the graph: the QuantizeLinear's input (clipped;
/// minus l for the affine form) and output (the codes), and the dequantized value.
pub struct ActQdq {
    pub input: String,
    pub codes: String,
    pub y: String,
}

/// The activation quantizer of point `name` on value `x`: offsets (explicit Mul/Add), clip,
/// then the Q/DQ pair of its form.
pub fn act(
    g: &mut Graph,
    p: &Params<Cpu>,
    name: &str,
    l: &LayerQuant,
    x: String,
) -> anyhow::Result<ActQdq> {
    debug_assert!(
        !l.dynamic && !matches!(l.form, QForm::Daq { .. }),
        "refused before"
    );
    let mut x = x;
    let (sn, hn) = crate::quant::offset_names(name);
    if l.scale {
        let s = bcast(g, "offset_scale", &host_values(p.get::<1>(&sn)));
        x = g.node("Mul", &[&x, &s], vec![]);
    }
    if l.shift {
        let s = bcast(g, "offset_shift", &host_values(p.get::<1>(&hn)));
        x = g.node("Add", &[&x, &s], vec![]);
    }
    let (lo, hi) = act_bounds(p, name, l);
    let (lo, hi) = (host_values(lo), host_values(hi));
    let (lo_t, hi_t) = (bcast(g, "lo", &lo), bcast(g, "hi", &hi));
    let x = g.node("Min", &[&x, &hi_t], vec![]);
    let mut x = g.node("Max", &[&x, &lo_t], vec![]);
    let affine = l.form == QForm::Affine;
    if affine {
        x = g.node("Sub", &[&x, &lo_t], vec![]);
    }
    let (scale, zp) = scales(l.form, l.a_bits, &lo, &hi, false);
    let (s, z) = qparams(g, &scale, &zp, !affine);
    let attrs = qparam_attrs(scale.len(), 1);
    let q = g.node("QuantizeLinear", &[&x, &s, &z], attrs.clone());
    let mut y = g.node("DequantizeLinear", &[&q, &s, &z], attrs);
    if affine {
        y = g.node("Add", &[&y, &lo_t], vec![]);
    }
    Ok(ActQdq {
        input: x,
        codes: q,
        y,
    })
}

/// Codes c of a conv's quantized weights relative to zero (w_q = s_w·c per output channel, or
/// one s_w), the scales and the zero points of the Q/DQ form, from odm's own fake-quantized
/// weights; fails if a code does not dequantize back to them (an internal error).
#[allow(clippy::type_complexity)]
pub fn weight_codes(
    p: &Params<Cpu>,
    name: &str,
    l: &LayerQuant,
    w: Tensor<Cpu, 4>,
) -> anyhow::Result<(Vec<i32>, Vec<f32>, Vec<i32>)> {
    let (lo, hi) = weight_range(p, name, l, &w);
    let (lo, hi) = (host_values(lo), host_values(hi));
    let wq = host_values(fake_quant_weight(p, name, l, w));
    let (scale, zp) = scales(l.form, l.w_bits, &lo, &hi, true);
    let per = wq.len() / scale.len();
    let mut codes = Vec::with_capacity(wq.len());
    for (i, v) in wq.iter().enumerate() {
        let s = scale[i / per];
        let c = (v / s).round_ties_even() as i32;
        if (c as f32 * s - v).abs() > 1e-3 * s.abs() {
            anyhow::bail!(
                "{name}: weight {i} ({v}) is not on the grid of scale {s} (internal error)"
            );
        }
        codes.push(c);
    }
    Ok((codes, scale, zp))
}

/// The quantized weights of conv `name` (C_out×C_in×k×k) as integer codes and a
/// DequantizeLinear. Fails if a code does not dequantize to odm's fake-quantized weight.
/// `plant`: a test hook ([`super::Options::plant`]) that moves the stored code at that flat index
/// by one level (down from 127, else up), an export bug the flip audit must catch.
pub fn weight(
    g: &mut Graph,
    p: &Params<Cpu>,
    name: &str,
    l: &LayerQuant,
    w: Tensor<Cpu, 4>,
    plant: Option<usize>,
) -> anyhow::Result<String> {
    let dims = w.dims();
    let (rel, scale, zp) = weight_codes(p, name, l, w)?;
    let per = rel.len() / scale.len();
    let mut codes: Vec<i32> = rel
        .iter()
        .enumerate()
        .map(|(i, c)| c + zp[i / per])
        .collect();
    if let Some(c) = plant.and_then(|i| codes.get_mut(i)) {
        *c += if *c == 127 { -1 } else { 1 };
    }
    let fits = codes.iter().all(|&c| (-128..=127).contains(&c));
    let wname = if fits {
        g.i8s("w_codes", &dims, &codes, true)
    } else {
        g.i32s("w_codes", &dims, &codes)
    };
    let sd: Vec<usize> = if scale.len() == 1 {
        vec![]
    } else {
        vec![scale.len()]
    };
    let s = g.f32s("w_scale", &sd, &scale);
    let z = if fits {
        g.i8s("w_zero_point", &sd, &zp, true)
    } else {
        g.i32s("w_zero_point", &sd, &zp)
    };
    Ok(g.node(
        "DequantizeLinear",
        &[&wname, &s, &z],
        qparam_attrs(scale.len(), 0),
    ))
}
