//! Acceptance (ODM): gating rules on hand-made gradients, the variance loss against finite
//! differences, offset selection on planted layers, and weight-clipping correction.

use burn::backend::Autodiff;
use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::quant::offsets::{choose, spreads, ChannelStats};
use odm::quant::{percentile_rows, weight_range, LayerQuant, QForm, Quantizer, WeightQ};
use odm::spec::{CoopScope, GateRule, OffsetPolicy, Select, VarScope, VarStat};
use odm::train::gating::{Gate, Group};
use odm::train::regularize::variance_loss;

type AD = Autodiff<Cpu>;

fn t<B: burn::tensor::backend::Backend>(v: &[f32]) -> Tensor<B, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

fn host<B: burn::tensor::backend::Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.to_data().to_vec::<f32>().unwrap()
}

/// Two parameter tensors. Tensor A: g_rec = [1, −2, 3, 0], g_reg = [2, 1, −1, 5]:
/// ⟨·,·⟩ = 2 − 2 − 3 + 0 = −3, ‖g_rec‖² = 14, ‖g_reg‖² = 31.
/// Tensor B: g_rec = [1, 1], g_reg = [1, 3]: ⟨·,·⟩ = 4, ‖g_rec‖² = 2, ‖g_reg‖² = 10.
/// Global: dot = 1, ‖g_rec‖² = 16, ‖g_reg‖² = 41, cos = 1/√656.
fn grads() -> (Vec<Tensor<Cpu, 1>>, Vec<Tensor<Cpu, 1>>) {
    (
        vec![t(&[1.0, -2.0, 3.0, 0.0]), t(&[1.0, 1.0])],
        vec![t(&[2.0, 1.0, -1.0, 5.0]), t(&[1.0, 3.0])],
    )
}

fn run(rule: GateRule, scope: &[bool]) -> (Vec<Vec<f32>>, odm::train::gating::GateStats) {
    let (r, v) = grads();
    let gate = Gate {
        rule,
        scope: CoopScope::All,
        lambda: 0.5,
        in_scope: scope,
        groups: &[Some(Group::ConvWeights), Some(Group::Other)],
    };
    let (g, s) = gate.combine(r, v);
    (g.into_iter().map(host).collect(), s)
}

/// g = g_rec + λ·w ⊙ g_reg with λ = 0.5 and w written out per element.
fn expect(w_a: [f32; 4], w_b: [f32; 2]) -> Vec<Vec<f32>> {
    let (ra, va) = ([1.0, -2.0, 3.0, 0.0], [2.0, 1.0, -1.0, 5.0]);
    let (rb, vb) = ([1.0, 1.0], [1.0, 3.0]);
    vec![
        (0..4).map(|i| ra[i] + 0.5 * w_a[i] * va[i]).collect(),
        (0..2).map(|i| rb[i] + 0.5 * w_b[i] * vb[i]).collect(),
    ]
}

fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (x, y) in a.iter().zip(b) {
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }
}

