//! The SVG chart: depth, latency and workers over time, the three runs overlaid.

use crate::report::Summary;
use plotters::prelude::*;
use std::error::Error;
use std::path::Path;

const COLORS: [RGBColor; 3] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// Writes the chart to `path`.
pub fn draw(path: &Path, runs: &[Summary], max_workers: usize) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (1100, 1000)).into_drawing_area();
    root.fill(&WHITE)?;
    let load = runs.first().map_or(0.0, |r| r.load.as_secs_f64());
    let root = root.titled(
        &format!(
            "weir backpressure demo: {:.0} msg/s offered for {load:.0} s, each consumer serves {:.0} msg/s",
            runs.first().map_or(0.0, |r| r.offered_rate),
            runs.first().map_or(0.0, |r| r.offered_rate) / 2.0,
        ),
        ("sans-serif", 22),
    )?;
    let panels = root.split_evenly((3, 1));
    let t_max = runs
        .iter()
        .flat_map(|r| r.samples.last().map(|s| s.t))
        .fold(load + 1.0, f64::max);

    // Depth, log scale (an empty queue is drawn at 1).
    let depth_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.depth))
        .max()
        .unwrap_or(1)
        .max(10) as f64
        * 2.0;
    let mut c = ChartBuilder::on(&panels[0])
        .caption(
            "queue depth (items, log scale; empty drawn at 1)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, (1f64..depth_max).log_scale())?;
    c.configure_mesh()
        .x_desc("seconds since the run started")
        .draw()?;
    load_line(&mut c, load, 1.0, depth_max)?;
    for r in runs {
        let i = run_index(r);
        let pts = r.samples.iter().map(|s| (s.t, (s.depth as f64).max(1.0)));
        c.draw_series(LineSeries::new(pts, COLORS[i].stroke_width(2)))?
            .label(r.title)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], COLORS[i].stroke_width(2))
            });
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // p99 latency per 100 ms sample, log scale.
    let lat_max = runs
        .iter()
        .flat_map(|r| r.samples.iter().filter_map(|s| s.p99_ms))
        .fold(10.0, f64::max)
        * 2.0;
    let mut c = ChartBuilder::on(&panels[1])
        .caption(
            "queueing latency, p99 of each 100 ms (ms, log scale; gaps: nothing dequeued)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, (0.01f64..lat_max).log_scale())?;
    c.configure_mesh()
        .x_desc("seconds since the run started")
        .draw()?;
    load_line(&mut c, load, 0.01, lat_max)?;
    for r in runs {
        let i = run_index(r);
        // One line per stretch of samples that had a value, so gaps stay gaps.
        let mut segment: Vec<(f64, f64)> = Vec::new();
        for s in r.samples.iter().map(Some).chain(std::iter::once(None)) {
            match s.and_then(|s| s.p99_ms.map(|v| (s.t, v.max(0.01)))) {
                Some(p) => segment.push(p),
                None if !segment.is_empty() => {
                    c.draw_series(LineSeries::new(
                        std::mem::take(&mut segment),
                        COLORS[i].stroke_width(2),
                    ))?;
                }
                None => {}
            }
        }
    }

    // Workers.
    let mut c = ChartBuilder::on(&panels[2])
        .caption(
            "consumers (runs 1 and 2: one consumer; run 3: pool workers)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, 0f64..(max_workers as f64 + 0.5))?;
    c.configure_mesh()
        .x_desc("seconds since the run started")
        .y_labels(max_workers + 1)
        .draw()?;
    load_line(&mut c, load, 0.0, max_workers as f64 + 0.5)?;
    for r in runs {
        let i = run_index(r);
        // Runs 1 and 2 both have one consumer; nudge them apart so both lines show.
        let nudge = match i {
            0 => 0.04,
            1 => -0.04,
            _ => 0.0,
        };
        let mut pts = Vec::new();
        for w in r.samples.windows(2) {
            pts.push((w[0].t, w[0].workers as f64 + nudge));
            pts.push((w[1].t, w[0].workers as f64 + nudge));
        }
        c.draw_series(LineSeries::new(pts, COLORS[i].stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

/// A dashed grey marker where the load stops.
fn load_line<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    c: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    load: f64,
    lo: f64,
    hi: f64,
) -> Result<(), Box<dyn Error>>
where
    DB::ErrorType: 'static,
{
    c.draw_series(DashedLineSeries::new(
        vec![(load, lo), (load, hi)],
        6,
        4,
        BLACK.mix(0.5).stroke_width(1),
    ))
    .map_err(|e| e.to_string())?
    .label("load stops")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    Ok(())
}

/// 0, 1 or 2 for runs 1, 2 and 3 (from the title's leading digit), so a run keeps its colour
/// when others are left out with `--runs`.
fn run_index(r: &Summary) -> usize {
    match r.title.as_bytes().first() {
        Some(d @ b'1'..=b'3') => usize::from(d - b'1'),
        _ => 0,
    }
}
