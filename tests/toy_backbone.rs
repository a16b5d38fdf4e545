//! Adding a backbone takes one module: a toy network, declared with the `Builder` and run
//! against the same forward context, quantization plan and parameter store as EDSR, RDN and
//! SRResNet. (To make it selectable from a spec, add one arm to `models::Arch` and to
//! `spec::ModelSpec`; ARCHITECTURE.md walks through it.) The assertions are hand-derived:
//! parameter counts, PyTorch keys, the quantization points, and the forward against burn's own
//! `conv2d` on hand-quantized inputs and weights.

/// The whole backbone: head conv → ReLU → body conv (quantized) → pixel shuffle ×2 → tail conv.
mod toy {
    use burn::tensor::activation::relu;
    use burn::tensor::backend::Backend;
    use burn::tensor::Tensor;
    use odm::models::layers::pixel_shuffle;
    use odm::models::{Bias, Builder, Conv, Ops, Q};

    pub struct Toy {
        head: Conv,
        body: Conv,
        tail: Conv,
    }

    impl Toy {
        /// `f` features; PyTorch keys `net.0`, `net.2`, `up.0`.
        pub fn build(f: usize, b: &mut Builder) -> Self {
            let head = b.conv("head", "net.0", [3, f, 3], Bias::Default);
            let body = b.conv("body", "net.2", [f, 4 * f, 3], Bias::None);
            b.quantize(&body, Q::BOTH, Q::WEIGHT);
            b.upscale(2);
            let tail = b.conv("tail", "up.0", [f, 3, 3], Bias::Default);
            Self { head, body, tail }
        }

        pub fn forward<B: Backend>(&self, f: &impl Ops<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
            let h = relu(f.conv(&self.head, x));
            f.conv(&self.tail, pixel_shuffle(f.conv(&self.body, h), 2))
        }
    }
}

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor, TensorData};
use odm::backend::Cpu;
use odm::forward::Fwd;
use odm::models::layers::pixel_shuffle;
use odm::models::{Builder, Layers, Params, QPoint};
use odm::quant::{bound_names, weight_bound_name, QuantPlan};
use odm::spec::{Placement, QuantOpts, QuantSpec};

fn built(f: usize) -> (toy::Toy, Layers) {
    let mut b = Builder::new();
    let t = toy::Toy::build(f, &mut b);
    (t, b.finish())
}

fn host(t: Tensor<Cpu, 4>) -> Vec<f32> {
    t.to_data().to_vec::<f32>().unwrap()
}

/// burn's conv2d with `same` padding, independent of our kernels.
fn reference_conv(
    x: Tensor<Cpu, 4>,
    w: Tensor<Cpu, 4>,
    b: Option<Tensor<Cpu, 1>>,
) -> Tensor<Cpu, 4> {
    let p = w.dims()[2] / 2;
    conv2d(x, w, b, ConvOptions::new([1, 1], [p, p], [1, 1], 1))
}

#[test]
fn declarations_keys_and_points_derive_from_the_build() {
    let (_, l) = built(4);
    let names: Vec<&str> = l.decls.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "head.weight",
            "head.bias",
            "body.weight",
            "tail.weight",
            "tail.bias"
        ]
    );
    // 3·4·9 + 4 + 4·16·9 + 4·3·9 + 3 = 112 + 576 + 111.
    let count: usize = l
        .decls
        .iter()
        .map(|d| d.shape.iter().product::<usize>())
        .sum();
    assert_eq!(count, 799);
    assert_eq!(l.pytorch_key("body.weight"), "net.2.weight");
    assert_eq!(l.pytorch_key("tail.bias"), "up.0.bias");
    assert_eq!(l.pytorch_key("other.weight"), "other.weight");
    // The tail runs at twice the input resolution.
    let res: Vec<usize> = l.convs.iter().map(|c| c.res).collect();
    assert_eq!(res, [1, 1, 2]);
    assert_eq!(
        l.quant_points(Placement::ConvInput),
        [QPoint::new("body", true, true, 4)]
    );
    assert_eq!(
        l.quant_points(Placement::Block),
        [QPoint::new("body", true, false, 4)]
    );
}

#[test]
fn quantized_forward_matches_hand_quantized_conv2d() {
    let device = Default::default();
    let (toy, l) = built(2);
    let mut p = Params::<Cpu>::init(&l.decls, 7, &device);
    let spec = QuantSpec::MinMax(QuantOpts::bits(2, 2));
    let mut plan = QuantPlan::for_layers(&spec, &l, false);
    assert_eq!(plan.layers.len(), 1);
    // Activation range [0, 0.6] (the affine form, 2 bits: levels 0, 0.2, 0.4, 0.6); learned weight
    // bound u_w = 0.2 (range [−0.2, 0.2], levels −0.2, −0.0667, 0.0667, 0.2).
    let (lo, hi) = bound_names("body");
    let one = |v: f32| Tensor::<Cpu, 1>::from_data(TensorData::new(vec![v], [1]), &device);
    p.push(&lo, vec![1], one(0.0), 1.0);
    p.push(&hi, vec![1], one(0.6), 1.0);
    p.push(&weight_bound_name("body"), vec![1], one(0.2), 1.0);
    plan.set_active(true);

    let x = Tensor::<Cpu, 4>::random([1, 3, 5, 4], Distribution::Uniform(0.0, 1.0), &device);
    let y = toy.forward(&Fwd::plain(&p, &plan), x.clone());
    assert_eq!(y.dims(), [1, 3, 10, 8]);

    // By hand: q(v) over [l, u] with n = 3: round((clamp(v) − l)/(u − l)·3)/3·(u − l) + l.
    let q = |t: Tensor<Cpu, 4>, l: f32, u: f32| {
        let d = t.dims();
        let v: Vec<f32> = host(t)
            .iter()
            .map(|v| ((v.clamp(l, u) - l) / (u - l) * 3.0).round() / 3.0 * (u - l) + l)
            .collect();
        Tensor::<Cpu, 4>::from_data(TensorData::new(v, d), &device)
    };
    let (hw, hb) = (p.get::<4>("head.weight"), p.get::<1>("head.bias"));
    let h = burn::tensor::activation::relu(reference_conv(x, hw, Some(hb)));
    let bw = q(p.get::<4>("body.weight"), -0.2, 0.2);
    let u = pixel_shuffle(reference_conv(q(h, 0.0, 0.6), bw, None), 2);
    let (tw, tb) = (p.get::<4>("tail.weight"), p.get::<1>("tail.bias"));
    let want = host(reference_conv(u, tw, Some(tb)));
    // The body contributes (its quantized input is not all zero).
    let (tw0, tb0) = (p.get::<4>("tail.weight"), p.get::<1>("tail.bias"));
    let bias_only = host(reference_conv(
        Tensor::zeros([1, 2, 10, 8], &device),
        tw0,
        Some(tb0),
    ));
    assert!(want
        .iter()
        .zip(&bias_only)
        .any(|(a, b)| (a - b).abs() > 1e-3));
    for (a, b) in host(y).iter().zip(&want) {
        assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}
