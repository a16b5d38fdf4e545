//! Export of a trained run to ONNX (`odm export RUN_DIR --onnx FILE`): the backbone's symbolic
//! trace (EDSR, RDN, SRResNet; BatchNorm in evaluation mode as Mul/Add, PReLU, Concat) ([`crate::models::Trace`]) written as an opset-17 graph in the QDQ form that ONNX
//! Runtime, TensorRT and OpenVINO read ([`qdq`]): QuantizeLinear/DequantizeLinear pairs at every
//! planned activation point, DequantizeLinear on integer weight codes of every quantized conv,
//! FP convolutions elsewhere, pixel shuffle as DepthToSpace (CRD order, PyTorch's), offsets as
//! explicit Mul/Add, and the pixel normalisation inside the graph: 8-bit RGB in (N×3×H×W uint8),
//! 8-bit RGB out, as `odm eval` maps them (x·rgb_range/255 in; clip(y·255/rgb_range, 0, 255),
//! rounded, out).

pub mod audit;
pub mod graph;
pub mod qdq;

use crate::backend::Cpu;
use crate::error::user;
use crate::models::params::host_values;
use crate::models::{Conv, Model, Params, Point, Scalar, Trace};
use crate::quant::QuantPlan;
use graph::{attr_i, attr_ints, attr_s, Graph};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{
    tensor_shape_proto, type_proto, Message, ModelProto, OperatorSetIdProto,
    StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The opset the graph is written for.
pub const OPSET: i64 = 17;

/// Hooks for the flip audit ([`audit`]) and its tests; `odm export` uses the default (none).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Also return every activation quantizer's input and codes as graph outputs
    /// [`probe_input`]`(point)` (float) and [`probe_codes`]`(point)` (int8, uint8 when affine).
    pub probes: bool,
    /// A planted export bug, for the audit's own test: (conv, flat index) of one weight code
    /// stored one level off ([`qdq::weight`]).
    pub plant: Option<(String, usize)>,
}

/// The graph output holding the input of point `name`'s QuantizeLinear (with [`Options::probes`]).
pub fn probe_input(name: &str) -> String {
    format!("probe.in.{name}")
}

/// The graph output holding point `name`'s codes (with [`Options::probes`]).
pub fn probe_codes(name: &str) -> String {
    format!("probe.q.{name}")
}

/// A tracer that writes ONNX nodes; the first error stops the export.
struct Writer<'a> {
    g: Graph,
    p: &'a Params<Cpu>,
    plan: &'a QuantPlan,
    opts: &'a Options,
    /// (point, QuantizeLinear input, codes, codes unsigned) in graph order.
    probes: Vec<(String, String, String, bool)>,
    err: Option<anyhow::Error>,
}

impl Writer<'_> {
    fn point(&mut self, name: &str, x: String) -> String {
        let Some(l) = self.plan.layer(name).filter(|l| l.has_act()) else {
            return x;
        };
        match qdq::act(&mut self.g, self.p, name, l, x.clone()) {
            Ok(q) => {
                let unsigned = l.form == crate::quant::QForm::Affine;
                self.probes
                    .push((name.to_string(), q.input, q.codes, unsigned));
                q.y
            }
            Err(e) => {
                self.err.get_or_insert(e);
                x
            }
        }
    }
}

impl Writer<'_> {
    fn plant(&self, conv: &str) -> Option<usize> {
        self.opts
            .plant
            .as_ref()
            .filter(|(c, _)| c == conv)
            .map(|&(_, i)| i)
    }
}

