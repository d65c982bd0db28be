//! Time-series charts drawn by `plotters` into inline SVG: one or more lines over time, an
//! optional target drawn as a horizontal line, and each point marked (green when it
//! passed, red when it did not), so one run shows as a dot and a thousand as a line. The
//! target is drawn solid, in grey.
//!
//! Each line and the target are one `<polyline class="series">` each and the legend is HTML
//! (see `page.rs`), so a page's reader, and the browser test, can count a plot's series.

use plotters::prelude::*;
use plotters::style::ShapeStyle;

pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 280;

/// What the y axis counts.
#[derive(Clone, Copy)]
pub enum Unit {
    Seconds,
    Bytes,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        match self {
            Unit::Seconds => seconds(v),
            Unit::Bytes => bytes(v),
        }
    }

    fn axis(self) -> &'static str {
        match self {
            Unit::Seconds => "time",
            Unit::Bytes => "bytes",
        }
    }
}

pub struct Line {
    pub name: String,
    pub color: RGBColor,
    /// (unix seconds, value, passed).
    pub points: Vec<(f64, f64, bool)>,
}

pub struct Chart {
    pub y_label: String,
    pub unit: Unit,
    pub lines: Vec<Line>,
    /// A target (an RPO, an RTO) and its name.
    pub target: Option<(String, f64)>,
}

pub const BLUE_LINE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE_LINE: RGBColor = RGBColor(230, 120, 20);
pub const TARGET: RGBColor = RGBColor(110, 110, 110);
const PASSED: RGBColor = RGBColor(44, 160, 44);
const FAILED: RGBColor = RGBColor(214, 39, 40);
/// The stroke of every series line (the target's too); axes and ticks are 1 wide.
const SERIES_WIDTH: u32 = 2;

impl Chart {
    /// How many series `<polyline>`s the SVG holds: one per line with points, one for the
    /// target.
    pub fn series(&self) -> usize {
        self.lines.iter().filter(|l| !l.points.is_empty()).count()
            + usize::from(self.target.is_some())
    }

    /// The chart as an SVG document, or why plotters could not draw it. Each series'
    /// `<polyline>` has the class `series`: plotters draws axes and ticks as polylines too,
    /// one pixel wide, and the series (and only they) `SERIES_WIDTH` wide, which is how they
    /// are told apart here.
    pub fn svg(&self) -> Result<String, String> {
        let mut out = String::new();
        self.draw(&mut out).map_err(|e| e.to_string())?;
        let drawn = format!("stroke-width=\"{SERIES_WIDTH}\" points=");
        Ok(out.replace(
            &drawn,
            &format!("stroke-width=\"{SERIES_WIDTH}\" class=\"series\" points="),
        ))
    }

    fn draw(&self, out: &mut String) -> Result<(), Box<dyn std::error::Error + '_>> {
        let points = || self.lines.iter().flat_map(|l| l.points.iter());
        let (mut t0, mut t1) = points().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.0), hi.max(p.0))
        });
        if t0 > t1 {
            // No point at all: an empty hour, so the axes and the target still show.
            let now = dr_vault::clock::now().unix_timestamp() as f64;
            (t0, t1) = (now - 3600.0, now);
        }
        // One point (one run) still needs a span to stand in.
        let pad = ((t1 - t0) * 0.03).max(1800.0);
        let (t0, t1) = (t0 - pad, t1 + pad);
        let top = points()
            .map(|p| p.1)
            .chain(self.target.iter().map(|t| t.1))
            .fold(0.0_f64, f64::max);
        let top = if top > 0.0 { top * 1.15 } else { 1.0 };

        let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(78)
            .build_cartesian_2d(t0..t1, 0.0..top)?;
        let unit = self.unit;
        let span = t1 - t0;
        chart
            .configure_mesh()
            .x_desc("time (UTC)")
            .y_desc(format!("{} ({})", self.y_label, unit.axis()))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|t| time_label(*t, span))
            .y_label_formatter(&|v| unit.format(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        if let Some((_, target)) = &self.target {
            // Solid: plotters draws a dashed line as one path per dash.
            chart.draw_series(LineSeries::new(
                [(t0, *target), (t1, *target)],
                ShapeStyle::from(&TARGET).stroke_width(SERIES_WIDTH),
            ))?;
        }
        for line in &self.lines {
            chart.draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.0, p.1)),
                ShapeStyle::from(&line.color).stroke_width(SERIES_WIDTH),
            ))?;
            chart.draw_series(line.points.iter().map(|p| {
                let color = if p.2 { PASSED } else { FAILED };
                Circle::new((p.0, p.1), 3, color.filled())
            }))?;
        }
        root.present()?;
        Ok(())
    }
}

