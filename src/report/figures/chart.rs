//! The generic figure most of the report's figures are: rows of panels with numeric axes, each
//! panel a set of series (lines, markers, seed bands, bars), each row's legend below it. The
//! series carry their [`Look`]; the legend entries are given separately so that one entry can
//! stand for several series (a mean and its per-seed points).

use super::layout::{self, Entry, Layout, Rect, RowSpec, Side, Spec};
use super::style::{self, text_size, Look, AXIS_PX, FONT, TEXT_PX};
use super::{Figure, Plt};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Which points of a line get a marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marks {
    None,
    /// Every point (evaluations, per-seed values).
    All,
    /// About six per line, shifted by `offset` so that lines do not mark the same x.
    Some(usize),
}

/// One series of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub look: Look,
    pub pts: Vec<(f64, f64)>,
    /// Join the points with the look's line.
    pub line: bool,
    pub marks: Marks,
    /// The spread over seeds at each x: (x, lo, hi), shaded.
    pub band: Vec<(f64, f64, f64)>,
    /// Bars (x, lo, hi) of half-width `bar_w` x units (0: a whisker line).
    pub bars: Vec<(f64, f64, f64)>,
    pub bar_w: f64,
}

impl Series {
    /// A line through `pts`.
    pub fn line(look: Look, pts: Vec<(f64, f64)>, marks: Marks) -> Self {
        Self {
            look,
            pts,
            line: true,
            marks,
            band: Vec::new(),
            bars: Vec::new(),
            bar_w: 0.0,
        }
    }
    /// Markers alone.
    pub fn points(look: Look, pts: Vec<(f64, f64)>) -> Self {
        Self {
            line: false,
            ..Self::line(look, pts, Marks::All)
        }
    }
    /// Bars (or whiskers when `half` is 0).
    pub fn bars(look: Look, bars: Vec<(f64, f64, f64)>, half: f64) -> Self {
        Self {
            bars,
            bar_w: half,
            ..Self::line(look, Vec::new(), Marks::None)
        }
    }
    fn ys(&self) -> impl Iterator<Item = f64> + '_ {
        self.pts
            .iter()
            .map(|p| p.1)
            .chain(self.band.iter().flat_map(|b| [b.1, b.2]))
            .chain(self.bars.iter().flat_map(|b| [b.1, b.2]))
            .filter(|v| v.is_finite())
    }
    fn xs(&self) -> impl Iterator<Item = f64> + '_ {
        self.pts
            .iter()
            .map(|p| p.0)
            .chain(self.band.iter().map(|b| b.0))
            .chain(
                self.bars
                    .iter()
                    .flat_map(|b| [b.0 - self.bar_w, b.0 + self.bar_w]),
            )
            .filter(|v| v.is_finite())
    }
}

/// One panel: title, axis descriptions (with units), series.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    pub title: String,
    pub xdesc: String,
    pub ydesc: String,
    pub series: Vec<Series>,
    /// Plot log10 of y (values ≤ 0 are dropped), ticks labelled in y.
    pub log_y: bool,
    /// Categories at x = 0, 1, …: the axis runs from −0.5 to n − 0.5 with these tick labels.
    pub cats: Vec<String>,
    /// Include y = 0 in the range.
    pub zero: bool,
    /// The x and y ranges, when panels side by side must share them (plotted units); else the
    /// data's.
    pub x: Option<(f64, f64)>,
    pub y: Option<(f64, f64)>,
}

/// A figure of rows of panels, each row with its legend.
pub struct Chart {
    pub title: String,
    pub caption: String,
    pub panel: (i32, i32),
    pub rows: Vec<(Vec<Panel>, Vec<Entry>)>,
}

/// A panel's inner margin and the room for tick labels and axis descriptions.
pub const PANEL_MARGIN: i32 = 12;
pub const X_AREA: i32 = 56;
pub const Y_AREA: i32 = 84;

impl Chart {
    /// The layout's request.
    pub fn spec(&self) -> Spec {
        Spec {
            title: self.title.clone(),
            caption: self.caption.clone(),
            panel: self.panel,
            rows: self
                .rows
                .iter()
                .map(|(p, e)| RowSpec {
                    panels: p.len(),
                    legend: e.clone(),
                })
                .collect(),
            side: Side::default(),
        }
    }
}

/// `lo..hi` widened by 5 % (a flat range by 5 % of its value, or 1).
pub fn pad(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    let d = if span < 1e-9 {
        lo.abs().max(1.0) * 0.05
    } else {
        span * 0.05
    };
    (lo - d, hi + d)
}

fn ty(log: bool, v: f64) -> f64 {
    if log {
        if v > 0.0 {
            v.log10()
        } else {
            f64::NAN
        }
    } else {
        v
    }
}

/// The x and y ranges of a panel (y in plotted units).
fn ranges(p: &Panel) -> ((f64, f64), (f64, f64)) {
    let x = if let Some(x) = p.x {
        x
    } else if p.cats.is_empty() {
        let lo = p
            .series
            .iter()
            .flat_map(|s| s.xs())
            .fold(f64::INFINITY, f64::min);
        let hi = p
            .series
            .iter()
            .flat_map(|s| s.xs())
            .fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            pad(lo, hi)
        }
    } else {
        (-0.5, p.cats.len() as f64 - 0.5)
    };
    let ys = || {
        p.series
            .iter()
            .flat_map(|s| s.ys())
            .map(|v| ty(p.log_y, v))
            .filter(|v| v.is_finite())
    };
    let mut lo = ys().fold(f64::INFINITY, f64::min);
    let mut hi = ys().fold(f64::NEG_INFINITY, f64::max);
    if p.zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    (x, p.y.unwrap_or_else(|| pad(lo, hi)))
}

