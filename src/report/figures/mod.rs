//! The report's figures, drawn with plotters into SVG and PNG with the embedded DejaVu Sans font
//! (assets/fonts, Bitstream Vera licence), all in one style ([`style`]) on one layout
//! ([`layout`]: legends below the panels, never over data): the distribution mismatch of ODM's
//! Figure 1, the per-layer M_σ / M_μ bars of its Figure 3, training curves per W/A, the claims'
//! paired gap over training, gradient conflict, PSNR against BitOPs, the ablation against the
//! paper's, the drop from FP beside the papers', and, for runs that store them, per-layer mismatch, the histogram of one layer's
//! input (ODM's Fig. 5) and the gate weights. Each figure carries its caption (protocol, seeds)
//! at the bottom.

pub mod ablation;
pub mod bitops;
pub mod chart;
pub mod curves;
pub mod diag;
pub mod drops;
pub mod gap;
pub mod layout;
pub mod paper;
pub mod style;

use super::frame::Aggs;
use super::tables::{Group, Item};
use super::{put, Run};
use layout::Layout;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use style::{init_font, FONT};

/// Plotters errors carry the backend's error type; turn them into anyhow errors.
pub(crate) trait Plt<T> {
    fn p(self) -> anyhow::Result<T>;
}
impl<T, E: std::fmt::Debug> Plt<T> for Result<T, E> {
    fn p(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("plotting failed: {e:?}"))
    }
}

/// A figure: its layout (which fixes the PNG's size) and its drawing on any plotters backend.
pub trait Figure {
    fn layout(&self) -> Layout;
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        l: &Layout,
    ) -> anyhow::Result<()>;
}

/// A figure ready to be written: its file stem, index title and caption, and the figure.
pub struct Drawn<F> {
    pub stem: String,
    pub title: String,
    pub caption: String,
    pub fig: F,
}

/// Any of the report's drawn figures.
pub enum Any {
    Chart(chart::Chart),
    Scatter(bitops::Scatter),
}

impl Figure for Any {
    fn layout(&self) -> Layout {
        match self {
            Any::Chart(c) => c.layout(),
            Any::Scatter(s) => s.layout(),
        }
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        l: &Layout,
    ) -> anyhow::Result<()> {
        match self {
            Any::Chart(c) => c.draw(root, l),
            Any::Scatter(s) => s.draw(root, l),
        }
    }
}

/// A chart ready to be written.
pub fn drawn(stem: String, title: String, caption: String, fig: chart::Chart) -> Drawn<Any> {
    Drawn {
        stem,
        title,
        caption,
        fig: Any::Chart(fig),
    }
}

/// The PNG of `f`: RGB pixels of the layout's size.
pub fn png<F: Figure>(f: &F) -> anyhow::Result<Vec<u8>> {
    init_font();
    let l = f.layout();
    let (w, h) = l.size;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        f.draw(&root, &l)?;
        root.present().p()?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &buf,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(png)
}

/// Render `d` as `figures/<stem>.svg` and `.png`; returns its index entry.
fn save<F: Figure>(d: &Drawn<F>, out: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<Item> {
    init_font();
    let l = d.fig.layout();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, l.size).into_drawing_area();
        d.fig.draw(&root, &l)?;
        root.present().p()?;
    }
    let stem = &d.stem;
    put(out, &format!("figures/{stem}.svg"), svg.as_bytes(), written)?;
    put(out, &format!("figures/{stem}.png"), &png(&d.fig)?, written)?;
    Ok(Item {
        title: d.title.clone(),
        files: vec![format!("figures/{stem}.png"), format!("figures/{stem}.svg")],
        caption: d.caption.clone(),
    })
}

/// A line of means and its band (x, lo, hi).
pub type MeanBand = (Vec<(f64, f64)>, Vec<(f64, f64, f64)>);

/// Mean per step of the values the seeds gave, and their min–max where there are two or more.
pub fn over_seeds(v: &BTreeMap<usize, Vec<f64>>) -> MeanBand {
    let mean = v
        .iter()
        .map(|(s, x)| (*s as f64, x.iter().sum::<f64>() / x.len() as f64))
        .collect();
    let band = v
        .iter()
        .filter(|(_, x)| x.len() > 1)
        .map(|(s, x)| {
            let lo = x.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (*s as f64, lo, hi)
        })
        .collect();
    (mean, band)
}

/// Seed mean of a metric per step for one group, and the min–max over seeds.
pub fn seed_series(g: &Group, split: &str, set: &str, metric: &str) -> MeanBand {
    let mut acc: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in &g.runs {
        for m in r
            .metrics
            .iter()
            .filter(|m| m.split == split && m.set == set && m.metric == metric)
        {
            acc.entry(m.step).or_default().push(m.value);
        }
    }
    over_seeds(&acc)
}

/// "lines are means over 1–2 seeds, bands their min–max".
pub fn seeds_note(gs: &[&Group]) -> String {
    let many = gs.iter().any(|g| g.runs.len() > 1);
    format!(
        "lines are means over {}{}",
        super::tables::seeds_phrase(gs.iter().map(|g| g.runs.len())),
        if many {
            ", shaded bands the range over seeds"
        } else {
            ""
        }
    )
}

/// Every figure the results (and the expectations, for the ablation) allow, in the index's
/// order, not yet drawn: tests read their layouts.
pub fn build(
    runs: &[Run],
    aggs: &Aggs,
    expected: Option<&super::verify::Expected>,
) -> anyhow::Result<Vec<Drawn<Any>>> {
    let mut f = Vec::new();
    if let Some(e) = expected {
        f.extend(ablation::figures(runs, aggs, e));
        f.extend(drops::figures(runs, e));
    }
    f.extend(bitops::scatter(runs, aggs));
    f.extend(curves::training(runs));
    if let Some(e) = expected {
        f.extend(gap::figures(runs, e));
    }
    f.extend(paper::distribution(runs));
    f.extend(paper::offsets(runs));
    let mechanisms = expected
        .map(|e| e.mechanisms.as_slice())
        .unwrap_or_default();
    f.extend(diag::histograms(runs, mechanisms)?);
    f.extend(diag::mismatch(runs, mechanisms)?);
    f.extend(curves::conflict(runs));
    f.extend(diag::gates(runs, mechanisms));
    Ok(f)
}

/// Draw every figure the results allow; returns their index entries.
pub fn write_all(
    runs: &[Run],
    aggs: &Aggs,
    expected: Option<&super::verify::Expected>,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<Item>> {
    build(runs, aggs, expected)?
        .iter()
        .map(|d| save(d, out, written))
        .collect()
}
