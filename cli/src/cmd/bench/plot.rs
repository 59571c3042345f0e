//! `ollmlx bench --plot DIR`: PNG line charts of a [`Report`] (plotters, bitmap backend).
//!
//! Text is rendered with plotters' pure-Rust `ab_glyph` font backend from a TTF file found at
//! run time (`OLLMLX_PLOT_FONT`, else DejaVu Sans / Liberation Sans from the usual system
//! paths), so no font libraries are linked. Without a font the plots are skipped with an error.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

use super::report::{Report, Row};

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
];

fn font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let path = std::env::var("OLLMLX_PLOT_FONT")
            .ok()
            .map(PathBuf::from)
            .or_else(|| {
                FONT_CANDIDATES
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
            })
            .ok_or("no TTF font found for plot labels; set OLLMLX_PLOT_FONT=/path/font.ttf")?;
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{}: not a usable TTF font", path.display()))
    })
    .clone()
}

/// One line of a chart.
struct Series {
    name: &'static str,
    points: Vec<(f64, f64)>,
}

fn points(rows: &[&Row], y: impl Fn(&Row) -> Option<f64>) -> Vec<(f64, f64)> {
    rows.iter()
        .filter_map(|r| y(r).map(|v| (r.x as f64, v)))
        .collect()
}

fn chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
) -> Result<(), String> {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.points.clone()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = all.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-9) * 1.15;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(95)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .draw()
        .map_err(|e| err(&e))?;
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        c.draw_series(LineSeries::new(s.points.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        c.draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Write the charts for `report` into `dir`; returns the files written.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    font()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let of = |w: &[&str]| -> Vec<&Row> {
        report
            .rows
            .iter()
            .filter(|r| w.contains(&r.workload.as_str()))
            .collect()
    };
    let who = format!("{} ({})", report.model, report.label);
    let mut written = Vec::new();
    let mut emit = |name: &str, title: String, x: &str, y: &str, series: Vec<Series>| {
        let path = dir.join(name);
        if series.iter().any(|s| !s.points.is_empty()) {
            chart(&path, &title, x, y, &series)?;
            written.push(path);
        }
        Ok::<(), String>(())
    };
    let conc = of(&["concurrency"]);
    emit(
        "concurrency.png",
        format!("Throughput vs concurrent streams — {who}"),
        "concurrent streams",
        "tokens/s",
        vec![
            Series {
                name: "aggregate tokens/s",
                points: points(&conc, |r| r.aggregate_tps),
            },
            Series {
                name: "per-stream decode tokens/s",
                points: points(&conc, |r| r.decode_tps),
            },
        ],
    )?;
    emit(
        "concurrency_ttft.png",
        format!("Time to first token vs concurrent streams — {who}"),
        "concurrent streams",
        "ms",
        vec![
            Series {
                name: "TTFT p50",
                points: points(&conc, |r| r.ttft_p50_ms),
            },
            Series {
                name: "TTFT p95",
                points: points(&conc, |r| r.ttft_p95_ms),
            },
        ],
    )?;
    let prefill = of(&["prefill", "long"]);
    emit(
        "prefill.png",
        format!("Prefill speed vs prompt length — {who}"),
        "prompt tokens",
        "tokens/s",
        vec![Series {
            name: "prefill tokens/s",
            points: prefill
                .iter()
                .filter_map(|r| r.prefill_tps.map(|v| (r.prompt_tokens, v)))
                .collect(),
        }],
    )?;
    let chat = of(&["chat"]);
    emit(
        "chat_ttft.png",
        format!("Multi-turn chat: time to first token per turn — {who}"),
        "turn",
        "ms",
        vec![Series {
            name: "TTFT",
            points: points(&chat, |r| r.ttft_p50_ms),
        }],
    )?;
    Ok(written)
}
