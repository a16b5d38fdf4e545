//! Grid expansion: the Cartesian product of axes and seeds, with names sharing the prefix.

mod common;

#[test]
fn grid_expands_into_named_runs() {
    let tmp = common::tempdir();
    let extra = r#"grid: (
        axes: [
            (field: "optim.lr", values: [1e-3, 2e-3]),
            (field: "model.n_feats", values: [8, 16]),
        ],
        seeds: [1, 2, 3],
    ),"#;
    let f = common::write(tmp.path(), "g.ron", &common::toy_spec("sweep", 0, 2, extra));
    let loaded = odm::spec::load_file(&f).unwrap();
    assert_eq!(loaded.runs.len(), 2 * 2 * 3);
    let r = &loaded.runs[3];
    // Order: lr outermost, then n_feats, then seeds: index 3 = lr 1e-3, n_feats 16, seed 1.
    assert_eq!(r.optim.lr(), 1e-3);
    let odm::spec::ModelSpec::Edsr(m) = &r.model else {
        panic!("EDSR expected")
    };
    assert_eq!(m.n_feats, 16);
    assert_eq!(r.seed, 1);
    assert!(r.name.starts_with("sweep."), "{}", r.name);
    assert!(r.grid.is_none());
    let names: std::collections::HashSet<_> = loaded.runs.iter().map(|r| r.name.clone()).collect();
    assert_eq!(names.len(), 12, "run names must be distinct");
}

#[test]
fn grid_with_bad_field_names_the_axis() {
    let tmp = common::tempdir();
    let extra = r#"grid: (axes: [(field: "optim.lrr", values: [1e-3])]),"#;
    let f = common::write(tmp.path(), "g.ron", &common::toy_spec("sweep", 0, 2, extra));
    let e = odm::spec::load_file(&f).unwrap_err().to_string();
    assert!(
        e.contains("grid.axes[0].field") && e.contains("optim.lrr"),
        "{e}"
    );
}

#[test]
fn default_late_fields_do_not_change_the_run_hash() {
    let tmp = common::tempdir();
    let plain = common::write(tmp.path(), "a.ron", &common::toy_spec("h", 1, 2, ""));
    let explicit = common::write(
        tmp.path(),
        "b.ron",
        &common::toy_spec(
            "h",
            1,
            2,
            "regularizer: None, gating: (rule: Sign, params: All, log_every: 10), offsets: None,",
        ),
    );
    let ha = odm::commands::canonical(&odm::spec::load_file(&plain).unwrap().runs[0]);
    let hb = odm::commands::canonical(&odm::spec::load_file(&explicit).unwrap().runs[0]);
    assert_eq!(ha, hb);
    assert!(!ha.0.contains("regularizer"), "{}", ha.0);
    // A non-default value does change it.
    let other = common::write(
        tmp.path(),
        "c.ron",
        &common::toy_spec("h", 1, 2, "gating: (rule: Always),"),
    );
    let hc = odm::commands::canonical(&odm::spec::load_file(&other).unwrap().runs[0]);
    assert_ne!(ha.1, hc.1);
}

#[test]
fn seed_table_means_and_sample_stds() {
    use odm::report::{mean_std, seed_table};
    // Three seeds 30.0, 30.2, 30.4: mean 30.2, sample std 0.2.
    let (m, s) = mean_std(&[30.0, 30.2, 30.4]);
    assert!((m - 30.2).abs() < 1e-12 && (s - 0.2).abs() < 1e-12);
    let run = |name: &str, p: f64| {
        (
            name.to_string(),
            vec![
                ("Set5".to_string(), (p, 0.9)),
                ("B100".to_string(), (p - 3.0, 0.8)),
            ],
        )
    };
    let t = seed_table(&[
        run("a.x.seed-1", 30.0),
        run("a.x.seed-2", 30.2),
        run("a.x.seed-3", 30.4),
        run("a.y.seed-1", 29.0),
    ]);
    assert!(
        t.starts_with("| run | seeds | Set5 PSNR / SSIM | B100 PSNR / SSIM |"),
        "{t}"
    );
    assert!(
        t.contains(
            "| a.x | 3 | 30.200 ± 0.200 / 0.9000 ± 0.0000 | 27.200 ± 0.200 / 0.8000 ± 0.0000 |"
        ),
        "{t}"
    );
    assert!(t.contains("| a.y | 1 | 29.000 ± 0.000 /"), "{t}");
}