#[test]
fn gating_rules_on_hand_made_gradients() {
    let all = [true, true];
    close(&run(GateRule::Never, &all).0, &expect([0.0; 4], [0.0; 2]));
    close(&run(GateRule::Always, &all).0, &expect([1.0; 4], [1.0; 2]));
    // Sign: A agrees at elements 0 only (1·2 > 0; −2·1 < 0; 3·(−1) < 0; 0·5 = 0); B agrees at both.
    close(
        &run(GateRule::Sign, &all).0,
        &expect([1.0, 0.0, 0.0, 0.0], [1.0, 1.0]),
    );
    // TensorDot: A's dot is −3 → off, B's is 4 → on.
    close(
        &run(GateRule::TensorDot, &all).0,
        &expect([0.0; 4], [1.0; 2]),
    );
    // GlobalDot: total dot = 1 > 0 → on everywhere.
    close(
        &run(GateRule::GlobalDot, &all).0,
        &expect([1.0; 4], [1.0; 2]),
    );
    // CosineSoft global: w = (1/√656 + 1)/2.
    let wg = ((1.0 / 656f64.sqrt() + 1.0) / 2.0) as f32;
    close(
        &run(GateRule::CosineSoft { per_tensor: false }, &all).0,
        &expect([wg; 4], [wg; 2]),
    );
    // CosineSoft per tensor: A: (−3/√(14·31) + 1)/2, B: (4/√20 + 1)/2.
    let wa = ((-3.0 / (14.0f64 * 31.0).sqrt() + 1.0) / 2.0) as f32;
    let wb = ((4.0 / 20f64.sqrt() + 1.0) / 2.0) as f32;
    close(
        &run(GateRule::CosineSoft { per_tensor: true }, &all).0,
        &expect([wa; 4], [wb; 2]),
    );
    // Out of scope (weights only, say B is a bias): w = 0 there; GlobalDot then looks at A alone
    // (dot −3 → off).
    close(
        &run(GateRule::GlobalDot, &[true, false]).0,
        &expect([0.0; 4], [0.0; 2]),
    );
}

#[test]
fn gate_statistics() {
    let (_, s) = run(GateRule::Sign, &[true, true]);
    // Both non-zero: A elements 0, 1, 2 and B elements 0, 1 → 5; conflicting: A 1, 2 → 2.
    assert!((s.conflict_ratio - 2.0 / 5.0).abs() < 1e-9);
    assert!((s.cosine - 1.0 / 656f64.sqrt()).abs() < 1e-6);
    // Sign gates on 3 of 6 elements.
    assert!((s.gated_fraction - 0.5).abs() < 1e-9);
    let (_, s) = run(GateRule::TensorDot, &[true, true]);
    assert!((s.gated_fraction - 2.0 / 6.0).abs() < 1e-9);
}

fn fmap() -> Vec<f32> {
    (0..2 * 3 * 4 * 5)
        .map(|i| ((i * 7919 % 97) as f32 / 13.0 - 3.0) * (1.0 + (i % 3) as f32))
        .collect()
}

/// L as an f64 host function, computed independently: mean over (image, channel) of the
/// population variance over H×W (or over C×H×W per image), optionally its square root.
fn host_loss(x: &[f64], stat: VarStat, scope: VarScope) -> f64 {
    let (b, c, hw) = (2usize, 3usize, 20usize);
    let rows: Vec<&[f64]> = match scope {
        VarScope::PerChannel => x.chunks(hw).collect(),
        VarScope::PerTensor => x.chunks(c * hw).collect(),
    };
    let _ = b;
    let vals: Vec<f64> = rows
        .iter()
        .map(|r| {
            let m = r.iter().sum::<f64>() / r.len() as f64;
            let v = r.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / r.len() as f64;
            match stat {
                VarStat::Variance => v,
                VarStat::Std => (v + 1e-8).sqrt(),
            }
        })
        .collect();
    vals.iter().sum::<f64>() / vals.len() as f64
}

#[test]
fn variance_loss_and_gradient_match_finite_differences() {
    let x0 = fmap();
    for stat in [VarStat::Variance, VarStat::Std] {
        for scope in [VarScope::PerChannel, VarScope::PerTensor] {
            let xt = Tensor::<AD, 4>::from_data(
                TensorData::new(x0.clone(), [2, 3, 4, 5]),
                &Default::default(),
            )
            .require_grad();
            // Two "layers" (the same map twice) average to the same value.
            let l = variance_loss(&[xt.clone(), xt.clone()], stat, scope);
            let lv = host(l.clone())[0] as f64;
            let xd: Vec<f64> = x0.iter().map(|&v| v as f64).collect();
            let expected = host_loss(&xd, stat, scope);
            assert!(
                (lv - expected).abs() < 1e-4 * expected.max(1.0),
                "{stat:?} {scope:?}: {lv} vs {expected}"
            );
            let g = host(xt.grad(&l.backward()).unwrap());
            let h = 1e-3;
            for i in [0usize, 7, 33, 59, 118] {
                let mut p = xd.clone();
                p[i] += h;
                let mut m = xd.clone();
                m[i] -= h;
                let fd = (host_loss(&p, stat, scope) - host_loss(&m, stat, scope)) / (2.0 * h);
                assert!(
                    (g[i] as f64 - fd).abs() < 1e-3 * fd.abs().max(1e-2),
                    "{stat:?} {scope:?} d/dx[{i}] {} vs {fd}",
                    g[i]
                );
            }
        }
    }
}

