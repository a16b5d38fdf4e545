//! Data loading: layouts, grayscale replication, mod-crop, patch alignment and augmentation.

mod common;

use odm::data::images::{decode, list_images, set_name};
use odm::data::{load_set, Sampler};
use std::path::Path;

fn save_png(path: &Path, w: u32, h: u32, gray: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if gray {
        let img =
            image::GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 7 + y * 3) % 256) as u8]));
        img.save(path).unwrap();
    } else {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        });
        img.save(path).unwrap();
    }
}

#[test]
fn edsr_pytorch_and_basicsr_layouts_are_found() {
    let tmp = common::tempdir();
    // EDSR-PyTorch: benchmark/Set5/HR + LR_bicubic (ignored).
    let set = tmp.path().join("benchmark/Set5");
    save_png(&set.join("HR/baby.png"), 40, 40, false);
    save_png(&set.join("LR_bicubic/X2/babyx2.png"), 20, 20, false);
    assert_eq!(list_images(&set).unwrap().len(), 1);
    assert_eq!(set_name(&set), "Set5");
    assert_eq!(set_name(&set.join("HR")), "Set5");
    // EDSR-PyTorch DIV2K.
    let div = tmp.path().join("DIV2K");
    save_png(&div.join("DIV2K_train_HR/0001.png"), 40, 40, false);
    save_png(
        &div.join("DIV2K_train_LR_bicubic/X4/0001x4.png"),
        10,
        10,
        false,
    );
    assert_eq!(
        list_images(&div).unwrap(),
        vec![div.join("DIV2K_train_HR/0001.png")]
    );
    // BasicSR benchmark layout.
    let bs = tmp.path().join("datasets/Set14");
    save_png(&bs.join("GTmod12/a.png"), 24, 24, false);
    save_png(&bs.join("LRbicx4/a.png"), 6, 6, false);
    assert_eq!(list_images(&bs).unwrap().len(), 1);
}

#[test]
fn grayscale_is_replicated_and_hr_is_mod_cropped() {
    let tmp = common::tempdir();
    let p = tmp.path().join("g/gray.png");
    save_png(&p, 31, 22, true);
    let img = decode(&p).unwrap();
    assert_eq!((img.w, img.h), (31, 22));
    for px in img.data.chunks(3) {
        assert!(px[0] == px[1] && px[1] == px[2]);
    }
    let set = load_set(&tmp.path().join("g"), 4).unwrap();
    let pair = &set.pairs[0];
    assert_eq!((pair.hr.w, pair.hr.h), (28, 20));
    assert_eq!((pair.lr.w, pair.lr.h), (7, 5));
}

#[test]
fn patches_are_aligned_and_augmentation_is_consistent() {
    // A flat-per-block image: every 2×2 HR block holds one value, so its bicubic ×2 LR (away from
    // borders) is close to the block value and an aligned HR patch, pooled 2×2, matches the LR.
    let tmp = common::tempdir();
    let p = tmp.path().join("b/blocks.png");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    let img = image::RgbImage::from_fn(64, 64, |x, y| {
        let v = ((x / 16) * 60 + (y / 16) * 15) as u8;
        image::Rgb([v, v / 2, 255 - v])
    });
    img.save(&p).unwrap();
    let set = load_set(&tmp.path().join("b"), 2).unwrap();
    let mut s = Sampler::new(vec![set], 2, 16, 16, true, 255.0, 5).unwrap();
    let b = s.next_batch();
    let (lp, hp) = (b.lr_side, b.hr_side);
    let mut max_err: f32 = 0.0;
    for n in 0..b.n {
        for c in 0..3 {
            for i in 0..lp {
                for j in 0..lp {
                    let l = b.lr[((n * 3 + c) * lp + i) * lp + j];
                    let mut pooled = 0.0;
                    for (a, bb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        pooled += b.hr[((n * 3 + c) * hp + 2 * i + a) * hp + 2 * j + bb];
                    }
                    max_err = max_err.max((pooled / 4.0 - l).abs());
                }
            }
        }
    }
    // Bicubic overshoot at the 16-pixel block edges stays within a few levels on average per
    // pixel; a misaligned or differently-augmented pair would differ by tens of levels.
    assert!(
        max_err < 40.0,
        "LR and HR patches are not aligned: max error {max_err}"
    );
    // Same seed, same batches.
    let set2 = load_set(&tmp.path().join("b"), 2).unwrap();
    let mut s2 = Sampler::new(vec![set2], 2, 16, 16, true, 255.0, 5).unwrap();
    assert_eq!(s2.next_batch().hr, b.hr);
}

/// `skip_small`: with 480×480 HR patches at ×4, coffee (600×400) and rocket (640×427) are too
/// short and are left out, astronaut (512×512) stays; without it the first small image is an
/// error naming it; with only small images it is still an error.
#[test]
fn skip_small_leaves_out_images_smaller_than_a_patch() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/cc0/train");
    let set = load_set(&dir, 4).unwrap();
    let s = Sampler::with_small(vec![set.clone()], 4, 480, 2, true, 255.0, 1, true).unwrap();
    assert_eq!(s.len(), 1);
    let e = Sampler::new(vec![set.clone()], 4, 480, 2, true, 255.0, 1)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("coffee") && e.contains("smaller"), "{e}");
    let e = Sampler::with_small(vec![set], 4, 800, 2, true, 255.0, 1, true)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("every training image"), "{e}");
}

/// An evaluation image too small for SSIM once shaved is named by its file name.
#[test]
fn too_small_evaluation_image_is_named_by_its_file() {
    let tmp = common::tempdir();
    image::RgbImage::from_pixel(16, 16, image::Rgb([9, 99, 199]))
        .save(tmp.path().join("tiny.png"))
        .unwrap();
    let set = odm::data::load_set(tmp.path(), 4).unwrap();
    let e = odm::eval::check_evaluable(&set).unwrap_err().to_string();
    assert!(
        e.contains("tiny.png") && e.contains("at least 19 px"),
        "{e}"
    );
}
