//! The report's figures, drawn with plotters into SVG and PNG with the embedded DejaVu Sans font
//! (assets/fonts, Bitstream Vera licence): the distribution mismatch of ODM's Figure 1, the
//! per-layer M_σ / M_μ bars of its Figure 3, gradient conflict over training, PSNR against
//! BitOPs, and training curves. Each figure carries its caption (protocol, seeds) at the bottom.

use super::frame::Aggs;
use super::runs::Family;
use super::tables::{groups, Item};
use super::{put, Run, PROTOCOL};
use crate::eval::inspect::LayerStats;
use crate::record::keys;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub(super) const FONT: &str = "sans-serif";
static DEJAVU: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

pub(super) fn init_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU)
            .unwrap_or_else(|_| panic!("embedded font is a valid TTF"));
    });
}

/// Plotters errors carry the backend's error type; turn them into anyhow errors.
pub(super) trait Plt<T> {
    fn p(self) -> anyhow::Result<T>;
}
impl<T, E: std::fmt::Debug> Plt<T> for Result<T, E> {
    fn p(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::anyhow!("plotting failed: {e:?}"))
    }
}

/// A figure that can draw itself on any plotters backend.
trait Figure {
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>;
}

/// Title on top, caption at the bottom; returns the plotting area.
fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    caption: &str,
) -> anyhow::Result<DrawingArea<DB, Shift>> {
    root.fill(&WHITE).p()?;
    let (w, h) = root.dim_in_pixel();
    let lines = wrap(caption, (w as usize * 10 / 72).max(40));
    let (top, bottom) = root.split_vertically(h as i32 - 12 - 17 * lines.len() as i32);
    let mut y = 6;
    for line in lines {
        bottom
            .draw(&Text::new(
                line,
                (12, y),
                (FONT, 13).into_font().color(&BLACK.mix(0.75)),
            ))
            .p()?;
        y += 17;
    }
    top.titled(title, (FONT, 22)).p()
}

pub(super) fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in s.split(' ') {
        let last = lines.last_mut().expect("one line");
        if !last.is_empty() && last.chars().count() + w.chars().count() + 1 > width {
            lines.push(w.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(w);
        }
    }
    lines
}

/// Render `f` as `figures/<stem>.svg` and `.png`.
fn save<F: Figure>(
    f: &F,
    out: &Path,
    stem: &str,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<String>> {
    init_font();
    let (w, h) = f.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        f.draw(&root)?;
        root.present().p()?;
    }
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        f.draw(&root)?;
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
    put(out, &format!("figures/{stem}.svg"), svg.as_bytes(), written)?;
    put(out, &format!("figures/{stem}.png"), &png, written)?;
    Ok(vec![
        format!("figures/{stem}.png"),
        format!("figures/{stem}.svg"),
    ])
}

/// The legend box every chart uses.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    ch: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> anyhow::Result<()> {
    ch.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 12))
        .position(pos)
        .draw()
        .p()
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn pad(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs();
    let d = if span < 1e-9 {
        lo.abs().max(1.0) * 0.05
    } else {
        span * 0.05
    };
    (lo - d, hi + d)
}

// ---------------------------------------------------------------- distribution mismatch (Fig. 1)

struct Dist<'a> {
    panels: [(&'a str, &'a LayerStats); 2],
    images: &'a [String],
    caption: String,
}

