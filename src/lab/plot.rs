//! SVG plots for the lab report: HdrHistogram-style percentile distributions and
//! latency-versus-load curves.
//!
//! Drawn with `plotters` using only its SVG backend (`default-features = false`,
//! so no font-kit/fontconfig/freetype and no system library at all): the SVG
//! backend writes text as `<text>` elements that the viewer renders, and
//! plotters' built-in "naive" font only estimates text extents for layout, so
//! titles, tick labels and the legend appear without any font on the build
//! machine. plotters escapes text and attribute values itself.
//!
//! Both axes are one small linear `Ranged` coordinate (`Axis`) over
//! *transformed* values with ticks and labels chosen here: the percentile x axis
//! is `log10(1/(1-p))` labelled 0%, 90%, 99%, …, and a logarithmic y axis is
//! `log10(latency)` labelled in microseconds. plotters' own log coordinate picks
//! its own tick positions and its `WithKeyPoints` drops label formatting, so
//! neither gives the HdrHistogram axis cleanly; one coordinate type also keeps
//! linear and log y on one code path.
//!
//! The y axis is linear from 0 (as HdrHistogram's plotter draws it) unless every
//! plotted latency is positive and max/min exceeds [`LOG_Y_RATIO`]; the y axis
//! title then reads "latency (µs, log scale)".
//!
//! Bad points (NaN, infinite, negative, above [`MAX_VALUE`], percentiles outside
//! [0, 100)) are skipped; a series left without points is listed in the legend
//! as "(no data)", and a plot without any point says "no data".

use std::fmt::Write as _;
use std::ops::Range;

use hdrhistogram::Histogram;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::stats::percentile_rows;

/// One line on a plot: a label and its (x, y) points in drawing order.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// Above this max/min latency ratio the y axis switches to a log scale: a
/// linear axis would squash everything below the top 1% of its height.
pub const LOG_Y_RATIO: f64 = 100.0;

/// Latencies (µs) and rates (requests/s) above this (11.6 days; 10^12/s) are
/// corrupt data, not measurements, and are skipped like NaN: one such point
/// would otherwise flatten every real point onto the axis.
pub const MAX_VALUE: f64 = 1e12;

/// A log y axis is not used beyond this max/min ratio (more decades than fit
/// readably); such data is drawn on a linear axis, tiny values near 0.
const MAX_LOG_RATIO: f64 = 1e9;

/// Rows per halving of the distance to 100%, as in Java's
/// `outputPercentileDistribution` default and our `.hgrm` files.
const TICKS_PER_HALF: u32 = 5;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;
const FONT: &str = "sans-serif";

/// d3's category10 (distinguishable on white and in greyscale print order), then
/// category20's light shades of the same hues: a scenario of up to 20 paths (lab-tails has
/// 13) gives every line its own colour instead of repeating the first ones.
const PALETTE: [RGBColor; 20] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
    RGBColor(0xae, 0xc7, 0xe8),
    RGBColor(0xff, 0xbb, 0x78),
    RGBColor(0x98, 0xdf, 0x8a),
    RGBColor(0xff, 0x98, 0x96),
    RGBColor(0xc5, 0xb0, 0xd5),
    RGBColor(0xc4, 0x9c, 0x94),
    RGBColor(0xf7, 0xb6, 0xd2),
    RGBColor(0xc7, 0xc7, 0xc7),
    RGBColor(0xdb, 0xdb, 0x8d),
    RGBColor(0x9e, 0xda, 0xe5),
];

/// Percentile-distribution plot drawn the way HdrHistogram's plotter draws it: x axis is
/// 1/(1-p) on a log scale with ticks labelled 0%, 90%, 99%, 99.9%, 99.99%, 99.999% (up to the
/// decade that holds the largest percentile present), y axis latency in microseconds (linear
/// from 0, or log when all latencies are positive and max/min > [`LOG_Y_RATIO`]; the y axis
/// title says which). `points` are (percentile in [0, 100), latency_us); points outside that
/// domain, NaN or infinite are skipped. Every series overlaid with its own colour and a legend.
pub fn percentile_svg(title: &str, series: &[Series]) -> String {
    let cleaned: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(p, y)| {
                    let x = percentile_to_x(p)?;
                    valid_latency(y).then_some((x, y))
                })
                .collect()
        })
        .collect();
    let max_x = cleaned
        .iter()
        .flatten()
        .map(|&(x, _)| x)
        .fold(0.0, f64::max);
    // Decades of 1/(1-p) shown: at least 0%..99% so a short series is not
    // stretched over the whole width; the tolerance keeps exactly 99.99%
    // (x = 3.9999999999) from opening a fifth decade.
    let decades = ((max_x - 1e-6).ceil() as u32).max(2);
    let ticks = (0..=decades)
        .map(|k| (f64::from(k), percent_label(k)))
        .collect();
    let minor = (0..decades)
        .flat_map(|k| (2..10).map(move |m| f64::from(k) + f64::from(m).log10()))
        .collect();
    let x_axis = Axis {
        range: 0.0..f64::from(decades),
        ticks,
        minor,
    };
    render(Plot {
        title,
        x_desc: "percentile",
        x_axis,
        series,
        cleaned,
        markers: false,
    })
}

