//! The same-padded convolution of [`super::cpu_conv`] on burn-flex tensors: a plain forward for
//! `Flex`, and a custom autodiff operation for `Autodiff<Flex>` whose backward computes the
//! input, weight and bias gradients with the same kernels.

use super::cpu_conv::{self, Geom};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::{Shape, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};

type Ad = burn::backend::Autodiff<Flex>;
/// A float tensor of the training backend: the inner tensor plus its graph node.
pub(super) type AdPrim = <Ad as burn::tensor::backend::BackendTypes>::FloatTensorPrimitive;

/// Contiguous `f32` values of a flex tensor (copies only when the layout is not contiguous).
pub(super) fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => s.into(),
        None => t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("f32")
            .to_vec()
            .into(),
    }
}

fn tensor(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, Shape::from(shape.to_vec())))
}

fn geom(x: &FlexTensor, w: &FlexTensor) -> Geom {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    Geom {
        n: xs[0],
        ci: xs[1],
        h: xs[2],
        w: xs[3],
        co: ws[0],
        k: ws[2],
    }
}

/// Forward on flex tensors: y = conv(x, w) + b.
pub fn forward(x: &FlexTensor, w: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let g = geom(x, w);
    let y = cpu_conv::forward(&g, &values(x), &values(w), Some(&values(b)));
    tensor(y, &[g.n, g.co, g.h, g.w])
}

/// The backward node: keeps the input and the weights.
#[derive(Debug)]
struct SameConv;

impl Backward<Flex, 3> for SameConv {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let g = geom(&x, &w);
        let dy_v = values(&dy);
        if let Some(node) = node_x {
            let dx = cpu_conv::grad_input(&g, &dy_v, &values(&w));
            grads.register::<Flex>(node.id, tensor(dx, &[g.n, g.ci, g.h, g.w]));
        }
        if node_w.is_some() || node_b.is_some() {
            let (dw, db) = cpu_conv::grad_weight(&g, &values(&x), &dy_v);
            if let Some(node) = node_w {
                grads.register::<Flex>(node.id, tensor(dw, &[g.co, g.ci, g.k, g.k]));
            }
            if let Some(node) = node_b {
                grads.register::<Flex>(node.id, tensor(db, &[g.co]));
            }
        }
    }
}

/// Forward on training tensors, recording [`SameConv`] when any input is tracked. `out`, when
/// given, is the already known result of this very forward (see `forward::Capture::replay`) and is used as is.
pub fn forward_ad(x: AdPrim, w: AdPrim, b: AdPrim, out: Option<FlexTensor>) -> AdPrim {
    let y = out.unwrap_or_else(|| forward(&x.primitive, &w.primitive, &b.primitive));
    match SameConv
        .prepare::<NoCheckpointing>([x.node.clone(), w.node.clone(), b.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x.primitive, w.primitive), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    }
}

/// The inner flex tensor of a training tensor.
pub fn inner(t: TensorPrimitive<Ad>) -> FlexTensor {
    match t {
        TensorPrimitive::Float(t) => t.primitive,
        TensorPrimitive::QFloat(_) => panic!("quantized tensors are not convolved here"),
    }
}