/// Four toy layers' inputs: an even layer, one whose channels differ sharply in σ (1 vs 10),
/// one whose channels differ in μ (−5 vs +5, equal σ), and another even one.
#[test]
fn offset_selection_finds_the_planted_layers() {
    let (n, c, hw) = (2usize, 4usize, 64usize);
    let make = |mu: [f32; 4], sd: [f32; 4]| -> ChannelStats {
        let mut data = vec![0f32; n * c * hw];
        for b in 0..n {
            for ch in 0..c {
                for k in 0..hw {
                    let z = if k % 2 == 0 { 1.0 } else { -1.0 };
                    data[(b * c + ch) * hw + k] = mu[ch] + sd[ch] * z;
                }
            }
        }
        let mut s = ChannelStats::default();
        s.add(&data, [n, c, 8, 8]);
        s
    };
    let layers = [
        ("even1", make([0.5; 4], [1.0; 4])),
        ("sigma", make([0.5; 4], [1.0, 10.0, 1.0, 10.0])),
        ("mu", make([-5.0, 5.0, -5.0, 5.0], [1.0; 4])),
        ("even2", make([0.2, 0.3, 0.2, 0.3], [1.0, 1.1, 1.0, 1.1])),
    ];
    let stats: Vec<(String, f64, f64)> = layers
        .iter()
        .map(|(name, s)| {
            let (mu, sd) = s.mean_std();
            let (ms, mm) = spreads(&mu, &sd);
            (name.to_string(), ms, mm)
        })
        .collect();
    // σ = [1, 10, 1, 10]: mean 5.5, std 4.5 → M_σ = 9/11.
    assert!((stats[1].1 - 4.5 / 5.5).abs() < 1e-9);
    // μ = ±5 with σ = 1: M_μ = 5.
    assert!((stats[2].2 - 5.0).abs() < 1e-9);
    for policy in [
        OffsetPolicy::Selective {
            scale: Select::Threshold(0.5),
            shift: Select::Threshold(1.0),
        },
        OffsetPolicy::Selective {
            scale: Select::TopFraction(0.25),
            shift: Select::TopFraction(0.25),
        },
    ] {
        let rows = choose(&policy, &stats);
        let scale: Vec<&str> = rows
            .iter()
            .filter(|r| r.scale)
            .map(|r| r.layer.as_str())
            .collect();
        let shift: Vec<&str> = rows
            .iter()
            .filter(|r| r.shift)
            .map(|r| r.layer.as_str())
            .collect();
        assert_eq!(scale, vec!["sigma"], "{policy:?}");
        assert_eq!(shift, vec!["mu"], "{policy:?}");
    }
    let all = choose(&OffsetPolicy::AllBoth, &stats);
    assert!(all.iter().all(|r| r.scale && r.shift));
    assert!(choose(&OffsetPolicy::None, &stats)
        .iter()
        .all(|r| !r.scale && !r.shift));
}