/// Latency-versus-load plot: x = achieved request rate (requests/s, linear from 0, tick labels
/// such as 50k, 100k), y = latency in microseconds (linear or log as in [`percentile_svg`]);
/// one line with markers per series, points joined in the order given. Points with a NaN,
/// infinite or negative coordinate are skipped. Legend.
pub fn load_svg(title: &str, series: &[Series]) -> String {
    let cleaned: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|&(x, y)| (0.0..=MAX_VALUE).contains(&x) && valid_latency(y))
                .collect()
        })
        .collect();
    let max_x = cleaned
        .iter()
        .flatten()
        .map(|&(x, _)| x)
        .fold(0.0, f64::max);
    let x_axis = linear_axis(max_x, rate_label);
    render(Plot {
        title,
        x_desc: "achieved rate (requests/s)",
        x_axis,
        series,
        cleaned,
        markers: true,
    })
}

/// Latency-against-chain-depth plot: x = the number of relays between client and server
/// (integer ticks, 0 the bare server), y = latency in microseconds (linear or log as in
/// [`percentile_svg`]); one line with markers per series (a chain's p50, p99 or p99.9).
/// Points with a negative or non-finite coordinate are skipped.
pub fn depth_svg(title: &str, series: &[Series]) -> String {
    let cleaned: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .copied()
                .filter(|&(x, y)| (0.0..=1000.0).contains(&x) && valid_latency(y))
                .collect()
        })
        .collect();
    let max_x = cleaned
        .iter()
        .flatten()
        .map(|&(x, _)| x)
        .fold(1.0, f64::max)
        .ceil();
    // Half a hop of margin either side, so the depth 0 and the deepest markers are whole.
    let x_axis = Axis {
        range: -0.5..max_x + 0.5,
        ticks: (0..=max_x as u32)
            .map(|d| (f64::from(d), d.to_string()))
            .collect(),
        minor: Vec::new(),
    };
    render(Plot {
        title,
        x_desc: "chain depth (relays between client and server)",
        x_axis,
        series,
        cleaned,
        markers: true,
    })
}

/// (percentile, latency_us) points of a histogram recorded in nanoseconds: the rows of
/// HdrHistogram's `outputPercentileDistribution` with 5 ticks per half distance (the same
/// iteration as our `.hgrm` writer), without the final 100% row, which has no place on a
/// 1/(1-p) axis (its value, the maximum, is already the last row before it).
pub fn percentile_points(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    percentile_rows(hist, TICKS_PER_HALF)
        .into_iter()
        .filter(|r| r.percentile < 100.0)
        .map(|r| (r.percentile, r.value as f64 / 1000.0))
        .collect()
}

/// `log10(1/(1-p))` for a percentile in [0, 100), or `None` outside it.
fn percentile_to_x(p: f64) -> Option<f64> {
    if !(0.0..100.0).contains(&p) {
        return None;
    }
    let x = -(1.0 - p / 100.0).log10();
    x.is_finite().then_some(x)
}

fn valid_latency(y: f64) -> bool {
    (0.0..=MAX_VALUE).contains(&y)
}

/// The percentile at `log10(1/(1-p)) = k`: 0%, 90%, 99%, 99.9%, …
fn percent_label(k: u32) -> String {
    match k {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        _ => format!("99.{}%", "9".repeat(k as usize - 2)),
    }
}