/// A time axis label: dates over long spans, hours and minutes over short ones.
fn time_label(unix: f64, span: f64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix as i64) else {
        return String::new();
    };
    let format = if span > 3.0 * 86400.0 {
        time::macros::format_description!("[year]-[month]-[day]")
    } else {
        time::macros::format_description!("[month]-[day] [hour]:[minute]")
    };
    t.format(&format).unwrap_or_default()
}

/// Seconds for people: `42s`, `3.5m`, `2.0h`, `1.5d`.
pub fn seconds(v: f64) -> String {
    match v {
        // A local restore takes a fraction of a second: keep what there is of it.
        v if v < 10.0 => format!("{}s", trim2(v)),
        v if v < 120.0 => format!("{}s", trim(v)),
        v if v < 7200.0 => format!("{}m", trim(v / 60.0)),
        v if v < 172_800.0 => format!("{}h", trim(v / 3600.0)),
        v => format!("{}d", trim(v / 86400.0)),
    }
}

/// Bytes for people, in binary units.
pub fn bytes(v: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{} {}", trim(v), UNITS[unit])
}

/// Two decimals at most, without trailing zeros.
fn trim2(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One decimal at most, none when whole.
fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(points: usize, target: bool) -> Chart {
        Chart {
            y_label: "restore".into(),
            unit: Unit::Seconds,
            lines: vec![Line {
                name: "restore".into(),
                color: BLUE_LINE,
                points: (0..points)
                    .map(|i| (1.8e9 + i as f64 * 3600.0, 10.0 + (i % 7) as f64, i % 5 != 0))
                    .collect(),
            }],
            target: target.then(|| ("rto".to_string(), 14.0)),
        }
    }

    /// One polyline per series whatever the number of points, a mark per point, and the
    /// axis labels in units.
    #[test]
    fn a_chart_has_a_polyline_per_series_and_a_mark_per_point() {
        for points in [0, 1, 1000] {
            let c = chart(points, true);
            let svg = c.svg().unwrap();
            assert!(svg.starts_with("<svg"), "{svg:.80}");
            assert_eq!(
                svg.matches("class=\"series\"").count(),
                c.series(),
                "{points}"
            );
            assert_eq!(svg.matches("<circle").count(), points);
            assert!(svg.contains("restore (time)"));
            assert!(svg.contains("time (UTC)"));
        }
        let without = chart(3, false);
        assert_eq!(
            without.svg().unwrap().matches("class=\"series\"").count(),
            1
        );
    }

    #[test]
    fn units_read_as_people_write_them() {
        assert_eq!(seconds(0.0), "0s");
        assert_eq!(seconds(0.034), "0.03s");
        assert_eq!(seconds(2.5), "2.5s");
        assert_eq!(seconds(42.0), "42s");
        assert_eq!(seconds(90.5), "90.5s");
        assert_eq!(seconds(1800.0), "30m");
        assert_eq!(seconds(7200.0), "2h");
        assert_eq!(seconds(259_200.0), "3d");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(5.0 * 1024.0 * 1024.0 * 1024.0), "5 GiB");
    }
}
