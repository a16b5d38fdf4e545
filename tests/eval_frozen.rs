//! An evaluation quantizes the weights once (`quant::frozen_weights`) instead of in every
//! forward: the output must be the same bits as the forward that fake-quantizes them itself, for
//! every weight quantizer (learned u_w, max|W|, percentiles, WCC, DAQ), and the frozen plan must
//! leave the weights alone (a frozen plan over the unquantized weights gives another output).

use burn::tensor::{Distribution, Tensor, TensorData};
use odm::backend::Cpu;
use odm::forward::Fwd;
use odm::models::{Model, Params};
use odm::quant::{bound_names, frozen_weights, wcc_name, weight_bound_name, QuantPlan};
use odm::spec::{EdsrSpec, ModelSpec, QuantSpec};

fn bits(t: Tensor<Cpu, 4>) -> Vec<u32> {
    let v = t.to_data().to_vec::<f32>().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// A plan of `preset` on `m` with hand-set bounds: activations [−2, 40] (per channel where the
/// preset says), a learned weight bound of 0.08, WCC's γ = 0.9.
fn quantized(preset: &str, m: &Model, p: &mut Params<Cpu>) -> QuantPlan {
    let spec: QuantSpec = ron::from_str(preset).unwrap();
    let mut plan = QuantPlan::from_spec(&spec, m);
    let d = Default::default();
    let full = |v: f32, n: usize| Tensor::<Cpu, 1>::from_data(TensorData::new(vec![v; n], [n]), &d);
    for (name, l) in &plan.layers {
        let (lo, hi) = bound_names(name);
        let n = if l.per_channel { l.channels } else { 1 };
        if l.has_act() && !p.has(&hi) {
            p.push(&lo, vec![n], full(-2.0, n), 1.0);
            p.push(&hi, vec![n], full(40.0, n), 1.0);
        }
        if l.has_weight() {
            p.push(&weight_bound_name(name), vec![1], full(0.08, 1), 1.0);
            p.push(&wcc_name(name), vec![1], full(0.9, 1), 1.0);
        }
    }
    plan.set_active(true);
    plan
}

#[test]
fn frozen_weights_give_the_same_bits_as_quantizing_in_every_forward() {
    let d = Default::default();
    let spec = EdsrSpec {
        n_resblocks: 2,
        n_feats: 8,
        ..Default::default()
    };
    let m = Model::from_spec(&ModelSpec::Edsr(spec), 2);
    let x = Tensor::<Cpu, 4>::random([1, 3, 13, 11], Distribution::Uniform(0.0, 1.0), &d);
    for preset in [
        "MinMax((w_bits: 2, a_bits: 2))",
        "Pams((w_bits: 3, a_bits: 3))",
        "DdtbStatic((w_bits: 2, a_bits: 2))",
        "Daq((w_bits: 2, a_bits: 2))",
        "Odm((w_bits: 2, a_bits: 2, weight_clip: Wcc(percentile: 99.0)))",
        "Odm((w_bits: 4, a_bits: 4, per_channel: true))",
    ] {
        let mut p = Params::<Cpu>::init(&m.decls(), 7, &d);
        let plan = quantized(preset, &m, &mut p);
        assert!(plan.layers.iter().any(|(_, l)| l.has_weight()), "{preset}");
        let (fp, fq) = frozen_weights(&m, &p, &plan);
        assert!(!fq.layers.iter().any(|(_, l)| l.has_weight()), "{preset}");
        let want = bits(m.forward(&Fwd::plain(&p, &plan), x.clone()));
        assert_eq!(
            want,
            bits(m.forward(&Fwd::plain(&fp, &fq), x.clone())),
            "{preset}"
        );
        let raw = bits(m.forward(&Fwd::plain(&p, &fq), x.clone()));
        assert_ne!(
            want, raw,
            "{preset}: quantizing the weights changes nothing here"
        );
    }
}
