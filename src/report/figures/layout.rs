//! The layout every figure is drawn on, computed before anything is drawn and from nothing but
//! the figure's texts and sizes: title, rows of panels, each row's legend below its panels
//! (never over the data), an optional column of labels right of the first row (placed at their
//! points' heights and pushed apart so that none overlaps another), and the caption. Tests
//! check the boxes of a [`Layout`] for overlap and the written PNG for its size.

use super::style::{self, text_size, wrap_px, Look, AXIS_PX, TEXT_PX, TITLE_PX};
use super::Plt;
use plotters::coord::Shift;
use plotters::prelude::*;

/// A box in pixels: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    pub fn right(&self) -> i32 {
        self.x + self.w
    }
    pub fn bottom(&self) -> i32 {
        self.y + self.h
    }
    /// Whether the interiors of the two boxes intersect.
    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
    /// Whether `o` lies inside this box.
    pub fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.y >= self.y && o.right() <= self.right() && o.bottom() <= self.bottom()
    }
}

/// One legend entry: its sample's look (none: text only) and its text.
#[derive(Clone, Debug)]
pub struct Entry {
    pub look: Option<Look>,
    /// Whether the sample is a line (with its marker) or a marker alone.
    pub line: bool,
    pub text: String,
}

impl Entry {
    /// An entry with its sample: `look` drawn as a line with its marker, or as a marker alone.
    pub fn new(look: Look, line: bool, text: impl Into<String>) -> Self {
        Self {
            look: Some(look),
            line,
            text: text.into(),
        }
    }
}

/// A row of panels and the legend shared by them.
#[derive(Clone, Debug, Default)]
pub struct RowSpec {
    pub panels: usize,
    pub legend: Vec<Entry>,
}

/// Labels right of the first row's last panel: their texts, the heights (pixels from the
/// panel's top) they would like to be centred at, and the height they should stay above where
/// there is room.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub texts: Vec<String>,
    pub targets: Vec<i32>,
    pub bottom: i32,
}

/// What a figure asks of the layout.
#[derive(Clone, Debug)]
pub struct Spec {
    pub title: String,
    pub caption: String,
    /// Width and height of one panel (its axes, tick labels and title included).
    pub panel: (i32, i32),
    pub rows: Vec<RowSpec>,
    pub side: Side,
}

/// Where everything goes, in pixels of the PNG.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub size: (u32, u32),
    pub title: Rect,
    /// Panels in row order.
    pub panels: Vec<Rect>,
    /// One box per row with a legend, and each entry's box inside it.
    pub legends: Vec<Rect>,
    pub entries: Vec<Vec<Rect>>,
    /// The side labels, in the order given.
    pub labels: Vec<Rect>,
    pub caption: Rect,
    pub caption_lines: Vec<String>,
    /// The smallest text size drawn, in pixels.
    pub min_text_px: u32,
}

impl Layout {
    /// Every box that must not overlap another: title, panels, legends, side labels, caption.
    pub fn boxes(&self) -> Vec<(String, Rect)> {
        let mut v = vec![("title".to_string(), self.title)];
        v.extend(
            self.panels
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("panel {i}"), *r)),
        );
        v.extend(
            self.legends
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("legend {i}"), *r)),
        );
        v.extend(
            self.labels
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("label {i}"), *r)),
        );
        v.push(("caption".to_string(), self.caption));
        v
    }
}

/// Outer margin and the gap between blocks.
pub const MARGIN: i32 = 16;
const GAP: i32 = 10;
/// A legend sample's width and the padding around entries.
const SAMPLE: i32 = 40;
const PAD: i32 = 8;
/// Space between a panel and its side labels (the leader lines run there).
const LEADER: i32 = 36;

/// A legend's entries in columns that fit `width`: (box size, entry boxes relative to the box).
fn legend_grid(entries: &[Entry], width: i32) -> ((i32, i32), Vec<Rect>) {
    let line = text_size("Ag", TEXT_PX).1 + 4;
    let cell = entries
        .iter()
        .map(|e| SAMPLE * i32::from(e.look.is_some()) + PAD + text_size(&e.text, TEXT_PX).0)
        .max()
        .unwrap_or(0)
        + 2 * PAD;
    let cols = ((width - 2 * PAD) / cell.max(1)).clamp(1, entries.len().max(1) as i32);
    let rows = (entries.len() as i32 + cols - 1) / cols;
    let boxes = (0..entries.len() as i32)
        .map(|i| Rect {
            x: PAD + (i / rows) * cell,
            y: PAD + (i % rows) * line,
            w: cell - PAD,
            h: line,
        })
        .collect();
    ((cols * cell + PAD, rows * line + 2 * PAD), boxes)
}

/// Tops for boxes of height `h` wanting to be centred at `targets`: in the targets' order, at
/// least `h` apart, none above `top`, and none below `bottom` (the last box's bottom) where the
/// boxes fit between the two; returned in the input order.
pub fn spread(targets: &[i32], h: i32, top: i32, bottom: i32) -> Vec<i32> {
    let mut order: Vec<usize> = (0..targets.len()).collect();
    order.sort_by_key(|&i| (targets[i], i));
    let mut y: Vec<i32> = Vec::with_capacity(order.len());
    for &i in &order {
        let prev = y.last().map_or(top, |p| p + h);
        y.push((targets[i] - h / 2).max(prev));
    }
    // Push back up from the bottom, never above `top` or the box before.
    let mut limit = bottom;
    for k in (0..y.len()).rev() {
        let floor = if k == 0 { top } else { top + k as i32 * h };
        y[k] = y[k].min(limit - h).max(floor);
        limit = y[k];
    }
    let mut pos = vec![0; targets.len()];
    for (k, &i) in order.iter().enumerate() {
        pos[i] = y[k];
    }
    pos
}