impl Dist<'_> {
    fn ranges<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        name: &str,
        l: &LayerStats,
        y: (f64, f64),
    ) -> anyhow::Result<()> {
        let c = l.channels.len();
        let mut ch = ChartBuilder::on(area)
            .caption(
                format!("{name}: per-channel range of {}", l.layer),
                (FONT, 16),
            )
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..c as f64 - 0.5, y.0..y.1)
            .p()?;
        ch.configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_labels(8)
            .x_desc("channel")
            .y_desc("activation value")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .p()?;
        let gray = BLACK.mix(0.45);
        ch.draw_series(l.channels.iter().enumerate().map(|(i, r)| {
            PathElement::new(
                vec![(i as f64, r.min), (i as f64, r.max)],
                gray.stroke_width(1),
            )
        }))
        .p()?
        .label("min–max")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], gray));
        let blue = color(0);
        ch.draw_series(l.channels.iter().enumerate().map(|(i, r)| {
            Rectangle::new(
                [(i as f64 - 0.35, r.p01), (i as f64 + 0.35, r.p99)],
                blue.mix(0.7).filled(),
            )
        }))
        .p()?
        .label("1st–99th percentile")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], blue.filled()));
        ch.draw_series(
            l.channels
                .iter()
                .enumerate()
                .map(|(i, r)| Circle::new((i as f64, r.mean), 2, BLACK.filled())),
        )
        .p()?
        .label("mean")
        .legend(|(x, y)| Circle::new((x + 9, y), 3, BLACK.filled()));
        if let Some((lo, hi)) = l.bounds {
            let red = color(3);
            for (k, b) in [lo, hi].into_iter().enumerate() {
                let s = ch
                    .draw_series(LineSeries::new(
                        vec![(-0.5, b), (c as f64 - 0.5, b)],
                        red.stroke_width(2),
                    ))
                    .p()?;
                if k == 0 {
                    s.label("quantizer clip [l, u]").legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(2))
                    });
                }
            }
        }
        legend(&mut ch, SeriesLabelPosition::UpperRight)
    }

    fn hist<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        name: &str,
        l: &LayerStats,
    ) -> anyhow::Result<()> {
        let bins = l.hist.first().map_or(1, |h| h.len()).max(1);
        let width = (l.hist_hi - l.hist_lo) / bins as f64;
        let mut ch = ChartBuilder::on(area)
            .caption(
                format!("{name}: per-image histograms of {}", l.layer),
                (FONT, 16),
            )
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(l.hist_lo..l.hist_hi, (1e-6f64..1.0).log_scale())
            .p()?;
        ch.configure_mesh()
            .x_desc("activation value")
            .y_desc("fraction of pixels (log)")
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .p()?;
        for (k, h) in l.hist.iter().enumerate() {
            let total = h.iter().sum::<u64>().max(1) as f64;
            let c = color(k);
            let pts: Vec<(f64, f64)> = h
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    (
                        l.hist_lo + (i as f64 + 0.5) * width,
                        (n as f64 / total).max(1e-6),
                    )
                })
                .collect();
            let label = self.images.get(k).cloned().unwrap_or_default();
            ch.draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .p()?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        legend(&mut ch, SeriesLabelPosition::UpperRight)
    }
}

impl Figure for Dist<'_> {
    fn size(&self) -> (u32, u32) {
        (1400, 960)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let area = frame(
            root,
            "Distribution mismatch: activations entering a quantized layer",
            &self.caption,
        )?;
        let cells = area.split_evenly((2, 2));
        let lo = self
            .panels
            .iter()
            .flat_map(|(_, l)| l.channels.iter().map(|r| r.min))
            .chain(
                self.panels
                    .iter()
                    .filter_map(|(_, l)| l.bounds.map(|b| b.0)),
            )
            .fold(f64::INFINITY, f64::min);
        let hi = self
            .panels
            .iter()
            .flat_map(|(_, l)| l.channels.iter().map(|r| r.max))
            .chain(
                self.panels
                    .iter()
                    .filter_map(|(_, l)| l.bounds.map(|b| b.1)),
            )
            .fold(f64::NEG_INFINITY, f64::max);
        let y = pad(lo, hi);
        for (k, (name, l)) in self.panels.iter().enumerate() {
            self.ranges(&cells[k], name, l, y)?;
            self.hist(&cells[2 + k], name, l)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ M_σ / M_μ bars (Fig. 3)

/// One bar panel: its area, y label, the value and highlight of each layer, the legend label.
type Panel<'a, DB> = (
    &'a DrawingArea<DB, Shift>,
    &'a str,
    Box<dyn Fn(&super::runs::Offset) -> (f64, bool)>,
    &'a str,
);

struct Spreads<'a> {
    rows: &'a [super::runs::Offset],
    caption: String,
}

