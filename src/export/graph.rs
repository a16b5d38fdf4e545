//! A small writer of ONNX graphs (the `onnx.proto` messages of `onnx-protobuf`): nodes with one
//! output, initializers stored little-endian in `raw_data`, fresh value names.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};

/// Nodes and initializers in the order they were added (a topological order).
#[derive(Default)]
pub struct Graph {
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    n: usize,
}

/// An integer attribute.
pub fn attr_i(name: &str, v: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INT.into();
    a.i = v;
    a
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::INTS.into();
    a.ints = v.to_vec();
    a
}

/// A string attribute.
pub fn attr_s(name: &str, v: &str) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.into();
    a.type_ = AttributeType::STRING.into();
    a.s = v.as_bytes().to_vec();
    a
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.n += 1;
        format!("{hint}_{}", self.n)
    }

    /// Add node `op` on `inputs`; returns its output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(&op.to_lowercase());
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.name = format!("{out}_node");
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.clone()];
        n.attribute = attrs;
        self.nodes.push(n);
        out
    }

    fn init(&mut self, hint: &str, dims: &[usize], ty: DataType, raw: Vec<u8>) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = ty as i32;
        t.raw_data = raw;
        self.inits.push(t);
        name
    }

    /// A float32 initializer.
    pub fn f32s(&mut self, hint: &str, dims: &[usize], v: &[f32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(hint, dims, DataType::FLOAT, raw)
    }

    /// An 8-bit integer initializer (signed or unsigned).
    pub fn i8s(&mut self, hint: &str, dims: &[usize], v: &[i32], signed: bool) -> String {
        let (ty, raw) = if signed {
            (DataType::INT8, v.iter().map(|&x| x as i8 as u8).collect())
        } else {
            (DataType::UINT8, v.iter().map(|&x| x as u8).collect())
        };
        self.init(hint, dims, ty, raw)
    }

    /// A 32-bit integer initializer.
    pub fn i32s(&mut self, hint: &str, dims: &[usize], v: &[i32]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(hint, dims, DataType::INT32, raw)
    }

    /// An int64 initializer (shapes).
    pub fn i64s(&mut self, hint: &str, v: &[i64]) -> String {
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.init(hint, &[v.len()], DataType::INT64, raw)
    }
}
