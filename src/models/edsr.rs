//! EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
//! CVPRW 2017), structured as EDSR-PyTorch: mean shift, head conv, `n_resblocks` residual blocks
//! (conv–ReLU–conv, scaled by `res_scale`), a last body conv, a global skip, a pixel-shuffle
//! upsampler and a tail conv.

use super::layers::{conv, pixel_shuffle};
use super::params::{Init, ParamDecl, Params};
use crate::spec::EdsrSpec;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// DIV2K RGB mean used by EDSR-PyTorch's `MeanShift`.
pub const DIV2K_MEAN: [f64; 3] = [0.4488, 0.4371, 0.4040];

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

    /// Upsampler stages: (factor, count): ×2 → one ×2, ×3 → one ×3, ×4 → two ×2.
    fn up_stages(&self) -> Vec<usize> {
        match self.scale {
            3 => vec![3],
            s => vec![2; s.trailing_zeros() as usize],
        }
    }

    /// Parameter declarations in a fixed order (the order of initialisation).
    pub fn decls(&self) -> Vec<ParamDecl> {
        let f = self.cfg.n_feats;
        let mut d = Vec::new();
        let mut conv_decl = |name: String, cin: usize, cout: usize, k: usize| {
            let fan_in = cin * k * k;
            d.push(ParamDecl {
                name: format!("{name}.weight"),
                shape: vec![cout, cin, k, k],
                init: Init::UniformFanIn(fan_in),
            });
            d.push(ParamDecl {
                name: format!("{name}.bias"),
                shape: vec![cout],
                init: Init::UniformFanIn(fan_in),
            });
        };
        conv_decl("head".into(), 3, f, 3);
        for i in 0..self.cfg.n_resblocks {
            conv_decl(format!("body.{i}.conv1"), f, f, 3);
            conv_decl(format!("body.{i}.conv2"), f, f, 3);
        }
        conv_decl("body_end".into(), f, f, 3);
        for (k, r) in self.up_stages().into_iter().enumerate() {
            conv_decl(format!("upsample.{k}"), f, r * r * f, 3);
        }
        conv_decl("tail".into(), f, 3, 3);
        d
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

    fn mean<B: Backend>(&self, device: &B::Device) -> Tensor<B, 4> {
        let m: Vec<f32> = DIV2K_MEAN
            .iter()
            .map(|v| (v * self.cfg.rgb_range) as f32)
            .collect();
        Tensor::<B, 1>::from_data(TensorData::new(m, [3]), device).reshape([1, 3, 1, 1])
    }

    /// LR (N×3×h×w, values in [0, rgb_range]) → SR (N×3×sh×sw).
    pub fn forward<B: Backend>(&self, p: &Params<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mean = self.mean::<B>(&x.device());
        let x = conv(p, "head", x - mean.clone());
        let mut h = x.clone();
        for i in 0..self.cfg.n_resblocks {
            let r = conv(p, &format!("body.{i}.conv1"), h.clone());
            let r = conv(p, &format!("body.{i}.conv2"), relu(r));
            h = if self.cfg.res_scale == 1.0 {
                h + r
            } else {
                h + r.mul_scalar(self.cfg.res_scale)
            };
        }
        let mut y = conv(p, "body_end", h) + x;
        for (k, r) in self.up_stages().into_iter().enumerate() {
            y = pixel_shuffle(conv(p, &format!("upsample.{k}"), y), r);
        }
        conv(p, "tail", y) + mean
    }
}