impl Figure for Spreads<'_> {
    fn size(&self) -> (u32, u32) {
        (1400, 620)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let area = frame(
            root,
            "Channel spreads per quantized layer and the selected offsets",
            &self.caption,
        )?;
        let (l, r) = area.split_horizontally(area.dim_in_pixel().0 / 2);
        let n = self.rows.len();
        let panels: [Panel<'_, DB>; 2] = [
            (
                &l,
                "M_σ = std_c(σ_c) / mean_c(σ_c)",
                Box::new(|o| (o.m_sigma, o.scale)),
                "selected for channel-wise scale",
            ),
            (
                &r,
                "M_μ = std_c(μ_c) / mean_c(σ_c)",
                Box::new(|o| (o.m_mu, o.shift)),
                "selected for channel-wise shift",
            ),
        ];
        for (a, title, get, sel) in panels {
            let top = self.rows.iter().map(|o| get(o).0).fold(0.0f64, f64::max) * 1.15;
            let names: Vec<String> = self.rows.iter().map(|o| o.layer.clone()).collect();
            let mut ch = ChartBuilder::on(a)
                .caption(title, (FONT, 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0.0..top.max(1e-6))
                .p()?;
            ch.configure_mesh()
                .disable_x_mesh()
                .x_labels(n.clamp(1, 10))
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        names.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .x_desc("layer (input of the quantized conv)")
                .y_desc("spread")
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 14))
                .draw()
                .p()?;
            let (hi_c, lo_c) = (color(1), BLACK.mix(0.35));
            ch.draw_series(
                self.rows
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| get(o).1)
                    .map(|(i, o)| {
                        Rectangle::new(
                            [(i as f64 - 0.38, 0.0), (i as f64 + 0.38, get(o).0)],
                            hi_c.filled(),
                        )
                    }),
            )
            .p()?
            .label(sel)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], hi_c.filled()));
            ch.draw_series(self.rows.iter().enumerate().filter(|(_, o)| !get(o).1).map(
                |(i, o)| {
                    Rectangle::new(
                        [(i as f64 - 0.38, 0.0), (i as f64 + 0.38, get(o).0)],
                        lo_c.filled(),
                    )
                },
            ))
            .p()?
            .label("not selected")
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], lo_c.filled()));
            legend(&mut ch, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------- line charts over steps

/// Named lines over iterations.
type Lines = Vec<(String, Vec<(f64, f64)>)>;

struct Curves {
    title: String,
    panels: Vec<(String, String, Lines, bool)>,
    caption: String,
}

impl Figure for Curves {
    fn size(&self) -> (u32, u32) {
        (700 * self.panels.len() as u32, 560)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let area = frame(root, &self.title, &self.caption)?;
        let cells = area.split_evenly((1, self.panels.len()));
        for (a, (title, ydesc, lines, markers)) in cells.iter().zip(&self.panels) {
            let pts = lines.iter().flat_map(|(_, v)| v.iter());
            let (x0, x1) = pts
                .clone()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |m, p| {
                    (m.0.min(p.0), m.1.max(p.0))
                });
            let (y0, y1) = pts.fold((f64::INFINITY, f64::NEG_INFINITY), |m, p| {
                (m.0.min(p.1), m.1.max(p.1))
            });
            if !x0.is_finite() {
                continue;
            }
            let (x0, x1) = pad(x0, x1);
            let (y0, y1) = pad(y0, y1);
            let mut ch = ChartBuilder::on(a)
                .caption(title, (FONT, 16))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(64)
                .build_cartesian_2d(x0..x1, y0..y1)
                .p()?;
            ch.configure_mesh()
                .x_label_formatter(&|x| format!("{x:.0}"))
                .x_desc("iteration")
                .y_desc(ydesc.as_str())
                .label_style((FONT, 12))
                .axis_desc_style((FONT, 14))
                .draw()
                .p()?;
            for (k, (name, v)) in lines.iter().enumerate() {
                let c = color(k);
                ch.draw_series(LineSeries::new(v.clone(), c.stroke_width(2)))
                    .p()?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                if *markers {
                    ch.draw_series(v.iter().map(|&p| Circle::new(p, 4, c.filled())))
                        .p()?;
                }
            }
            legend(&mut ch, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------ PSNR vs BitOPs

struct Scatter {
    set: String,
    points: Vec<(String, String, f64, f64)>,
    caption: String,
}

impl Figure for Scatter {
    fn size(&self) -> (u32, u32) {
        (1100, 720)
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()> {
        let area = frame(
            root,
            &format!("PSNR on {} against BitOPs", self.set),
            &self.caption,
        )?;
        let (x0, x1) = self
            .points
            .iter()
            .fold((f64::INFINITY, 0.0f64), |m, p| (m.0.min(p.2), m.1.max(p.2)));
        let (y0, y1) = pad(
            self.points
                .iter()
                .map(|p| p.3)
                .fold(f64::INFINITY, f64::min),
            self.points
                .iter()
                .map(|p| p.3)
                .fold(f64::NEG_INFINITY, f64::max),
        );
        let mut ch = ChartBuilder::on(&area)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x0 / 1.6..x1 * 1.6).log_scale(), y0..y1)
            .p()?;
        ch.configure_mesh()
            .x_desc("BitOPs (G, log scale)")
            .y_desc(format!("PSNR-Y on {} (dB)", self.set))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .draw()
            .p()?;
        let mut fams: Vec<&String> = self.points.iter().map(|p| &p.0).collect();
        fams.dedup();
        fams.sort();
        fams.dedup();
        for (k, fam) in fams.iter().enumerate() {
            let c = color(k);
            ch.draw_series(
                self.points
                    .iter()
                    .filter(|p| &&p.0 == fam)
                    .map(|p| Circle::new((p.2, p.3), 6, c.filled())),
            )
            .p()?
            .label(fam.as_str())
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, c.filled()));
            ch.draw_series(self.points.iter().filter(|p| &&p.0 == fam).map(|p| {
                EmptyElement::at((p.2, p.3))
                    + Text::new(
                        p.1.clone(),
                        (9, -5),
                        (FONT, 11).into_font().color(&BLACK.mix(0.8)),
                    )
            }))
            .p()?;
        }
        legend(&mut ch, SeriesLabelPosition::LowerRight)
    }
}

// ------------------------------------------------------------------------------- data

/// Seed-mean of a metric per step for one group: (step, mean).
fn series(g: &super::tables::Group, split: &str, set: &str, metric: &str) -> Vec<(f64, f64)> {
    let mut acc: std::collections::BTreeMap<usize, (f64, usize)> = Default::default();
    for r in &g.runs {
        for m in r
            .metrics
            .iter()
            .filter(|m| m.split == split && m.set == set && m.metric == metric)
        {
            let e = acc.entry(m.step).or_insert((0.0, 0));
            e.0 += m.value;
            e.1 += 1;
        }
    }
    acc.into_iter()
        .map(|(s, (v, n))| (s as f64, v / n as f64))
        .collect()
}

fn seeds_note(gs: &[&super::tables::Group]) -> String {
    format!(
        "lines are means over {}",
        super::tables::seeds_phrase(gs.iter().map(|g| g.runs.len()))
    )
}

/// The Figure 1 (distribution mismatch): pushes its index entry onto `items`.
fn distribution_fig(
    runs: &[Run],
    _aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    // Figure 1: the quantized run (ODM with offsets preferred) and beside it the best FP run of
    // the same backbone and scale (highest PSNR on its first set) with statistics.
    let q = runs
        .iter()
        .filter(|r| r.acts.is_some() && r.bits.is_some())
        .max_by_key(|r| {
            (
                r.family == Family::Odm,
                r.offsets
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|x| x.scale || x.shift)),
                std::cmp::Reverse(r.name.clone()),
            )
        });
    let fp = q.and_then(|q| {
        let psnr = |r: &Run| r.scores.first().map_or(f64::NEG_INFINITY, |s| s.psnr);
        runs.iter()
            .filter(|r| r.family == Family::Fp32 && r.acts.is_some())
            .filter(|r| r.backbone == q.backbone && r.spec.scale == q.spec.scale)
            .max_by(|a, b| psnr(a).total_cmp(&psnr(b)).then(b.name.cmp(&a.name)))
    });
    if let (Some(fp), Some(q)) = (fp, q) {
        let (fa, qa) = (
            fp.acts.as_ref().expect("acts"),
            q.acts.as_ref().expect("acts"),
        );
        let layer = fa
            .layers
            .iter()
            .filter(|l| qa.layers.iter().any(|m| m.layer == l.layer))
            .max_by(|a, b| a.m_sigma.total_cmp(&b.m_sigma).then(b.layer.cmp(&a.layer)));
        if let Some(l) = layer {
            let ql = qa
                .layers
                .iter()
                .find(|m| m.layer == l.layer)
                .expect("layer");
            let caption = format!(
                "Input of {} (largest M_σ in the FP model) on the first {} images of {} (×{}, LR made by odm's MATLAB-compatible bicubic). Left: FP model {} (M_σ {:.2}, M_μ {:.2}); right: quantized {} = {} (M_σ {:.2}, M_μ {:.2}), one seed, after its distribution offsets, with its learned clip range. Whiskers: min–max per channel; bars: 1st–99th percentile; dots: mean. Evaluation protocol of these runs: {PROTOCOL}.",
                l.layer, fa.images.len(), fa.set, fp.spec.scale, fp.name, l.m_sigma, l.m_mu, q.name, q.method, ql.m_sigma, ql.m_mu
            );
            let f = Dist {
                panels: [("FP", l), ("quantized", ql)],
                images: &fa.images,
                caption: caption.clone(),
            };
            items.push(Item {
                title: "Distribution mismatch (Fig. 1)".into(),
                files: save(&f, out, "distribution", written)?,
                caption,
            });
        }
    }
    Ok(())
}