/// Give `panels` one x and one y range, the union of theirs, so that they compare at a glance.
pub fn share_axes(panels: &mut [Panel]) {
    let rs: Vec<_> = panels.iter().map(ranges).collect();
    let x = rs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, r| {
        (a.0.min(r.0 .0), a.1.max(r.0 .1))
    });
    let y = rs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, r| {
        (a.0.min(r.1 .0), a.1.max(r.1 .1))
    });
    for p in panels {
        p.x = Some(x);
        p.y = Some(y);
    }
}

/// Draw one panel in `r`.
fn panel<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    r: &Rect,
    p: &Panel,
) -> anyhow::Result<()> {
    let area = layout::area(root, r);
    let ((x0, x1), (y0, y1)) = ranges(p);
    let mut b = ChartBuilder::on(&area);
    b.margin(PANEL_MARGIN)
        .x_label_area_size(X_AREA)
        .y_label_area_size(Y_AREA);
    if !p.title.is_empty() {
        b.caption(&p.title, (FONT, AXIS_PX));
    }
    let mut ch = b.build_cartesian_2d(x0..x1, y0..y1).p()?;
    let cats = p.cats.clone();
    let xf = move |x: &f64| {
        if cats.is_empty() {
            tick(*x)
        } else {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        }
    };
    let log = p.log_y;
    let yf = move |y: &f64| {
        if log {
            sig3(10f64.powf(*y))
        } else {
            tick(*y)
        }
    };
    let mut mesh = ch.configure_mesh();
    mesh.x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .y_labels(7)
        .x_desc(p.xdesc.as_str())
        .y_desc(p.ydesc.as_str())
        .label_style((FONT, TEXT_PX))
        .axis_desc_style((FONT, AXIS_PX))
        .light_line_style(WHITE.mix(0.0));
    if p.cats.is_empty() {
        mesh.x_labels(7);
    } else {
        // As many category names as fit side by side on the axis.
        let widest = p
            .cats
            .iter()
            .map(|c| text_size(c, TEXT_PX).0)
            .max()
            .unwrap_or(1);
        let axis = r.w - Y_AREA - 2 * PANEL_MARGIN;
        let fit = (axis / (widest + 16)).max(1) as usize;
        mesh.x_labels(fit.min(p.cats.len())).disable_x_mesh();
    }
    mesh.draw().p()?;
    let at = |x: f64, y: f64| {
        let v = ty(log, y);
        (v.is_finite() && x.is_finite()).then(|| ch.backend_coord(&(x, v)))
    };
    for s in &p.series {
        draw_series(root, s, &at)?;
    }
    Ok(())
}

/// A compact tick label: up to 4 significant digits, no trailing zeros.
pub fn tick(v: f64) -> String {
    if v.abs() < 1e-12 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let d = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Three significant digits (a log axis's ticks fall between round numbers).
pub fn sig3(v: f64) -> String {
    if v <= 0.0 || !(1e-3..1e5).contains(&v) {
        return tick(v);
    }
    let d = (2 - v.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.d$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draw one series on `root` through the panel's mapping `at`.
fn draw_series<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Series,
    at: &dyn Fn(f64, f64) -> Option<(i32, i32)>,
) -> anyhow::Result<()> {
    let band: Vec<((i32, i32), (i32, i32))> = s
        .band
        .iter()
        .filter_map(|b| Some((at(b.0, b.1)?, at(b.0, b.2)?)))
        .collect();
    if band.len() > 1 {
        let lo: Vec<(i32, i32)> = band.iter().map(|b| b.0).collect();
        let hi: Vec<(i32, i32)> = band.iter().map(|b| b.1).collect();
        style::band(root, &lo, &hi, s.look.color)?;
    }
    for b in &s.bars {
        let (Some(l), Some(h)) = (at(b.0 - s.bar_w, b.1), at(b.0 + s.bar_w, b.2)) else {
            continue;
        };
        if s.bar_w == 0.0 {
            root.draw(&PathElement::new(vec![l, h], s.look.color.stroke_width(2)))
                .p()?;
        } else {
            let fill = if s.look.filled {
                s.look.color.filled()
            } else {
                s.look.color.stroke_width(2)
            };
            root.draw(&Rectangle::new([l, h], fill)).p()?;
        }
    }
    let pts: Vec<(i32, i32)> = s.pts.iter().filter_map(|p| at(p.0, p.1)).collect();
    if s.line && pts.len() > 1 {
        style::line(root, &pts, &s.look, 2)?;
    }
    let every = match s.marks {
        Marks::None => return Ok(()),
        Marks::All => 1,
        Marks::Some(_) => (pts.len() / 6).max(1),
    };
    let shift = match s.marks {
        Marks::Some(k) => k % every,
        _ => 0,
    };
    for (i, p) in pts.iter().enumerate() {
        if i % every == shift || (every > 1 && i + 1 == pts.len()) {
            style::marker(root, *p, 5, &s.look)?;
        }
    }
    Ok(())
}

impl Figure for Chart {
    fn layout(&self) -> Layout {
        layout::layout(&self.spec())
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        l: &Layout,
    ) -> anyhow::Result<()> {
        layout::frame(root, l, &self.title)?;
        let mut k = 0;
        let mut leg = 0;
        for (panels, entries) in &self.rows {
            for p in panels {
                panel(root, &l.panels[k], p)?;
                k += 1;
            }
            if !entries.is_empty() {
                layout::legend(root, l, leg, entries)?;
                leg += 1;
            }
        }
        Ok(())
    }
}
