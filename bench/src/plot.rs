//! A throughput-latency plot as a self-contained SVG, written by hand (no
//! plotting crate): throughput on a linear x axis, latency on a log y axis,
//! one colour per series, p99 as a solid line and p50 dashed, each point
//! labelled with its session count.

use std::fmt::Write as _;

/// One point of a sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub throughput: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub sessions: usize,
}

/// One curve (one server).
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

const WIDTH: f64 = 820.0;
const HEIGHT: f64 = 520.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" step for about `target` ticks over `0..max`.
fn nice_step(max: f64, target: f64) -> f64 {
    let raw = (max / target).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Renders the plot. Empty series are allowed (an empty frame is drawn).
pub fn throughput_latency_svg(title: &str, series: &[Series]) -> String {
    let points = series.iter().flat_map(|s| s.points.iter());
    let x_max_data = points.clone().map(|p| p.throughput).fold(0.0, f64::max);
    let lat = points
        .flat_map(|p| [p.p50_us, p.p99_us])
        .filter(|v| *v > 0.0);
    let (lat_min, lat_max) = lat.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lat_min, lat_max) = if lat_max == 0.0 {
        (10.0, 1000.0)
    } else {
        (lat_min, lat_max)
    };
    let y_lo = 10f64.powf(lat_min.log10().floor());
    let y_hi = 10f64.powf(lat_max.log10().ceil()).max(y_lo * 10.0);
    let x_step = nice_step(x_max_data.max(1.0), 6.0);
    let x_max = (x_max_data / x_step).ceil().max(1.0) * x_step;

    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + x / x_max * plot_w;
    let sy = |us: f64| {
        let v = us.max(y_lo);
        TOP + plot_h - (v.log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10()) * plot_h
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" font-size="16" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    // Grid and ticks.
    let mut x = 0.0;
    while x <= x_max + x_step / 2.0 {
        let px = sx(x);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#e0e0e0"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            crate::table::fmt_rate(x)
        );
        x += x_step;
    }
    let mut decade = y_lo;
    while decade <= y_hi * 1.001 {
        let py = sy(decade);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e0e0e0"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            crate::table::fmt_latency(decade)
        );
        decade *= 10.0;
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">throughput (ops/s)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">latency (log scale)</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points = s.points.clone();
        points.sort_by_key(|p| p.sessions);
        for (dash, pick) in [("", 0usize), (r#" stroke-dasharray="5,4""#, 1)] {
            let path: Vec<String> = points
                .iter()
                .map(|p| {
                    let y = if pick == 0 { p.p99_us } else { p.p50_us };
                    format!("{:.1},{:.1}", sx(p.throughput), sy(y))
                })
                .collect();
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
        }
        for p in &points {
            let (px, py) = (sx(p.throughput), sy(p.p99_us));
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="{colour}">{}</text>"#,
                px + 5.0,
                py - 5.0,
                p.sessions
            );
            let _ = writeln!(
                svg,
                r#"<circle cx="{px:.1}" cy="{:.1}" r="2.5" fill="white" stroke="{colour}"/>"#,
                sy(p.p50_us)
            );
        }
        let ly = TOP + 20.0 + i as f64 * 40.0;
        let lx = LEFT + plot_w + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{} p99</text>"#,
            lx + 25.0,
            lx + 30.0,
            ly + 4.0,
            escape(&s.name)
        );
        let _ = writeln!(
            svg,
            r#"<line x1="{lx}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2" stroke-dasharray="5,4"/><text x="{}" y="{}">{} p50</text>"#,
            ly + 16.0,
            lx + 25.0,
            ly + 16.0,
            lx + 30.0,
            ly + 20.0,
            escape(&s.name)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="gray">labels: sessions</text>"#,
        LEFT + plot_w + 15.0,
        TOP + plot_h
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(47_000.0, 6.0), 10_000.0);
    }

    /// The plot is well-formed enough to open: one polyline pair per series,
    /// a circle pair per point, balanced svg element.
    #[test]
    fn svg_has_every_series_and_point() {
        let series = vec![
            Series {
                name: "zookeeper".into(),
                points: vec![
                    Point {
                        throughput: 1000.0,
                        p50_us: 500.0,
                        p99_us: 2000.0,
                        sessions: 1,
                    },
                    Point {
                        throughput: 5000.0,
                        p50_us: 900.0,
                        p99_us: 9000.0,
                        sessions: 8,
                    },
                ],
            },
            Series {
                name: "ferro<keeper>".into(),
                points: vec![Point {
                    throughput: 40000.0,
                    p50_us: 90.0,
                    p99_us: 400.0,
                    sessions: 8,
                }],
            },
        ];
        let svg = throughput_latency_svg("create", &series);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 4);
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.contains("ferro&lt;keeper&gt;"));
        assert!(!svg.contains("NaN"));
    }
}