/// The Figure 3 (M_σ / M_μ and the selected offsets): pushes its index entry onto `items`.
fn offsets_fig(
    runs: &[Run],
    _aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    // Figure 3: M_σ / M_μ with the selected layers.
    if let Some(r) = runs.iter().find(|r| {
        r.offsets
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x.scale || x.shift))
    }) {
        let rows = r.offsets.as_ref().expect("offsets");
        let caption = format!(
            "M_σ and M_μ of each quantized layer's input on the FP model's calibration batches (training patches), as stored by {} ({}, one seed); highlighted: the layers its offset policy selected. Evaluation protocol of this run: {PROTOCOL}.",
            r.name, r.method
        );
        let f = Spreads {
            rows,
            caption: caption.clone(),
        };
        items.push(Item {
            title: "Channel spreads and selected offsets (Fig. 3)".into(),
            files: save(&f, out, "offsets", written)?,
            caption,
        });
    }
    Ok(())
}

/// The gradient conflict per gating rule: pushes its index entry onto `items`.
fn conflict_fig(
    runs: &[Run],
    _aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    let gs = groups(runs);
    // Gradient conflict per gating rule.
    let gated: Vec<&super::tables::Group> = gs
        .iter()
        .filter(|g| {
            g.runs
                .iter()
                .any(|r| r.metrics.iter().any(|m| m.split == keys::GATE))
        })
        .collect();
    if !gated.is_empty() {
        let name = |g: &super::tables::Group| format!("{} ({})", g.name, g.first().method);
        let lines = |metric: &str| -> Lines {
            gated
                .iter()
                .map(|g| (name(g), series(g, keys::GATE, "-", metric)))
                .collect()
        };
        let caption = format!(
            "Gradient conflict during QAT: fraction of parameter elements where the reconstruction (L1) and regularizer gradients have opposite signs, and their global cosine, logged every `gating.log_every` steps; {}. Evaluation protocol of these runs: {PROTOCOL}.",
            seeds_note(&gated)
        );
        let f = Curves {
            title: "Gradient conflict between L1 and the regularizer".into(),
            panels: vec![
                (
                    "conflict ratio".into(),
                    "fraction with opposite signs".into(),
                    lines(keys::CONFLICT_RATIO),
                    false,
                ),
                (
                    "cosine(g_rec, g_reg)".into(),
                    "cosine".into(),
                    lines(keys::COSINE),
                    false,
                ),
            ],
            caption: caption.clone(),
        };
        items.push(Item {
            title: "Gradient conflict".into(),
            files: save(&f, out, "conflict", written)?,
            caption,
        });
    }
    Ok(())
}

