//! Hand-drawn SVG charts: a plot area with linear axes (ticks with units), a legend row, a
//! clipped body the caller draws into, and hover strips whose `<title>` shows the numbers
//! under the pointer without JavaScript.
//!
//! Coordinates are written with one decimal; each series is one `<path>` where it can be, so
//! a graph of 900 pixel columns stays in the tens of kilobytes.

use crate::esc::{push_escaped, Esc};
use std::fmt::Write;

/// How an axis's numbers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// Seconds (`1.25 s`).
    Seconds,
    /// Milliseconds (`12.5 ms`).
    Millis,
    /// Bytes, decimal prefixes (`1.5 MB`).
    Bytes,
    /// Bytes per second, decimal prefixes (`12 MB/s`).
    BytesPerS,
    /// A count (`1.2k`).
    Count,
}

/// One axis: its domain, number format and label (the label names the unit).
#[derive(Debug, Clone)]
pub struct Axis {
    /// Smallest value shown.
    pub min: f64,
    /// Largest value shown.
    pub max: f64,
    /// Number format of the ticks.
    pub fmt: Fmt,
    /// What the axis shows, with its unit.
    pub label: String,
}

impl Axis {
    /// An axis over `min..max` (widened when empty or not finite).
    pub fn new(min: f64, max: f64, fmt: Fmt, label: impl Into<String>) -> Self {
        let (mut min, mut max) = (if min.is_finite() { min } else { 0.0 }, if max.is_finite() { max } else { 1.0 });
        if max <= min {
            max = min + if min.abs() > 0.0 { min.abs() * 0.1 } else { 1.0 };
        }
        if min > max {
            std::mem::swap(&mut min, &mut max);
        }
        Axis { min, max, fmt, label: label.into() }
    }
    /// Zero to a rounded-up `max` (a little headroom, ends on a tick).
    pub fn zero_to(max: f64, fmt: Fmt, label: impl Into<String>) -> Self {
        let m = if max.is_finite() && max > 0.0 { max } else { 1.0 };
        let step = nice_step(m * 1.05, 5.0);
        Axis::new(0.0, (m * 1.05 / step).ceil() * step, fmt, label)
    }
}

/// What a legend entry looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glyph {
    /// A short line in the class's stroke.
    Line,
    /// A filled box.
    Box,
    /// A dot.
    Dot,
    /// A letter, as the marks are drawn (tcptrace's R, O, Z, P, 3).
    Letter(&'static str),
}

/// A chart being drawn.
#[derive(Debug)]
pub struct Chart {
    id: String,
    title: String,
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    /// The x axis.
    pub x: Axis,
    /// The left y axis.
    pub y: Axis,
    /// An optional right y axis.
    pub y2: Option<Axis>,
    body: String,
    over: String,
    legend: Vec<(String, String, Glyph)>,
    attrs: String,
    x_ticks: bool,
    y_ticks: bool,
}

/// Width of every full-width chart, px.
pub const WIDTH: f64 = 960.0;

impl Chart {
    /// A chart `h` px high with the given axes; `id` becomes the `<svg>`'s id.
    pub fn new(id: impl Into<String>, title: impl Into<String>, x: Axis, y: Axis, h: f64) -> Self {
        Chart {
            id: id.into(),
            title: title.into(),
            w: WIDTH,
            h,
            left: 78.0,
            right: 22.0,
            top: 30.0,
            bottom: 44.0,
            x,
            y,
            y2: None,
            body: String::with_capacity(8192),
            over: String::new(),
            legend: Vec::new(),
            attrs: String::new(),
            x_ticks: true,
            y_ticks: true,
        }
    }

    /// Adds a right axis (and room for it).
    pub fn with_y2(mut self, y2: Axis) -> Self {
        self.y2 = Some(y2);
        self.right = 78.0;
        self
    }

    /// Sets the width (small multiples).
    pub fn with_width(mut self, w: f64) -> Self {
        self.w = w;
        self
    }

    /// Sets the bottom margin (room for slanted category labels).
    pub fn with_bottom(mut self, bottom: f64) -> Self {
        self.bottom = bottom;
        self
    }

    /// Sets the left margin (room for long category labels).
    pub fn with_left(mut self, left: f64) -> Self {
        self.left = left;
        self
    }

    /// No numeric ticks on the x axis (the caller labels categories).
    pub fn hide_x_ticks(&mut self) {
        self.x_ticks = false;
    }

