//! EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
//! CVPRW 2017), structured as EDSR-PyTorch: mean shift, head conv, `n_resblocks` residual blocks
//! (conv–ReLU–conv, scaled by `res_scale`), a last body conv, a global skip, a pixel-shuffle
//! upsampler and a tail conv. The quantized weights are the two convs of every residual block
//! (PAMS, DAQ, DDTB, AdaBM); the last body conv stays FP. Activations: see [`block_points`].

use super::fwd::Fwd;
use super::layers::{block_points, convs_decls, pixel_shuffle, resnet_convs, ConvInfo};
use super::params::ParamDecl;
use crate::quant::{Placement, QPoint};
use crate::spec::{EdsrSpec, InputNorm};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// DIV2K RGB mean used by EDSR-PyTorch's `MeanShift`.
pub const DIV2K_MEAN: [f64; 3] = [0.4488, 0.4371, 0.4040];

/// The mean-shift constant `mean · rgb_range` as a 1×3×1×1 tensor.
pub fn mean_shift<B: Backend>(rgb_range: f64, device: &B::Device) -> Tensor<B, 4> {
    let m: Vec<f32> = DIV2K_MEAN.iter().map(|v| (v * rgb_range) as f32).collect();
    Tensor::<B, 1>::from_data(TensorData::new(m, [3]), device).reshape([1, 3, 1, 1])
}

/// Upsampler stages (EDSR-PyTorch `Upsampler`): ×2 → [2], ×3 → [3], ×4 → [2, 2].
pub fn up_stages(scale: usize) -> Vec<usize> {
    match scale {
        3 => vec![3],
        s => vec![2; s.trailing_zeros() as usize],
    }
}

/// An EDSR of a given configuration and scale.
#[derive(Clone, Debug)]
pub struct Edsr {
    pub cfg: EdsrSpec,
    pub scale: usize,
}

impl Edsr {
    pub fn new(cfg: EdsrSpec, scale: usize) -> Self {
        Self { cfg, scale }
    }

    /// Every convolution, in forward order.
    pub fn convs(&self) -> Vec<ConvInfo> {
        resnet_convs(self.cfg.n_resblocks, self.cfg.n_feats, self.scale, 3)
    }

    /// The quantization points of a placement (see [`block_points`]).
    pub fn quant_points(&self, placement: Placement) -> Vec<QPoint> {
        block_points(self.cfg.n_resblocks, self.cfg.n_feats, placement)
    }

    /// Parameter declarations in a fixed order (the order of initialisation).
    pub fn decls(&self) -> Vec<ParamDecl> {
        convs_decls(&self.convs())
    }

    /// The EDSR-PyTorch state-dict key of one of our parameter names.
    pub fn pytorch_key(&self, name: &str) -> String {
        let (layer, kind) = name.rsplit_once('.').unwrap_or((name, ""));
        let parts: Vec<&str> = layer.split('.').collect();
        let mapped = match parts.as_slice() {
            ["head"] => "head.0".to_string(),
            ["body", i, "conv1"] => format!("body.{i}.body.0"),
            ["body", i, "conv2"] => format!("body.{i}.body.2"),
            ["body_end"] => format!("body.{}", self.cfg.n_resblocks),
            ["upsample", k] => format!("tail.0.{}", k.parse::<usize>().unwrap_or(0) * 2),
            ["tail"] => "tail.1".to_string(),
            _ => layer.to_string(),
        };
        format!("{mapped}.{kind}")
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, f: &Fwd<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.normalise(x);
        let x = f.conv("head", x);
        let mut h = x.clone();
        for i in 0..self.cfg.n_resblocks {
            let skip = f.act(&format!("body.{i}.skip"), h.clone());
            let r = f.conv(&format!("body.{i}.conv1"), h);
            let r = f.conv(&format!("body.{i}.conv2"), relu(r));
            let r = if self.cfg.res_scale == 1.0 {
                r
            } else {
                r.mul_scalar(self.cfg.res_scale)
            };
            h = skip + f.act(&format!("body.{i}.res"), r);
        }
        if f.body_only {
            return h;
        }
        let mut y = f.feature(f.conv("body_end", h) + x);
        for (k, r) in up_stages(self.scale).into_iter().enumerate() {
            y = pixel_shuffle(f.conv(&format!("upsample.{k}"), y), r);
        }
        self.restore(f.conv("tail", y))
    }

    /// The input normalisation of [`InputNorm`]: mean shift, or LIIF's (x/r − 0.5)/0.5.
    fn normalise<B: Backend>(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let r = self.cfg.rgb_range;
        match self.cfg.input_norm {
            InputNorm::MeanShift => x.clone() - mean_shift::<B>(r, &x.device()),
            InputNorm::Symmetric => x.div_scalar(r).sub_scalar(0.5).div_scalar(0.5),
        }
    }

    /// The inverse of [`Self::normalise`] at the output: + mean, or (y·0.5 + 0.5)·r.
    fn restore<B: Backend>(&self, y: Tensor<B, 4>) -> Tensor<B, 4> {
        let r = self.cfg.rgb_range;
        match self.cfg.input_norm {
            InputNorm::MeanShift => y.clone() + mean_shift::<B>(r, &y.device()),
            InputNorm::Symmetric => y.mul_scalar(0.5).add_scalar(0.5).mul_scalar(r),
        }
    }
}