impl Trace for Writer<'_> {
    type V = String;

    fn conv(&mut self, c: &Conv, x: String) -> String {
        let x = self.point(&c.name, x);
        let w: burn::tensor::Tensor<Cpu, 4> = self.p.at(c.weight);
        let [_, _, k, _] = w.dims();
        let dims = w.dims();
        let plant = self.plant(&c.name);
        let wn = match self.plan.layer(&c.name).filter(|l| l.has_weight()) {
            Some(l) => match qdq::weight(&mut self.g, self.p, &c.name, l, w, plant) {
                Ok(n) => n,
                Err(e) => {
                    self.err.get_or_insert(e);
                    return x;
                }
            },
            None => {
                let v = host_values(w);
                self.g.f32s(&format!("{}.weight", c.name), &dims, &v)
            }
        };
        let mut inputs = vec![x, wn];
        if let Some(b) = c.bias {
            let v = self.param(b);
            inputs.push(self.g.f32s(&format!("{}.bias", c.name), &[v.len()], &v));
        }
        let pad = (k / 2) as i64;
        let refs: Vec<&str> = inputs.iter().map(|s| s.as_str()).collect();
        self.g.node(
            "Conv",
            &refs,
            vec![
                attr_ints("kernel_shape", &[k as i64, k as i64]),
                attr_ints("pads", &[pad; 4]),
            ],
        )
    }

    fn act(&mut self, p: &Point, x: String) -> String {
        self.point(&p.name, x)
    }

    fn relu(&mut self, x: String) -> String {
        self.g.node("Relu", &[&x], vec![])
    }

    fn add(&mut self, a: String, b: String) -> String {
        self.g.node("Add", &[&a, &b], vec![])
    }

    fn scalar(&mut self, x: String, op: Scalar, v: f32) -> String {
        let c = self.g.f32s("const", &[], &[v]);
        let op = match op {
            Scalar::Add => "Add",
            Scalar::Sub => "Sub",
            Scalar::Mul => "Mul",
            Scalar::Div => "Div",
        };
        self.g.node(op, &[&x, &c], vec![])
    }

    fn add_channels(&mut self, x: String, v: &[f32]) -> String {
        let c = self.g.f32s("channels", &[1, v.len(), 1, 1], v);
        self.g.node("Add", &[&x, &c], vec![])
    }

    fn pixel_shuffle(&mut self, x: String, r: usize) -> String {
        self.g.node(
            "DepthToSpace",
            &[&x],
            vec![attr_i("blocksize", r as i64), attr_s("mode", "CRD")],
        )
    }

    fn concat(&mut self, xs: Vec<String>) -> String {
        let refs: Vec<&str> = xs.iter().map(|s| s.as_str()).collect();
        self.g.node("Concat", &refs, vec![attr_i("axis", 1)])
    }

    fn channel_affine(&mut self, x: String, scale: &[f32], shift: &[f32]) -> String {
        let s = self.g.f32s("bn_scale", &[1, scale.len(), 1, 1], scale);
        let b = self.g.f32s("bn_shift", &[1, shift.len(), 1, 1], shift);
        let y = self.g.node("Mul", &[&x, &s], vec![]);
        self.g.node("Add", &[&y, &b], vec![])
    }

    fn prelu(&mut self, x: String, a: f32) -> String {
        let s = self.g.f32s("prelu_slope", &[1], &[a]);
        self.g.node("PRelu", &[&x, &s], vec![])
    }

    fn param(&self, id: crate::models::ParamId) -> Vec<f32> {
        host_values(self.p.tensors[id.0].clone())
    }
}

fn value_info(
    name: &str,
    ty: DataType,
    dims: [&str; 4],
    fixed: [Option<i64>; 4],
) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for (d, f) in dims.iter().zip(fixed) {
        let mut dim = tensor_shape_proto::Dimension::new();
        match f {
            Some(v) => dim.set_dim_value(v),
            None => dim.set_dim_param(d.to_string()),
        }
        shape.dim.push(dim);
    }
    let mut v = value_of_type(name, ty);
    if let Some(tp) = v.type_.as_mut() {
        tp.mut_tensor_type().shape = Some(shape).into();
    }
    v
}

/// A graph value of element type `ty` and unstated shape.
fn value_of_type(name: &str, ty: DataType) -> ValueInfoProto {
    let mut t = type_proto::Tensor::new();
    t.elem_type = ty as i32;
    let mut tp = TypeProto::new();
    tp.set_tensor_type(t);
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(tp).into();
    v
}

/// An Identity node from `x` to the graph output `out` (a probe).
fn identity(x: &str, out: &str) -> onnx_protobuf::NodeProto {
    let mut n = onnx_protobuf::NodeProto::new();
    n.op_type = "Identity".into();
    n.name = format!("{out}_node");
    n.input = vec![x.to_string()];
    n.output = vec![out.to_string()];
    n
}

