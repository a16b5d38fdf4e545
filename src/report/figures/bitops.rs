//! PSNR against BitOPs: one marker per group (its shape the method family, its fill the W/A),
//! FP and bicubic as horizontal reference lines, and every point named in a column right of the
//! axes, the names pushed apart so that none overlaps another and joined to their points by
//! leader lines.

use super::chart::{pad, tick, PANEL_MARGIN, X_AREA, Y_AREA};
use super::layout::{self, Entry, Layout, RowSpec, Side, Spec};
use super::style::{self, Dash, Look, Marker, AXIS_PX, FONT, PALETTE, TEXT_PX};
use super::{Any, Drawn, Figure, Plt};
use crate::report::frame::Aggs;
use crate::report::runs::Family;
use crate::report::tables::{groups, sets, Group};
use crate::report::{Run, PROTOCOL};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One group's point.
#[derive(Clone, Debug)]
pub struct Point {
    pub label: String,
    pub family: Family,
    pub bits: String,
    pub gbitops: f64,
    pub psnr: f64,
}

/// A horizontal reference line.
#[derive(Clone, Debug)]
pub struct Reference {
    pub label: String,
    pub psnr: f64,
    pub look: Look,
}

/// The figure.
pub struct Scatter {
    pub set: String,
    pub points: Vec<Point>,
    pub refs: Vec<Reference>,
    pub caption: String,
}

const PANEL: (i32, i32) = (860, 700);

/// A family's marker shape.
pub fn shape(f: Family) -> Marker {
    match f {
        Family::Odm => Marker::Circle,
        Family::Pams => Marker::Square,
        Family::DdtbStatic => Marker::Up,
        Family::Ddtb => Marker::Down,
        Family::Daq => Marker::Diamond,
        Family::DaqStrict => Marker::Cross,
        Family::MinMax | Family::Fp32 => Marker::Plus,
    }
}

impl Scatter {
    fn bits(&self) -> Vec<String> {
        let mut b: Vec<String> = self.points.iter().map(|p| p.bits.clone()).collect();
        b.sort();
        b.dedup();
        b
    }
    fn look(&self, p: &Point) -> Look {
        let k = self.bits().iter().position(|b| *b == p.bits).unwrap_or(0);
        Look {
            color: PALETTE[k % 8],
            dash: Dash::Solid,
            marker: shape(p.family),
            filled: true,
        }
    }
    /// Whether the x axis is logarithmic: when the BitOPs span more than a factor of 10.
    fn log_x(&self) -> bool {
        let lo = self
            .points
            .iter()
            .map(|p| p.gbitops)
            .fold(f64::INFINITY, f64::min);
        let hi = self.points.iter().map(|p| p.gbitops).fold(0.0, f64::max);
        hi > 10.0 * lo
    }
    fn x(&self, g: f64) -> f64 {
        if self.log_x() {
            g.log10()
        } else {
            g
        }
    }
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs = self.points.iter().map(|p| self.x(p.gbitops));
        let (x0, x1) = (
            xs.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
        );
        let ys = self
            .points
            .iter()
            .map(|p| p.psnr)
            .chain(self.refs.iter().map(|r| r.psnr));
        let (y0, y1) = (
            ys.clone().fold(f64::INFINITY, f64::min),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
        let (x0, x1) = pad(x0, x1);
        let w = x1 - x0;
        ((x0 - w * 0.1, x1 + w * 0.1), pad(y0, y1))
    }
    /// The side labels: points then reference lines.
    fn labels(&self) -> Vec<String> {
        self.points
            .iter()
            .map(|p| format!("{} {:.2}", p.label, p.psnr))
            .chain(
                self.refs
                    .iter()
                    .map(|r| format!("{} {:.2}", r.label, r.psnr)),
            )
            .collect()
    }
    /// Height of `psnr` from the panel's top, as the chart maps it.
    fn target(&self, psnr: f64) -> i32 {
        let (_, (y0, y1)) = self.ranges();
        let top = PANEL_MARGIN as f64;
        let bottom = (PANEL.1 - PANEL_MARGIN - X_AREA) as f64;
        (top + (y1 - psnr) / (y1 - y0) * (bottom - top)).round() as i32
    }
    fn legend(&self) -> Vec<Entry> {
        let mut fams: Vec<Family> = self.points.iter().map(|p| p.family).collect();
        fams.sort();
        fams.dedup();
        let grey = RGBColor(90, 90, 90);
        let mut v: Vec<Entry> = fams
            .iter()
            .map(|f| Entry {
                look: Some(Look {
                    color: grey,
                    dash: Dash::Solid,
                    marker: shape(*f),
                    filled: false,
                }),
                line: false,
                text: f.label().to_string(),
            })
            .collect();
        v.extend(self.bits().iter().enumerate().map(|(k, b)| Entry {
            look: Some(Look {
                color: PALETTE[k % 8],
                dash: Dash::Solid,
                marker: Marker::Square,
                filled: true,
            }),
            line: false,
            text: format!("W/A {b}"),
        }));
        v.extend(self.refs.iter().map(|r| Entry {
            look: Some(r.look),
            line: true,
            text: r.label.clone(),
        }));
        v
    }
    fn title(&self) -> String {
        format!("PSNR on {} against BitOPs", self.set)
    }
}

