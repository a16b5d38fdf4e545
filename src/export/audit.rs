//! The flip audit: why an exported graph's output differs from `odm eval`'s. It finds the first
//! activation quantizer, in graph order, whose integer codes differ between odm's fake-quant
//! forward and another runtime's evaluation of the export (ONNX Runtime, through the graph
//! outputs of [`super::Options::probes`]), and measures how far each differing input lies from
//! its decision boundary.
//!
//! Every form is a code c = round_half_even(t) of a value t in units of the step
//! (`kernels::fake_quant`): affine t = (x_c − l)/(u − l)·n, symmetric (PAMS) t = x_c·Q/u, rounded
//! zero point (DDTB) t = s·x_c − z, with x_c = min(max(x, l), u); ONNX's QuantizeLinear
//! t = x/scale + zero_point on its input. The decision boundaries are the half-integers, so an
//! input's distance to its boundary, in steps, is |t − ⌊t⌋ − ½|. Upstream of the first
//! differing quantizer every code agrees, so the two inputs there differ by float rounding only
//! (a conv's summation order, a scale's rounding), and a code can differ only where both lie
//! within that rounding of one boundary. An export bug (a wrong code, scale or op) moves inputs
//! by a sizeable fraction of a step and flips codes far from any boundary.

use crate::backend::Cpu;
use crate::data::RgbImage;
use crate::kernels::round_even;
use crate::models::params::host_values;
use crate::models::{Model, Params};
use crate::quant::{act_bounds, LayerQuant, QForm, QuantPlan};

/// One activation quantizer as odm's fake-quant forward evaluates it on an image.
pub struct OdmPoint {
    pub name: String,
    /// N×C×H×W of its input.
    pub dims: [usize; 4],
    /// The pre-rounding value t of every input element, in steps.
    pub t: Vec<f32>,
    /// The codes round_half_even(t).
    pub codes: Vec<i32>,
    /// ε·max|x| over the point's input (offsets applied, before the clip) in steps, per element's
    /// group: the float rounding of the tensor's largest value, the unit of the audit's tolerance.
    pub ulp: Vec<f32>,
    /// (scale, zero point) of its QuantizeLinear per group ([`super::qdq::scales`]).
    pub qparams: (Vec<f32>, Vec<i32>),
}

impl OdmPoint {
    /// The group (bound index) of flat element `i`: per channel when the bounds are.
    pub fn group(&self, i: usize) -> usize {
        let [_, c, h, w] = self.dims;
        if self.qparams.0.len() == 1 {
            0
        } else {
            (i / (h * w)) % c
        }
    }
}

/// Every activation quantizer of `model` under `plan` on the 8-bit LR image `lr`, in forward
/// order, as `odm eval` evaluates it (the same input tensor, BatchNorm on running statistics).
pub fn odm_points(
    model: &Model,
    params: &Params<Cpu>,
    plan: &QuantPlan,
    lr: &RgbImage,
) -> Vec<OdmPoint> {
    let x = crate::eval::lr_tensor::<Cpu>(model, lr, &Default::default());
    crate::forward::planned_inputs(model, params, plan, x, false)
        .into_iter()
        .filter_map(|(name, x)| {
            let l = plan.layer(&name).filter(|l| l.has_act())?;
            Some(point(params, name, l, x))
        })
        .collect()
}

fn point(
    p: &Params<Cpu>,
    name: String,
    l: &LayerQuant,
    x: burn::tensor::Tensor<Cpu, 4>,
) -> OdmPoint {
    let dims = x.dims();
    let (lo, hi) = act_bounds(p, &name, l);
    let (lo, hi) = (host_values(lo), host_values(hi));
    let x = host_values(x);
    let mag = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut pt = OdmPoint {
        dims,
        t: Vec::with_capacity(x.len()),
        codes: Vec::with_capacity(x.len()),
        ulp: Vec::new(),
        qparams: super::qdq::scales(l.form, l.a_bits, &lo, &hi, false),
        name,
    };
    let steps = lo
        .iter()
        .zip(&hi)
        .map(|(&a, &b)| step(l.form, l.a_bits, a, b));
    pt.ulp = steps.map(|s| f32::EPSILON * mag / s).collect();
    for (i, &v) in x.iter().enumerate() {
        let g = pt.group(i);
        let t = pre_round(l.form, l.a_bits, lo[g], hi[g], v);
        pt.t.push(t);
        pt.codes.push(round_even(t) as i32);
    }
    pt
}

