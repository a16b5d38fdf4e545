//! `--save-sr DIR [--save-lr]` of `odm eval` and `odm infer`: every SR image (8-bit, as scored)
//! to `DIR/<set>/<image>.png`, and with `--save-lr` every LR input to `DIR/<set>/lr/<image>.png`.
//! DIR must not exist yet, so earlier outputs are never overwritten; it is filled under
//! `DIR.partial` and renamed when complete.

use crate::data::{ImageSet, RgbImage};
use crate::error::user;
use std::path::{Path, PathBuf};

/// An output folder being written.
pub struct SaveSr {
    out: PathBuf,
    tmp: PathBuf,
    lr: bool,
}

impl SaveSr {
    /// Checks that `out` is new (else a one-line user error) and clears a stale `out.partial`.
    pub fn new(out: &Path, lr: bool) -> anyhow::Result<Self> {
        if out.exists() {
            return Err(user(format!(
                "--save-sr {}: already exists; name a new folder (earlier images are never overwritten)",
                out.display()
            )));
        }
        let mut t = out.as_os_str().to_owned();
        t.push(".partial");
        let tmp = PathBuf::from(t);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        Ok(Self {
            out: out.to_path_buf(),
            tmp,
            lr,
        })
    }

    /// Write the SR image `name` of `set` (and its LR input when asked).
    pub fn write(&self, set: &ImageSet, name: &str, sr: &RgbImage) -> anyhow::Result<()> {
        let d = self.tmp.join(&set.name);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("{name}.png")), sr.to_png()?)?;
        if let Some(p) = self
            .lr
            .then(|| set.pairs.iter().find(|p| p.name == name))
            .flatten()
        {
            std::fs::create_dir_all(d.join("lr"))?;
            std::fs::write(d.join("lr").join(format!("{name}.png")), p.lr.to_png()?)?;
        }
        Ok(())
    }

    /// Every image written: rename into place.
    pub fn finish(self) -> anyhow::Result<()> {
        std::fs::rename(&self.tmp, &self.out)?;
        Ok(())
    }
}