/// The PSNR against BitOPs on the first set: pushes its index entry onto `items`.
fn bitops_fig(
    runs: &[Run],
    aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    let gs = groups(runs);
    // PSNR vs BitOPs on the first set.
    let sets = super::tables::sets(runs);
    if let Some(set) = sets.first() {
        let points: Vec<(String, String, f64, f64)> = gs
            .iter()
            .filter_map(|g| {
                let r = g.first();
                let c = r.cost.as_ref()?;
                let a = aggs.get(&g.name, set)?;
                let label = format!(
                    "{} {}",
                    g.bits_label(),
                    r.point.clone().chars().take(24).collect::<String>()
                );
                Some((
                    format!("{} ×{} {}", r.backbone, r.spec.scale, r.family),
                    label,
                    c.total_bitops as f64 / 1e9,
                    a.psnr.0,
                ))
            })
            .collect();
        if !points.is_empty() {
            let with_cost: Vec<&super::tables::Group> =
                gs.iter().filter(|g| g.first().cost.is_some()).collect();
            let caption = format!(
                "One point per group, PSNR averaged over its seeds ({}); BitOPs = MACs · b_w · b_a for one LR input whose output is 1280×720. {PROTOCOL}.",
                seeds_note(&with_cost).replace("lines are means", "points are means")
            );
            let f = Scatter {
                set: set.clone(),
                points,
                caption: caption.clone(),
            };
            items.push(Item {
                title: "PSNR against BitOPs".into(),
                files: save(&f, out, "psnr_vs_bitops", written)?,
                caption,
            });
        }
    }
    Ok(())
}