/// The real value of one step of a quantizer over [l, u] with `bits` bits.
fn step(form: QForm, bits: u32, l: f32, u: f32) -> f32 {
    let n = ((1u64 << bits) - 1) as f32;
    match form {
        QForm::SymZero => u / ((n - 1.0) / 2.0),
        _ => (u - l) / n,
    }
}

/// The value t the fake quantizer rounds (`kernels::fake_quant`, its op order), in steps.
pub fn pre_round(form: QForm, bits: u32, l: f32, u: f32, x: f32) -> f32 {
    let n = ((1u64 << bits) - 1) as f32;
    let xc = x.max(l).min(u);
    match form {
        QForm::Affine => (xc - l) / (u - l) * n,
        QForm::SymZero => (xc * ((n - 1.0) / 2.0)) / u,
        QForm::ZeroPoint => {
            let sf = n / (u - l);
            sf * xc - (round_even(sf * l) + (1u64 << (bits - 1)) as f32)
        }
        QForm::Daq { .. } => unreachable!("DAQ is not exported"),
    }
}

/// The distance of t to the nearest decision boundary (a half-integer), in steps.
pub fn boundary_distance(t: f64) -> f64 {
    (t - t.floor() - 0.5).abs()
}

/// One differing code at the first differing quantizer.
#[derive(Clone, Debug)]
pub struct Flip {
    /// Flat N×C×H×W index.
    pub index: usize,
    pub odm: i32,
    pub other: i32,
    /// The distances of odm's and the other runtime's input to the nearest boundary, in steps.
    pub dist_odm: f64,
    pub dist_other: f64,
    /// The larger of the two in units of [`OdmPoint::ulp`].
    pub ulps: f64,
}

/// The first differing quantizer on one image.
#[derive(Clone, Debug)]
pub struct FirstFlip {
    pub point: String,
    /// Its position in graph order (0-based) among `points` quantizers.
    pub order: usize,
    pub points: usize,
    pub values: usize,
    pub flips: Vec<Flip>,
}

impl FirstFlip {
    /// The largest distance of a differing input to its boundary, in ulps of the input.
    pub fn max_ulps(&self) -> f64 {
        self.flips.iter().map(|f| f.ulps).fold(0.0, f64::max)
    }
}

/// The first quantizer in `odm` (graph order) whose codes differ from the other runtime's, with
/// every differing code; `None` when all agree. `codes(name)` returns a point's codes from the
/// other runtime (flat, in odm's N×C×H×W order; asked only up to the first difference),
/// `input(name)` the input of that point's QuantizeLinear. Fails when a point is missing or its
/// size differs.
pub fn first_flip(
    odm: &[OdmPoint],
    mut codes: impl FnMut(&str) -> anyhow::Result<Vec<i32>>,
    input: impl FnOnce(&str) -> anyhow::Result<Vec<f32>>,
) -> anyhow::Result<Option<FirstFlip>> {
    for (order, p) in odm.iter().enumerate() {
        let c = codes(&p.name)?;
        anyhow::ensure!(
            c.len() == p.codes.len(),
            "{}: {} codes from the other runtime, {} from odm",
            p.name,
            c.len(),
            p.codes.len()
        );
        let differ: Vec<usize> = (0..c.len()).filter(|&i| p.codes[i] != c[i]).collect();
        if differ.is_empty() {
            continue;
        }
        let x = input(&p.name)?;
        anyhow::ensure!(x.len() == c.len(), "{}: {} inputs", p.name, x.len());
        return Ok(Some(FirstFlip {
            point: p.name.clone(),
            order,
            points: odm.len(),
            values: c.len(),
            flips: differ.into_iter().map(|i| flip(p, &c, &x, i)).collect(),
        }));
    }
    Ok(None)
}