    /// No numeric ticks on the y axis (rows labelled by the caller).
    pub fn hide_y_ticks(&mut self) {
        self.y_ticks = false;
    }

    /// Adds `name="value"` to the `<svg>` element (value escaped).
    pub fn attr(&mut self, name: &str, value: &str) {
        let _ = write!(self.attrs, " {name}=\"{}\"", Esc(value));
    }

    /// Plot area width, px.
    pub fn plot_w(&self) -> f64 {
        self.w - self.left - self.right
    }
    /// Plot area height, px.
    pub fn plot_h(&self) -> f64 {
        self.h - self.top - self.bottom
    }
    /// Left edge of the plot area.
    pub fn left(&self) -> f64 {
        self.left
    }
    /// Top edge of the plot area.
    pub fn top(&self) -> f64 {
        self.top
    }
    /// Bottom edge of the plot area.
    pub fn bottom_px(&self) -> f64 {
        self.h - self.bottom
    }
    /// x value to px.
    pub fn px(&self, v: f64) -> f64 {
        self.left + (v - self.x.min) / (self.x.max - self.x.min) * self.plot_w()
    }
    /// Left-axis value to px.
    pub fn py(&self, v: f64) -> f64 {
        self.h - self.bottom - (v - self.y.min) / (self.y.max - self.y.min) * self.plot_h()
    }
    /// Right-axis value to px (the left axis when there is none).
    pub fn py2(&self, v: f64) -> f64 {
        match &self.y2 {
            Some(a) => self.h - self.bottom - (v - a.min) / (a.max - a.min) * self.plot_h(),
            None => self.py(v),
        }
    }

    /// The clipped drawing area (series).
    pub fn body(&mut self) -> &mut String {
        &mut self.body
    }

    /// Drawn after the body, unclipped (marks that may sit on the plot's edge).
    pub fn over(&mut self) -> &mut String {
        &mut self.over
    }

    /// A legend entry for elements of `class`.
    pub fn legend(&mut self, class: &str, label: &str, glyph: Glyph) {
        self.legend.push((class.to_owned(), label.to_owned(), glyph));
    }

    /// A transparent strip over `x0..x1` (px) whose tooltip is `title`.
    pub fn hover(&mut self, x0: f64, x1: f64, title: &str) {
        let (t, b) = (self.top, self.plot_h());
        let _ = write!(
            self.over,
            "<rect class=\"hs\" x=\"{x0:.1}\" y=\"{t:.1}\" width=\"{:.1}\" height=\"{b:.1}\"><title>",
            (x1 - x0).max(1.0)
        );
        push_escaped(&mut self.over, title);
        self.over.push_str("</title></rect>");
    }

    /// A letter mark (tcptrace style) at (x, y) px, with a tooltip; `id` makes it a link target.
    #[allow(clippy::too_many_arguments)]
    pub fn letter(&mut self, x: f64, y: f64, class: &str, text: &str, title: &str, id: Option<&str>, data: &str) {
        self.over.push_str("<g class=\"mark ");
        self.over.push_str(class);
        self.over.push('"');
        if let Some(id) = id {
            let _ = write!(self.over, " id=\"{}\"", Esc(id));
        }
        self.over.push_str(data);
        let _ = write!(self.over, "><title>");
        push_escaped(&mut self.over, title);
        let _ = write!(self.over, "</title><text x=\"{x:.1}\" y=\"{y:.1}\">");
        push_escaped(&mut self.over, text);
        self.over.push_str("</text></g>");
    }

