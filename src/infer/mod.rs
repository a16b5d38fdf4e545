//! Integer inference (`odm infer`): the backbone's trace ([`crate::models::Trace`]) executed on
//! the CPU with real integer arithmetic for every conv whose input and weights are quantized
//! (per layer): the input becomes unsigned codes u (x = a·u + o), the weights signed codes c
//! (w = s_w·c per output channel), [`crate::kernels::int_conv`] accumulates Σ u·c exactly in 32
//! bits, and y = (a·s_w)·acc + (o·s_w)·Σ_valid c + b rescales to f32 (Σ_valid c: the codes of
//! the taps inside the image, so the zero padding of the real input is kept). Everything else
//! (FP convs, ReLU, residual adds, pixel shuffle, the quantizers themselves) runs in f32 as the
//! fake-quant forward does.
//!
//! "The same model": the fake-quant forward computes Σ (a·u + o)·(s_w·c) + b in float, in its
//! own summation order; the integer path computes the same sum exactly and rounds once. The two
//! agree to float rounding, so a quantizer input can land on the other side of a rounding
//! boundary only where it lies within that rounding of one ([`layer_checks`] counts them).

pub mod host;

use crate::backend::Cpu;
use crate::kernels::int_conv::{self, IntPath, IntWeights, Padded};
use crate::kernels::round_even;
use crate::models::params::host_values;
use crate::models::{Conv, Model, Params, Point, Scalar, Trace};
use crate::quant::{fake_quant_weight, LayerQuant, QForm, QuantPlan};
use burn::tensor::{Tensor, TensorData};
pub use host::{Host, Layout};
use rayon::prelude::*;

/// What an integer forward did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IntStats {
    /// Convs run on integer codes, and in float (FP layers, or an unquantized input).
    pub int_convs: usize,
    pub float_convs: usize,
    /// The dot-product path of the integer convs (the last one used).
    pub path: Option<IntPath>,
    /// Codes of every quantized activation point, in forward order (for [`layer_checks`];
    /// recorded only when asked).
    #[serde(skip)]
    pub codes: Vec<(String, Vec<u8>)>,
    /// Milliseconds in the quantizers (codes), the integer convs (patches and dot products, then
    /// the rescale) and the float convs.
    pub ms_quantize: f64,
    pub ms_int_conv: f64,
    pub ms_float_conv: f64,
}

/// The unsigned codes u of a per-layer quantizer on `x`, with the real values a·u + o the
/// fake-quant forward produces (its op order, `kernels::fake_quant`), and (a, o).
pub fn codes(x: &[f32], l: f32, u: f32, bits: u32, form: QForm) -> (Vec<u8>, Vec<f32>, f32, f32) {
    let g = Grid::new((l, u), bits, form);
    let mut us = vec![0u8; x.len()];
    let mut re = vec![0f32; x.len()];
    const CHUNK: usize = 1 << 14;
    us.par_chunks_mut(CHUNK)
        .zip(re.par_chunks_mut(CHUNK))
        .zip(x.par_chunks(CHUNK))
        .for_each(|((uc, rc), xc)| {
            for ((u, r), &v) in uc.iter_mut().zip(rc.iter_mut()).zip(xc) {
                let (c, real) = g.apply(v);
                (*u, *r) = (c as u8, real);
            }
        });
    (us, re, g.a, g.o)
}

/// A per-layer quantizer grid: value → (code, real value) in the fake-quant forward's op order,
/// and the code's real value a·u + o.
#[derive(Clone, Copy)]
struct Grid {
    form: QForm,
    l: f32,
    u: f32,
    /// 2^b − 1, (n − 1)/2, n/(u − l), the zero point, 2^(b−1).
    n: f32,
    qm: f32,
    sf: f32,
    zp: f32,
    half: f32,
    a: f32,
    o: f32,
}

impl Grid {
    fn new((l, u): (f32, f32), bits: u32, form: QForm) -> Self {
        let n = ((1u64 << bits) - 1) as f32;
        let half = (1u64 << (bits - 1)) as f32;
        let (qm, sf) = ((n - 1.0) / 2.0, n / (u - l));
        let zp = round_even(sf * l) + half;
        let (a, o) = match form {
            QForm::Affine => ((u - l) / n, l),
            QForm::SymZero => (u / qm, -u),
            QForm::ZeroPoint => (1.0 / sf, (zp - half) / sf),
            QForm::Daq { .. } => unreachable!("DAQ runs in float"),
        };
        Self {
            form,
            l,
            u,
            n,
            qm,
            sf,
            zp,
            half,
            a,
            o,
        }
    }

