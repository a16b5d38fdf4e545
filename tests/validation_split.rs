//! The validation split (`data::split`, `data.validation`; issue 27 part 5): a held-out image is
//! never drawn by the sampler, it is scored as an evaluation set of its own, a list naming an
//! image that is not in the training folders is a one-line error that leaves no run folder, and
//! the committed BSD200 list follows the rule its header states.

mod common;

use odm::data::split::{read_list, validation};
use odm::data::{load_set, RgbImage, Sampler};
use std::path::Path;

/// 12 flat images `img00`…`img11` of 16×16 px, image i filled with the value 20·i + 5 (bicubic
/// downscaling keeps a flat image flat, so every patch tells which image it came from).
fn flat_images(dir: &Path) {
    for i in 0..12u8 {
        let img = RgbImage {
            h: 16,
            w: 16,
            data: vec![20 * i + 5; 16 * 16 * 3],
        };
        std::fs::write(dir.join(format!("img{i:02}.png")), img.to_png().unwrap()).unwrap();
    }
}

#[test]
fn the_sampler_never_draws_a_held_out_image() {
    let tmp = common::tempdir();
    let train = tmp.path().join("train");
    std::fs::create_dir(&train).unwrap();
    flat_images(&train);
    let list = common::write(
        tmp.path(),
        "val.txt",
        "# held out\nimg07\n\nimg02  # two\nimg11\n",
    );
    let set = load_set(&train, 2).unwrap();
    let v = validation(std::slice::from_ref(&set), &list).unwrap();
    // The evaluation set: the listed images in the list's order, named after the file.
    assert_eq!(v.set.name, "val");
    let names: Vec<&str> = v.set.pairs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["img07", "img02", "img11"]);
    assert_eq!(v.held, [(0, 7), (0, 2), (0, 11)]);

    let held_values = [7u8, 2, 11].map(|i| (20 * i + 5) as f32);
    let mut sampler = Sampler::new(vec![set], 2, 8, 8, true, 255.0, 3)
        .unwrap()
        .without(&v.held)
        .unwrap();
    assert_eq!(sampler.len(), 9);
    let mut drawn = [0usize; 12];
    for _ in 0..500 {
        let b = sampler.next_batch();
        let per = 3 * b.lr_side * b.lr_side;
        for k in 0..b.n {
            let patch = &b.lr[k * per..(k + 1) * per];
            assert!(patch.iter().all(|&x| x == patch[0]), "a flat patch");
            assert!(
                !held_values.contains(&patch[0]),
                "drew a held-out image (value {})",
                patch[0]
            );
            drawn[((patch[0] - 5.0) / 20.0) as usize] += 1;
        }
    }
    // Every other image is still drawn (4000 draws over 9 images).
    for (i, n) in drawn.iter().enumerate() {
        assert_eq!(
            *n == 0,
            [2, 7, 11].contains(&i),
            "image {i} drawn {n} times"
        );
    }
}

#[test]
fn a_list_naming_a_missing_image_is_an_error() {
    let tmp = common::tempdir();
    let train = tmp.path().join("train");
    std::fs::create_dir(&train).unwrap();
    flat_images(&train);
    let set = load_set(&train, 2).unwrap();
    let bad = common::write(tmp.path(), "bad.txt", "img03\nimg99\n");
    let e = validation(std::slice::from_ref(&set), &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("bad.txt") && e.contains("\"img99\"") && e.contains("none of"),
        "{e}"
    );
    let twice = common::write(tmp.path(), "twice.txt", "img03\nimg03\n");
    let e = read_list(&twice).unwrap_err().to_string();
    assert!(
        e.contains("twice.txt:2") && e.contains("listed twice"),
        "{e}"
    );
    let empty = common::write(tmp.path(), "empty.txt", "# nothing\n\n");
    let e = read_list(&empty).unwrap_err().to_string();
    assert!(e.contains("names no image"), "{e}");
    // Holding out every image leaves nothing to train on.
    let all: Vec<(usize, usize)> = (0..12).map(|i| (0, i)).collect();
    let e = Sampler::new(vec![set], 2, 8, 8, true, 255.0, 3)
        .unwrap()
        .without(&all)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("every training image"), "{e}");
}

/// A tiny run with `data.validation`: the split is scored as one more set; with a list naming a
/// missing image `odm run` exits 2 with one line, before any run folder exists.
#[test]
fn a_run_scores_its_validation_split_and_refuses_a_bad_list() {
    let tmp = common::tempdir();
    let train = tmp.path().join("train");
    std::fs::create_dir(&train).unwrap();
    flat_images(&train);
    common::write(tmp.path(), "val.txt", "img04\nimg09\n");
    common::write(tmp.path(), "bad.txt", "img04\nimg42\n");
    let spec = |list: &str| {
        format!(
            r#"(
    name: "split",
    scale: 2,
    model: Edsr(n_resblocks: 1, n_feats: 4),
    data: (train: ["{}"], patch_size: 8, batch_size: 2, validation: "{}"),
    schedule: (iterations: 2),
)"#,
            train.display(),
            tmp.path().join(list).display()
        )
    };
    let dir = common::run_text(tmp.path(), "split", &spec("val.txt"));
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(summary.contains("\"set\": \"val\""), "{summary}");
    let f = common::write(tmp.path(), "bad.ron", &spec("bad.txt"));
    let out = tmp.path().join("results-bad");
    let e = common::odm_user_error(
        &["run", f.to_str().unwrap(), "--out", out.to_str().unwrap()],
        "\"img42\"",
    );
    assert!(e.contains("bad.txt"), "{e}");
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

/// The committed list is what its header's rule gives: the 10 BSD200 stems with the smallest
/// SHA-256 of their UTF-8 bytes, in that order, and each of them is a BSD200 image.
#[test]
#[cfg_attr(
    odm_no_shared_data,
    ignore = "shared data not found: set ODM_DATA to the folder holding benchmark/"
)]
fn the_bsd200_list_follows_its_rule() {
    let Some(root) = common::data_root() else {
        return;
    };
    let mut stems: Vec<String> = std::fs::read_dir(root.join("train/BSD200"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            p.file_stem().unwrap().to_string_lossy().to_string()
        })
        .collect();
    assert_eq!(stems.len(), 200);
    let key = |s: &String| odm::digest::hex(&<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()));
    stems.sort_by_key(key);
    let list = read_list(&common::repo().join("experiments/splits/bsd200_val.txt")).unwrap();
    assert_eq!(list, stems[..10]);
}
