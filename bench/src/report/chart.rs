//! The comparison as an SVG chart: grouped bars of echo throughput per
//! configuration, and bars of memory per idle connection.
//!
//! SVG keeps plotters free of font libraries (text is left to the viewer),
//! so the report builds anywhere the generator does.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ReportError;
use crate::record::human_count;
use crate::report::{Meta, Summary};

/// Bar colours, the subject's first: a strong blue, then muted peers.
const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1F, 0x5F, 0xBF),
    RGBColor(0xE0, 0x8E, 0x2B),
    RGBColor(0x3A, 0xA6, 0x6B),
    RGBColor(0x9A, 0x9A, 0x9A),
    RGBColor(0x8E, 0x5E, 0xC4),
    RGBColor(0xC4, 0x4E, 0x52),
];

const WIDTH: u32 = 1240;
const HEIGHT: u32 = 600;
/// Title, subtitle and the legend shared by both panels.
const HEADER_HEIGHT: u32 = 96;
/// Width of the throughput panel; the memory panel takes the rest.
const THROUGHPUT_WIDTH: u32 = 840;

fn chart_error<E: std::fmt::Display>(error: E) -> ReportError {
    ReportError::Chart(error.to_string())
}

fn colour(index: usize) -> RGBColor {
    COLOURS[index % COLOURS.len()]
}