    #[inline(always)]
    fn apply(&self, v: f32) -> (f32, f32) {
        let (l, u) = (self.l, self.u);
        let c = v.max(l).min(u);
        match self.form {
            QForm::Affine => {
                let d = u - l;
                let k = round_even((c - l) / d * self.n);
                (k, k / self.n * d + l)
            }
            QForm::SymZero => {
                let y = round_even(c * self.qm / u);
                (y + self.qm, y * u / self.qm)
            }
            _ => {
                let y = round_even(self.sf * c - self.zp);
                (y + self.half, (y + self.zp) / self.sf)
            }
        }
    }

    /// The codes of a row of values (the code part of [`Grid::apply`], one loop per form so
    /// that it vectorizes; the codes lie in [0, 2^b − 1], so the conversion cannot overflow).
    #[inline(always)]
    fn code_row(&self, src: &[f32], dst: &mut [u8]) {
        let (l, u, n) = (self.l, self.u, self.n);
        let d = u - l;
        let to_u8 = |k: f32| unsafe { k.to_int_unchecked::<i32>() } as u8;
        match self.form {
            QForm::Affine => {
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = to_u8(round_even((v.max(l).min(u) - l) / d * n));
                }
            }
            QForm::SymZero => {
                let qm = self.qm;
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = to_u8(round_even(v.max(l).min(u) * qm / u) + qm);
                }
            }
            _ => {
                let (sf, zp, half) = (self.sf, self.zp, self.half);
                for (o, &v) in dst.iter_mut().zip(src) {
                    *o = to_u8(round_even(sf * v.max(l).min(u) - zp) + half);
                }
            }
        }
    }

    /// [`Grid::code_row`] compiled for AVX2 where the CPU has it (8 lanes instead of SSE2's 4;
    /// the same IEEE operations, so the same codes).
    fn code_row_fast(&self, src: &[f32], dst: &mut [u8]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            unsafe fn avx2(g: &Grid, src: &[f32], dst: &mut [u8]) {
                g.code_row(src, dst)
            }
            // SAFETY: AVX2 was detected.
            return unsafe { avx2(self, src, dst) };
        }
        self.code_row(src, dst)
    }

    /// The codes of `x` in the integer kernel's layout with border `p`: one row loop per channel
    /// (channel-major input) or one per image row (pixel-major input, already the kernel's
    /// order when C is a multiple of 4).
    fn padded(&self, x: &Host, p: usize) -> Padded {
        let (c, h, w) = (x.c, x.h, x.w);
        let cp = c.div_ceil(4) * 4;
        Padded::build((c, h, w), p, |y, dst| match x.layout {
            Layout::ChannelMajor => {
                let mut row = vec![0u8; w];
                for ch in 0..c {
                    self.code_row(&x.v[(ch * h + y) * w..(ch * h + y + 1) * w], &mut row);
                    for (xo, &v) in row.iter().enumerate() {
                        dst[xo * cp + ch] = v;
                    }
                }
            }
            Layout::PixelMajor if cp == c => {
                self.code_row_fast(&x.v[y * w * c..(y + 1) * w * c], dst)
            }
            Layout::PixelMajor => {
                for (xo, px) in x.v[y * w * c..(y + 1) * w * c].chunks(c).enumerate() {
                    self.code_row(px, &mut dst[xo * cp..xo * cp + c]);
                }
            }
        })
    }
}

/// A quantizer's output: real values, or the codes of an integer conv's input with (a, o).
enum Quantized {
    Real(Host),
    Codes(Padded, f32, f32),
}

/// The integer executor of a trace.
struct Exec<'a> {
    p: &'a Params<Cpu>,
    plan: &'a QuantPlan,
    prepared: &'a Prepared,
    record_codes: bool,
    stats: IntStats,
}

/// Whether a point's conv can run on integer codes: per-layer activation and weights, a static
/// form, no gate.
fn integer(l: &LayerQuant) -> bool {
    l.has_act()
        && l.has_weight()
        && !l.per_channel
        && !l.dynamic
        && !matches!(l.form, QForm::Daq { .. })
}

