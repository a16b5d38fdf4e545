//! Semantic checks that serde cannot express. Each names the field and the allowed values.

use super::limits::{
    step_bytes, MAX_BATCH, MAX_CALIB_BATCHES, MAX_FEATS, MAX_ITERATIONS, MAX_PATCH, MAX_RDN_BLOCKS,
    MAX_RDN_CONVS, MAX_RESBLOCKS, MAX_SIDE, MAX_STEP_BYTES,
};
use super::load::FieldError;
use super::{
    resolve_path, Device, GateRule, InitFrom, InputNorm, LrDecay, ModelSpec, OffsetPolicy, Optim,
    QuantSpec, RangeInit, Regularizer, Select, Spec, WeightClip,
};

fn fail(field: &str, msg: impl Into<String>) -> Result<(), FieldError> {
    Err(FieldError {
        field: field.to_string(),
        msg: msg.into(),
    })
}

/// `value` of `field` is at most `max` (a bound of [`super::limits`]); past it, one line with
/// the limit and `fix`.
fn at_most(field: &str, value: usize, max: usize, fix: &str) -> Result<(), FieldError> {
    if value > max {
        return fail(field, format!("{value} is past the limit of {max}; {fix}"));
    }
    Ok(())
}

/// Validate one (expanded) spec. Data folders must exist; their contents are checked on load.
pub fn validate(s: &Spec) -> Result<(), FieldError> {
    validate_fields(s)?;
    check_paths(s)
}

/// [`validate`] without [`check_paths`]: what a spec says, not whether its files are here (for
/// commands that read no data, such as `odm cost`).
pub fn validate_fields(s: &Spec) -> Result<(), FieldError> {
    check_header(s)?;
    check_model(s)?;
    check_quant(s)?;
    check_odm(s)?;
    check_weight_clip(s)?;
    check_init(s)?;
    check_data(s)?;
    check_optim(s)
}

