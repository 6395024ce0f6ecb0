//! SVG charts drawn from the report: latency percentiles per transport and size, and throughput against size.

use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

pub const CHARTS: [&str; 3] = ["latency_p50.svg", "latency_p99.svg", "throughput.svg"];

/// (transport, [(size, value)]) for the entries of `list` in `mode`, sorted by size.
fn series(doc: &Value, list: &str, mode: &str, field: &str) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for e in doc[list].as_array().into_iter().flatten() {
        if e["mode"] != mode {
            continue;
        }
        let (Some(name), Some(size), Some(v)) = (e["transport"].as_str(), e["size"].as_f64(), e[field].as_f64()) else {
            continue;
        };
        if !(v.is_finite() && v > 0.0) {
            continue;
        }
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, pts)) => pts.push((size, v)),
            None => out.push((name.to_string(), vec![(size, v)])),
        }
    }
    for (_, pts) in &mut out {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// A decimal tick label with an SI prefix (the log axes put their ticks at powers of ten).
fn si(v: f64, unit: &str) -> String {
    let (x, p) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    format!("{x:.0} {p}{unit}")
}

fn ns(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.0} s", v / 1e9),
        v if v >= 1e6 => format!("{:.0} ms", v / 1e6),
        v if v >= 1e3 => format!("{:.0} µs", v / 1e3),
        v => format!("{v:.0} ns"),
    }
}

fn chart(path: &Path, title: &str, y_unit: &str, data: &[(String, Vec<(f64, f64)>)]) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let (mut lo, mut hi) = (f64::INFINITY, 0f64);
    for (_, pts) in data {
        for &(_, v) in pts {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !(lo.is_finite() && hi > 0.0) {
        (lo, hi) = (1.0, 10.0);
    }
    let root = SVGBackend::new(path, (980, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d((6f64..1.6e6f64).log_scale(), (lo / 1.5..hi * 1.5).log_scale())
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_desc("message size (8 B, 64 B, 1 KiB, 64 KiB, 1 MiB)")
        .y_desc(if y_unit == "ns" { "one-way latency" } else { y_unit })
        .x_label_formatter(&|x| si(*x, "B"))
        .y_label_formatter(&|y| if y_unit == "ns" { ns(*y) } else { si(*y, y_unit) })
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (name, pts)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|x| e(&x))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

pub fn charts(out: &Path, doc: &Value) -> Result<(), String> {
    chart(
        &out.join(CHARTS[0]),
        "one-way latency p50 (ping-pong RTT/2, two pinned processes)",
        "ns",
        &series(doc, "latency", "pingpong", "p50_ns"),
    )?;
    chart(
        &out.join(CHARTS[1]),
        "one-way latency p99 (ping-pong RTT/2, two pinned processes)",
        "ns",
        &series(doc, "latency", "pingpong", "p99_ns"),
    )?;
    chart(
        &out.join(CHARTS[2]),
        "throughput, one producer and one consumer",
        "B/s",
        &series(doc, "throughput", "stream", "bytes_per_s"),
    )
}