impl Exec<'_> {
    /// Offsets and the activation quantizer of point `name` (when planned): the real values,
    /// or, for an integer conv, the codes in its kernel's layout with (a, o).
    fn quantize(&mut self, name: &str, x: Host) -> Quantized {
        let Some(l) = self.plan.layer(name).filter(|l| l.has_act()) else {
            return Quantized::Real(x);
        };
        // The offsets in `quant::apply_offsets`'s order: x·scale[c], then + shift[c].
        let (sn, hn) = crate::quant::offset_names(name);
        let mut x = x;
        if l.scale {
            x = x.scale_channels(&host_values(self.p.get::<1>(&sn)));
        }
        if l.shift {
            x = x.add_channels(&host_values(self.p.get::<1>(&hn)));
        }
        if l.per_channel || l.dynamic || matches!(l.form, QForm::Daq { .. }) {
            let y = crate::quant::fake_quant_act(self.p, name, l, x.tensor());
            return Quantized::Real(Host::from_tensor(y));
        }
        let (lo, hi) = crate::quant::act_bounds(self.p, name, l);
        let g = Grid::new((host_values(lo)[0], host_values(hi)[0]), l.a_bits, l.form);
        match self.prepared.get(name).filter(|_| integer(l)) {
            Some(layer) => {
                let codes = g.padded(&x, layer.w.k / 2);
                if self.record_codes {
                    self.stats.codes.push((name.to_string(), codes.to_chw()));
                }
                Quantized::Codes(codes, g.a, g.o)
            }
            None => {
                let (u, re, _, _) = codes(&x.v, g.l, g.u, l.a_bits, l.form);
                if self.record_codes {
                    self.stats.codes.push((name.to_string(), u));
                }
                Quantized::Real(Host::with_layout((x.c, x.h, x.w), x.layout, re))
            }
        }
    }

    /// A float conv on the host values, with the kernel `kernels::conv2d_same` runs on the CPU
    /// (no copies into tensors and back).
    fn float_conv(&mut self, c: &Conv, x: Host) -> Host {
        self.stats.float_convs += 1;
        let x = x.chw();
        let mut w: Tensor<Cpu, 4> = self.p.at(c.weight);
        if let Some(l) = self.plan.layer(&c.name).filter(|l| l.has_weight()) {
            w = fake_quant_weight(self.p, &c.name, l, w);
        }
        let [co, ci, k, _] = w.dims();
        // A missing bias is zeros, as `conv2d_same` is called in the fake-quant forward.
        let b = c
            .bias
            .map_or_else(|| vec![0.0; co], |id| host_values(self.p.at::<1>(id)));
        let g = crate::kernels::cpu_conv::Geom {
            n: 1,
            ci,
            co,
            h: x.h,
            w: x.w,
            k,
        };
        let v = crate::kernels::cpu_conv::forward(&g, &x.v, &host_values(w), Some(&b));
        Host::new(co, x.h, x.w, v)
    }
}

/// A quantized conv's weights as codes for [`int_conv`]: codes, per-channel scales, bias.
pub struct IntLayer {
    pub w: IntWeights,
    pub scale: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl IntLayer {
    pub fn new(p: &Params<Cpu>, c: &Conv, l: &LayerQuant) -> Self {
        let w: Tensor<Cpu, 4> = p.at(c.weight);
        let [co, ci, k, _] = w.dims();
        let (codes, scale, _) = crate::export::qdq::weight_codes(p, &c.name, l, w)
            .expect("odm's fake-quantized weights lie on their grid");
        Self {
            w: IntWeights::new(&codes, co, ci, k),
            scale,
            bias: c.bias.map(|id| host_values(p.at::<1>(id))),
        }
    }
}

/// Every integer conv of a plan, prepared once (what a deployment stores).
pub type Prepared = std::collections::HashMap<String, IntLayer>;

/// The integer conv of codes `u` (C×h×w, channel-major) with (a, o) and a prepared layer;
/// f32 output, channel-major.
pub fn int_conv(layer: &IntLayer, x: (&[u8], usize, usize), ao: (f32, f32)) -> (Host, IntPath) {
    let (u, h, w) = x;
    let padded = Padded::from_chw(u, (layer.w.cin, h, w), layer.w.k / 2);
    let (y, path) = int_conv_padded(layer, &padded, ao);
    (y.chw(), path)
}

/// [`int_conv`] on codes already in the kernel's layout; the output pixel-major, rescaled
/// inside the kernel ([`int_conv::Rescale`]).
pub fn int_conv_padded(layer: &IntLayer, x: &Padded, ao: (f32, f32)) -> (Host, IntPath) {
    let (iw, co, h, wd) = (&layer.w, layer.w.cout, x.h, x.w);
    let path = int_conv::pick(x.max() as u32, iw);
    let rs = int_conv::Rescale::new(iw, &layer.scale, layer.bias.as_deref(), ao, (h, wd));
    // Every value is written by the kernel, so the buffer is not zeroed first.
    let n = co * h * wd;
    let mut v: Vec<f32> = Vec::with_capacity(n);
    int_conv::conv_rescaled(x, iw, path, &rs, &mut v.spare_capacity_mut()[..n]);
    // SAFETY: `conv_rescaled` wrote all n values.
    unsafe { v.set_len(n) };
    (Host::with_layout((co, h, wd), Layout::PixelMajor, v), path)
}

impl Trace for Exec<'_> {
    type V = Host;