/// The training curves per experiment: pushes its index entry onto `items`.
fn curves_fig(
    runs: &[Run],
    _aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
    items: &mut Vec<Item>,
) -> anyhow::Result<()> {
    let gs = groups(runs);
    // Training curves per experiment.
    let mut exps: Vec<String> = runs.iter().map(|r| r.experiment.clone()).collect();
    exps.dedup();
    for exp in exps {
        let mine: Vec<&super::tables::Group> =
            gs.iter().filter(|g| g.first().experiment == exp).collect();
        let first_set = mine
            .iter()
            .flat_map(|g| g.first().scores.first())
            .map(|s| s.set.clone())
            .next()
            .unwrap_or_default();
        let label = |g: &super::tables::Group| {
            if g.first().point.is_empty() {
                g.name.clone()
            } else {
                g.first().point.clone()
            }
        };
        let loss: Lines = mine
            .iter()
            .map(|g| (label(g), series(g, keys::TRAIN, "-", keys::L1)))
            .collect();
        let psnr: Lines = mine
            .iter()
            .map(|g| (label(g), series(g, keys::EVAL, &first_set, keys::PSNR_Y)))
            .collect();
        let caption = format!(
            "Training of `{exp}`: L1 loss (logged every `log_every` steps) and validation PSNR-Y on {first_set} at each evaluation; {}. {PROTOCOL}.",
            seeds_note(&mine)
        );
        let f = Curves {
            title: format!("Training curves: {exp}"),
            panels: vec![
                (
                    "training loss".into(),
                    "L1 (0–255 scale)".into(),
                    loss,
                    false,
                ),
                (
                    format!("validation PSNR-Y, {first_set}"),
                    "PSNR (dB)".into(),
                    psnr,
                    true,
                ),
            ],
            caption: caption.clone(),
        };
        items.push(Item {
            title: format!("Training curves: {exp}"),
            files: save(&f, out, &format!("training-{exp}"), written)?,
            caption,
        });
    }
    Ok(())
}

/// Draw every figure the results allow; returns their index entries.
pub fn write_all(
    runs: &[Run],
    aggs: &Aggs,
    out: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    distribution_fig(runs, aggs, out, written, &mut items)?;
    offsets_fig(runs, aggs, out, written, &mut items)?;
    conflict_fig(runs, aggs, out, written, &mut items)?;
    bitops_fig(runs, aggs, out, written, &mut items)?;
    curves_fig(runs, aggs, out, written, &mut items)?;
    Ok(items)
}
