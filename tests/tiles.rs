//! Tiled inference equals untiled inference bit for bit (issue 13): every backbone, FP and
//! quantized, on odd image sizes larger than one tile; and the receptive radius by hand.

use burn::tensor::{Distribution, Tensor, TensorData};
use odm::backend::Cpu;
use odm::eval::tiles::{cores, forward_tiled, receptive_radius};
use odm::models::{Model, Params};
use odm::quant::{bound_names, weight_bound_name, QuantPlan};
use odm::spec::{EdsrSpec, ModelSpec, QuantOpts, QuantSpec, RdnSpec, SrResNetSpec};

fn bits(t: Tensor<Cpu, 4>) -> Vec<u32> {
    t.to_data()
        .to_vec::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// A W4A4 MinMax plan with hand-set bounds: activations [−2, 40], weight bound 0.08.
fn quantized(m: &Model, p: &mut Params<Cpu>) -> QuantPlan {
    let opts = QuantOpts::bits(4, 4);
    let mut plan = QuantPlan::from_spec(&QuantSpec::MinMax(opts), m);
    let d = Default::default();
    let one = |v: f32| Tensor::<Cpu, 1>::from_data(TensorData::new(vec![v], [1]), &d);
    for (name, l) in &plan.layers {
        let (lo, hi) = bound_names(name);
        if l.has_act() {
            p.push(&lo, vec![1], one(-2.0), 1.0);
            p.push(&hi, vec![1], one(40.0), 1.0);
        }
        if l.has_weight() {
            p.push(&weight_bound_name(name), vec![1], one(0.08), 1.0);
        }
    }
    plan.set_active(true);
    plan
}

#[test]
fn receptive_radius_by_hand() {
    // EDSR-baseline ×4: head 1 + 32 block convs + body_end 1 + upsampler 1 (LR) + ½ (×2) + tail
    // ¼ (×4) = 35.75 → 36 LR pixels.
    let m = Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), 4);
    assert_eq!(receptive_radius(&m.convs()), 36);
    // SRResNet ×2, 2 blocks: 9×9 head 4 + 4 + body_end 1 + upsampler 1 + 9×9 tail at ×2: 2 → 12.
    let spec = SrResNetSpec {
        n_resblocks: 2,
        n_feats: 8,
        ..Default::default()
    };
    let s = Model::from_spec(&ModelSpec::SrResNet(spec), 2);
    assert_eq!(receptive_radius(&s.convs()), 12);
    assert_eq!(
        cores(5, 7, 3),
        [
            (0, 3, 0, 3),
            (0, 3, 3, 6),
            (0, 3, 6, 7),
            (3, 5, 0, 3),
            (3, 5, 3, 6),
            (3, 5, 6, 7)
        ]
    );
}

#[test]
fn tiled_equals_untiled_for_every_backbone() {
    let d = Default::default();
    let models = [
        Model::from_spec(
            &ModelSpec::Edsr(EdsrSpec {
                n_resblocks: 2,
                n_feats: 8,
                ..Default::default()
            }),
            4,
        ),
        Model::from_spec(
            &ModelSpec::SrResNet(SrResNetSpec {
                n_resblocks: 2,
                n_feats: 8,
                ..Default::default()
            }),
            2,
        ),
        Model::from_spec(
            &ModelSpec::Rdn(RdnSpec {
                d: 2,
                c: 2,
                g: 4,
                g0: 8,
                ..Default::default()
            }),
            3,
        ),
    ];
    for m in models {
        let mut p = Params::<Cpu>::init(&m.decls(), 11, &d);
        let x = Tensor::<Cpu, 4>::random([1, 3, 37, 29], Distribution::Uniform(0.0, 255.0), &d);
        let fp = QuantPlan::fp();
        let whole = bits(forward_tiled(&m, &p, &fp, x.clone(), None));
        for t in [8, 13] {
            let tiled = bits(forward_tiled(&m, &p, &fp, x.clone(), Some(t)));
            assert!(whole == tiled, "{:?} FP, tile {t}", m.spec());
        }
        let q = quantized(&m, &mut p);
        let whole_q = bits(forward_tiled(&m, &p, &q, x.clone(), None));
        assert!(whole_q != whole, "the plan quantizes");
        let tiled_q = bits(forward_tiled(&m, &p, &q, x, Some(10)));
        assert!(whole_q == tiled_q, "{:?} W4A4, tile 10", m.spec());
    }
}
