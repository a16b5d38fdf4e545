//! The one style every figure uses: text sizes (none under 10 pt at the PNG's 96 dpi), the
//! Okabe–Ito colour-blind-safe palette, line dashes and marker shapes (so that no two series of
//! a figure share colour, dash and marker), and the drawing of lines, markers and text in pixel
//! coordinates.

use super::Plt;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

/// The embedded font's family name.
pub const FONT: &str = "sans-serif";
/// Figure title.
pub const TITLE_PX: u32 = 24;
/// Panel titles and axis descriptions.
pub const AXIS_PX: u32 = 17;
/// Tick labels, legend entries, point labels and captions.
pub const TEXT_PX: u32 = 15;
/// The PNG's resolution: 96 pixels per inch, 72 points per inch.
pub const DPI: f64 = 96.0;
/// A text size in points at [`DPI`].
pub fn points(px: u32) -> f64 {
    px as f64 * 72.0 / DPI
}

/// The Okabe–Ito palette (Wong, Nature Methods 8:441, 2011), yellow last (weak on white).
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// A line's dash pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
    Long,
}

/// A marker's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Up,
    Diamond,
    Down,
    Cross,
    Plus,
    /// No marker (reference lines).
    None,
}

const DASHES: [Dash; 4] = [Dash::Solid, Dash::Dashed, Dash::Dotted, Dash::Long];
const MARKERS: [Marker; 6] = [
    Marker::Circle,
    Marker::Square,
    Marker::Up,
    Marker::Diamond,
    Marker::Down,
    Marker::Cross,
];

/// How one series looks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Look {
    pub color: RGBColor,
    pub dash: Dash,
    pub marker: Marker,
    pub filled: bool,
}

impl Look {
    /// The `i`-th series of a figure: colour (the palette but its yellow) cycles fastest, then
    /// the dash; the pair is unique for i < 28, and the marker adds a third cue.
    pub fn nth(i: usize) -> Self {
        Self {
            color: PALETTE[i % 7],
            dash: DASHES[(i / 7) % 4],
            marker: MARKERS[i % 6],
            filled: true,
        }
    }
    /// The `k`-th series of group `g` (a method family): the group's colour, then dash and
    /// marker by rank; unique within a group for k < 24.
    pub fn grouped(g: usize, k: usize) -> Self {
        Self {
            color: PALETTE[g % 8],
            dash: DASHES[k % 4],
            marker: MARKERS[(k / 4 + k) % 6],
            filled: true,
        }
    }
}

/// Register the embedded DejaVu Sans once.
pub fn init_font() {
    static DEJAVU: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU)
            .unwrap_or_else(|_| panic!("embedded font is a valid TTF"));
    });
}

/// Width and height in pixels of `s` set in the embedded font at `px`.
pub fn text_size(s: &str, px: u32) -> (i32, i32) {
    init_font();
    let (w, _) = (FONT, px)
        .into_font()
        .box_size(s)
        .unwrap_or((s.chars().count() as u32 * px, px));
    // Height: the font's line (ascent + descent), not the ink of these glyphs.
    (w as i32 + 1, (px as f64 * 1.2).ceil() as i32)
}

/// Greedy word wrap of `s` into lines no wider than `width` pixels at `px`.
pub fn wrap_px(s: &str, px: u32, width: i32) -> Vec<String> {
    let mut lines = vec![String::new()];
    for w in s.split(' ') {
        let last = lines.last_mut().expect("one line");
        let joined = if last.is_empty() {
            w.to_string()
        } else {
            format!("{last} {w}")
        };
        if !last.is_empty() && text_size(&joined, px).0 > width {
            lines.push(w.to_string());
        } else {
            *last = joined;
        }
    }
    lines
}

/// Text at pixel (x, y) (top left) on `area`.
pub fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    (x, y): (i32, i32),
    px: u32,
    color: RGBColor,
) -> anyhow::Result<()> {
    let font = (FONT, px).into_font().color(&color);
    area.draw(&Text::new(s.to_string(), (x, y), font)).p()
}

/// A polyline in pixel coordinates with `look`'s colour and dash.
pub fn line<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    pts: &[(i32, i32)],
    look: &Look,
    width: u32,
) -> anyhow::Result<()> {
    let style = look.color.stroke_width(width);
    let p = pts.to_vec();
    match look.dash {
        Dash::Solid => area.draw(&PathElement::new(p, style)).p(),
        Dash::Dashed => area.draw(&DashedPathElement::new(p, 9, 5, style)).p(),
        Dash::Dotted => area.draw(&DashedPathElement::new(p, 2, 4, style)).p(),
        Dash::Long => area.draw(&DashedPathElement::new(p, 18, 5, style)).p(),
    }
}

/// A marker of radius `r` centred on pixel (x, y).
pub fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    r: i32,
    look: &Look,
) -> anyhow::Result<()> {
    let c = look.color;
    let style = if look.filled {
        c.filled()
    } else {
        c.stroke_width(2)
    };
    let poly = |v: Vec<(i32, i32)>| -> anyhow::Result<()> {
        if look.filled {
            area.draw(&Polygon::new(v, style)).p()
        } else {
            let mut v = v;
            v.push(v[0]);
            area.draw(&PathElement::new(v, style)).p()
        }
    };
    match look.marker {
        Marker::None => Ok(()),
        Marker::Circle => area.draw(&Circle::new((x, y), r, style)).p(),
        Marker::Square => {
            let s = r * 8 / 10;
            area.draw(&Rectangle::new([(x - s, y - s), (x + s, y + s)], style))
                .p()
        }
        Marker::Up => poly(vec![
            (x, y - r),
            (x + r, y + r * 7 / 10),
            (x - r, y + r * 7 / 10),
        ]),
        Marker::Down => poly(vec![
            (x, y + r),
            (x + r, y - r * 7 / 10),
            (x - r, y - r * 7 / 10),
        ]),
        Marker::Diamond => poly(vec![(x, y - r), (x + r, y), (x, y + r), (x - r, y)]),
        Marker::Cross => {
            let w = c.stroke_width(3);
            area.draw(&PathElement::new(vec![(x - r, y - r), (x + r, y + r)], w))
                .p()?;
            area.draw(&PathElement::new(vec![(x - r, y + r), (x + r, y - r)], w))
                .p()
        }
        Marker::Plus => {
            let w = c.stroke_width(3);
            area.draw(&PathElement::new(vec![(x - r, y), (x + r, y)], w))
                .p()?;
            area.draw(&PathElement::new(vec![(x, y - r), (x, y + r)], w))
                .p()
        }
    }
}

/// A shaded band between two pixel polylines of the same x (a spread over seeds).
pub fn band<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lo: &[(i32, i32)],
    hi: &[(i32, i32)],
    color: RGBColor,
) -> anyhow::Result<()> {
    let mut v: Vec<(i32, i32)> = lo.to_vec();
    v.extend(hi.iter().rev());
    area.draw(&Polygon::new(v, color.mix(0.18).filled())).p()
}

/// A colour between white-ish and `c` (a lighter fill).
pub fn light(c: RGBColor) -> RGBColor {
    let m = |v: u8| (255.0 - (255.0 - v as f64) * 0.45).round() as u8;
    RGBColor(m(c.0), m(c.1), m(c.2))
}