/// The initial weights and the data folders exist.
fn check_paths(s: &Spec) -> Result<(), FieldError> {
    if let Some(InitFrom::Checkpoint(p) | InitFrom::Experiment(p)) = &s.init_from {
        let r = resolve_path(p);
        if !r.exists() {
            return fail(
                "init_from",
                format!(
                    "{} does not exist (a run folder, .safetensors, .pt, or an experiment .ron)",
                    r.display()
                ),
            );
        }
    }
    if let Some(InitFrom::Pretrained { path, .. }) = &s.init_from {
        let r = resolve_path(path);
        if !r.is_file() {
            return fail(
                "init_from",
                format!(
                    "{} does not exist (a PyTorch .pt/.pth or .safetensors file)",
                    r.display()
                ),
            );
        }
    }
    let d = &s.data;
    if let Some(v) = d.validation.as_ref().map(|v| resolve_path(v)) {
        if !v.is_file() {
            return fail(
                "data.validation",
                format!(
                    "{} does not exist (a list of training images, one file stem a line)",
                    v.display()
                ),
            );
        }
    }
    for (field, dirs) in [("data.train", &d.train), ("data.eval", &d.eval)] {
        for p in dirs.iter() {
            let r = resolve_path(p);
            if !r.is_dir() {
                return fail(
                    field,
                    format!(
                        "folder {} does not exist (paths are relative to the working directory; `$ODM_DATA` expands to the data root)",
                        r.display()
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Name, scale and device.
fn check_header(s: &Spec) -> Result<(), FieldError> {
    if s.name.is_empty()
        || !s
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return fail(
            "name",
            format!(
                "{:?} is not allowed; use letters, digits, '-', '_' and '.'",
                s.name
            ),
        );
    }
    if !matches!(s.scale, 2..=4) {
        return fail(
            "scale",
            format!("{} is not supported; allowed values: 2, 3, 4", s.scale),
        );
    }
    if let Device::Cuda(_) = s.device {
        if !cfg!(feature = "cuda") {
            return fail(
                "device",
                "Cuda needs a build with the `cuda` feature (cargo run --release --features cuda); use Cpu here",
            );
        }
    }
    Ok(())
}

/// The backbone's sizes.
fn check_model(s: &Spec) -> Result<(), FieldError> {
    match &s.model {
        ModelSpec::Edsr(m) => {
            if m.n_resblocks == 0 {
                return fail("model.n_resblocks", "must be at least 1");
            }
            if m.n_feats == 0 {
                return fail("model.n_feats", "must be at least 1");
            }
            check_resnet_size(m.n_resblocks, m.n_feats)?;
            if !(m.res_scale > 0.0 && m.res_scale.is_finite()) {
                return fail(
                    "model.res_scale",
                    "must be a positive number (EDSR uses 1.0 or 0.1)",
                );
            }
            if !(m.rgb_range > 0.0 && m.rgb_range.is_finite()) {
                return fail("model.rgb_range", "must be positive (1.0 or 255.0)");
            }
        }
        ModelSpec::Rdn(m) => {
            for (f, v) in [
                ("model.d", m.d),
                ("model.c", m.c),
                ("model.g", m.g),
                ("model.g0", m.g0),
            ] {
                if v == 0 {
                    return fail(
                        f,
                        "must be at least 1 (the papers use D = 16, C = 8, G = G0 = 64)",
                    );
                }
            }
            let fix = "use a smaller network (the papers use D = 16, C = 8, G = G0 = 64)";
            at_most("model.d", m.d, MAX_RDN_BLOCKS, fix)?;
            at_most("model.c", m.c, MAX_RDN_CONVS, fix)?;
            at_most("model.g", m.g, MAX_FEATS, fix)?;
            at_most("model.g0", m.g0, MAX_FEATS, fix)?;
        }
        ModelSpec::SrResNet(m) => {
            if m.n_resblocks == 0 || m.n_feats == 0 {
                return fail(
                    "model.n_resblocks",
                    "n_resblocks and n_feats must be at least 1",
                );
            }
            check_resnet_size(m.n_resblocks, m.n_feats)?;
        }
    }
    Ok(())
}

/// EDSR's and SRResNet's depth and width within [`super::limits`].
fn check_resnet_size(n_resblocks: usize, n_feats: usize) -> Result<(), FieldError> {
    let fix = "use a smaller network (EDSR uses 32 blocks of 256 features at most)";
    at_most("model.n_resblocks", n_resblocks, MAX_RESBLOCKS, fix)?;
    at_most("model.n_feats", n_feats, MAX_FEATS, fix)
}

/// Quantizer bits and options.
fn check_quant(s: &Spec) -> Result<(), FieldError> {
    check_daq(s)?;
    check_ddtb(s)?;
    if let Some((q, _)) = s.quant.opts_form() {
        for (f, b) in [("quant.w_bits", q.w_bits), ("quant.a_bits", q.a_bits)] {
            if ![2, 3, 4, 8].contains(&b) {
                return fail(
                    f,
                    format!("{b} is not supported; allowed values: 2, 3, 4, 8"),
                );
            }
        }
        if !q.skt.is_none_or(|w| w >= 0.0 && w.is_finite()) {
            return fail(
                "quant.skt",
                "the SKT weight must be a non-negative number (0 switches it off)",
            );
        }
        if q.calib_batches == 0 {
            return fail("quant.calib_batches", "must be at least 1");
        }
        at_most(
            "quant.calib_batches",
            q.calib_batches,
            MAX_CALIB_BATCHES,
            "calibrate on fewer batches (the presets use 1 to a few dozen)",
        )?;
        if !q.bound_lr_mult.is_none_or(|m| m >= 0.0 && m.is_finite()) {
            return fail("quant.bound_lr_mult", "must be a non-negative number");
        }
        match s.quant.range_init(&s.model) {
            RangeInit::Percentile { low, high, .. }
                if !(0.0 <= low && low < high && high <= 100.0) =>
            {
                return fail(
                    "quant.init",
                    format!("percentiles need 0 <= low < high <= 100 (got {low}, {high})"),
                );
            }
            RangeInit::EmaMax { decay } if !(0.0..1.0).contains(&decay) => {
                return fail("quant.init", format!("EMA decay {decay} must be in [0, 1)"));
            }
            RangeInit::Ema { low, high, beta }
                if !(0.0 <= low && low < high && high <= 100.0 && (0.0..1.0).contains(&beta)) =>
            {
                return fail(
                    "quant.init",
                    format!("Ema needs 0 <= low < high <= 100 and beta in [0, 1) (got {low}, {high}, {beta})"),
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Regularizer, gating and offsets (they need a quantized model).
fn check_odm(s: &Spec) -> Result<(), FieldError> {
    let quantized = s.quant.opts_form().is_some();
    let lambda = s.regularizer.lambda();
    if s.regularizer != Regularizer::None {
        if !quantized {
            return fail("regularizer", "acts on quantizer inputs; it needs a quantized `quant` preset (MinMax, Pams or DdtbStatic)");
        }
        if !(lambda >= 0.0 && lambda.is_finite()) {
            return fail(
                "regularizer",
                format!("lambda {lambda} must be a non-negative number"),
            );
        }
    }
    if s.gating.log_every == 0 {
        return fail("gating.log_every", "must be at least 1");
    }
    if !s.gating.scope.is_all()
        && !matches!(
            s.gating.rule,
            GateRule::GlobalDot | GateRule::CosineSoft { per_tensor: false }
        )
    {
        return fail(
            "gating.scope",
            "pools the statistics of GlobalDot and CosineSoft(per_tensor: false) only; with this rule leave it out",
        );
    }
    at_most(
        "gating.log_every",
        s.gating.log_every,
        MAX_ITERATIONS,
        "log at most every schedule.iterations",
    )?;
    if s.offsets != OffsetPolicy::None && !quantized {
        return fail(
            "offsets",
            "are inserted before activation quantizers; they need a quantized `quant` preset",
        );
    }
    if let OffsetPolicy::Selective { scale, shift } = s.offsets {
        for sel in [scale, shift] {
            match sel {
                Select::TopFraction(f) if !(0.0..=1.0).contains(&f) => {
                    return fail("offsets", format!("TopFraction({f}) must be in [0, 1]"));
                }
                Select::Threshold(t) if !t.is_finite() => {
                    return fail("offsets", "Threshold must be a finite number");
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Weight-clipping correction: its percentile and the presets it applies to.
fn check_weight_clip(s: &Spec) -> Result<(), FieldError> {
    if let Some((q, _)) = s.quant.opts_form() {
        if let crate::spec::WeightClip::Wcc { percentile } = q.weight_clip {
            if !(percentile > 0.0 && percentile <= 100.0) {
                return fail(
                    "quant.weight_clip",
                    format!("percentile {percentile} must be in (0, 100]"),
                );
            }
            if s.quant.preset().weights != crate::spec::WeightQ::Learned {
                return fail(
                    "quant.weight_clip",
                    "Wcc corrects the AdaBM/ODM weight quantizer; use quant: Odm(...) or MinMax(...)",
                );
            }
        }
    }
    Ok(())
}

/// DAQ's options: `sigma_bits` and `strict` only there; none of the options that need learned
/// bounds.
fn check_daq(s: &Spec) -> Result<(), FieldError> {
    let Some((q, _)) = s.quant.opts_form() else {
        return Ok(());
    };
    let daq = matches!(s.quant, QuantSpec::Daq(_));
    if !daq {
        if q.sigma_bits.is_some() {
            return fail(
                "quant.sigma_bits",
                "is DAQ's (qq_bit); leave it out for this preset",
            );
        }
        if q.strict {
            return fail(
                "quant.strict",
                "is DAQ's (its after-ReLU clip); leave it out for this preset",
            );
        }
        return Ok(());
    }
    if let Some(b) = q.sigma_bits.filter(|b| !(2..=9).contains(b) && *b != 32) {
        return fail(
            "quant.sigma_bits",
            format!("{b} is not supported; allowed: 2 to 9, or 32 (σ unquantized)"),
        );
    }
    let refuse = |f: &str, why: &str| {
        fail(
            f,
            format!("DAQ {why}; leave it out (Daq has no learned or calibrated bounds)"),
        )
    };
    if q.per_channel {
        return refuse("quant.per_channel", "is per channel by construction");
    }
    if q.head_tail_8bit {
        return refuse("quant.head_tail_8bit", "keeps head and tail FP");
    }
    if q.weight_clip != WeightClip::Preset {
        return refuse("quant.weight_clip", "sets its weight range from std(W)");
    }
    if q.init.is_some() || q.bound_lr_mult.is_some() {
        return refuse("quant.init", "initialises no range");
    }
    if !matches!(
        s.regularizer,
        Regularizer::None | Regularizer::Variance { .. }
    ) {
        return refuse("regularizer", "has no bounds for the mismatch regularizer");
    }
    if s.offsets != OffsetPolicy::None {
        return refuse("offsets", "normalises every channel itself");
    }
    Ok(())
}

/// DDTB's options: `dynamic_ratio` and `dynamic_from` only there; scalar bounds; a ranking
/// needs two calibration batches and the gate's BatchNorm two images per batch.
fn check_ddtb(s: &Spec) -> Result<(), FieldError> {
    let Some((q, _)) = s.quant.opts_form() else {
        return Ok(());
    };
    if !matches!(s.quant, QuantSpec::Ddtb(_)) {
        if q.dynamic_ratio.is_some() || q.dynamic_from.is_some() {
            let f = if q.dynamic_ratio.is_some() {
                "quant.dynamic_ratio"
            } else {
                "quant.dynamic_from"
            };
            return fail(f, "is DDTB's gating; use quant: Ddtb(...) or leave it out");
        }
        return Ok(());
    }
    if let Some(r) = q.dynamic_ratio.filter(|r| !(*r > 0.0 && *r <= 1.0)) {
        return fail(
            "quant.dynamic_ratio",
            format!("{r} must be in (0, 1] (DDTB's run.sh: 0.3 EDSR, 0.5 RDN, 0.1 SRResNet)"),
        );
    }
    let iters = s.schedule.iterations;
    if let Some(f) = q.dynamic_from.filter(|f| *f > iters) {
        return fail(
            "quant.dynamic_from",
            format!("{f} is past the last iteration ({iters}); use at most schedule.iterations"),
        );
    }
    if q.per_channel {
        return fail(
            "quant.per_channel",
            "DDTB's gate rescales scalar bounds; leave it out",
        );
    }
    if q.calib_batches < 2 {
        return fail(
            "quant.calib_batches",
            "DDTB ranks layers by the variance of per-batch max/min; use at least 2",
        );
    }
    if s.data.batch_size < 2 && iters > 0 {
        return fail(
            "data.batch_size",
            "DDTB's gate has a BatchNorm that trains on batch statistics; use at least 2",
        );
    }
    Ok(())
}

/// Initial weights and what trains.
fn check_init(s: &Spec) -> Result<(), FieldError> {
    if s.trainable.as_ref().is_some_and(|t| t.is_empty()) {
        return fail(
            "trainable",
            "names no parameter; leave it out to train everything",
        );
    }
    check_recentre(s)?;
    if let Some(InitFrom::Pretrained {
        feature_scale: Some(c),
        strict,
        ..
    }) = &s.init_from
    {
        if !(c.is_finite() && *c > 0.0) {
            return fail(
                "init_from.feature_scale",
                format!("{c} must be a finite number > 0 (ReLU and PReLU are positively homogeneous only for c > 0), e.g. 127.5"),
            );
        }
        if !strict {
            return fail(
                "init_from.feature_scale",
                "needs strict: true (a parameter left at its initial value cannot be rescaled consistently)",
            );
        }
    }
    Ok(())
}

/// `init_from.from_input_norm`: only `Symmetric` weights into an `Edsr(input_norm: Centered)`,
/// strictly loaded.
fn check_recentre(s: &Spec) -> Result<(), FieldError> {
    let Some(InitFrom::Pretrained {
        from_input_norm: Some(from),
        strict,
        ..
    }) = &s.init_from
    else {
        return Ok(());
    };
    let centered = matches!(&s.model, ModelSpec::Edsr(e) if e.input_norm == InputNorm::Centered);
    if *from != InputNorm::Symmetric || !centered {
        return fail(
            "init_from.from_input_norm",
            format!("{from:?}: only Symmetric weights convert exactly, into model Edsr(input_norm: Centered) (every bias × rgb_range/2)"),
        );
    }
    if !strict {
        return fail(
            "init_from.from_input_norm",
            "needs strict: true (a parameter left at its initial value cannot be converted)",
        );
    }
    Ok(())
}

/// Data folders, patch and batch.
fn check_data(s: &Spec) -> Result<(), FieldError> {
    let d = &s.data;
    if d.train.is_empty() {
        return fail(
            "data.train",
            "needs at least one folder of HR training images",
        );
    }
    if d.patch_size == 0 || !d.patch_size.is_multiple_of(s.scale) {
        return fail(
            "data.patch_size",
            format!(
                "{} must be a positive multiple of scale {} (HR patch; EDSR uses 192 at ×4)",
                d.patch_size, s.scale
            ),
        );
    }
    at_most(
        "data.patch_size",
        d.patch_size,
        MAX_PATCH,
        "use a smaller HR patch (EDSR uses 192 at ×4)",
    )?;
    if d.batch_size == 0 {
        return fail("data.batch_size", "must be at least 1");
    }
    at_most(
        "data.batch_size",
        d.batch_size,
        MAX_BATCH,
        "use a smaller batch (EDSR uses 16)",
    )?;
    let bytes = step_bytes(s);
    if bytes > MAX_STEP_BYTES {
        let gib = |b: f64| b / (1u64 << 30) as f64;
        return fail(
            "data.batch_size",
            format!(
                "one training step of batch {} × {}² px patches on this model needs about {:.0} GiB, past the limit of {:.0} GiB; lower data.batch_size or data.patch_size, or use a smaller model",
                d.batch_size,
                d.patch_size,
                gib(bytes),
                gib(MAX_STEP_BYTES)
            ),
        );
    }
    Ok(())
}

/// Optimizer, schedule, crops and logging.
fn check_optim(s: &Spec) -> Result<(), FieldError> {
    let Optim::Adam {
        lr,
        beta1,
        beta2,
        eps,
    } = s.optim;
    if !(lr > 0.0 && lr.is_finite()) {
        return fail("optim.lr", format!("{lr} must be a positive number"));
    }
    for (f, b) in [("optim.beta1", beta1), ("optim.beta2", beta2)] {
        if !(0.0..1.0).contains(&b) {
            return fail(f, format!("{b} must be in [0, 1)"));
        }
    }
    if eps.is_nan() || eps <= 0.0 {
        return fail("optim.eps", "must be positive");
    }
    if s.schedule.iterations == 0 && s.init_from.is_none() {
        return fail(
            "schedule.iterations",
            "must be at least 1 (got 0); 0 only evaluates given weights, so it needs `init_from`",
        );
    }
    at_most(
        "schedule.iterations",
        s.schedule.iterations,
        MAX_ITERATIONS,
        "train in fewer iterations (the papers use 300000 at most)",
    )?;
    for (f, v) in [
        ("eval_every", s.eval_every),
        ("checkpoint_every", s.checkpoint_every),
        ("log_every", s.log_every),
    ] {
        at_most(
            f,
            v,
            MAX_ITERATIONS,
            "use an interval within the iterations' limit",
        )?;
    }
    for (i, c) in s.crops.iter().enumerate() {
        if !(8..=512).contains(&c.w) || !(8..=512).contains(&c.h) {
            return fail(
                &format!("crops[{i}]"),
                format!("box is {}×{}; each side must be 8 to 512 px", c.w, c.h),
            );
        }
        if c.x.max(c.y) > MAX_SIDE {
            return fail(
                &format!("crops[{i}]"),
                format!(
                    "corner ({}, {}) is past the limit of {MAX_SIDE} px; give a corner inside the image",
                    c.x, c.y
                ),
            );
        }
    }
    lr_decay(&s.schedule)?;
    if let Some(c) = s.schedule.grad_clip {
        if !(c > 0.0 && c.is_finite()) {
            return fail("schedule.grad_clip", "must be a positive number, or None");
        }
    }
    if s.log_every == 0 {
        return fail("log_every", "must be at least 1");
    }
    Ok(())
}

/// `schedule.lr_decay`: a positive interval or strictly increasing milestones inside the
/// schedule, and gamma in (0, 1].
fn lr_decay(s: &super::Schedule) -> Result<(), FieldError> {
    let gamma = match &s.lr_decay {
        LrDecay::Constant => return Ok(()),
        LrDecay::Step { every, gamma } => {
            if *every == 0 {
                return fail("schedule.lr_decay.every", "must be at least 1");
            }
            at_most(
                "schedule.lr_decay.every",
                *every,
                MAX_ITERATIONS,
                "use an interval within the iterations' limit",
            )?;
            *gamma
        }
        LrDecay::MultiStep { milestones, gamma } => {
            if milestones.is_empty() {
                return fail(
                    "schedule.lr_decay.milestones",
                    "is empty; give at least one iteration, or use Constant",
                );
            }
            if milestones.windows(2).any(|w| w[0] >= w[1]) {
                return fail(
                    "schedule.lr_decay.milestones",
                    format!("{milestones:?} must be strictly increasing"),
                );
            }
            // Increasing, so the first and last bound them all.
            if let Some(m) = [milestones[0], milestones[milestones.len() - 1]]
                .into_iter()
                .find(|&m| m == 0 || m >= s.iterations)
            {
                return fail(
                    "schedule.lr_decay.milestones",
                    format!(
                        "{m} is outside 1..{}; give milestones inside the schedule's iterations",
                        s.iterations
                    ),
                );
            }
            *gamma
        }
    };
    if !(gamma > 0.0 && gamma <= 1.0) {
        return fail(
            "schedule.lr_decay.gamma",
            format!("{gamma} must be in (0, 1]"),
        );
    }
    Ok(())
}