    fn conv(&mut self, c: &Conv, x: Host) -> Host {
        let t = std::time::Instant::now();
        let q = self.quantize(&c.name, x);
        self.stats.ms_quantize += t.elapsed().as_secs_f64() * 1e3;
        let t = std::time::Instant::now();
        match q {
            Quantized::Codes(u, a, o) => {
                self.stats.int_convs += 1;
                let (y, path) = int_conv_padded(&self.prepared[&c.name], &u, (a, o));
                self.stats.path = Some(path);
                self.stats.ms_int_conv += t.elapsed().as_secs_f64() * 1e3;
                y
            }
            Quantized::Real(x) => {
                let y = self.float_conv(c, x);
                self.stats.ms_float_conv += t.elapsed().as_secs_f64() * 1e3;
                y
            }
        }
    }

    fn act(&mut self, p: &Point, x: Host) -> Host {
        match self.quantize(&p.name, x) {
            Quantized::Real(x) => x,
            Quantized::Codes(..) => unreachable!("a point without a conv has no integer layer"),
        }
    }

    fn relu(&mut self, x: Host) -> Host {
        x.map(|v| v.max(0.0))
    }

    fn add(&mut self, a: Host, b: Host) -> Host {
        a.zip(&b, |x, y| x + y)
    }

    fn scalar(&mut self, x: Host, op: Scalar, s: f32) -> Host {
        x.map(|v| match op {
            Scalar::Add => v + s,
            Scalar::Sub => v - s,
            Scalar::Mul => v * s,
            Scalar::Div => v / s,
        })
    }

    fn add_channels(&mut self, x: Host, v: &[f32]) -> Host {
        x.add_channels(v)
    }

    fn pixel_shuffle(&mut self, x: Host, r: usize) -> Host {
        x.pixel_shuffle(r)
    }

    fn concat(&mut self, xs: Vec<Host>) -> Host {
        Host::concat(xs)
    }

    fn channel_affine(&mut self, x: Host, scale: &[f32], shift: &[f32]) -> Host {
        x.channel_affine(scale, shift)
    }

    fn prelu(&mut self, x: Host, a: f32) -> Host {
        // relu(x) − relu(−x)·a, as `models::layers::prelu` computes it.
        x.map(|v| v.max(0.0) - (-v).max(0.0) * a)
    }

    fn param(&self, id: crate::models::ParamId) -> Vec<f32> {
        host_values(self.p.tensors[id.0].clone())
    }
}

/// The integer layers of `plan` (its convs with per-layer quantized input and weights).
pub fn prepare(model: &Model, p: &Params<Cpu>, plan: &QuantPlan) -> Prepared {
    model
        .layers()
        .convs
        .iter()
        .filter_map(|ci| {
            let l = plan.layer(&ci.name).filter(|l| integer(l))?;
            Some((
                ci.name.clone(),
                IntLayer::new(p, &conv_handle(p, &ci.name), l),
            ))
        })
        .collect()
}

/// A conv's handle from its parameter names.
fn conv_handle(p: &Params<Cpu>, name: &str) -> Conv {
    let wi = p.idx(&format!("{name}.weight"));
    let bias = format!("{name}.bias");
    Conv {
        name: name.to_string(),
        weight: crate::models::ParamId(wi),
        bias: p.has(&bias).then(|| crate::models::ParamId(p.idx(&bias))),
        cout: p.shapes[wi][0],
    }
}

/// The integer forward of one LR input (3×h×w, values in [0, rgb_range]) with the layers
/// [`prepare`] made (recording every point's codes when `record_codes`).
pub fn forward(
    model: &Model,
    p: &Params<Cpu>,
    plan: &QuantPlan,
    prepared: &Prepared,
    x: Host,
    record_codes: bool,
) -> (Host, IntStats) {
    let mut e = Exec {
        p,
        plan,
        prepared,
        record_codes,
        stats: IntStats::default(),
    };
    let y = model.trace(&mut e, x).chw();
    (y, e.stats)
}

