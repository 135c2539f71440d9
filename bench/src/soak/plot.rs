//! The soak as an SVG chart: the server's RSS, its open file descriptors
//! and the messages per second over the run, one panel each on one time
//! axis, with the verdict in the title. Axes start at zero, so a flat line
//! looks flat for what it is, not magnified.

use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::record::human_count;
use crate::report::group_thousands;
use crate::soak::SoakError;
use crate::soak::sample::Sample;
use crate::soak::summary::{Summary, mib, minutes};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 780;
/// Title, verdict line and description.
const HEADER_HEIGHT: u32 = 84;

const BLUE: RGBColor = RGBColor(0x1F, 0x5F, 0xBF);
const ORANGE: RGBColor = RGBColor(0xE0, 0x8E, 0x2B);
const GREEN: RGBColor = RGBColor(0x3A, 0xA6, 0x6B);
const GREY: RGBColor = RGBColor(0x55, 0x55, 0x55);
const LIGHT: RGBColor = RGBColor(0xEE, 0xEE, 0xEE);
const FAIL: RGBColor = RGBColor(0xC4, 0x4E, 0x52);

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn chart_error<E: std::fmt::Display>(error: E) -> SoakError {
    SoakError::Chart(error.to_string())
}

/// Draws `samples` of the run `summary` describes into `path`.
///
/// # Errors
/// [`SoakError::Chart`] when the file cannot be written.
pub fn draw(samples: &[Sample], summary: &Summary, path: &Path) -> Result<(), SoakError> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let (head, body) = root.split_vertically(HEADER_HEIGHT);
    draw_header(summary, &head)?;
    let panels = body.split_evenly((3, 1));
    let end = samples
        .last()
        .map_or(summary.duration_s, |s| s.t_s)
        .max(summary.duration_s)
        .max(1.0);
    // Runs of two minutes or more are drawn in minutes, so the axis ticks
    // fall on whole minutes.
    let unit = if end >= 120.0 { 60.0 } else { 1.0 };
    let samples: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            t_s: s.t_s / unit,
            ..s.clone()
        })
        .collect();
    let scaled = Summary {
        warmup_s: summary.warmup_s / unit,
        ..summary.clone()
    };
    let end = end / unit;
    draw_rss(&samples, &scaled, end, unit, &panels[0])?;
    draw_fds(&samples, end, unit, &panels[1])?;
    draw_rates(&samples, &scaled, end, unit, &panels[2])?;
    root.present().map_err(chart_error)
}

fn draw_header(summary: &Summary, head: &Area<'_>) -> Result<(), SoakError> {
    let title = format!(
        "Soak: {} connections for {} (echo and room fan-out)",
        group_thousands(summary.connections),
        minutes(summary.duration_s)
    );
    head.draw(&Text::new(
        title,
        (20, 10),
        ("sans-serif", 22).into_font().style(FontStyle::Bold),
    ))
    .map_err(chart_error)?;
    let growth = summary
        .rss_growth_percent
        .map_or(String::new(), |g| format!(" ({g:+.1}% after the warm-up)"));
    let verdict = format!(
        "{} · RSS {} → {}{growth} · {} errors · {} echoes and {} deliveries checked",
        if summary.passed { "PASS" } else { "FAIL" },
        summary.rss_baseline_kib.map_or("-".into(), mib),
        summary.rss_end_kib.map_or("-".into(), mib),
        group_thousands(summary.errors as usize),
        human_count(summary.echoes_received as f64),
        human_count(summary.delivered as f64),
    );
    let colour = if summary.passed { GREEN } else { FAIL };
    head.draw(&Text::new(
        verdict,
        (20, 40),
        ("sans-serif", 14).into_font().color(&colour),
    ))
    .map_err(chart_error)?;
    if let Some(description) = &summary.description {
        head.draw(&Text::new(
            description.clone(),
            (20, 62),
            ("sans-serif", 12).into_font().color(&GREY),
        ))
        .map_err(chart_error)?;
    }
    Ok(())
}

/// The x axis: in minutes when `unit` is 60, else in seconds.
fn time_label(unit: f64) -> impl Fn(&f64) -> String {
    move |t: &f64| {
        if unit > 1.0 {
            format!("{t:.0} min")
        } else {
            format!("{t:.0} s")
        }
    }
}

/// A chart on `area` from 0 to `end` s and 0 to `top`, with its caption.
fn panel<'a, 'b>(
    area: &'a Area<'b>,
    caption: String,
    end: f64,
    unit: f64,
    top: f64,
    y_label: &'a dyn Fn(&f64) -> String,
) -> Result<Chart<'a, 'b>, SoakError> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 15))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(26)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0_f64..end, 0.0_f64..top.max(1.0))
        .map_err(chart_error)?;
    let x_label = time_label(unit);
    chart
        .configure_mesh()
        .x_labels(11)
        .y_labels(5)
        .x_label_formatter(&x_label)
        .y_label_formatter(y_label)
        .light_line_style(WHITE)
        .bold_line_style(LIGHT)
        .draw()
        .map_err(chart_error)?;
    Ok(chart)
}

