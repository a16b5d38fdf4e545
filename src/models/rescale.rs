//! Function-preserving feature rescaling (issue 27, part 1). ReLU and PReLU are positively
//! homogeneous (σ(c·x) = c·σ(x) for c > 0), convolutions are linear, and BatchNorm's output does
//! not depend on the scale of its input but only on γ and β. So the internal features of a
//! backbone can be multiplied by any c > 0 while the network computes the same function: the
//! first conv's weights (and bias) ×c, every later bias that adds onto a scaled feature ×c, the
//! last conv's weights ÷c (its bias unchanged). Each backbone states its own factors
//! (`Edsr::rescale_factors`, `Rdn::rescale_factors`, `SrResNet::rescale_factors`), derived there
//! from its forward.
//!
//! [`recentre`] is the second exact way for an EDSR trained with LIIF's `Symmetric` input:
//! into `Centered` (x − r/2) every bias × r/2, no weight changed, so head and tail keep the size
//! of their weights (Adam's steps are absolute).
//!
//! Why: the zoo's EDSR-baseline takes LIIF's (x − 0.5)/0.5 input, so its features are 1/127.5 of
//! EDSR-PyTorch's 0–255 scale; at c = 127.5 they are on the scale the quantization papers tuned
//! their learning rates, bound initialisations and λ at.

use super::params::{ParamId, Params};
use super::{Arch, Model};
use crate::spec::InputNorm;
use burn::tensor::backend::Backend;

/// The factor every model parameter is multiplied by to scale its features by `c`, as
/// (parameter, factor) for each parameter that changes; the others (PReLU slopes, BatchNorm
/// running statistics, the last conv's bias) stay as they are. An error (what is allowed) when
/// `c` is not a finite positive number.
pub fn factors(model: &Model, c: f64) -> Result<Vec<(ParamId, f64)>, String> {
    if !(c.is_finite() && c > 0.0) {
        return Err(format!(
            "feature scale {c} is not allowed: rescaling preserves the network's function only for a finite c > 0 (ReLU and PReLU are positively homogeneous), e.g. 127.5"
        ));
    }
    Ok(match &model.arch {
        Arch::Edsr(m) => m.rescale_factors(c),
        Arch::Rdn(m) => m.rescale_factors(c),
        Arch::SrResNet(m) => m.rescale_factors(c),
    })
}

/// The factors that turn weights trained under `from` into weights of `model` computing the
/// same function. Only `Symmetric` → `Centered` on EDSR is exact (every bias × rgb_range/2,
/// `Edsr::recentre_factors`): features then sit on the 0–255 scale while the head's and tail's
/// weights keep their size, unlike [`factors`], which divides the tail's weights by c. Any
/// other pair is refused with what is allowed.
pub fn recentre(model: &Model, from: InputNorm) -> Result<Vec<(ParamId, f64)>, String> {
    match &model.arch {
        Arch::Edsr(m) if from == InputNorm::Symmetric && m.cfg.input_norm == InputNorm::Centered => {
            Ok(m.recentre_factors())
        }
        _ => Err(format!(
            "from_input_norm {from:?}: only weights of an Edsr(input_norm: Symmetric) convert exactly, into a model with input_norm: Centered (every bias × rgb_range/2); use feature_scale for other models"
        )),
    }
}

/// Multiply `params` (which start with `model`'s declarations) by the [`factors`] of `c`.
pub fn apply<B: Backend>(model: &Model, params: &mut Params<B>, c: f64) -> Result<(), String> {
    apply_factors(params, &factors(model, c)?);
    Ok(())
}

/// Multiply each listed parameter by its factor.
pub fn apply_factors<B: Backend>(params: &mut Params<B>, factors: &[(ParamId, f64)]) {
    for &(id, k) in factors {
        params.tensors[id.0] = params.tensors[id.0].clone().mul_scalar(k);
    }
}
