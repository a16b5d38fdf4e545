//! PAMS's structured knowledge transfer (Li et al., ECCV 2020; colorjam/PAMS `utils/common.py`
//! `at`, `at_loss`, weighted by `w_at` in `main.py`): the quantized student's body output is pulled
//! towards the FP teacher's through their spatial attention maps
//! A(F) = vec(mean_c F²) / max(‖vec(mean_c F²)‖₂, 1e-12) (per image, as `F.normalize`), with
//! L_SKT = mean over images and pixels of (A(F_s) − A(F_t))².

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// The attention map of a feature N×C×H×W: N×(H·W), unit L2 norm per image.
pub fn attention<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 2> {
    let [n, _, h, w] = x.dims();
    let a = (x.clone() * x).mean_dim(1).reshape([n, h * w]);
    let norm = (a.clone() * a.clone()).sum_dim(1).sqrt().clamp_min(1e-12);
    a / norm
}

/// L_SKT between a student and a teacher feature.
pub fn at_loss<B: Backend>(student: Tensor<B, 4>, teacher: Tensor<B, 4>) -> Tensor<B, 1> {
    let d = attention(student) - attention(teacher);
    (d.clone() * d).mean()
}