impl Figure for Scatter {
    fn layout(&self) -> Layout {
        let targets = self
            .points
            .iter()
            .map(|p| p.psnr)
            .chain(self.refs.iter().map(|r| r.psnr))
            .map(|v| self.target(v))
            .collect();
        layout::layout(&Spec {
            title: self.title(),
            caption: self.caption.clone(),
            panel: PANEL,
            rows: vec![RowSpec {
                panels: 1,
                legend: self.legend(),
            }],
            side: Side {
                texts: self.labels(),
                targets,
                bottom: PANEL.1 - PANEL_MARGIN - X_AREA,
            },
        })
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        l: &Layout,
    ) -> anyhow::Result<()> {
        layout::frame(root, l, &self.title())?;
        let area = layout::area(root, &l.panels[0]);
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut ch = ChartBuilder::on(&area)
            .margin(PANEL_MARGIN)
            .x_label_area_size(X_AREA)
            .y_label_area_size(Y_AREA)
            .build_cartesian_2d(x0..x1, y0..y1)
            .p()?;
        ch.configure_mesh()
            .x_desc(if self.log_x() {
                "BitOPs (G, log scale)"
            } else {
                "BitOPs (G)"
            })
            .y_desc(format!("PSNR-Y on {} (dB)", self.set))
            .x_label_formatter(&|x| {
                if self.log_x() {
                    tick(10f64.powf(*x))
                } else {
                    tick(*x)
                }
            })
            .y_label_formatter(&|y| tick(*y))
            .label_style((FONT, TEXT_PX))
            .axis_desc_style((FONT, AXIS_PX))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .p()?;
        let mut ends = Vec::new();
        for r in &self.refs {
            let (a, b) = (
                ch.backend_coord(&(x0, r.psnr)),
                ch.backend_coord(&(x1, r.psnr)),
            );
            style::line(root, &[a, b], &r.look, 2)?;
            ends.push(b);
        }
        let mut at: Vec<(i32, i32)> = Vec::new();
        for p in &self.points {
            let c = ch.backend_coord(&(self.x(p.gbitops), p.psnr));
            style::marker(root, c, 7, &self.look(p))?;
            at.push(c);
        }
        at.extend(ends);
        let grey = RGBColor(150, 150, 150);
        for ((s, r), c) in self.labels().iter().zip(&l.labels).zip(&at) {
            let end = (r.x - 4, r.y + r.h / 2);
            root.draw(&PathElement::new(vec![*c, end], grey.stroke_width(1)))
                .p()?;
            style::text(root, s, (r.x, r.y + 1), TEXT_PX, BLACK)?;
        }
        layout::legend(root, l, 0, &self.legend())
    }
}

/// The best FP group of each backbone × scale that the points cover, and the bicubic line.
fn references(gs: &[Group], aggs: &Aggs, set: &str) -> Vec<Reference> {
    let mut refs: Vec<Reference> = gs
        .iter()
        .filter(|g| g.first().bits.is_none())
        .filter_map(|g| Some((g, aggs.get(&g.name, set)?)))
        .map(|(g, a)| Reference {
            label: format!("FP32 {}", g.name),
            psnr: a.psnr.0,
            look: Look {
                color: RGBColor(0, 0, 0),
                dash: Dash::Dashed,
                marker: Marker::None,
                filled: false,
            },
        })
        .collect();
    refs.sort_by(|a, b| b.psnr.total_cmp(&a.psnr).then(a.label.cmp(&b.label)));
    let bic = gs
        .iter()
        .flat_map(|g| g.runs.iter())
        .flat_map(|r| r.scores.iter())
        .find(|s| s.set == set);
    if let Some(b) = bic {
        refs.push(Reference {
            label: "bicubic".into(),
            psnr: b.bic_psnr,
            look: Look {
                color: RGBColor(110, 110, 110),
                dash: Dash::Dotted,
                marker: Marker::None,
                filled: false,
            },
        });
    }
    refs
}

/// PSNR against BitOPs on the first set.
pub fn scatter(runs: &[Run], aggs: &Aggs) -> Vec<Drawn<Any>> {
    let gs = groups(runs);
    let Some(set) = sets(runs).into_iter().next() else {
        return Vec::new();
    };
    let mut points: Vec<Point> = gs
        .iter()
        .filter(|g| g.first().bits.is_some())
        .filter_map(|g| {
            let c = g.first().cost.as_ref()?;
            let a = aggs.get(&g.name, &set)?;
            Some(Point {
                label: super::curves::label(g),
                family: g.first().family,
                bits: g.bits_label(),
                gbitops: c.total_bitops as f64 / 1e9,
                psnr: a.psnr.0,
            })
        })
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    points.sort_by(|a, b| b.psnr.total_cmp(&a.psnr).then(a.label.cmp(&b.label)));
    let with: Vec<&Group> = gs.iter().filter(|g| g.first().cost.is_some()).collect();
    let caption = format!(
        "One marker per quantized group at its seeds' mean PSNR ({}); shape: method family, fill: W/A; dashed: FP groups, dotted: bicubic. Each point's label (group, PSNR in dB) sits right of the axes, joined by a grey line. BitOPs = MACs · b_w · b_a for one LR input whose output is 1280×720. {PROTOCOL}.",
        crate::report::tables::seeds_phrase(with.iter().map(|g| g.runs.len()))
    );
    let fig = Scatter {
        set: set.clone(),
        points,
        refs: references(&gs, aggs, &set),
        caption: caption.clone(),
    };
    vec![Drawn {
        stem: "psnr_vs_bitops".into(),
        title: "PSNR against BitOPs".into(),
        caption,
        fig: Any::Scatter(fig),
    }]
}