fn flip(p: &OdmPoint, codes: &[i32], input: &[f32], i: usize) -> Flip {
    let g = p.group(i);
    let (scale, zp) = (p.qparams.0[g] as f64, p.qparams.1[g] as f64);
    let dist_odm = boundary_distance(p.t[i] as f64);
    let dist_other = boundary_distance(input[i] as f64 / scale + zp);
    Flip {
        index: i,
        odm: p.codes[i],
        other: codes[i],
        dist_odm,
        dist_other,
        ulps: dist_odm.max(dist_other) / p.ulp[g] as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_to_half_integer_boundaries() {
        assert_eq!(boundary_distance(2.5), 0.0);
        assert_eq!(boundary_distance(-1.5), 0.0);
        assert!((boundary_distance(3.0) - 0.5).abs() < 1e-12);
        assert!((boundary_distance(3.25) - 0.25).abs() < 1e-12);
        assert!((boundary_distance(-0.75) - 0.25).abs() < 1e-12);
    }

    /// Two points of 4 values (scale 0.5, zero point 0, ulp 1e-6 steps); the other runtime
    /// agrees on the first and differs at element 2 of the second (odm t = 1.25 → code 1).
    #[test]
    fn first_flip_finds_the_first_differing_point_and_its_distances() {
        let pt = |name: &str, t: Vec<f32>| OdmPoint {
            name: name.into(),
            dims: [1, 1, 2, 2],
            codes: t.iter().map(|&v| round_even(v) as i32).collect(),
            t,
            ulp: vec![1e-6],
            qparams: (vec![0.5], vec![0]),
        };
        let odm = [
            pt("a", vec![0.0, 1.0, 2.0, 3.0]),
            pt("b", vec![0.0, 1.0, 1.25, 3.0]),
        ];
        let mut asked = Vec::new();
        let f = first_flip(
            &odm,
            |n| {
                asked.push(n.to_string());
                Ok(vec![0, 1, 2, 3])
            },
            |n| {
                assert_eq!(n, "b");
                // Input 1.0625 on scale 0.5: t = 2.125, 0.375 steps from the boundary 2.5.
                Ok(vec![0.0, 0.5, 1.0625, 1.5])
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(asked, ["a", "b"]);
        assert_eq!(
            (f.point.as_str(), f.order, f.points, f.values),
            ("b", 1, 2, 4)
        );
        assert_eq!(f.flips.len(), 1);
        let x = &f.flips[0];
        assert_eq!((x.index, x.odm, x.other), (2, 1, 2));
        assert!((x.dist_odm - 0.25).abs() < 1e-9 && (x.dist_other - 0.375).abs() < 1e-9);
        assert!((x.ulps - 0.375e6).abs() < 1.0);
        // All equal: no flip, and the input is never asked for.
        let same = first_flip(&odm[..1], |_| Ok(vec![0, 1, 2, 3]), |_| unreachable!());
        assert!(same.unwrap().is_none());
    }

    /// The pre-rounding values by hand: 2 bits (n = 3, Q = 1) on [−1, 2] / [−2, 2].
    #[test]
    fn pre_round_values_by_hand() {
        // Affine: (x − l)/(u − l)·n = (0.5 + 1)/3·3 = 1.5; clipped above: 3.
        assert_eq!(pre_round(QForm::Affine, 2, -1.0, 2.0, 0.5), 1.5);
        assert_eq!(pre_round(QForm::Affine, 2, -1.0, 2.0, 9.0), 3.0);
        // PAMS: x·Q/u = 1·1/2 = 0.5 (a boundary).
        assert_eq!(pre_round(QForm::SymZero, 2, -2.0, 2.0, 1.0), 0.5);
        // DDTB: s = 3/3 = 1, z = round(−1) + 2 = 1, t = 0.5 − 1.
        assert_eq!(pre_round(QForm::ZeroPoint, 2, -1.0, 2.0, 0.5), -0.5);
    }
}