/// A 1×C×H×W tensor of a host value.
pub fn tensor(x: &Host) -> Tensor<Cpu, 4> {
    Tensor::from_data(
        TensorData::new(x.v.to_vec(), [1, x.c, x.h, x.w]),
        &Default::default(),
    )
}

/// Super-resolve one 8-bit LR image with the integer path and the layers [`prepare`] made, as
/// `odm eval` maps pixels.
pub fn super_resolve(
    model: &Model,
    p: &Params<Cpu>,
    plan: &QuantPlan,
    prepared: &Prepared,
    lr: &crate::data::RgbImage,
) -> (crate::data::RgbImage, IntStats) {
    let k = (model.rgb_range() / 255.0) as f32;
    let mut v = vec![0f32; 3 * lr.h * lr.w];
    for (i, px) in lr.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            v[c * lr.h * lr.w + i] = px[c] as f32 * k;
        }
    }
    let x = Host::new(3, lr.h, lr.w, v);
    let (y, st) = forward(model, p, plan, prepared, x, false);
    (crate::eval::to_rgb8(&y.v, y.h, y.w, k), st)
}

/// One quantized conv compared between the two paths on the same input.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerCheck {
    pub layer: String,
    /// Elements of the input whose real value a·u + o differs from the fake quantizer's.
    pub value_mismatches: usize,
    /// max |y_int − y_fake| and max |y_fake| over the conv output.
    pub max_diff: f32,
    pub max_abs: f32,
    /// Codes of this point's input in the end-to-end integer forward that differ from those of
    /// the end-to-end fake-quant forward, of `codes`; and how many of those lie within 1e-3 of
    /// a step of a rounding boundary in the fake-quant input (a float rounding tie).
    pub code_flips: usize,
    pub near_ties: usize,
    pub codes: usize,
}

/// Layer by layer (each integer conv fed the fake-quant forward's own input) and end to end:
/// see [`LayerCheck`].
pub fn layer_checks(model: &Model, p: &Params<Cpu>, plan: &QuantPlan, x: &Host) -> Vec<LayerCheck> {
    use crate::forward::{Capture, Fwd};
    let cap = std::cell::RefCell::new(Capture::<Cpu> {
        record_convs: true,
        ..Default::default()
    });
    let f = Fwd {
        p,
        plan,
        capture: Some(&cap),
        train: false,
        body_only: false,
    };
    let _ = model.forward(&f, x.tensor());
    let cap = cap.into_inner();
    let prepared = prepare(model, p, plan);
    let (_, st) = forward(model, p, plan, &prepared, x.clone(), true);
    let mut out = Vec::new();
    for (name, xin) in &cap.act_inputs {
        let Some(l) = plan.layer(name).filter(|l| integer(l)) else {
            continue;
        };
        let (lo, hi) = crate::quant::act_bounds(p, name, l);
        let (lo, hi) = (host_values(lo)[0], host_values(hi)[0]);
        let xi = Host::from_tensor(xin.clone());
        let (u, re, a, o) = codes(&xi.v, lo, hi, l.a_bits, l.form);
        let fq = host_values(crate::quant::fake_quant_act(p, name, l, xin.clone()));
        let value_mismatches = re
            .iter()
            .zip(&fq)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        let (y, _) = int_conv(&prepared[name], (&u, xi.h, xi.w), (a, o));
        let yf = cap
            .conv_out
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| host_values(t.clone()))
            .expect("recorded");
        let max_diff =
            y.v.iter()
                .zip(&yf)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let max_abs = yf.iter().fold(0f32, |m, v| m.max(v.abs()));
        let e2e = st
            .codes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let step = a;
        let (mut flips, mut ties) = (0, 0);
        for (i, (cu, ce)) in u.iter().zip(&e2e).enumerate() {
            if cu != ce {
                flips += 1;
                let t = (xi.v[i].clamp(lo, hi) - o) / step;
                if (t - t.floor() - 0.5).abs() < 1e-3 {
                    ties += 1;
                }
            }
        }
        out.push(LayerCheck {
            layer: name.clone(),
            value_mismatches,
            max_diff,
            max_abs,
            code_flips: flips,
            near_ties: ties,
            codes: u.len(),
        });
    }
    out
}