    /// Writes the finished `<svg>` element.
    pub fn finish(self) -> String {
        let mut s = String::with_capacity(self.body.len() + self.over.len() + 4096);
        let (w, h) = (self.w, self.h);
        let _ = write!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{}\" class=\"chart\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" data-x0=\"{}\" data-x1=\"{}\" data-plot=\"{} {} {} {}\"{}>",
            Esc(&self.id),
            Esc(&self.title),
            self.x.min,
            self.x.max,
            self.left,
            self.top,
            self.plot_w(),
            self.plot_h(),
            self.attrs
        );
        let _ = write!(
            s,
            "<defs><clipPath id=\"clip-{}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>",
            Esc(&self.id),
            self.left,
            self.top - 1.0,
            self.plot_w(),
            self.plot_h() + 2.0
        );
        let _ = write!(
            s,
            "<rect class=\"plot\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
            self.left,
            self.top,
            self.plot_w(),
            self.plot_h()
        );
        self.axes(&mut s);
        let _ = write!(s, "<g clip-path=\"url(#clip-{})\">", Esc(&self.id));
        s.push_str(&self.body);
        s.push_str("</g>");
        s.push_str(&self.over);
        self.legend_row(&mut s);
        s.push_str("</svg>");
        s
    }

    fn axes(&self, s: &mut String) {
        let (l, r, t, b) = (self.left, self.w - self.right, self.top, self.h - self.bottom);
        s.push_str("<g class=\"axis\">");
        // x
        let step = nice_step(self.x.max - self.x.min, (self.plot_w() / 110.0).max(2.0));
        let xt = if self.x_ticks { ticks(self.x.min, self.x.max, step) } else { Vec::new() };
        for v in xt {
            let x = self.px(v);
            let _ = write!(s, "<line class=\"grid\" x1=\"{x:.1}\" y1=\"{t}\" x2=\"{x:.1}\" y2=\"{b}\"/>");
            let _ = write!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{b}\" x2=\"{x:.1}\" y2=\"{}\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                b + 5.0,
                b + 17.0,
                tick_label(self.x.fmt, v, step, self.x.max.abs().max(self.x.min.abs()))
            );
        }
        let _ = write!(
            s,
            "<text class=\"label\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            (l + r) / 2.0,
            if self.x_ticks { self.h - 6.0 } else { self.h - 2.0 },
            Esc(&self.x.label)
        );
        // y
        let step = nice_step(self.y.max - self.y.min, (self.plot_h() / 45.0).max(2.0));
        let yt = if self.y_ticks { ticks(self.y.min, self.y.max, step) } else { Vec::new() };
        for v in yt {
            let y = self.py(v);
            let _ = write!(s, "<line class=\"grid\" x1=\"{l}\" y1=\"{y:.1}\" x2=\"{r}\" y2=\"{y:.1}\"/>");
            let _ = write!(
                s,
                "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{l}\" y2=\"{y:.1}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                l - 5.0,
                l - 7.0,
                y + 4.0,
                tick_label(self.y.fmt, v, step, self.y.max.abs().max(self.y.min.abs()))
            );
        }
        let cy = (t + b) / 2.0;
        let _ = write!(
            s,
            "<text class=\"label\" x=\"14\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 14 {cy:.1})\">{}</text>",
            Esc(&self.y.label)
        );
        if let Some(a) = &self.y2 {
            let step = nice_step(a.max - a.min, (self.plot_h() / 45.0).max(2.0));
            for v in ticks(a.min, a.max, step) {
                let y = self.py2(v);
                let _ = write!(
                    s,
                    "<line x1=\"{r}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\"/><text x=\"{}\" y=\"{:.1}\">{}</text>",
                    r + 5.0,
                    r + 7.0,
                    y + 4.0,
                    tick_label(a.fmt, v, step, a.max.abs().max(a.min.abs()))
                );
            }
            let x = self.w - 12.0;
            let _ = write!(
                s,
                "<text class=\"label\" x=\"{x}\" y=\"{cy:.1}\" text-anchor=\"middle\" transform=\"rotate(90 {x} {cy:.1})\">{}</text>",
                Esc(&a.label)
            );
        }
        let _ = write!(s, "<path class=\"frame\" d=\"M{l} {t}V{b}H{r}\"/>");
        s.push_str("</g>");
    }

    fn legend_row(&self, s: &mut String) {
        if self.legend.is_empty() {
            return;
        }
        s.push_str("<g class=\"legend\">");
        let mut x = self.left;
        let y = 16.0;
        for (class, label, glyph) in &self.legend {
            let _ = write!(s, "<g class=\"{}\">", Esc(class));
            match glyph {
                Glyph::Line => {
                    let _ = write!(s, "<path d=\"M{x:.1} {:.1}h18\"/>", y - 4.0);
                }
                Glyph::Box => {
                    let _ = write!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"10\"/>", y - 9.0);
                }
                Glyph::Dot => {
                    let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"/>", x + 7.0, y - 4.0);
                }
                Glyph::Letter(l) => {
                    let _ =
                        write!(s, "<text x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"middle\">{}</text>", x + 7.0, Esc(l));
                }
            }
            s.push_str("</g>");
            let _ = write!(s, "<text x=\"{:.1}\" y=\"{y:.1}\">{}</text>", x + 22.0, Esc(label));
            let lw = if label.is_empty() && matches!(glyph, Glyph::Letter(l) if l.len() > 1) {
                12.0
            } else {
                6.4 * label.chars().count() as f64
            };
            x += 22.0 + lw + 10.0;
        }
        s.push_str("</g>");
    }
}

