//! Our own CPU kernels for the operation that dominates training: the same-padded, stride-1
//! k×k convolution (k odd) of EDSR/RDN bodies. [`conv2d_same`] routes `Flex` and
//! `Autodiff<Flex>` tensors to [`cpu_conv`] (an implicit GEMM, [`implicit`], with one summation
//! order on every instruction path and for any thread count) and every other backend to burn's
//! `conv2d`.

mod affine;
pub use affine::Kind as AffineKind;
pub mod cpu_conv;
mod fake_quant;
pub use fake_quant::round_even;
mod flex;
mod geom;
pub use geom::SendPtr;
pub mod implicit;
pub mod int_conv;
pub mod path;
pub mod quantizer;
pub mod sgemm;
mod shuffle;
mod thin;

use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_flex::Flex;
use std::any::{Any, TypeId};

type Ad = burn::backend::Autodiff<Flex>;

/// Moves a value between two types already checked to be the same type.
fn same<T: 'static, U: 'static>(t: T) -> U {
    *(Box::new(t) as Box<dyn Any>)
        .downcast::<U>()
        .expect("types checked equal")
}

fn float<B: Backend, const D: usize>(t: Tensor<B, D>) -> B::FloatTensorPrimitive {
    match t.into_primitive() {
        TensorPrimitive::Float(p) => p,
        TensorPrimitive::QFloat(_) => panic!("quantized tensors are not convolved here"),
    }
}

fn wrap<B: Backend, const D: usize>(p: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// y = conv2d(x, w, stride 1, padding k/2) + b for an odd square k×k kernel `w`.
pub fn conv2d_same<B: Backend>(x: Tensor<B, 4>, w: Tensor<B, 4>, b: Tensor<B, 1>) -> Tensor<B, 4> {
    conv2d_same_replay(x, w, b, None)
}

/// [`conv2d_same`], where `known` may carry the result of an identical earlier forward (same
/// inputs, same weights): on `Autodiff<Flex>` it then only records the backward node and skips
/// the computation; elsewhere it is ignored.
pub fn conv2d_same_replay<B: Backend>(
    x: Tensor<B, 4>,
    w: Tensor<B, 4>,
    b: Tensor<B, 1>,
    known: Option<Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let [_, _, kh, kw] = w.dims();
    let ours = kh == kw && kh % 2 == 1 && x.dtype() == DType::F32 && w.dtype() == DType::F32;
    let t = TypeId::of::<B>();
    if ours && t == TypeId::of::<Ad>() {
        let known = known.map(|k| flex::inner(same::<_, Tensor<Ad, 4>>(k).into_primitive()));
        let y = flex::forward_ad(
            float(same::<_, Tensor<Ad, 4>>(x)),
            float(same::<_, Tensor<Ad, 4>>(w)),
            float(same::<_, Tensor<Ad, 1>>(b)),
            known,
        );
        return same(wrap::<Ad, 4>(y));
    }
    if ours && t == TypeId::of::<Flex>() {
        let y = flex::forward(
            &float(same::<_, Tensor<Flex, 4>>(x)),
            &float(same::<_, Tensor<Flex, 4>>(w)),
            &float(same::<_, Tensor<Flex, 1>>(b)),
        );
        return same(wrap::<Flex, 4>(y));
    }
    let p = kh / 2;
    conv2d(x, w, Some(b), ConvOptions::new([1, 1], [p, p], [1, 1], 1))
}

/// Fake quantization of `x` (N×C×H×W) over [l, u] (each of length C, or 1) with quantizer
/// `qz`, with the gradients of `quant::fake_quant`: fused on `Flex` and `Autodiff<Flex>`,
/// composed from burn ops elsewhere.
pub fn fake_quant_channels<B: Backend>(
    x: Tensor<B, 4>,
    l: Tensor<B, 1>,
    u: Tensor<B, 1>,
    qz: quantizer::Quantizer,
) -> Tensor<B, 4> {
    let t = TypeId::of::<B>();
    if x.dtype() == DType::F32 && t == TypeId::of::<Ad>() {
        let y = fake_quant::forward_ad(
            float(same::<_, Tensor<Ad, 4>>(x)),
            float(same::<_, Tensor<Ad, 1>>(l)),
            float(same::<_, Tensor<Ad, 1>>(u)),
            qz,
        );
        return same(wrap::<Ad, 4>(y));
    }
    if x.dtype() == DType::F32 && t == TypeId::of::<Flex>() {
        let y = fake_quant::forward(
            &float(same::<_, Tensor<Flex, 4>>(x)),
            &float(same::<_, Tensor<Flex, 1>>(l)),
            &float(same::<_, Tensor<Flex, 1>>(u)),
            qz,
        );
        return same(wrap::<Flex, 4>(y));
    }
    let c = l.dims()[0];
    quantizer::fake_quant(x, l.reshape([1, c, 1, 1]), u.reshape([1, c, 1, 1]), qz)
}

/// Per-channel y = x·s_c ([`affine::Kind::Scale`]) or y = x + t_c (`Shift`) of x (N×C×H×W)
/// by p (C): one pass each way on `Flex` and `Autodiff<Flex>` ([`affine`]), burn's broadcast
/// ops elsewhere.
pub fn channel_affine<B: Backend>(
    x: Tensor<B, 4>,
    p: Tensor<B, 1>,
    kind: AffineKind,
) -> Tensor<B, 4> {
    let t = TypeId::of::<B>();
    if x.dtype() == DType::F32 && t == TypeId::of::<Ad>() {
        let y = affine::forward_ad(
            float(same::<_, Tensor<Ad, 4>>(x)),
            float(same::<_, Tensor<Ad, 1>>(p)),
            kind,
        );
        return same(wrap::<Ad, 4>(y));
    }
    if x.dtype() == DType::F32 && t == TypeId::of::<Flex>() {
        let y = affine::forward(
            &float(same::<_, Tensor<Flex, 4>>(x)),
            &float(same::<_, Tensor<Flex, 1>>(p)),
            kind,
        );
        return same(wrap::<Flex, 4>(y));
    }
    channel_affine_composed(x, p, kind)
}

/// [`channel_affine`] composed from burn's broadcast ops (the reference).
pub fn channel_affine_composed<B: Backend>(
    x: Tensor<B, 4>,
    p: Tensor<B, 1>,
    kind: AffineKind,
) -> Tensor<B, 4> {
    let c = p.dims()[0];
    match kind {
        AffineKind::Scale => x * p.reshape([1, c, 1, 1]),
        AffineKind::Shift => x + p.reshape([1, c, 1, 1]),
    }
}

/// Sub-pixel shuffle by `r` in PyTorch's `pixel_shuffle` order (Shi et al., CVPR 2016): input
/// channel c·r² + i·r + j goes to output channel c at (h·r + i, w·r + j). One pass on `Flex` and
/// `Autodiff<Flex>` ([`shuffle`]); burn's reshape–permute–reshape elsewhere.
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let t = TypeId::of::<B>();
    if x.dtype() == DType::F32 && t == TypeId::of::<Ad>() {
        let y = shuffle::forward_ad(float(same::<_, Tensor<Ad, 4>>(x)), r);
        return same(wrap::<Ad, 4>(y));
    }
    if x.dtype() == DType::F32 && t == TypeId::of::<Flex>() {
        let y = shuffle::forward(&float(same::<_, Tensor<Flex, 4>>(x)), r);
        return same(wrap::<Flex, 4>(y));
    }
    pixel_shuffle_composed(x, r)
}