#[test]
fn points_select_grid_runs_and_list_shows_their_state() {
    use odm::commands::{list, parse_points, run, RunOpts};
    assert_eq!(parse_points("3").unwrap(), vec![3]);
    assert_eq!(parse_points("5-7,0, 2,6").unwrap(), vec![0, 2, 5, 6, 7]);
    for bad in ["", "a", "3-1", "1-", "-2"] {
        let e = parse_points(bad).unwrap_err().to_string();
        assert!(e.contains("--point"), "{bad:?}: {e}");
    }
    let tmp = common::tempdir();
    let extra = r#"grid: (axes: [(field: "optim.lr", values: [1e-3, 2e-3])], seeds: [1, 2]),"#;
    let f = common::write(tmp.path(), "g.ron", &common::toy_spec("pts", 0, 1, extra));
    let opts = RunOpts {
        out: tmp.path().join("results"),
        threads: Some(1),
        ..Default::default()
    };
    let loaded = odm::spec::load_file(&f).unwrap();
    // Run point 2 only (lr 2e-3, seed 1): one folder, named as the grid names it.
    let dirs = run(
        &f,
        &RunOpts {
            points: Some(vec![2]),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(dirs.len(), 1);
    let name = dirs[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.starts_with(&format!("{}-", loaded.runs[2].name)),
        "{name}"
    );
    let text = list(&f, &opts).unwrap();
    let states: Vec<(&str, &str)> = text
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (c[1], c[3])
        })
        .collect();
    assert_eq!(states.len(), 4);
    for (i, (n, st)) in states.iter().enumerate() {
        assert_eq!(*n, loaded.runs[i].name);
        assert_eq!(
            *st,
            if i == 2 { "finished" } else { "not started" },
            "{text}"
        );
    }
    // A finished point is skipped, also with --resume; an index past the grid is an error.
    let again = run(
        &f,
        &RunOpts {
            points: Some(vec![2]),
            resume: true,
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(again, dirs);
    let e = run(
        &f,
        &RunOpts {
            points: Some(vec![4]),
            ..opts.clone()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--point 4") && e.contains("0 to 3"), "{e}");
}

/// Issue 30, part 4: grid values written in RON, as a spec file writes its fields, expand to the
/// specs the tagged-map form of earlier files gives, and to the spec of a file that writes the
/// same values as its own fields (read by RON's parser, not ours).
#[test]
fn ron_grid_values_mean_what_the_tagged_form_and_a_spec_file_mean() {
    use odm::spec::load::parse_str;
    let grid = |quant: [&str; 2], maps: [&str; 2]| {
        format!(
            r#"grid: (axes: [
                (field: "quant", values: [{}, {}]),
                (field: "", values: [{}, {}], labels: ["a", "b"]),
            ]),"#,
            quant[0], quant[1], maps[0], maps[1]
        )
    };
    let ron = grid(
        [
            "Pams(w_bits: 2, a_bits: 2)",
            "Odm(w_bits: 4, a_bits: 4, weight_clip: Wcc(percentile: 99.0))",
        ],
        [
            r#"{"gating.rule": Sign, "offsets": None, "regularizer": Mismatch(lambda: 1e-5), "schedule.grad_clip": None}"#,
            r#"{"gating.rule": CosineSoft(per_tensor: false), "offsets": Selective(scale: TopFraction(0.25), shift: Off), "schedule.grad_clip": 0.5}"#,
        ],
    );
    let tagged = grid(
        [
            r#"{"Pams": {"w_bits": 2, "a_bits": 2}}"#,
            r#"{"Odm": {"w_bits": 4, "a_bits": 4, "weight_clip": {"Wcc": {"percentile": 99.0}}}}"#,
        ],
        [
            r#"{"gating.rule": "Sign", "offsets": "None", "regularizer": {"Mismatch": {"lambda": 1e-5}}, "schedule.grad_clip": None}"#,
            r#"{"gating.rule": {"CosineSoft": {"per_tensor": false}}, "offsets": {"Selective": {"scale": {"TopFraction": 0.25}, "shift": "Off"}}, "schedule.grad_clip": 0.5}"#,
        ],
    );
    let runs = |extra: &str| {
        let s = parse_str("g.ron", &common::toy_spec("g", 1, 2, extra)).unwrap();
        odm::spec::expand(&s).unwrap_or_else(|e| panic!("{}: {}", e.field, e.msg))
    };
    let (a, b) = (runs(&ron), runs(&tagged));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b);
    let names: Vec<&str> = a.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "g.quant-Pams.a",
            "g.quant-Pams.b",
            "g.quant-Odm.a",
            "g.quant-Odm.b"
        ]
    );
    let fields = [
        "gating: (rule: Sign), offsets: None, regularizer: Mismatch(lambda: 1e-5),",
        "gating: (rule: CosineSoft(per_tensor: false)), offsets: Selective(scale: TopFraction(0.25), shift: Off),",
    ];
    let quant = [
        "quant: Pams(w_bits: 2, a_bits: 2),",
        "quant: Odm(w_bits: 4, a_bits: 4, weight_clip: Wcc(percentile: 99.0)),",
    ];
    for (i, run) in a.iter().enumerate() {
        let text = common::toy_spec(
            &run.name,
            1,
            2,
            &format!("{} {}", quant[i / 2], fields[i % 2]),
        );
        let mut direct = parse_str("d.ron", &text).unwrap();
        if i % 2 == 1 {
            direct.schedule.grad_clip = Some(0.5);
        }
        assert_eq!(&direct, run, "point {i}");
    }
}

