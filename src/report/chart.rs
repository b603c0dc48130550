//! Draws one chart as an inline SVG string with plotters: lines over the
//! run's wall-clock time with the phases shaded, or the alert state band.
//! Knows nothing about reports; `html` decides what to plot.

use std::io;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Size of every chart, in SVG pixels (scaled by the page's CSS).
const SIZE: (u32, u32) = (1100, 300);
const FONT: &str = "sans-serif";
/// Phase shading, cycled: light enough for lines to stay readable.
const PHASE_FILL: [RGBColor; 4] = [
    RGBColor(66, 133, 244),
    RGBColor(251, 188, 5),
    RGBColor(52, 168, 83),
    RGBColor(171, 71, 188),
];
pub const PENDING: RGBColor = RGBColor(245, 166, 35);
pub const FIRING: RGBColor = RGBColor(214, 39, 40);

/// The time axis: seconds relative to the first phase start.
pub struct Timeline {
    pub end_s: f64,
    pub phases: Vec<(String, f64, f64)>,
}

pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    /// Thresholds are dashed so they never read as data.
    pub dashed: bool,
}

/// One alert's row in the state band: `(state colour, start_s, end_s)`.
pub struct Band {
    pub label: String,
    pub spans: Vec<(RGBColor, f64, f64)>,
}

fn drawing<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> io::Error {
    io::Error::other(format!("cannot draw a chart: {e}"))
}

/// plotters names the SVG namespace by URL; inline SVG in HTML needs no
/// namespace, and the page must not mention any URL it could fetch.
fn inline(svg: String) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

fn shade_phases<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    tl: &Timeline,
    y_top: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (i, (name, start, end)) in tl.phases.iter().enumerate() {
        let fill = PHASE_FILL[i % PHASE_FILL.len()].mix(0.12).filled();
        chart.draw_series(std::iter::once(Rectangle::new(
            [(*start, 0.0), (*end, y_top)],
            fill,
        )))?;
        chart.draw_series(std::iter::once(Text::new(
            name.clone(),
            (*start + tl.end_s * 0.004, y_top * 0.97),
            (FONT, 13).into_font().color(&BLACK.mix(0.6)),
        )))?;
    }
    Ok(())
}

/// Lines over time; `y_fmt` formats the axis labels (e.g. as percent).
pub fn lines(
    title: &str,
    y_desc: &str,
    tl: &Timeline,
    lines: &[Line],
    y_fmt: &dyn Fn(&f64) -> String,
) -> io::Result<String> {
    let top = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y_top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw_lines(&root, title, y_desc, tl, lines, y_fmt, y_top).map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(inline(svg))
}

fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    tl: &Timeline,
    lines: &[Line],
    y_fmt: &dyn Fn(&f64) -> String,
    y_top: f64,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..tl.end_s.max(1.0), 0f64..y_top)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first phase started")
        .y_desc(y_desc)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 13))
        .y_label_formatter(y_fmt)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade_phases(&mut chart, tl, y_top)?;
    for l in lines {
        let style = l.color.stroke_width(2);
        let color = l.color;
        let series = if l.dashed {
            chart.draw_series(DashedLineSeries::new(l.points.iter().copied(), 8, 6, style))?
        } else {
            chart.draw_series(LineSeries::new(l.points.iter().copied(), style))?
        };
        series.label(l.label.as_str()).legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}

/// One row per alert, coloured where it was pending or firing.
pub fn bands(title: &str, tl: &Timeline, bands: &[Band]) -> io::Result<String> {
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (SIZE.0, 130 + 50 * bands.len().max(1) as u32))
                .into_drawing_area();
        draw_bands(&root, title, tl, bands).map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(inline(svg))
}

fn draw_bands<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    tl: &Timeline,
    bands: &[Band],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let rows = bands.len().max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(38)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..tl.end_s.max(1.0), 0f64..rows)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the first phase started")
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 13))
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    shade_phases(&mut chart, tl, rows)?;
    for (i, b) in bands.iter().enumerate() {
        let y0 = rows - i as f64 - 0.8;
        let y1 = rows - i as f64 - 0.3;
        chart.draw_series(
            b.spans.iter().map(|(color, s, e)| {
                Rectangle::new([(*s, y0), (*e, y1)], color.mix(0.85).filled())
            }),
        )?;
        chart.draw_series(std::iter::once(Text::new(
            b.label.clone(),
            (tl.end_s * 0.004, (y0 + y1) / 2.0 + 0.1),
            (FONT, 13),
        )))?;
    }
    for (label, color) in [("pending", PENDING), ("firing", FIRING)] {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 13))
        .draw()?;
    Ok(())
}