/// A round step that cuts `range` into about `target` parts (1, 2 or 5 times a power of ten).
pub fn nice_step(range: f64, target: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / target.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let m = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// Multiples of `step` within `min..=max`.
pub fn ticks(min: f64, max: f64, step: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if !(step > 0.0 && min.is_finite() && max.is_finite()) {
        return out;
    }
    let mut v = (min / step).ceil() * step;
    while v <= max + step * 1e-9 && out.len() < 64 {
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

/// Decimal prefix for values up to `max`: (divisor, prefix).
fn prefix(max: f64) -> (f64, &'static str) {
    if max >= 1e9 {
        (1e9, "G")
    } else if max >= 1e6 {
        (1e6, "M")
    } else if max >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    }
}

/// Decimals needed to tell ticks `step` apart once divided by `div`.
fn decimals(step: f64, div: f64) -> usize {
    let s = step / div;
    if s >= 1.0 {
        0
    } else {
        ((-s.log10()).ceil() as usize).min(6)
    }
}

/// A tick label with its unit: `1.5 s`, `200 kB`, `12 MB/s`, `40 ms`, `1.2k`.
pub fn tick_label(fmt: Fmt, v: f64, step: f64, max: f64) -> String {
    match fmt {
        Fmt::Seconds => format!("{v:.*} s", decimals(step, 1.0)),
        Fmt::Millis => format!("{v:.*} ms", decimals(step, 1.0)),
        Fmt::Bytes | Fmt::BytesPerS | Fmt::Count => {
            let (div, p) = prefix(max);
            let unit = match fmt {
                Fmt::Bytes => "B",
                Fmt::BytesPerS => "B/s",
                _ => "",
            };
            let num = format!("{:.*}", decimals(step, div), v / div);
            if unit.is_empty() {
                format!("{num}{p}")
            } else {
                format!("{num} {p}{unit}")
            }
        }
    }
}

/// A value for a tooltip, with its unit: `1448 bytes`, `1.25 MB (1250000 bytes)`, `12.3 ms`.
pub fn value(fmt: Fmt, v: f64) -> String {
    match fmt {
        Fmt::Seconds => format!("{v:.6} s"),
        Fmt::Millis => format!("{v:.3} ms"),
        Fmt::Bytes => {
            if v.abs() < 10_000.0 {
                format!("{v:.0} bytes")
            } else {
                let (d, p) = prefix(v.abs());
                format!("{:.2} {p}B ({v:.0} bytes)", v / d)
            }
        }
        Fmt::BytesPerS => {
            let (d, p) = prefix(v.abs());
            format!("{:.2} {p}B/s", v / d)
        }
        Fmt::Count => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_carry_units() {
        assert_eq!(nice_step(10.0, 5.0), 2.0);
        assert_eq!(nice_step(0.7, 6.0), 0.2);
        assert_eq!(ticks(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(tick_label(Fmt::Bytes, 200_000.0, 100_000.0, 5e5), "200 kB");
        assert_eq!(tick_label(Fmt::Bytes, 200_000.0, 100_000.0, 1e6), "0.2 MB");
        assert_eq!(tick_label(Fmt::BytesPerS, 1.5e6, 5e5, 3e6), "1.5 MB/s");
        assert_eq!(tick_label(Fmt::Seconds, 0.25, 0.05, 1.0), "0.25 s");
        assert_eq!(value(Fmt::Bytes, 1448.0), "1448 bytes");
    }

    #[test]
    fn chart_maps_values_into_its_plot() {
        let c = Chart::new(
            "c",
            "t",
            Axis::new(0.0, 10.0, Fmt::Seconds, "time (s)"),
            Axis::zero_to(100.0, Fmt::Count, "n"),
            200.0,
        );
        assert!((c.px(0.0) - c.left()).abs() < 1e-9);
        assert!((c.px(10.0) - (c.left() + c.plot_w())).abs() < 1e-9);
        assert!(c.py(0.0) > c.py(50.0));
        let svg = c.finish();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