/// Draws the chart of `summary` into `path` (SVG).
///
/// # Errors
/// The file cannot be written.
pub fn draw_chart(summary: &Summary, meta: &Meta, path: &Path) -> Result<(), ReportError> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let rounds = meta.rounds.map_or(summary.rounds, |r| r as usize);
    let mut subtitle = vec![if rounds == 1 {
        "one round".to_owned()
    } else {
        format!("median of {rounds} interleaved rounds")
    }];
    subtitle.extend(meta.duration.as_ref().map(|d| format!("{d} windows")));
    subtitle.extend(meta.pinning.clone());
    subtitle.extend(meta.date.clone());
    let (head, body) = root.split_vertically(HEADER_HEIGHT);
    head.draw(&Text::new(
        "Closed-loop echo throughput and memory per idle connection",
        (20, 10),
        ("sans-serif", 22).into_font().style(FontStyle::Bold),
    ))
    .map_err(chart_error)?;
    head.draw(&Text::new(
        subtitle.join(" · "),
        (20, 40),
        ("sans-serif", 13)
            .into_font()
            .color(&RGBColor(0x55, 0x55, 0x55)),
    ))
    .map_err(chart_error)?;
    draw_legend(summary, &head)?;
    let (left, right) = body.split_horizontally(THROUGHPUT_WIDTH);
    draw_throughput(summary, &left)?;
    draw_memory(summary, meta, &right)?;
    root.present().map_err(chart_error)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn draw_throughput(summary: &Summary, area: &Area<'_>) -> Result<(), ReportError> {
    let groups = summary.workloads.len().max(1);
    let servers = summary.servers.len().max(1);
    let top = summary
        .echo
        .values()
        .map(|c| c.messages_per_sec)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.22;
    let mut chart = ChartBuilder::on(area)
        .caption(
            "echo messages per second (higher is better)",
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(58)
        .build_cartesian_2d(-0.5_f64..(groups as f64 - 0.5), 0.0_f64..top)
        .map_err(chart_error)?;
    let titles: Vec<String> = summary.workloads.iter().map(|w| w.title()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups)
        .x_label_formatter(&|x| label_at(&titles, *x))
        .y_label_formatter(&|y| human_count(*y))
        .light_line_style(WHITE)
        .draw()
        .map_err(chart_error)?;

    // Bars of one group share 0.8 of a unit, centred on the group's index.
    let slot = 0.8 / servers as f64;
    let value_style =
        TextStyle::from(("sans-serif", 10).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (s, server) in summary.servers.iter().enumerate() {
        let fill = colour(s);
        let bars: Vec<(f64, f64)> = summary
            .workloads
            .iter()
            .enumerate()
            .filter_map(|(g, workload)| {
                let cell = summary.echo.get(&(server.label.clone(), *workload))?;
                Some((g as f64 - 0.4 + slot * s as f64, cell.messages_per_sec))
            })
            .collect();
        chart
            .draw_series(bars.iter().map(|&(x, value)| {
                Rectangle::new(
                    [(x + slot * 0.06, 0.0), (x + slot * 0.94, value)],
                    fill.filled(),
                )
            }))
            .map_err(chart_error)?;
        chart
            .draw_series(bars.iter().map(|&(x, value)| {
                Text::new(
                    human_count(value),
                    (x + slot / 2.0, value),
                    value_style.clone(),
                )
            }))
            .map_err(chart_error)?;
    }
    Ok(())
}

/// One row of colour keys under the subtitle, for both panels.
fn draw_legend(summary: &Summary, head: &Area<'_>) -> Result<(), ReportError> {
    let font = TextStyle::from(("sans-serif", 14).into_font());
    let (mut x, y) = (20_i32, 68_i32);
    for (s, server) in summary.servers.iter().enumerate() {
        head.draw(&Rectangle::new(
            [(x, y - 6), (x + 14, y + 8)],
            colour(s).filled(),
        ))
        .map_err(chart_error)?;
        let title = server.title();
        head.draw(&Text::new(title.clone(), (x + 20, y - 6), font.clone()))
            .map_err(chart_error)?;
        let (width, _) = head
            .estimate_text_size(&title, &font)
            .map_err(chart_error)?;
        x += 20 + width as i32 + 28;
    }
    Ok(())
}

fn draw_memory(summary: &Summary, meta: &Meta, area: &Area<'_>) -> Result<(), ReportError> {
    let servers = summary.servers.len().max(1);
    let top = summary
        .memory
        .values()
        .map(|c| c.per_connection_kib)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let held = meta
        .idle_connections
        .or_else(|| summary.memory.values().map(|c| c.connections).max())
        .unwrap_or(0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "RSS per idle connection, KiB ({} idle, lower is better)",
                crate::report::summary::group_thousands(held)
            ),
            ("sans-serif", 15),
        )
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(48)
        .build_cartesian_2d(-0.5_f64..(servers as f64 - 0.5), 0.0_f64..top)
        .map_err(chart_error)?;
    let names: Vec<String> = summary.servers.iter().map(|s| s.name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(servers)
        .x_label_formatter(&|x| label_at(&names, *x))
        .x_label_style(("sans-serif", 11))
        .light_line_style(WHITE)
        .draw()
        .map_err(chart_error)?;
    let value_style =
        TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (s, server) in summary.servers.iter().enumerate() {
        let Some(cell) = summary.memory.get(&server.label) else {
            continue;
        };
        let x = s as f64;
        let value = cell.per_connection_kib;
        chart
            .draw_series([Rectangle::new(
                [(x - 0.3, 0.0), (x + 0.3, value)],
                colour(s).filled(),
            )])
            .map_err(chart_error)?;
        chart
            .draw_series([Text::new(
                format!("{value:.1}"),
                (x, value),
                value_style.clone(),
            )])
            .map_err(chart_error)?;
    }
    Ok(())
}

/// The category name for an axis position: categories sit at 0, 1, 2…
fn label_at(names: &[String], x: f64) -> String {
    let nearest = x.round();
    if (x - nearest).abs() > 0.01 || nearest < 0.0 {
        return String::new();
    }
    names.get(nearest as usize).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summarize;
    use crate::report::summary::tests::three_rounds;

    #[test]
    fn chart_is_written_as_svg_with_every_server() {
        let summary = summarize(&three_rounds(), &Meta::default(), Some("duplex"));
        let dir = std::env::temp_dir().join(format!("duplex-bench-chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("chart.svg");
        draw_chart(&summary, &Meta::default(), &path).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("duplex") && svg.contains("peer"));
        assert!(svg.contains("100 × 20 B"));
        assert!(svg.contains("100.0k"));
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    #[test]
    fn labels_only_at_category_centres() {
        let names = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(label_at(&names, 0.0), "a");
        assert_eq!(label_at(&names, 1.0), "b");
        assert_eq!(label_at(&names, 0.5), "");
        assert_eq!(label_at(&names, -0.5), "");
        assert_eq!(label_at(&names, 7.0), "");
    }
}