/// The layout of `s`.
pub fn layout(s: &Spec) -> Layout {
    let (pw, ph) = s.panel;
    let cols = s.rows.iter().map(|r| r.panels).max().unwrap_or(1).max(1) as i32;
    let label_h = text_size("Ag", TEXT_PX).1 + 2;
    let side_w = s.side.texts.iter().map(|t| text_size(t, TEXT_PX).0).max();
    let side = side_w.map_or(0, |w| LEADER + w + GAP);
    let (tw, th) = text_size(&s.title, TITLE_PX);
    let width = (2 * MARGIN + cols * pw + side).max(tw + 2 * MARGIN);
    let title = Rect {
        x: (width - tw) / 2,
        y: MARGIN,
        w: tw,
        h: th,
    };
    let mut y = title.bottom() + GAP;
    let (mut panels, mut legends, mut entries, mut labels) = (vec![], vec![], vec![], vec![]);
    for (k, row) in s.rows.iter().enumerate() {
        for i in 0..row.panels as i32 {
            panels.push(Rect {
                x: MARGIN + i * pw,
                y,
                w: pw,
                h: ph,
            });
        }
        let mut bottom = y + ph;
        if k == 0 && !s.side.texts.is_empty() {
            let x = MARGIN + row.panels as i32 * pw + LEADER;
            let want: Vec<i32> = s.side.targets.iter().map(|t| y + t).collect();
            let floor = if s.side.bottom > 0 { s.side.bottom } else { ph };
            let tops = spread(&want, label_h, y, y + floor);
            for (t, top) in s.side.texts.iter().zip(tops) {
                let r = Rect {
                    x,
                    y: top,
                    w: text_size(t, TEXT_PX).0,
                    h: label_h,
                };
                bottom = bottom.max(r.bottom());
                labels.push(r);
            }
        }
        y = bottom + GAP;
        if !row.legend.is_empty() {
            let ((lw, lh), e) = legend_grid(&row.legend, width - 2 * MARGIN);
            let r = Rect {
                x: MARGIN,
                y,
                w: lw,
                h: lh,
            };
            entries.push(
                e.into_iter()
                    .map(|b| Rect {
                        x: b.x + r.x,
                        y: b.y + r.y,
                        ..b
                    })
                    .collect(),
            );
            legends.push(r);
            y += lh + GAP;
        }
    }
    let caption_lines = wrap_px(&s.caption, TEXT_PX, width - 2 * MARGIN);
    let line = text_size("Ag", TEXT_PX).1;
    let caption = Rect {
        x: MARGIN,
        y: y + GAP,
        w: caption_lines
            .iter()
            .map(|l| text_size(l, TEXT_PX).0)
            .max()
            .unwrap_or(0),
        h: line * caption_lines.len() as i32,
    };
    Layout {
        size: (width as u32, (caption.bottom() + MARGIN) as u32),
        title,
        panels,
        legends,
        entries,
        labels,
        caption,
        caption_lines,
        min_text_px: TEXT_PX.min(AXIS_PX).min(TITLE_PX),
    }
}

/// The drawing area of `r` on `root`.
pub fn area<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, r: &Rect) -> DrawingArea<DB, Shift> {
    let (w, h) = root.dim_in_pixel();
    root.margin(r.y, h as i32 - r.bottom(), r.x, w as i32 - r.right())
}

/// Fill the canvas, draw the title and the caption.
pub fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    l: &Layout,
    title: &str,
) -> anyhow::Result<()> {
    root.fill(&WHITE).p()?;
    style::text(root, title, (l.title.x, l.title.y), TITLE_PX, BLACK)?;
    let line = text_size("Ag", TEXT_PX).1;
    let grey = RGBColor(64, 64, 64);
    for (k, s) in l.caption_lines.iter().enumerate() {
        style::text(
            root,
            s,
            (l.caption.x, l.caption.y + k as i32 * line),
            TEXT_PX,
            grey,
        )?;
    }
    Ok(())
}

/// Draw row `k`'s legend (its box and entries) where the layout put it.
pub fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    l: &Layout,
    k: usize,
    entries: &[Entry],
) -> anyhow::Result<()> {
    let b = l.legends[k];
    root.draw(&Rectangle::new(
        [(b.x, b.y), (b.right(), b.bottom())],
        BLACK.mix(0.4),
    ))
    .p()?;
    for (e, r) in entries.iter().zip(&l.entries[k]) {
        let cy = r.y + r.h / 2;
        let mut x = r.x;
        if let Some(look) = &e.look {
            if e.line {
                style::line(root, &[(x, cy), (x + SAMPLE - 8, cy)], look, 2)?;
            }
            style::marker(root, (x + (SAMPLE - 8) / 2, cy), 5, look)?;
            x += SAMPLE;
        }
        let th = text_size(&e.text, TEXT_PX).1;
        style::text(root, &e.text, (x, cy - th / 2 + 1), TEXT_PX, BLACK)?;
    }
    Ok(())
}
