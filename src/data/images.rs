//! Finding and decoding images. Layouts: a plain folder of HR images (searched recursively),
//! EDSR-PyTorch (`DIV2K/DIV2K_train_HR`, `benchmark/Set5/HR`) and BasicSR (`DIV2K_train_HR_sub`,
//! `Set5/GTmod12`). LR is always synthesised from HR (cropped to a multiple of the scale) with
//! the MATLAB-compatible bicubic [`imresize`](super::imresize); LR files on disk are ignored.
//!
//! A corrupt or unreadable image is an error that names the file: a silently skipped image would
//! change the benchmark mean without anybody noticing.

use super::imresize::imresize_u8;
use crate::error::user;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use walkdir::WalkDir;

/// Image file extensions that are decoded.
pub const EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Sub-folders that hold the HR images in the known layouts, in order of preference.
const HR_SUBDIRS: [&str; 6] = [
    "HR",
    "GTmod12",
    "GT",
    "DIV2K_train_HR_sub",
    "DIV2K_train_HR",
    "DIV2K_valid_HR",
];

/// An 8-bit RGB image, interleaved (HWC).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub h: usize,
    pub w: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// The image as PNG bytes (8-bit RGB).
    pub fn to_png(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut out),
            &self.data,
            self.w as u32,
            self.h as u32,
            image::ExtendedColorType::Rgb8,
        )?;
        Ok(out)
    }

    /// Top-left crop to `h` × `w`.
    pub fn crop(&self, h: usize, w: usize) -> RgbImage {
        let mut data = Vec::with_capacity(h * w * 3);
        for y in 0..h {
            data.extend_from_slice(&self.data[y * self.w * 3..(y * self.w + w) * 3]);
        }
        RgbImage { h, w, data }
    }

    /// Crop to a multiple of `scale` (top-left), as the SR benchmark protocol does.
    pub fn mod_crop(&self, scale: usize) -> RgbImage {
        self.crop(self.h - self.h % scale, self.w - self.w % scale)
    }

    /// [`mod_crop`](Self::mod_crop) in place: rows are moved down within the buffer, so a
    /// large image is not held twice (and an image already a multiple of `scale` is not copied).
    pub fn into_mod_crop(mut self, scale: usize) -> RgbImage {
        let (h, w) = (self.h - self.h % scale, self.w - self.w % scale);
        if w != self.w {
            // Row y moves from y·self.w to y·w ≤ y·self.w: earlier rows are never overwritten
            // before they are moved.
            for y in 1..h {
                let src = y * self.w * 3;
                self.data.copy_within(src..src + w * 3, y * w * 3);
            }
        }
        self.data.truncate(h * w * 3);
        RgbImage {
            h,
            w,
            data: self.data,
        }
    }

    /// MATLAB `imresize(img, 1/scale, 'bicubic')`, rounded to 8 bits.
    pub fn downscale(&self, scale: usize) -> RgbImage {
        let (data, h, w) = imresize_u8(&self.data, self.h, self.w, 3, 1.0 / scale as f64);
        RgbImage { h, w, data }
    }
}

/// An HR image (mod-cropped) and its bicubic LR.
#[derive(Debug)]
pub struct Pair {
    /// The file stem (what per-image scores and crops name).
    pub name: String,
    /// The file name, extension included (what errors name).
    pub file: String,
    pub hr: RgbImage,
    pub lr: RgbImage,
}

/// The images of one folder at one scale.
#[derive(Debug)]
pub struct ImageSet {
    pub name: String,
    pub dir: PathBuf,
    pub scale: usize,
    pub pairs: Vec<Pair>,
}

/// The folder that holds the HR images of `dir` in any supported layout.
pub fn hr_dir(dir: &Path) -> PathBuf {
    HR_SUBDIRS
        .iter()
        .map(|s| dir.join(s))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| dir.to_path_buf())
}

/// The set's name: the folder name, or its parent's for layout folders (`Set5/HR` → `Set5`).
pub fn set_name(dir: &Path) -> String {
    let base = dir.file_name().map(|s| s.to_string_lossy().to_string());
    match base {
        Some(b) if HR_SUBDIRS.contains(&b.as_str()) => dir
            .parent()
            .and_then(|p| p.file_name())
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or(b),
        Some(b) => b,
        None => dir.display().to_string(),
    }
}

