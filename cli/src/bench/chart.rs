//! `bench --chart FILE.svg`: throughput and latency per store, one group of bars per
//! workload, drawn with plotters' SVG backend.

use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{BenchArgs, Cell};
use crate::error::Failure;

/// The bar colours of the stores, in order (then again).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// The stores and workloads of `cells`, each once, in the order first seen.
fn names(cells: &[Cell]) -> (Vec<String>, Vec<String>) {
    let mut stores: Vec<String> = Vec::new();
    let mut workloads: Vec<String> = Vec::new();
    for c in cells {
        if !stores.contains(&c.store) {
            stores.push(c.store.clone());
        }
        if !workloads.contains(&c.workload) {
            workloads.push(c.workload.clone());
        }
    }
    (stores, workloads)
}

/// Writes the chart of `cells` to `path`.
pub(crate) fn write(path: &Path, cells: &[Cell], args: &BenchArgs) -> Result<(), Failure> {
    draw(path, cells, args).map_err(|e| Failure::because(format!("drawing {}", path.display()), e))
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(path: &Path, cells: &[Cell], args: &BenchArgs) -> DrawResult {
    let (stores, workloads) = names(cells);
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let title = format!(
        "sessile bench: {} B payload, {} thread(s), {} sessions, {} s per run",
        args.payload,
        args.threads,
        args.sessions,
        args.duration.as_secs_f64()
    );
    let root = root.titled(&title, ("sans-serif", 20))?;
    let (left, right) = root.split_horizontally(600);
    panel(
        &left,
        "Throughput, calls/s (higher is better)",
        &stores,
        &workloads,
        cells,
        |c| c.ops_per_sec,
        false,
    )?;
    panel(
        &right,
        "p99 latency, µs (lower is better; log scale)",
        &stores,
        &workloads,
        cells,
        |c| c.p99_ns as f64 / 1e3,
        true,
    )?;
    root.present()?;
    Ok(())
}

/// One panel: a group of bars per workload, a bar per store.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    caption: &str,
    stores: &[String],
    workloads: &[String],
    cells: &[Cell],
    value: impl Fn(&Cell) -> f64,
    log: bool,
) -> DrawResult {
    let n = workloads.len().max(1) as f64;
    let max = cells.iter().map(&value).fold(0.0, f64::max).max(1.0);
    let min = cells
        .iter()
        .map(&value)
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .min(max);
    // A group of bars centred on each whole number, the workload's name under it (the
    // axis's labels fall on whole numbers; any between them stay blank).
    let x = -0.5..n - 0.5;
    let label = |v: &f64| {
        let w = v.round();
        if (v - w).abs() > 0.01 || w < 0.0 {
            return String::new();
        }
        workloads.get(w as usize).cloned().unwrap_or_default()
    };
    let width = 0.8 / stores.len().max(1) as f64;
    let bar = |c: &Cell, floor: f64| {
        let w = workloads.iter().position(|w| *w == c.workload).unwrap_or(0) as f64;
        let s = stores.iter().position(|s| *s == c.store).unwrap_or(0);
        let x0 = w - 0.4 + s as f64 * width;
        let colour = COLOURS[s % COLOURS.len()];
        Rectangle::new(
            [(x0, floor), (x0 + width * 0.9, value(c).max(floor))],
            colour.filled(),
        )
    };
    if log {
        let floor = (min / 2.0).max(1e-3);
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x, (floor..max * 40.0).log_scale())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(workloads.len() + 1)
            .x_label_formatter(&label)
            .draw()?;
        bars(
            &mut chart,
            stores,
            cells,
            |c| bar(c, floor),
            SeriesLabelPosition::UpperLeft,
        )?;
    } else {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x, 0.0..max * 1.3)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(workloads.len() + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&|v| super::table::rate(*v))
            .draw()?;
        bars(
            &mut chart,
            stores,
            cells,
            |c| bar(c, 0.0),
            SeriesLabelPosition::UpperRight,
        )?;
    }
    Ok(())
}

/// Draws the bars of every store in its colour, and the legend at `position`.
fn bars<'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    stores: &[String],
    cells: &[Cell],
    bar: impl Fn(&Cell) -> Rectangle<(f64, f64)>,
    position: SeriesLabelPosition,
) -> DrawResult {
    for (s, store) in stores.iter().enumerate() {
        let colour = COLOURS[s % COLOURS.len()];
        chart
            .draw_series(cells.iter().filter(|c| c.store == *store).map(&bar))?
            .label(store.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(position)
        .draw()?;
    Ok(())
}