fn p99_host(w: &[f32]) -> f64 {
    let mut a: Vec<f64> = w.iter().map(|v| v.abs() as f64).collect();
    a.sort_by(f64::total_cmp);
    let pos = 0.99 * (a.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    a[lo] + (pos - lo as f64) * (a[hi] - a[lo])
}

#[test]
fn wcc_bound_follows_p99_times_gamma_and_gamma_gets_a_gradient() {
    use odm::models::Params;
    let lq = LayerQuant {
        w_bits: 2,
        a_bits: 2,
        form: QForm::Affine,
        weights: WeightQ::Wcc { percentile: 99.0 },
        bound_grad: Default::default(),
        per_channel: false,
        channels: 4,
        scale: false,
        shift: false,
        dynamic: false,
        active: true,
    };
    // Weights in [−2, 2] plus two outliers above the 99th percentile, so the clip is active.
    let mut w0: Vec<f32> = (0..4 * 4 * 9)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0)
        .collect();
    w0[5] = 5.0;
    w0[77] = -4.0;
    let mut p = Params::<Cpu>::from_parts(
        vec!["l.weight".into(), "l.wcc.gamma".into()],
        vec![vec![4, 4, 3, 3], vec![1]],
        vec![t(&w0), t(&[1.0])],
    );
    // One SGD-like update of W and γ through the fake-quantized weights.
    let pa = p.to_autodiff::<AD>();
    let w = pa.get::<4>("l.weight");
    let (l, u) = weight_range(&pa, "l", &lq, &w);
    let (l, u) = (l.reshape([1, 1, 1, 1]), u.reshape([1, 1, 1, 1]));
    let q = odm::quant::fake_quant(w.clone(), l, u, Quantizer::weight(&lq));
    let target = Tensor::<AD, 4>::zeros([4, 4, 3, 3], &Default::default()).add_scalar(0.3);
    let loss = (q - target).powf_scalar(2.0).sum();
    let g = pa.grads(&loss.backward());
    let g_gamma = host(g[1].clone())[0];
    assert!(
        g_gamma.abs() > 1e-3,
        "γ must receive a gradient, got {g_gamma}"
    );
    let w1: Vec<f32> = host(p.tensors[0].clone())
        .iter()
        .zip(host(g[0].clone()))
        .map(|(a, b)| a - 0.001 * b)
        .collect();
    let gamma1 = 1.0 - 0.001 * g_gamma;
    assert!(gamma1 > 0.0 && gamma1 != 1.0);
    p.tensors[0] = t(&w1);
    p.tensors[1] = t(&[gamma1]);
    let u1 = host(weight_range(&p, "l", &lq, &p.get::<4>("l.weight")).1)[0] as f64;
    let expected = p99_host(&w1) * gamma1 as f64;
    assert!(
        (u1 - expected).abs() < 1e-5 * expected.abs(),
        "u_w {u1} vs P99·γ {expected}"
    );
    let abs: Vec<f32> = w1.iter().map(|v| v.abs()).collect();
    let p99 = host(percentile_rows(
        t::<Cpu>(&abs).reshape([1, abs.len()]),
        99.0,
    ))[0] as f64;
    assert!((p99 - p99_host(&w1)).abs() < 1e-6);
}

#[test]
fn skt_attention_loss_by_hand() {
    use odm::train::skt::at_loss;
    // One image, 2 channels, 1×2 pixels. Student: channel values (1, 0) and (1, 2) per pixel →
    // mean_c F² = (1, 2); normalised (1, 2)/√5. Teacher: mean_c F² = (3, 4) → (0.6, 0.8).
    // L = mean((1/√5 − 0.6)², (2/√5 − 0.8)²).
    let s = Tensor::<Cpu, 1>::from_data(
        TensorData::new(vec![1.0f32, 0.0, 1.0, 2.0], [4]),
        &Default::default(),
    )
    .reshape([1, 2, 1, 2]);
    let tt = Tensor::<Cpu, 1>::from_data(
        TensorData::new(vec![6.0f32.sqrt(), 8.0f32.sqrt(), 0.0, 0.0], [4]),
        &Default::default(),
    )
    .reshape([1, 2, 1, 2]);
    let got = host(at_loss(s, tt))[0] as f64;
    let r5 = 5f64.sqrt();
    let want = ((1.0 / r5 - 0.6).powi(2) + (2.0 / r5 - 0.8).powi(2)) / 2.0;
    assert!((got - want).abs() < 1e-7, "{got} vs {want}");
}