/// [`pixel_shuffle`] composed from burn ops (the reference).
pub fn pixel_shuffle_composed<B: Backend>(x: Tensor<B, 4>, r: usize) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let co = c / (r * r);
    x.reshape([n * co, r, r, h, w])
        .permute([0, 3, 1, 4, 2])
        .reshape([n, co, h * r, w * r])
}

/// The instruction paths the kernels dispatch to, as chosen at run time ([`path::current`]:
/// the CPU's best, or the one `ODM_KERNEL_PATH` forces): the f32 convolution of [`cpu_conv`]
/// ([`implicit`]'s AVX-512, AVX2 + FMA or scalar register blocks) and the f32 GEMM beside it
/// ([`sgemm`], gemm's x86-64-v4 or v3 kernels, else scalar: the bench's peak and the im2col
/// kernels it compares with), the thin
/// convolutions (AVX2 or scalar) and the integer convolution ([`int_conv::IntPath`]). Recorded in
/// provenance, so two runs can be told apart by path.
pub fn dispatch_paths() -> String {
    let p = path::current();
    let forced = match std::env::var(path::ENV) {
        Ok(v) if !v.trim().is_empty() && v.trim() != "auto" => format!(" ({}={v})", path::ENV),
        _ => String::new(),
    };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let gemm = match p {
            path::KernelPath::Avx512 => "AVX-512 (x86-64-v4)",
            path::KernelPath::Avx2 => "AVX2+FMA (x86-64-v3)",
            path::KernelPath::Scalar => "scalar",
        };
        let thin = if has!("avx2") { "AVX2" } else { "scalar" };
        let int = if p == path::KernelPath::Avx512 && has!("avx512vnni") {
            "AVX-512 VNNI"
        } else if has!("avx2") {
            "AVX2"
        } else {
            "scalar"
        };
        let conv = match p {
            path::KernelPath::Avx512 => "AVX-512",
            path::KernelPath::Avx2 => "AVX2+FMA",
            path::KernelPath::Scalar => "scalar",
        };
        format!(
            "conv f32 implicit GEMM {conv}; gemm f32 {gemm}; thin conv {thin}; integer conv {int}{forced}"
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = p;
        format!("portable ({}){forced}", std::env::consts::ARCH)
    }
}

/// Deterministic values in [−1, 1] (xorshift32 from `seed`) for the kernels' unit tests.
#[cfg(test)]
pub(crate) fn test_noise(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 20_001) as f32 / 10_000.0 - 1.0
        })
        .collect()
}