fn is_lr_dir(name: &str) -> bool {
    name.starts_with("LR") || name.contains("_LR") || name.starts_with('.')
}

fn has_image_ext(p: &Path) -> bool {
    p.extension()
        .map(|x| EXTENSIONS.contains(&x.to_string_lossy().to_lowercase().as_str()))
        .unwrap_or(false)
}

/// Image files under `dir` (recursively, LR folders skipped), sorted by path. Every entry with
/// an image extension is listed or named in an error: a dangling symlink, an unreadable entry or
/// a non-file named `*.png` would otherwise change a benchmark mean without a word.
pub fn list_images(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(user(format!(
            "{}: data folder does not exist (check the path in the spec)",
            dir.display()
        )));
    }
    let root = hr_dir(dir);
    let mut files = Vec::new();
    let walk = WalkDir::new(&root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir() && is_lr_dir(&e.file_name().to_string_lossy()))
        });
    for e in walk {
        let e = match e {
            Ok(e) => e,
            Err(err) => {
                let p = err.path().map(Path::to_path_buf).unwrap_or(root.clone());
                if err.loop_ancestor().is_none() && !has_image_ext(&p) && p != root {
                    continue;
                }
                let why = if p.is_symlink() && !p.exists() {
                    "a dangling symlink".to_string()
                } else {
                    format!("cannot be read ({err})")
                };
                return Err(user(format!(
                    "{}: {why}; fix or remove it (every image of a data folder is used)",
                    p.display()
                )));
            }
        };
        if !has_image_ext(e.path()) || e.file_type().is_dir() {
            continue;
        }
        if !e.file_type().is_file() {
            return Err(user(format!(
                "{}: not a regular file; fix or remove it (every image of a data folder is used)",
                e.path().display()
            )));
        }
        files.push(e.into_path());
    }
    files.sort();
    if files.is_empty() {
        return Err(user(format!(
            "{}: no images found (looked for {} files, also in the HR/, GTmod12/ and DIV2K_*_HR/ layouts)",
            root.display(),
            EXTENSIONS.join("/")
        )));
    }
    Ok(files)
}

/// The folders a set's name can be made of: `dir` without a layout folder (`Set5/HR` → `Set5`),
/// innermost last.
fn name_parts(dir: &Path) -> Vec<String> {
    let d = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut parts: Vec<String> = d
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().to_string()),
            _ => None,
        })
        .collect();
    if parts.len() > 1
        && parts
            .last()
            .is_some_and(|b| HR_SUBDIRS.contains(&b.as_str()))
    {
        parts.pop();
    }
    parts
}

/// One name per folder of `dirs`: its [`set_name`], or, where two folders share it, enough of
/// their parent folders to tell them apart (`a/holdout`, `b/holdout`), so scores, saved images
/// and report columns never merge two sets. The same folder named twice is a user error.
pub fn unique_set_names(dirs: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = dirs.iter().map(|d| set_name(d)).collect();
    let parts: Vec<Vec<String>> = dirs.iter().map(|d| name_parts(d)).collect();
    for i in 0..dirs.len() {
        for j in i + 1..dirs.len() {
            if names[i] != names[j] {
                continue;
            }
            if parts[i] == parts[j] {
                return Err(user(format!(
                    "{} and {}: the same folder is listed twice; list it once",
                    dirs[i].display(),
                    dirs[j].display()
                )));
            }
            // The shortest tail of folders that tells the two apart.
            let tail = |p: &[String], k: usize| p[p.len().saturating_sub(k)..].join("/");
            let k = (1..=parts[i].len().max(parts[j].len()))
                .find(|&k| tail(&parts[i], k) != tail(&parts[j], k))
                .unwrap_or(1);
            for x in [i, j] {
                if names[x].matches('/').count() + 1 < k {
                    names[x] = tail(&parts[x], k);
                }
            }
        }
    }
    Ok(names)
}

/// The largest side, in pixels, of an image odm decodes. `odm eval --tile` bounds the memory of
/// super-resolving and scoring such an image; what remains is the image itself (the 8-bit HR,
/// its LR and the 8-bit SR, 3 bytes a pixel each).
pub const MAX_SIDE: u32 = 16_384;