/// Our reading of a RON value (`spec::value`, for `--set` and grid values) against RON's own
/// parser, the reference: the same texts decode to the same typed values, comments, raw
/// strings, escapes, exponents, trailing commas, implicit `Some` and unwrapped newtypes included.
#[test]
fn values_decode_as_rons_own_parser_reads_them() {
    use odm::spec::{load::ron_options, value, Crop, Device, Gating, ModelSpec, Schedule};
    use odm::spec::{InitFrom, OffsetPolicy, QuantSpec, Regularizer};
    use serde::de::DeserializeOwned;
    fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(texts: &[&str]) {
        for t in texts {
            let reference: T = ron_options()
                .from_str(t)
                .unwrap_or_else(|e| panic!("{t}: ron: {e}"));
            let node = value::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            let ours: T = value::decode(&node).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(ours, reference, "{t}");
        }
    }
    same::<QuantSpec>(&[
        "Fp",
        "Pams(w_bits: 2, a_bits: 2)",
        "Odm(w_bits: 4, a_bits: 4, weight_clip: Wcc(percentile: 99.0), /* c */ )",
        "Ddtb(w_bits: 2, a_bits: 3, calib_batches: 16) // trailing comment",
    ]);
    same::<Gating>(&[
        "(rule: CosineSoft(per_tensor: true))",
        "(rule: Never)",
        "()",
    ]);
    same::<Regularizer>(&["None", "Mismatch(lambda: 1e-5)", "Variance(lambda: 5)"]);
    same::<OffsetPolicy>(&[
        "None",
        "AllBoth",
        "Selective(scale: TopFraction(2.5e-1), shift: Threshold(-0.5))",
    ]);
    same::<Device>(&["Cpu", "Cuda(3)"]);
    same::<ModelSpec>(&["Edsr(n_resblocks: 2, n_feats: 8, input_norm: Symmetric)"]);
    same::<Schedule>(&[
        "(iterations: 10, grad_clip: 0.5, lr_decay: Step(every: 4, gamma: 0.5))",
        "(iterations: 2000, lr_decay: MultiStep(milestones: [1000, 1500], gamma: 0.5))",
        "(iterations: 1_000, grad_clip: None)",
        "(iterations: 3, grad_clip: Some(2.0))",
    ]);
    same::<Option<InitFrom>>(&[
        r#"Checkpoint("zoo/a b.safetensors")"#,
        r##"Some(Checkpoint(r#"a "quoted" \path"#))"##,
        "None",
    ]);
    same::<Vec<Crop>>(&[
        "[(set: \"Set\\u{35}\", image: \"b\\\"c\\n\", x: 1, y: 2, w: 3, h: +4),]",
        "[\n  // none\n]",
    ]);
    same::<Vec<String>>(&["[\"a\", r\"b\\c\", \"\\u{e9}t\\u{e9}\"]"]);
}

/// The schedules' learning rates at hand-counted iterations: StepLR(every 300, 0.5) halves at
/// 300, 600, …; MultiStepLR([1000, 1500], 0.5) halves at 1,000 and again at 1,500 (0-based).
#[test]
fn lr_decay_by_hand() {
    use odm::spec::LrDecay;
    let step = LrDecay::Step {
        every: 300,
        gamma: 0.5,
    };
    let multi = LrDecay::MultiStep {
        milestones: vec![1000, 1500],
        gamma: 0.5,
    };
    let at = |d: &LrDecay, it| d.lr_at(1e-4, it);
    assert_eq!(
        [at(&step, 0), at(&step, 299), at(&step, 300), at(&step, 600)],
        [1e-4, 1e-4, 5e-5, 2.5e-5]
    );
    assert_eq!(
        [
            at(&multi, 999),
            at(&multi, 1000),
            at(&multi, 1499),
            at(&multi, 1500),
            at(&multi, 1999)
        ],
        [1e-4, 5e-5, 5e-5, 2.5e-5, 2.5e-5]
    );
}