fn draw_rss(
    samples: &[Sample],
    summary: &Summary,
    end: f64,
    unit: f64,
    area: &Area<'_>,
) -> Result<(), SoakError> {
    let rss = |s: &Sample| s.server_rss_kib as f64 / 1024.0;
    let bound = summary
        .rss_baseline_kib
        .map(|kib| kib as f64 / 1024.0 * (1.0 + summary.max_rss_growth_percent / 100.0));
    let top = samples.iter().map(rss).fold(bound.unwrap_or(0.0), f64::max) * 1.15;
    let y_label = |y: &f64| format!("{y:.0} MiB");
    let caption = format!(
        "server RSS (VmRSS), MiB: {} empty, max {}",
        mib(summary.rss_before_kib),
        summary.rss_max_kib.map_or("-".into(), mib)
    );
    let mut chart = panel(area, caption, end, unit, top, &y_label)?;
    // The warm-up, not judged.
    chart
        .draw_series([Rectangle::new(
            [(0.0, 0.0), (summary.warmup_s.min(end), top)],
            RGBColor(0xF4, 0xF4, 0xF4).filled(),
        )])
        .map_err(chart_error)?;
    chart
        .draw_series([Text::new(
            "warm-up",
            (summary.warmup_s.min(end) * 0.05, top * 0.93),
            ("sans-serif", 11).into_font().color(&GREY),
        )])
        .map_err(chart_error)?;
    if let Some(bound) = bound {
        chart
            .draw_series([DashedPathElement::new(
                [(summary.warmup_s, bound), (end, bound)],
                6,
                4,
                FAIL.stroke_width(1),
            )])
            .map_err(chart_error)?;
        chart
            .draw_series([Text::new(
                format!("bound: baseline +{:.0}%", summary.max_rss_growth_percent),
                // Text hangs from its point: this puts it just above the line.
                (
                    summary.warmup_s + (end - summary.warmup_s) * 0.02,
                    bound + top * 0.09,
                ),
                ("sans-serif", 11).into_font().color(&FAIL),
            )])
            .map_err(chart_error)?;
    }
    line(&mut chart, samples, rss, BLUE)
}

fn draw_fds(samples: &[Sample], end: f64, unit: f64, area: &Area<'_>) -> Result<(), SoakError> {
    let fds = |s: &Sample| s.server_fds as f64;
    let top = samples.iter().map(fds).fold(0.0, f64::max) * 1.2;
    let y_label = |y: &f64| group_thousands(*y as usize);
    let low = samples.iter().map(|s| s.server_fds).min().unwrap_or(0);
    let high = samples.iter().map(|s| s.server_fds).max().unwrap_or(0);
    let range = if low == high {
        format!("{} in every sample", group_thousands(low as usize))
    } else {
        format!(
            "{} to {}",
            group_thousands(low as usize),
            group_thousands(high as usize)
        )
    };
    let mut chart = panel(
        area,
        format!("server open file descriptors (/proc/PID/fd): {range}"),
        end,
        unit,
        top,
        &y_label,
    )?;
    line(&mut chart, samples, fds, BLUE)
}

fn draw_rates(
    samples: &[Sample],
    summary: &Summary,
    end: f64,
    unit: f64,
    area: &Area<'_>,
) -> Result<(), SoakError> {
    let top = samples
        .iter()
        .map(|s| s.echoes_per_s.max(s.deliveries_per_s))
        .fold(0.0, f64::max)
        * 1.3;
    let y_label = |y: &f64| human_count(*y);
    let caption = format!(
        "messages per second: echoes (blue), deliveries (orange); errors so far: {}",
        group_thousands(summary.errors as usize)
    );
    let mut chart = panel(area, caption, end, unit, top, &y_label)?;
    // The first sample is taken as the load starts: it has no rate.
    let loaded = samples.get(1..).unwrap_or_default();
    line(&mut chart, loaded, |s| s.echoes_per_s, BLUE)?;
    line(&mut chart, loaded, |s| s.deliveries_per_s, ORANGE)?;
    // A red mark wherever the error count rose.
    let mut previous = 0;
    let mut marks = Vec::new();
    for sample in samples {
        if sample.errors > previous {
            marks.push((sample.t_s, top * 0.05));
        }
        previous = sample.errors;
    }
    chart
        .draw_series(
            marks
                .into_iter()
                .map(|at| Circle::new(at, 4, FAIL.filled())),
        )
        .map_err(chart_error)?;
    Ok(())
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// One series as a line through its samples, with a dot at each.
fn line(
    chart: &mut Chart<'_, '_>,
    samples: &[Sample],
    value: impl Fn(&Sample) -> f64,
    colour: RGBColor,
) -> Result<(), SoakError> {
    let points: Vec<(f64, f64)> = samples.iter().map(|s| (s.t_s, value(s))).collect();
    chart
        .draw_series([PathElement::new(points.clone(), colour.stroke_width(2))])
        .map_err(chart_error)?;
    chart
        .draw_series(
            points
                .into_iter()
                .map(|at| Circle::new(at, 2, colour.filled())),
        )
        .map_err(chart_error)?;
    Ok(())
}