/// The decoder's allocation limit: a `MAX_SIDE`² image in the widest pixel format the decoders
/// produce (RGBA, 16 bits a channel: 8 bytes a pixel), 2 GiB. The `image` crate's default,
/// 512 MiB, refuses an 8-bit RGB image above about 13 000 × 13 000 px.
pub const MAX_DECODE_BYTES: u64 = (MAX_SIDE as u64) * (MAX_SIDE as u64) * 8;

/// The decoder limits odm decodes with ([`MAX_DECODE_BYTES`]; the sides are checked by
/// [`check_size`], with a message of ours).
pub fn decode_limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

/// Refuse an image of `w`×`h` px whose decoded buffer takes `bytes` when it is beyond what odm
/// decodes ([`MAX_SIDE`], [`MAX_DECODE_BYTES`]): a one-line user error naming the file, the
/// limit and the fix.
pub fn check_size(path: &Path, w: u32, h: u32, bytes: u64) -> anyhow::Result<()> {
    if w > MAX_SIDE || h > MAX_SIDE || bytes > MAX_DECODE_BYTES {
        return Err(user(format!(
            "{}: image is {w}×{h} px; odm reads images up to {MAX_SIDE}×{MAX_SIDE} px \
             ({} MiB decoded): crop or split it into parts of at most {MAX_SIDE} px a side",
            path.display(),
            MAX_DECODE_BYTES >> 20
        )));
    }
    Ok(())
}

/// Decode one image to 8-bit RGB; grayscale is replicated to three channels. Images up to
/// [`MAX_SIDE`] px a side are read (see [`check_size`]); an 8-bit RGB image is taken over
/// without a copy.
pub fn decode(path: &Path) -> anyhow::Result<RgbImage> {
    let corrupt = |e: image::ImageError| {
        user(format!(
            "{}: corrupt or unsupported image: {e} (remove or replace the file)",
            path.display()
        ))
    };
    let mut reader = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| user(format!("{}: cannot open image: {e}", path.display())))?;
    reader.limits(decode_limits());
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    check_size(path, w, h, image::ImageDecoder::total_bytes(&decoder))?;
    let rgb = image::DynamicImage::from_decoder(decoder)
        .map_err(corrupt)?
        .into_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(RgbImage {
        h: h as usize,
        w: w as usize,
        data: rgb.into_raw(),
    })
}

type Cache = Mutex<HashMap<(PathBuf, usize, String), Arc<ImageSet>>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Load a folder at `scale`: decode, mod-crop, make bicubic LR. Cached per process.
pub fn load_set(dir: &Path, scale: usize) -> anyhow::Result<Arc<ImageSet>> {
    load_set_as(dir, scale, &set_name(dir))
}

/// [`load_set`] under the set name `name` (see [`unique_set_names`]).
pub fn load_set_as(dir: &Path, scale: usize, name: &str) -> anyhow::Result<Arc<ImageSet>> {
    let key = (dir.to_path_buf(), scale, name.to_string());
    if let Some(s) = cache().lock().expect("cache lock").get(&key) {
        return Ok(s.clone());
    }
    let files = list_images(dir)?;
    let mut pairs = Vec::with_capacity(files.len());
    for f in &files {
        let img = decode(f)?;
        if img.h < scale || img.w < scale {
            return Err(user(format!(
                "{}: image is {}×{}, smaller than the scale {scale}",
                f.display(),
                img.w,
                img.h
            )));
        }
        let hr = img.into_mod_crop(scale);
        let lr = hr.downscale(scale);
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let file = f
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        pairs.push(Pair { name, file, hr, lr });
    }
    let set = Arc::new(ImageSet {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        scale,
        pairs,
    });
    cache().lock().expect("cache lock").insert(key, set.clone());
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::RgbImage;

    #[test]
    fn mod_crop_in_place_equals_the_copying_crop() {
        for (h, w, scale) in [(7, 10, 3), (8, 9, 4), (6, 6, 2), (5, 4, 4)] {
            let img = RgbImage {
                h,
                w,
                data: (0..h * w * 3).map(|i| (i * 7 % 251) as u8).collect(),
            };
            assert_eq!(img.clone().into_mod_crop(scale), img.mod_crop(scale));
        }
    }
}