/// A request rate with a k/M suffix: 500, 2.5k, 50k, 1.2M.
fn rate_label(v: f64) -> String {
    let (scaled, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    format!("{}{suffix}", trim_number(scaled))
}

/// Up to three decimals, trailing zeros dropped: 0.5, 12, 1.25.
fn trim_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// One axis in plot coordinates (possibly transformed): its range, labelled
/// ticks (bold grid lines) and unlabelled minor grid positions (light lines).
#[derive(Clone)]
struct Axis {
    range: Range<f64>,
    ticks: Vec<(f64, String)>,
    minor: Vec<f64>,
}

impl Axis {
    /// The label of the tick nearest `v` (plotters asks only at tick positions).
    fn label(&self, v: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()))
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// A plain linear coordinate whose ticks and grid lines are exactly ours
/// (plotters' `WithKeyPoints` would do the ticks but loses the label formatter).
impl Ranged for Axis {
    type ValueType = f64;
    type FormatOption = NoDefaultFormatting;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let frac = (v - self.range.start) / span;
        // `as` saturates, so even a far out-of-range value cannot overflow.
        (f64::from(limit.0) + f64::from(limit.1 - limit.0) * frac).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.iter().map(|t| t.0).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for Axis {
    fn format_ext(&self, v: &f64) -> String {
        self.label(*v)
    }
}

/// A linear axis from 0 to a "nice" bound above `max` with 1/2/5×10^k steps.
fn linear_axis(max: f64, label: fn(f64) -> String) -> Axis {
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let step = nice_step(max / 6.0);
    let n = (max / step - 1e-9).ceil().max(1.0) as u32;
    let ticks = (0..=n)
        .map(|i| {
            let v = f64::from(i) * step;
            (v, label(v))
        })
        .collect();
    let minor = (0..n)
        .map(|i| (f64::from(i) + 0.5) * step)
        .collect::<Vec<_>>();
    Axis {
        range: 0.0..f64::from(n) * step,
        ticks,
        minor,
    }
}

/// The smallest 1, 2 or 5 × 10^k not below `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag)
}

/// A log10 y axis spanning whole decades around [min, max] (both > 0), in
/// log10 units; 2× and 5× ticks are labelled too when only a few decades show.
fn log_axis(min: f64, max: f64) -> Axis {
    let lo = min.log10().floor() as i32;
    let hi = (max.log10().ceil() as i32).max(lo + 1);
    let few = hi - lo <= 3;
    let mut ticks = Vec::new();
    let mut minor = Vec::new();
    for d in lo..=hi {
        let base = 10f64.powi(d);
        ticks.push((f64::from(d), trim_number_sig(base)));
        if d == hi {
            break;
        }
        for m in 2..10 {
            let pos = f64::from(d) + f64::from(m).log10();
            if few && (m == 2 || m == 5) {
                ticks.push((pos, trim_number_sig(base * f64::from(m))));
            } else {
                minor.push(pos);
            }
        }
    }
    Axis {
        range: f64::from(lo)..f64::from(hi),
        ticks,
        minor,
    }
}

/// A latency tick value: plain for ≥ 0.001 µs, else scientific (sub-nanosecond
/// only happens with hand-made data).
fn trim_number_sig(v: f64) -> String {
    if v >= 1e-3 {
        trim_number(v)
    } else {
        format!("{v:e}")
    }
}

struct Plot<'a> {
    title: &'a str,
    x_desc: &'a str,
    x_axis: Axis,
    series: &'a [Series],
    /// Per series, its drawable points with x already in plot coordinates.
    cleaned: Vec<Vec<(f64, f64)>>,
    markers: bool,
}

fn render(plot: Plot<'_>) -> String {
    let ys = || plot.cleaned.iter().flatten().map(|&(_, y)| y);
    let any = ys().next().is_some();
    let max_y = ys().fold(0.0, f64::max);
    let min_y = ys().fold(f64::INFINITY, f64::min);
    let ratio = max_y / min_y;
    let log_y = any && min_y > 0.0 && ratio > LOG_Y_RATIO && ratio <= MAX_LOG_RATIO;
    let (y_axis, y_desc) = if log_y {
        (log_axis(min_y, max_y), "latency (µs, log scale)")
    } else {
        (linear_axis(max_y, trim_number), "latency (µs)")
    };
    let cleaned: Vec<Vec<(f64, f64)>> = if log_y {
        plot.cleaned
            .iter()
            .map(|s| s.iter().map(|&(x, y)| (x, y.log10())).collect())
            .collect()
    } else {
        plot.cleaned.clone()
    };

    let mut svg = String::new();
    let result = draw(&plot, &cleaned, &y_axis, y_desc, any, &mut svg);
    match result {
        Ok(()) => svg,
        Err(e) => error_svg(plot.title, &e),
    }
}

/// The corner of the plotting area whose legend box would cover the fewest drawn points and
/// line samples, so the legend hides as little data as the four corners allow. The box size is
/// estimated from the labels as plotters lays them out (its naive font: ~0.6 em per char).
fn legend_corner(
    plot: &Plot<'_>,
    cleaned: &[Vec<(f64, f64)>],
    y_axis: &Axis,
) -> SeriesLabelPosition {
    // The plotting area left by the margins, label areas and caption of `draw`.
    let (area_w, area_h) = (
        f64::from(WIDTH) - 32.0 - 40.0 - 64.0,
        f64::from(HEIGHT) - 32.0 - 48.0 - 30.0,
    );
    let chars = plot
        .series
        .iter()
        .map(|s| s.label.chars().count() + 10)
        .max()
        .unwrap_or(0);
    let box_w = (chars as f64 * 14.0 * 0.6 + 40.0) / area_w;
    let box_h = (plot.series.len() as f64 * 20.0 + 20.0) / area_h;
    let frac = |v: f64, r: &Range<f64>| (v - r.start) / (r.end - r.start);
    let mut samples = Vec::new();
    for points in cleaned {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .map(|&(x, y)| (frac(x, &plot.x_axis.range), frac(y, &y_axis.range)))
            .collect();
        samples.extend(pts.iter().copied());
        for w in pts.windows(2) {
            samples.extend((1..16).map(|k| {
                let t = f64::from(k) / 16.0;
                (
                    w[0].0 + (w[1].0 - w[0].0) * t,
                    w[0].1 + (w[1].1 - w[0].1) * t,
                )
            }));
        }
    }
    let covered = |left: bool, upper: bool| {
        let in_x = |x: f64| if left { x <= box_w } else { x >= 1.0 - box_w };
        let in_y = |y: f64| if upper { y >= 1.0 - box_h } else { y <= box_h };
        samples.iter().filter(|&&(x, y)| in_x(x) && in_y(y)).count()
    };
    [
        (true, true, SeriesLabelPosition::UpperLeft),
        (false, true, SeriesLabelPosition::UpperRight),
        (false, false, SeriesLabelPosition::LowerRight),
        (true, false, SeriesLabelPosition::LowerLeft),
    ]
    .into_iter()
    .min_by_key(|&(left, upper, _)| covered(left, upper))
    .map_or(SeriesLabelPosition::UpperLeft, |c| c.2)
}

