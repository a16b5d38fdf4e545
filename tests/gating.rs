//! Acceptance (issue 27, part 3): the cooperation scopes and the per-group gate log on
//! hand-made gradients, every expected value derived by hand in the comments.

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::spec::{CoopScope, GateRule};
use odm::train::gating::{Gate, GateStats, Group};

fn t(v: &[f32]) -> Tensor<Cpu, 1> {
    Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Default::default())
}

/// Three tensors, λ = 0.5.
/// A, a conv weight: g_rec = [1, −2, 3, 0], g_reg = [2, 1, −1, 5]: dot −3, ‖g_rec‖² 14,
/// ‖g_reg‖² 31.
/// B, a bound: g_rec = [1, 1], g_reg = [1, 3]: dot 4, ‖g_rec‖² 2, ‖g_reg‖² 10.
/// C, a bias: g_rec = [2], g_reg = [−1]: dot −2, ‖g_rec‖² 4, ‖g_reg‖² 1.
/// All three: dot −1, ‖g_rec‖² 20, ‖g_reg‖² 42, cos −1/√840.
const REC: [&[f32]; 3] = [&[1.0, -2.0, 3.0, 0.0], &[1.0, 1.0], &[2.0]];
const REG: [&[f32]; 3] = [&[2.0, 1.0, -1.0, 5.0], &[1.0, 3.0], &[-1.0]];
const GROUPS: [Option<Group>; 3] = [
    Some(Group::ConvWeights),
    Some(Group::Bounds),
    Some(Group::Other),
];

fn run(rule: GateRule, scope: CoopScope, in_scope: &[bool]) -> (Vec<Vec<f32>>, GateStats) {
    let gate = Gate {
        rule,
        scope,
        lambda: 0.5,
        in_scope,
        groups: &GROUPS,
    };
    let (g, s) = gate.combine(REC.map(t).to_vec(), REG.map(t).to_vec());
    let host = |x: Tensor<Cpu, 1>| x.to_data().to_vec::<f32>().unwrap();
    (g.into_iter().map(host).collect(), s)
}

/// g = g_rec + 0.5·w·g_reg with one scalar w per tensor.
fn expect(w: [f64; 3]) -> Vec<Vec<f32>> {
    (0..3)
        .map(|k| {
            REC[k]
                .iter()
                .zip(REG[k])
                .map(|(r, v)| (*r as f64 + 0.5 * w[k] * *v as f64) as f32)
                .collect()
        })
        .collect()
}

fn close(a: &[Vec<f32>], b: &[Vec<f32>]) {
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            assert!((p - q).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }
}

fn near(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-6, "{a} vs {b}");
}

const SOFT: GateRule = GateRule::CosineSoft { per_tensor: false };
const ALL3: [bool; 3] = [true, true, true];

#[test]
fn cosine_scopes_pool_what_they_say() {
    // All: w = (1 − 1/√840)/2 on every tensor.
    let w = (1.0 - 1.0 / 840f64.sqrt()) / 2.0;
    close(&run(SOFT, CoopScope::All, &ALL3).0, &expect([w; 3]));
    // Conv weights: the cosine of A alone, −3/√434, and its weight on every tensor in scope.
    let w = (1.0 - 3.0 / 434f64.sqrt()) / 2.0;
    close(&run(SOFT, CoopScope::ConvWeights, &ALL3).0, &expect([w; 3]));
    // Per tensor: A (1 − 3/√434)/2, B (1 + 4/√20)/2, C (1 + (−2)/√4)/2 = 0.
    let wa = (1.0 - 3.0 / 434f64.sqrt()) / 2.0;
    let wb = (1.0 + 4.0 / 20f64.sqrt()) / 2.0;
    close(
        &run(SOFT, CoopScope::PerTensor, &ALL3).0,
        &expect([wa, wb, 0.0]),
    );
    // The same as the rule's own per-tensor form.
    let own = GateRule::CosineSoft { per_tensor: true };
    close(&run(own, CoopScope::All, &ALL3).0, &expect([wa, wb, 0.0]));
}

#[test]
fn dot_scopes_pool_what_they_say() {
    // All: dot −1 → off. Conv weights: A's −3 → off. Per tensor: only B (4 > 0) on.
    let g = GateRule::GlobalDot;
    close(&run(g, CoopScope::All, &ALL3).0, &expect([0.0; 3]));
    close(&run(g, CoopScope::ConvWeights, &ALL3).0, &expect([0.0; 3]));
    close(
        &run(g, CoopScope::PerTensor, &ALL3).0,
        &expect([0.0, 1.0, 0.0]),
    );
    // Without C (out of scope, w = 0): A + B pool to dot 1 → on for A and B.
    let ab = [true, true, false];
    close(&run(g, CoopScope::All, &ab).0, &expect([1.0, 1.0, 0.0]));
    // Conv weights still see A alone: off.
    close(&run(g, CoopScope::ConvWeights, &ab).0, &expect([0.0; 3]));
}

#[test]
fn conv_weight_scope_ignores_tensors_outside_the_gate() {
    // A out of scope: no conv weight is pooled, cos = 0, w = 1/2 on B and C; A keeps g_rec.
    let (g, _) = run(SOFT, CoopScope::ConvWeights, &[false, true, true]);
    close(&g, &expect([0.0, 0.5, 0.5]));
}

#[test]
fn group_log_by_hand() {
    let (_, s) = run(SOFT, CoopScope::All, &ALL3);
    let w = (1.0 - 1.0 / 840f64.sqrt()) / 2.0;
    near(s.cosine, -1.0 / 840f64.sqrt());
    // Per group: ‖g_rec‖, ‖0.5·w·g_reg‖, the group's own cosine, mean w.
    let want = [
        (
            14f64.sqrt(),
            0.5 * w * 31f64.sqrt(),
            -3.0 / 434f64.sqrt(),
            w,
        ),
        (2f64.sqrt(), 0.5 * w * 10f64.sqrt(), 4.0 / 20f64.sqrt(), w),
        (2.0, 0.5 * w, -1.0, w),
    ];
    for (g, (rec, reg, cos, wt)) in s.groups.iter().zip(want) {
        near(g.norm_rec, rec);
        near(g.norm_reg, reg);
        near(g.cosine, cos);
        near(g.weight, wt);
    }
    // Sign: A agrees at element 0 only (1·2 > 0): mean w 1/4, ‖0.5·w⊙g_reg‖ = 0.5·2; B agrees
    // everywhere: 1, 0.5·√10; C disagrees: 0, 0. With B out of scope: 0, 0 there.
    let (_, s) = run(GateRule::Sign, CoopScope::All, &[true, false, true]);
    let want = [(0.25, 1.0), (0.0, 0.0), (0.0, 0.0)];
    for (g, (wt, reg)) in s.groups.iter().zip(want) {
        near(g.weight, wt);
        near(g.norm_reg, reg);
    }
    // The global gated fraction is over the tensors in scope (A and C: 5 elements, 1 gated).
    near(s.gated_fraction, 1.0 / 5.0);
    // A frozen tensor (group None) is in no group: the bounds group is then empty.
    let gate = Gate {
        rule: SOFT,
        scope: CoopScope::All,
        lambda: 0.5,
        in_scope: &[true, false, true],
        groups: &[Some(Group::ConvWeights), None, Some(Group::Other)],
    };
    let (_, s) = gate.combine(REC.map(t).to_vec(), REG.map(t).to_vec());
    assert_eq!(s.groups[1], Default::default());
}
