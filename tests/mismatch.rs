//! Acceptance (issue 27, part 2): the mismatch regularizer's gradients, both residuals, derived
//! by hand on a 2-bit AdaBM quantizer over [l, u] = [0, 3] (levels 0, 1, 2, 3): an element inside
//! the range, one clipped above, one clipped below, one exactly on a decision boundary.

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::models::Params;
use odm::quant::{LayerQuant, QForm, QuantPlan, WeightQ};
use odm::spec::Residual;
use odm::train::regularize::mismatch_loss;

type AD = Autodiff<Cpu>;

/// x: 0.3 inside (q = 0), 4.0 clipped above (q = 3), 1.5 on the boundary between levels 1 and 2,
/// −1.0 clipped below (q = 0). At 1.5 the quantizer computes round((1.5 − 0)/3·3) = round(1.5)
/// and rounds ties to even, as `torch.round` does, so q = 2: the level the rounding picked, not
/// the nearer one (both are 0.5 away).
const X: [f32; 4] = [0.3, 4.0, 1.5, -1.0];
const Q: [f64; 4] = [0.0, 3.0, 2.0, 0.0];

fn t(v: &[f32]) -> Tensor<Cpu, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

/// One 2-bit AdaBM activation point `l`, active.
fn plan() -> QuantPlan {
    let lq = LayerQuant {
        w_bits: 32,
        a_bits: 2,
        form: QForm::Affine,
        weights: WeightQ::Learned,
        bound_grad: Default::default(),
        per_channel: false,
        channels: 1,
        scale: false,
        shift: false,
        dynamic: false,
        active: true,
    };
    QuantPlan {
        layers: vec![("l".into(), lq)],
        gates_live: false,
    }
}

/// (∂L_M/∂x, ∂L_M/∂l, ∂L_M/∂u) from the code.
fn grads(residual: Residual) -> (Vec<f32>, f32, f32) {
    let p = Params::<Cpu>::from_parts(
        vec!["x".into(), "l.act.lo".into(), "l.act.hi".into()],
        vec![vec![1, 1, 1, 4], vec![1], vec![1]],
        vec![t(&X), t(&[0.0]), t(&[3.0])],
    );
    let pa = p.to_autodiff::<AD>();
    let x = pa.get::<4>("x");
    let loss = mismatch_loss(&pa, &plan(), &[("l".into(), x)], residual);
    let g = pa.grads(&loss.backward());
    let host = |v: Tensor<Cpu, 1>| v.to_data().to_vec::<f32>().unwrap();
    (
        host(g[0].clone()),
        host(g[1].clone())[0],
        host(g[2].clone())[0],
    )
}

/// d = x − q = [0.3, 1, −0.5, −1], ‖d‖ = √2.34.
fn residual_and_norm() -> ([f64; 4], f64) {
    let d: Vec<f64> = X.iter().zip(Q).map(|(x, q)| *x as f64 - q).collect();
    let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((n - 2.34f64.sqrt()).abs() < 1e-6);
    ([d[0], d[1], d[2], d[3]], n)
}

fn near(a: f32, b: f64, what: &str) {
    assert!((a as f64 - b).abs() < 1e-5, "{what}: {a} vs {b}");
}

#[test]
fn ste_residual_moves_only_clipped_elements_and_the_bounds() {
    let (gx, gl, gu) = grads(Residual::Ste);
    let (d, n) = residual_and_norm();
    // ∂L/∂x = (d/‖d‖)·(1 − ∂q/∂x); the STE gives ∂q/∂x = 1 on [l, u] (AdaBM's clamp), 0 outside:
    // 0 inside and on the boundary, d/‖d‖ where clipped.
    let want = [0.0, d[1] / n, 0.0, d[3] / n];
    for k in 0..4 {
        near(gx[k], want[k], &format!("∂L/∂x[{k}]"));
    }
    // ∂L/∂u = −Σ (d/‖d‖)·∂q/∂u with ∂q/∂u = 1[x > u] + (q − clip(x))/(u − l):
    // clip(x) = [0.3, 3, 1.5, 0], (q − clip(x))/3 = [−0.1, 0, 1/6, 0], ∂q/∂u = [−0.1, 1, 1/6, 0].
    let dq_du = [-0.1, 1.0, 1.0 / 6.0, 0.0];
    // ∂q/∂l = 1[x < l] − (q − clip(x))/(u − l) = [0.1, 0, −1/6, 1].
    let dq_dl = [0.1, 0.0, -1.0 / 6.0, 1.0];
    let dot = |a: [f64; 4]| -(0..4).map(|k| d[k] * a[k]).sum::<f64>() / n;
    near(gu, dot(dq_du), "∂L/∂u");
    near(gl, dot(dq_dl), "∂L/∂l");
    // By hand: ∂L/∂u = −(−0.03 + 1 − 1/12)/√2.34, ∂L/∂l = −(0.03 + 1/12 − 1)/√2.34.
    near(gu, -(1.0 - 0.03 - 1.0 / 12.0) / n, "∂L/∂u by hand");
    near(gl, (1.0 - 0.03 - 1.0 / 12.0) / n, "∂L/∂l by hand");
}

#[test]
fn detached_residual_pulls_every_element_to_its_level() {
    let (gx, gl, gu) = grads(Residual::Detached);
    let (d, n) = residual_and_norm();
    // q held constant: ∂L/∂x = d/‖d‖ everywhere. Inside, 0.3 is pulled down to level 0; on
    // the boundary, 1.5 is pulled up to 2 (the level the tie went to); clipped elements as with
    // the STE.
    for k in 0..4 {
        near(gx[k], d[k] / n, &format!("∂L/∂x[{k}]"));
    }
    assert!(gx[2] < 0.0, "gradient descent raises 1.5 towards level 2");
    // The bounds get nothing from their own layer's detached q.
    assert_eq!((gl, gu), (0.0, 0.0));
}

#[test]
fn both_residuals_have_the_same_value() {
    let (_, n) = residual_and_norm();
    let p = Params::<Cpu>::from_parts(
        vec!["l.act.lo".into(), "l.act.hi".into()],
        vec![vec![1], vec![1]],
        vec![t(&[0.0]), t(&[3.0])],
    );
    for r in [Residual::Ste, Residual::Detached] {
        let x = t(&X).reshape([1, 1, 1, 4]);
        let l = mismatch_loss(&p, &plan(), &[("l".into(), x)], r);
        let v = l.into_data().to_vec::<f32>().unwrap()[0] as f64;
        assert!((v - n).abs() < 1e-6, "{r:?}: L_M {v} vs √2.34");
    }
}