/// A dynamic quantizer has no QDQ form: name the preset and the first point.
fn refuse_dynamic(plan: &QuantPlan) -> anyhow::Result<()> {
    for (name, l) in &plan.layers {
        if matches!(l.form, crate::quant::QForm::Daq { .. }) {
            return Err(user(format!(
                "{name}: DAQ normalises every input by its own channel statistics, which QuantizeLinear cannot express; export a static preset (MinMax, Pams, DdtbStatic, Odm)"
            )));
        }
        if l.dynamic {
            let n = plan.layers.iter().filter(|(_, l)| l.dynamic).count();
            return Err(user(format!(
                "{name} (and {} more points): DDTB's gate rescales the bounds per input, which QuantizeLinear cannot express; export DdtbStatic or another static preset",
                n - 1
            )));
        }
    }
    Ok(())
}

/// The ONNX model (serialized) of `model` with weights `params` under `plan`, with
/// `metadata` as key–value properties. Fails on a dynamic preset.
pub fn onnx(
    model: &Model,
    params: &Params<Cpu>,
    plan: &QuantPlan,
    metadata: &[(&str, String)],
) -> anyhow::Result<Vec<u8>> {
    onnx_with(model, params, plan, metadata, &Options::default())
}

/// [`onnx`] with the audit's hooks `opts`.
pub fn onnx_with(
    model: &Model,
    params: &Params<Cpu>,
    plan: &QuantPlan,
    metadata: &[(&str, String)],
    opts: &Options,
) -> anyhow::Result<Vec<u8>> {
    refuse_dynamic(plan)?;
    let mut w = Writer {
        g: Graph::default(),
        p: params,
        plan,
        opts,
        probes: Vec::new(),
        err: None,
    };
    let k = (model.rgb_range() / 255.0) as f32;
    let x =
        w.g.node("Cast", &["lr"], vec![attr_i("to", DataType::FLOAT as i64)]);
    let x = w.scalar(x, Scalar::Mul, k);
    let y = model.trace(&mut w, x);
    if let Some(e) = w.err.take() {
        return Err(e);
    }
    let y = w.scalar(y, Scalar::Div, k);
    let (lo, hi) = (
        w.g.f32s("zero", &[], &[0.0]),
        w.g.f32s("max8", &[], &[255.0]),
    );
    let y = w.g.node("Clip", &[&y, &lo, &hi], vec![]);
    let y = w.g.node("Round", &[&y], vec![]);
    let y =
        w.g.node("Cast", &[&y], vec![attr_i("to", DataType::UINT8 as i64)]);
    let mut graph = onnx_protobuf::GraphProto::new();
    graph.name = "odm".into();
    graph.node = std::mem::take(&mut w.g.nodes);
    graph.node.last_mut().expect("nodes").output = vec!["sr".into()];
    let _ = y;
    graph.initializer = std::mem::take(&mut w.g.inits);
    let dims = ["N", "C", "H", "W"];
    graph.input.push(value_info(
        "lr",
        DataType::UINT8,
        dims,
        [None, Some(3), None, None],
    ));
    let out_dims = ["N", "C", "H_sr", "W_sr"];
    graph.output.push(value_info(
        "sr",
        DataType::UINT8,
        out_dims,
        [None, Some(3), None, None],
    ));
    if opts.probes {
        for (name, input, codes, unsigned) in std::mem::take(&mut w.probes) {
            let ty = if unsigned {
                DataType::UINT8
            } else {
                DataType::INT8
            };
            graph.node.extend([
                identity(&input, &probe_input(&name)),
                identity(&codes, &probe_codes(&name)),
            ]);
            graph
                .output
                .push(value_of_type(&probe_input(&name), DataType::FLOAT));
            graph.output.push(value_of_type(&probe_codes(&name), ty));
        }
    }
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "odm".into();
    m.producer_version = env!("CARGO_PKG_VERSION").into();
    let mut op = OperatorSetIdProto::new();
    op.version = OPSET;
    m.opset_import.push(op);
    m.graph = Some(graph).into();
    for (k, v) in metadata {
        let mut e = StringStringEntryProto::new();
        e.key = k.to_string();
        e.value = v.clone();
        m.metadata_props.push(e);
    }
    Ok(m.write_to_bytes()?)
}