fn draw(
    plot: &Plot<'_>,
    cleaned: &[Vec<(f64, f64)>],
    y_axis: &Axis,
    y_desc: &str,
    any: bool,
    svg: &mut String,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(plot.title, (FONT, 22))
        .margin(16)
        // Room for the last x tick label, which is centred on the right edge.
        .margin_right(40)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(plot.x_axis.clone(), y_axis.clone())
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(plot.x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 15))
        .bold_line_style(RGBColor(0xcc, 0xcc, 0xcc))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()
        .map_err(|e| err(&e))?;

    for (i, (s, points)) in plot.series.iter().zip(cleaned).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let label = if points.is_empty() {
            format!("{} (no data)", s.label)
        } else {
            s.label.clone()
        };
        // A single point is invisible as a line; give it a marker.
        let marker = if plot.markers || points.len() == 1 {
            3
        } else {
            0
        };
        // Filled so markers are solid dots; a path ignores the fill.
        let style = color.filled().stroke_width(2);
        let line = LineSeries::new(points.iter().copied(), style).point_size(marker);
        chart
            .draw_series(line)
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled()));
    }
    if !plot.series.is_empty() {
        chart
            .configure_series_labels()
            .position(legend_corner(plot, cleaned, y_axis))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(|e| err(&e))?;
    }
    if !any {
        let area = chart.plotting_area();
        let (w, h) = area.dim_in_pixel();
        let style = TextStyle::from((FONT, 28).into_font())
            .color(&RGBColor(0x88, 0x88, 0x88))
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ));
        let (x0, y0) = area.get_base_pixel();
        root.draw_text("no data", &style, (x0 + w as i32 / 2, y0 + h as i32 / 2))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Last resort when plotters reports an error (the string backend has none in
/// practice): a valid SVG that says what happened instead of a panic.
fn error_svg(title: &str, error: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <text x=\"20\" y=\"40\" font-family=\"{FONT}\" font-size=\"18\">{}</text>\
         <text x=\"20\" y=\"70\" font-family=\"{FONT}\" font-size=\"14\">plot error: {}</text></svg>",
        xml_escape(title),
        xml_escape(error)
    );
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {

    /// The corner `legend_corner` picks for one series drawn through `points` on 0..100 axes.
    fn corner_for(points: Vec<(f64, f64)>) -> SeriesLabelPosition {
        let series = vec![Series {
            label: "kernel sweep p99".into(),
            points,
        }];
        let cleaned = vec![series[0].points.clone()];
        let plot = Plot {
            title: "t",
            x_desc: "x",
            x_axis: linear_axis(100.0, trim_number),
            series: &series,
            cleaned: cleaned.clone(),
            markers: true,
        };
        legend_corner(&plot, &cleaned, &linear_axis(100.0, trim_number))
    }

    #[test]
    fn the_legend_avoids_the_data() {
        // High latency at low load, as the kernel sweep's p99 drew it under the old fixed
        // upper-left legend: the next free corner is the upper right.
        let falling = vec![(0.0, 100.0), (10.0, 95.0), (20.0, 90.0), (100.0, 10.0)];
        assert!(matches!(
            corner_for(falling),
            SeriesLabelPosition::UpperRight
        ));
        // Flat, then a knee at the right: the upper left is free.
        let knee = vec![(0.0, 5.0), (50.0, 6.0), (90.0, 10.0), (100.0, 100.0)];
        assert!(matches!(corner_for(knee), SeriesLabelPosition::UpperLeft));
        // Across the whole top: a lower corner.
        let top = vec![(0.0, 98.0), (100.0, 99.0)];
        assert!(matches!(
            corner_for(top),
            SeriesLabelPosition::LowerRight | SeriesLabelPosition::LowerLeft
        ));
        assert!(matches!(corner_for(vec![]), SeriesLabelPosition::UpperLeft));
    }
    use super::*;
    use crate::stats::{new_latency_histogram, percentile_distribution_string};

    /// Set to a directory to keep the SVGs the tests draw, for looking at them.
    const SAMPLES_ENV: &str = "BYPASS_PLOT_SAMPLES";

    fn keep(name: &str, svg: &str) {
        if let Some(dir) = std::env::var_os(SAMPLES_ENV) {
            let path = std::path::Path::new(&dir).join(format!("plot-sample-{name}.svg"));
            std::fs::write(&path, svg).expect("write sample svg");
        }
    }

    fn color_hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    struct Parsed {
        /// (stroke colour, points) of every `<polyline>`.
        polylines: Vec<(String, Vec<(f64, f64)>)>,
        /// (fill colour, cx, cy) of every `<circle>`.
        circles: Vec<(String, f64, f64)>,
        /// (x, y, text) of every `<text>`, text unescaped.
        texts: Vec<(f64, f64, String)>,
    }

    impl Parsed {
        fn has_text(&self, t: &str) -> bool {
            self.texts.iter().any(|x| x.2 == t)
        }
        fn lines_of(&self, c: RGBColor) -> Vec<&Vec<(f64, f64)>> {
            let hex = color_hex(c);
            self.polylines
                .iter()
                .filter(|p| p.0.eq_ignore_ascii_case(&hex))
                .map(|p| &p.1)
                .collect()
        }
        /// Polylines not drawn in the black of axes and tick marks.
        fn data_lines(&self) -> usize {
            self.polylines.iter().filter(|p| p.0 != "#000000").count()
        }
        fn circles_of(&self, c: RGBColor) -> usize {
            let hex = color_hex(c);
            self.circles
                .iter()
                .filter(|p| p.0.eq_ignore_ascii_case(&hex))
                .count()
        }
        /// Tick labels under the x axis: texts on the lowest common baseline
        /// that are not the axis title, left to right.
        fn x_tick_labels(&self, x_desc: &str) -> Vec<String> {
            let desc_y = self
                .texts
                .iter()
                .find(|t| t.2 == x_desc)
                .expect("x axis title")
                .1;
            // Tick labels sit just above the x axis title.
            let tick_y = self
                .texts
                .iter()
                .filter(|t| t.1 < desc_y && desc_y - t.1 < 40.0)
                .map(|t| t.1)
                .fold(f64::NEG_INFINITY, f64::max);
            let mut ticks: Vec<_> = self.texts.iter().filter(|t| t.1 == tick_y).collect();
            ticks.sort_by(|a, b| a.0.total_cmp(&b.0));
            ticks.into_iter().map(|t| t.2.clone()).collect()
        }
    }

    fn parse(svg: &str) -> Parsed {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let num = |n: roxmltree::Node, a: &str| -> f64 {
            n.attribute(a)
                .unwrap_or_else(|| panic!("{a} missing"))
                .parse()
                .expect("number")
        };
        let mut parsed = Parsed {
            polylines: Vec::new(),
            circles: Vec::new(),
            texts: Vec::new(),
        };
        for n in doc.descendants() {
            match n.tag_name().name() {
                "polyline" => {
                    let pts = n
                        .attribute("points")
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(|p| {
                            let (x, y) = p.split_once(',').expect("x,y");
                            (x.parse().unwrap(), y.parse().unwrap())
                        })
                        .collect();
                    parsed
                        .polylines
                        .push((n.attribute("stroke").unwrap_or("").to_owned(), pts));
                }
                "circle" => parsed.circles.push((
                    n.attribute("fill").unwrap_or("").to_owned(),
                    num(n, "cx"),
                    num(n, "cy"),
                )),
                "text" => parsed.texts.push((
                    num(n, "x"),
                    num(n, "y"),
                    n.text().unwrap_or("").trim().to_owned(),
                )),
                _ => {}
            }
        }
        parsed
    }

    fn uniform_hist(lo: u64, hi: u64, step: u64) -> Histogram<u64> {
        let mut h = new_latency_histogram();
        for v in (lo..=hi).step_by(step as usize) {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn percentile_points_match_hgrm_rows() {
        let h = uniform_hist(1, 10_000, 1);
        let points = percentile_points(&h);
        let hgrm = percentile_distribution_string(&h, 5, 1000.0).unwrap();
        // Data rows: "value percentile totalcount [1/(1-p)]"; the 100% row has no 4th column.
        let rows: Vec<(f64, f64)> = hgrm
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|c| c.len() == 4 && c[0].parse::<f64>().is_ok())
            .map(|c| (c[1].parse::<f64>().unwrap() * 100.0, c[0].parse().unwrap()))
            .collect();
        assert!(rows.len() > 50, "{hgrm}");
        assert_eq!(points.len(), rows.len(), "{hgrm}");
        for (&(p, v), &(hp, hv)) in points.iter().zip(&rows) {
            assert!((p - hp).abs() < 1e-9, "percentile {p} vs {hp}");
            // .hgrm prints 3 decimals of microseconds.
            assert!((v - hv).abs() <= 0.0005 + 1e-12, "value {v} vs {hv} at {p}");
        }
        // Independently of the writer: uniform 1..=10000 ns puts percentile p at
        // about p * 100 ns, within the histogram's 0.1% resolution.
        assert_eq!(points[0], (0.0, 0.001));
        for &(p, v) in &points[1..] {
            let expect_us = p * 100.0 / 1000.0;
            assert!(
                (v - expect_us).abs() <= expect_us * 0.002 + 0.001,
                "{p}: {v}"
            );
        }
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0));
        let last = points.last().unwrap();
        assert!(last.0 < 100.0 && last.0 > 99.9, "{last:?}");
        assert!((last.1 - 10.0).abs() <= 0.01, "max row {last:?}");
    }

    #[test]
    fn percentile_points_of_empty_histogram() {
        assert!(percentile_points(&new_latency_histogram()).is_empty());
    }

    #[test]
    fn percentile_svg_draws_each_series_once_with_legend() {
        let fast = percentile_points(&uniform_hist(2_000, 12_000, 7));
        let slow = percentile_points(&uniform_hist(20_000, 60_000, 11));
        let series = [
            Series {
                label: "fast path <af_xdp> & \"co\"".to_owned(),
                points: fast.clone(),
            },
            Series {
                label: "kernel udp".to_owned(),
                points: slow.clone(),
            },
        ];
        let svg = percentile_svg("RTT: a<b & c>d", &series);
        keep("percentile", &svg);
        let p = parse(&svg);

        assert!(p.has_text("RTT: a<b & c>d"));
        assert!(svg.contains("RTT: a&lt;b &amp; c&gt;d"));
        assert!(p.has_text("fast path <af_xdp> & \"co\""));
        assert!(svg.contains("fast path &lt;af_xdp&gt; &amp; &quot;co&quot;"));
        assert!(p.has_text("kernel udp"));
        assert!(p.has_text("percentile"));
        // max/min = 60 µs / 2 µs < 100: linear from 0.
        assert!(p.has_text("latency (µs)"));
        assert!(p.has_text("0"));

        for (i, pts) in [&fast, &slow].into_iter().enumerate() {
            let lines = p.lines_of(PALETTE[i]);
            assert_eq!(lines.len(), 1, "series {i}");
            assert_eq!(lines[0].len(), pts.len(), "series {i}");
            assert!(
                lines[0].windows(2).all(|w| w[0].0 <= w[1].0),
                "series {i} x not monotonic: {:?}",
                lines[0]
            );
            // Latency rises with the percentile: pixel y falls (SVG y grows down).
            assert!(lines[0].windows(2).all(|w| w[0].1 >= w[1].1));
            assert!(lines[0].first().unwrap().0 < lines[0].last().unwrap().0);
            assert_eq!(
                p.circles_of(PALETTE[i]),
                0,
                "no markers on percentile lines"
            );
        }
        // Nothing else is drawn as a coloured polyline (the legend uses
        // swatches; axes and tick marks are black).
        assert_eq!(p.data_lines(), 2);
        // The slow series lies above the fast one at the same x.
        let f = p.lines_of(PALETTE[0])[0];
        let s = p.lines_of(PALETTE[1])[0];
        assert!(s[0].1 < f[0].1);
    }

    #[test]
    fn thirteen_paths_get_thirteen_colours() {
        let series: Vec<Series> = (0..13)
            .map(|i| Series {
                label: format!("path-{i}"),
                points: vec![(0.0, 10.0 + f64::from(i)), (99.0, 20.0 + f64::from(i))],
            })
            .collect();
        let p = parse(&percentile_svg("many", &series));
        for (i, &c) in PALETTE.iter().take(13).enumerate() {
            assert_eq!(p.lines_of(c).len(), 1, "path-{i} has its own colour");
        }
        assert_eq!(p.data_lines(), 13);
    }

    #[test]
    fn percentile_ticks_end_at_largest_percentile() {
        let pts = vec![
            (0.0, 10.0),
            (50.0, 11.0),
            (90.0, 12.0),
            (99.0, 15.0),
            (99.9, 20.0),
            (99.99, 40.0),
        ];
        let svg = percentile_svg(
            "t",
            &[Series {
                label: "s".into(),
                points: pts.clone(),
            }],
        );
        let p = parse(&svg);
        assert_eq!(
            p.x_tick_labels("percentile"),
            ["0%", "90%", "99%", "99.9%", "99.99%"]
        );
        // 99.99% lands on the right edge of the plot, on the last tick.
        let line = p.lines_of(PALETTE[0])[0];
        assert_eq!(line.len(), pts.len());
        let last_tick = p.texts.iter().find(|t| t.2 == "99.99%").unwrap().0;
        assert!((line.last().unwrap().0 - last_tick).abs() <= 1.0);
        // 0% on the left edge.
        let first_tick = p.texts.iter().find(|t| t.2 == "0%").unwrap().0;
        assert!((line[0].0 - first_tick).abs() <= 1.0);

        let mut more = pts;
        more.push((99.995, 50.0));
        let p = parse(&percentile_svg(
            "t",
            &[Series {
                label: "s".into(),
                points: more,
            }],
        ));
        assert_eq!(
            p.x_tick_labels("percentile"),
            ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        );
    }

    #[test]
    fn percentile_ticks_from_histogram() {
        // Java's iteration ends where the top bucket is reached: 500 samples
        // stop at 99.8046875%, so the axis runs to the decade holding it, 99.9%.
        let mut h = new_latency_histogram();
        for v in 1..=500 {
            h.record(v * 1000).unwrap();
        }
        let pts = percentile_points(&h);
        assert_eq!(pts.last().unwrap().0, 99.8046875);
        let p = parse(&percentile_svg(
            "t",
            &[Series {
                label: "s".into(),
                points: pts,
            }],
        ));
        assert_eq!(p.x_tick_labels("percentile"), ["0%", "90%", "99%", "99.9%"]);

        // A 10-sample histogram ends at 91.25%; the axis still shows 0%..99%.
        let mut h = new_latency_histogram();
        for v in 1..=10 {
            h.record(v * 1000).unwrap();
        }
        let pts = percentile_points(&h);
        assert_eq!(pts.last().unwrap().0, 91.25);
        let p = parse(&percentile_svg(
            "t",
            &[Series {
                label: "s".into(),
                points: pts,
            }],
        ));
        assert_eq!(p.x_tick_labels("percentile"), ["0%", "90%", "99%"]);
    }

    #[test]
    fn log_y_axis_when_range_is_wide() {
        let pts = vec![(0.0, 1.0), (90.0, 5.0), (99.0, 80.0), (99.9, 2500.0)];
        let svg = percentile_svg(
            "t",
            &[Series {
                label: "s".into(),
                points: pts,
            }],
        );
        keep("log", &svg);
        let p = parse(&svg);
        assert!(p.has_text("latency (µs, log scale)"));
        for t in ["1", "10", "100", "1000", "10000"] {
            assert!(p.has_text(t), "tick {t}");
        }
        assert!(!p.has_text("0"));
        // Equal ratios take equal heights: 1→10 as tall as 100→1000.
        let tick_y = |t: &str| p.texts.iter().find(|x| x.2 == t).unwrap().1;
        let d1 = tick_y("1") - tick_y("10");
        let d2 = tick_y("100") - tick_y("1000");
        assert!(d1 > 0.0 && (d1 - d2).abs() <= 1.0, "{d1} {d2}");
    }

    #[test]
    fn depth_svg_one_tick_per_depth_and_markers() {
        let s = [
            Series {
                label: "chain-fastpath p50".into(),
                points: vec![(0.0, 5.0), (1.0, 5.5), (2.0, 6.0)],
            },
            Series {
                label: "chain-kernel p99".into(),
                points: vec![(0.0, 40.0), (1.0, 90.0), (2.0, f64::NAN)],
            },
        ];
        let svg = depth_svg("depth", &s);
        let p = parse(&svg);
        assert_eq!(
            p.x_tick_labels("chain depth (relays between client and server)"),
            ["0", "1", "2"]
        );
        assert!(p.has_text("chain-fastpath p50") && p.has_text("chain-kernel p99"));
        assert_eq!(p.circles_of(PALETTE[0]), 3);
        assert_eq!(p.circles_of(PALETTE[1]), 2, "the NaN point is skipped");
    }

    #[test]
    fn load_svg_lines_markers_and_rate_ticks() {
        let rates = [10_000.0, 60_000.0, 120_000.0, 180_000.0, 230_000.0];
        let p99: Vec<_> = rates.iter().map(|&r| (r, 20.0 + r / 2_000.0)).collect();
        let p50: Vec<_> = rates
            .iter()
            .map(|&r| (r * 0.98, 5.0 + r / 20_000.0))
            .collect();
        let series = [
            Series {
                label: "kernel udp p99".into(),
                points: p99.clone(),
            },
            Series {
                label: "fast path af_xdp p50".into(),
                points: p50.clone(),
            },
        ];
        let svg = load_svg("latency vs load", &series);
        keep("load", &svg);
        let p = parse(&svg);
        assert!(p.has_text("latency vs load"));
        assert!(p.has_text("kernel udp p99"));
        assert!(p.has_text("fast path af_xdp p50"));
        assert!(p.has_text("achieved rate (requests/s)"));
        assert!(p.has_text("latency (µs)"));
        let ticks = p.x_tick_labels("achieved rate (requests/s)");
        assert_eq!(ticks, ["0", "50k", "100k", "150k", "200k", "250k"]);
        for (i, pts) in [&p99, &p50].into_iter().enumerate() {
            let lines = p.lines_of(PALETTE[i]);
            assert_eq!(lines.len(), 1);
            assert_eq!(lines[0].len(), pts.len());
            assert_eq!(p.circles_of(PALETTE[i]), pts.len());
            assert!(lines[0].windows(2).all(|w| w[0].0 < w[1].0));
        }
    }

    #[test]
    fn empty_and_bad_input_draw_no_data() {
        for svg in [
            percentile_svg("empty", &[]),
            load_svg("empty", &[]),
            percentile_svg(
                "nan",
                &[Series {
                    label: "bad".into(),
                    points: vec![(f64::NAN, 1.0), (50.0, f64::NAN), (100.0, 3.0), (-1.0, 2.0)],
                }],
            ),
            load_svg(
                "nan",
                &[Series {
                    label: "bad".into(),
                    points: vec![(f64::INFINITY, 1.0), (1.0, f64::NEG_INFINITY), (-5.0, 1.0)],
                }],
            ),
        ] {
            keep("empty", &svg);
            let p = parse(&svg);
            assert!(p.has_text("no data"), "{svg}");
            assert_eq!(p.data_lines(), 0, "{svg}");
        }
        let p = parse(&percentile_svg(
            "nan",
            &[Series {
                label: "bad".into(),
                points: vec![(f64::NAN, 1.0)],
            }],
        ));
        assert!(p.has_text("bad (no data)"));
    }

    #[test]
    fn partial_single_and_zero_points() {
        let series = [
            Series {
                label: "mixed".into(),
                points: vec![
                    (0.0, 0.0),
                    (50.0, f64::NAN),
                    (90.0, 2.0),
                    (99.0, f64::INFINITY),
                    (99.9, 3.0),
                ],
            },
            Series {
                label: "one".into(),
                points: vec![(50.0, 1.0)],
            },
            Series {
                label: "none".into(),
                points: vec![],
            },
            Series {
                label: "zeros".into(),
                points: vec![(0.0, 0.0), (90.0, 0.0)],
            },
        ];
        let p = parse(&percentile_svg("t", &series));
        assert!(!p.has_text("no data"));
        assert_eq!(p.lines_of(PALETTE[0])[0].len(), 3);
        assert_eq!(p.lines_of(PALETTE[1])[0].len(), 1);
        assert_eq!(p.circles_of(PALETTE[1]), 1, "a lone point gets a marker");
        assert!(p.lines_of(PALETTE[2]).is_empty());
        assert!(p.has_text("none (no data)"));
        assert_eq!(p.lines_of(PALETTE[3])[0].len(), 2);
        // Zeros keep the axis linear even though max/min is unbounded.
        assert!(p.has_text("latency (µs)"));

        let p = parse(&load_svg(
            "t",
            &[Series {
                label: "one".into(),
                points: vec![(0.0, 0.0)],
            }],
        ));
        assert_eq!(p.lines_of(PALETTE[0])[0].len(), 1);
        assert_eq!(p.circles_of(PALETTE[0]), 1);
    }

    #[test]
    fn extreme_values_stay_readable() {
        let svg = percentile_svg(
            "x",
            &[Series {
                label: "x".into(),
                points: vec![
                    (0.0, f64::MIN_POSITIVE),
                    (50.0, 2.0),
                    (90.0, f64::MAX),
                    (99.0, 2e12),
                    (99.99999999999, 3.0),
                ],
            }],
        );
        let p = parse(&svg);
        // f64::MAX and 2e12 µs are skipped; a 1e-308..3 range is too wide for
        // a log axis, so it is linear and stays small.
        assert_eq!(p.lines_of(PALETTE[0])[0].len(), 3);
        assert!(p.has_text("latency (µs)"));
        assert!(p.has_text("99.99999999999%"));
        assert!(svg.len() < 50_000, "{} bytes", svg.len());

        let p = parse(&load_svg(
            "x",
            &[Series {
                label: "x".into(),
                points: vec![(f64::MAX, 1.0), (0.0, 0.0), (1e13, 1.0), (5.0, 1.0)],
            }],
        ));
        assert_eq!(p.lines_of(PALETTE[0])[0].len(), 2);
        assert_eq!(
            p.x_tick_labels("achieved rate (requests/s)")
                .last()
                .unwrap(),
            "5"
        );
    }

    #[test]
    fn labels_and_steps() {
        assert_eq!(
            (0..6).map(percent_label).collect::<Vec<_>>(),
            ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        );
        assert_eq!(rate_label(0.0), "0");
        assert_eq!(rate_label(500.0), "500");
        assert_eq!(rate_label(2_500.0), "2.5k");
        assert_eq!(rate_label(50_000.0), "50k");
        assert_eq!(rate_label(1_200_000.0), "1.2M");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(30_000.0), 50_000.0);
        assert_eq!(trim_number(0.25), "0.25");
        assert_eq!(trim_number(40.0), "40");
    }
}
