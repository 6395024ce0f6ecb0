//! Statistics, the per-round ratios against the floor and the peers, the table, the JSON file, and its check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cases::{Case, Mode, Outcome, key};
use crate::transport::Kind;

/// The value at quantile `q` of sorted samples (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// A per-round figure of one case: a latency percentile (ns) or a throughput (items/s).
#[derive(Clone, Copy)]
enum Metric {
    P50,
    P99,
    ItemsPerSecond,
}

fn round_value(o: &Outcome, m: Metric) -> Option<f64> {
    if o.error.is_some() {
        return None;
    }
    match m {
        Metric::P50 | Metric::P99 => {
            if o.samples.is_empty() {
                return None;
            }
            let mut s = o.samples.clone();
            s.sort_unstable();
            let q = if matches!(m, Metric::P50) { 0.5 } else { 0.99 };
            Some(quantile(&s, q) as f64)
        }
        Metric::ItemsPerSecond => (o.elapsed_ns > 0).then(|| o.messages as f64 * 1e9 / o.elapsed_ns as f64),
    }
}

/// A ratio between two cases, taken within each round.
struct RatioSpec {
    name: String,
    num: String,
    den: String,
    metric: Metric,
    /// `("<=", x)` or `(">=", x)` on the median, or none (for information).
    goal: Option<(&'static str, f64)>,
}

fn ratio_specs() -> Vec<RatioSpec> {
    let pp = |k: Kind, size| key(Mode::PingPong, k.name(), size);
    let mut v = Vec::new();
    let floor = pp(Kind::Floor, 8);
    for k in [Kind::SpscValue, Kind::SpscInPlace, Kind::Broadcast, Kind::Latest] {
        v.push(RatioSpec {
            name: format!("{} p50 / floor p50, 8 B (busy poll)", k.name()),
            num: pp(k, 8),
            den: floor.clone(),
            metric: Metric::P50,
            goal: Some(("<=", 1.15)),
        });
    }
    let sizes: &[(usize, f64)] = &[(8, 6.0), (64, 6.0), (1024, 2.5), (65536, 1.0), (1 << 20, 1.0)];
    for &(size, goal) in sizes {
        for (metric, what, goal) in [(Metric::P50, "p50", goal), (Metric::P99, "p99", 1.0)] {
            v.push(RatioSpec {
                name: format!("iceoryx2 {what} / shmfusion spsc in place {what}, {}", size_name(size)),
                num: pp(Kind::Iceoryx2, size),
                den: pp(Kind::SpscInPlace, size),
                metric,
                goal: Some((">=", goal)),
            });
        }
    }
    for k in [Kind::Pipe, Kind::UnixStream] {
        v.push(RatioSpec {
            name: format!("{} p50 / shmfusion spsc by value p50, 8 B", k.name()),
            num: pp(k, 8),
            den: pp(Kind::SpscValue, 8),
            metric: Metric::P50,
            goal: Some((">=", 100.0)),
        });
    }
    v.push(RatioSpec {
        name: "shmfusion spsc by value / rtrb (threads), 8 B items/s, one per call".into(),
        num: key(Mode::Stream, Kind::SpscValue.name(), 8),
        den: key(Mode::Stream, "rtrb (threads)", 8),
        metric: Metric::ItemsPerSecond,
        goal: Some((">=", 1.0)),
    });
    v.push(RatioSpec {
        name: "shmfusion spsc batched / rtrb chunks (threads), 8 B items/s".into(),
        num: key(Mode::Stream, "shmfusion spsc batched", 8),
        den: key(Mode::Stream, "rtrb chunks (threads)", 8),
        metric: Metric::ItemsPerSecond,
        goal: Some((">=", 1.5)),
    });
    for subject in ["shmfusion spsc batched", "rtrb chunks (threads)"] {
        v.push(RatioSpec {
            name: format!("{subject} / raw shared ring batched (memcpy), 8 B items/s"),
            num: key(Mode::Stream, subject, 8),
            den: key(Mode::Stream, "raw shared ring batched (memcpy)", 8),
            metric: Metric::ItemsPerSecond,
            goal: None,
        });
    }
    for (k, goal) in [
        (Kind::SpscWait, Some(("<=", 1.1))),
        (Kind::BroadcastWait, None),
        (Kind::LatestWait, None),
        (Kind::Pipe, None),
        (Kind::Eventfd, None),
        (Kind::Iceoryx2Event, None),
    ] {
        v.push(RatioSpec {
            name: format!("{} wake p50 / bare futex wake p50 (receiver asleep)", k.name()),
            num: key(Mode::Wake, k.name(), 8),
            den: key(Mode::Wake, Kind::Futex.name(), 8),
            metric: Metric::P50,
            goal,
        });
    }
    for size in [65536, 1 << 20] {
        v.push(RatioSpec {
            name: format!(
                "shmfusion spsc in place / raw shared ring (memcpy), {} bytes/s",
                size_name(size)
            ),
            num: key(Mode::Stream, Kind::SpscInPlace.name(), size),
            den: key(Mode::Stream, Kind::RawRing.name(), size),
            metric: Metric::ItemsPerSecond,
            goal: (size == 1 << 20).then_some((">=", 0.95)),
        });
    }
    v
}

pub fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1024 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

/// Stripped sizes of the static programs (`*.stripped`) in each target's directory, and the peak RSS of
/// `producer` run once.
pub fn footprint(static_dirs: &[(String, PathBuf)], producer: Option<&Path>) -> Value {
    let mut programs = serde_json::Map::new();
    for (triple, dir) in static_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        files.sort();
        let mut sizes = serde_json::Map::new();
        for p in files {
            if p.extension().is_some_and(|e| e == "stripped") {
                let name = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                sizes.insert(name, json!(size));
            }
        }
        programs.insert(triple.clone(), Value::Object(sizes));
    }
    let mut out = json!({ "stripped_bytes": programs });
    if let Some(p) = producer {
        match crate::sys::run_for_rss(std::process::Command::new(p).stdout(std::process::Stdio::null())) {
            Ok((status, rss)) => {
                out["producer"] = json!({
                    "program": p.file_name().map(|f| f.to_string_lossy().into_owned()),
                    "stripped_bytes": std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
                    "exit_status": status,
                                        "peak_rss_kib": rss,
                });
            }
            Err(e) => out["producer"] = json!({ "error": e.to_string() }),
        }
    }
    out
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let model = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let (a, b) = crate::sys::cpu_pair();
    json!({
        "cpu_model": model,
        "online_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_pair": [a, b],
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "load_average": read("/proc/loadavg").split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

pub fn build(
    plan: &[Case],
    results: &[Vec<Outcome>],
    footprint: &Value,
    rounds: usize,
    scale: f64,
    took: Duration,
) -> Value {
    let mut latency = Vec::new();
    let mut throughput = Vec::new();
    let mut errors = Vec::new();
    for (case, runs) in plan.iter().zip(results) {
        for (r, o) in runs.iter().enumerate() {
            if let Some(e) = &o.error {
                errors.push(json!({ "case": case.key(), "round": r, "error": e }));
            }
        }
        let ok: Vec<&Outcome> = runs.iter().filter(|o| o.error.is_none()).collect();
        let cpu: u64 = ok.iter().map(|o| o.cpu_ns).sum();
        let msgs: u64 = ok.iter().map(|o| o.messages).sum();
        let cpu_per = if msgs > 0 { cpu as f64 / msgs as f64 } else { f64::NAN };
        let base = json!({
            "case": case.key(),
            "transport": case.subject.name(),
            "mode": case.mode.name(),
            "size": case.size,
            "iterations": case.iters,
            "rounds_ok": ok.len(),
        });
        let mut entry = base;
        match case.mode {
            Mode::PingPong | Mode::Wake => {
                let mut all: Vec<u64> = ok.iter().flat_map(|o| o.samples.iter().copied()).collect();
                all.sort_unstable();
                let per_round: Vec<f64> = ok.iter().filter_map(|o| round_value(o, Metric::P50)).collect();
                if !all.is_empty() {
                    entry["p50_ns"] = json!(quantile(&all, 0.5));
                    entry["p99_ns"] = json!(quantile(&all, 0.99));
                    entry["p999_ns"] = json!(quantile(&all, 0.999));
                    entry["max_ns"] = json!(all[all.len() - 1]);
                    entry["cpu_ns_per_message"] = json!(cpu_per);
                }
                entry["round_p50_ns"] = json!(per_round);
                latency.push(entry);
            }
            Mode::Stream => {
                let per_round: Vec<f64> = ok
                    .iter()
                    .filter_map(|o| round_value(o, Metric::ItemsPerSecond))
                    .collect();
                if !per_round.is_empty() {
                    let m = median(&per_round);
                    entry["items_per_s"] = json!(m);
                    entry["bytes_per_s"] = json!(m * case.size as f64);
                    entry["cpu_ns_per_item"] = json!(cpu_per);
                }
                entry["round_items_per_s"] = json!(per_round);
                throughput.push(entry);
            }
        }
    }
    let mut ratios = Vec::new();
    for spec in ratio_specs() {
        let find = |k: &str| plan.iter().position(|c| c.key() == k);
        let (Some(n), Some(d)) = (find(&spec.num), find(&spec.den)) else {
            continue; // a peer left out of this build (iceoryx2 without its feature)
        };
        let per_round: Vec<f64> = results[n]
            .iter()
            .zip(&results[d])
            .filter_map(|(a, b)| Some(round_value(a, spec.metric)? / round_value(b, spec.metric)?))
            .collect();
        let mut r = json!({ "name": spec.name, "numerator": spec.num, "denominator": spec.den, "rounds": per_round });
        if !per_round.is_empty() {
            let m = median(&per_round);
            r["median"] = json!(m);
            r["min"] = json!(per_round.iter().copied().fold(f64::INFINITY, f64::min));
            r["max"] = json!(per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max));
            if let Some((op, g)) = spec.goal {
                r["goal"] = json!(format!("{op} {g}"));
                r["met"] = json!(if op == "<=" { m <= g } else { m >= g });
            }
        }
        ratios.push(r);
    }
    json!({
        "machine": machine(),
        "rounds": rounds,
        "scale": scale,
        "seconds": took.as_secs_f64(),
        "iceoryx2": cfg!(feature = "iceoryx2"),
        "latency": latency,
        "throughput": throughput,
        "ratios": ratios,
        "footprint": footprint,
        "errors": errors,
    })
}

fn ns(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 1e6 => format!("{:.2} ms", x / 1e6),
        Some(x) if x >= 1e4 => format!("{:.1} µs", x / 1e3),
        Some(x) => format!("{x:.0} ns"),
        None => "-".into(),
    }
}

fn si(v: &Value, unit: &str) -> String {
    match v.as_f64() {
        Some(x) if x >= 1e9 => format!("{:.2} G{unit}", x / 1e9),
        Some(x) if x >= 1e6 => format!("{:.2} M{unit}", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1} k{unit}", x / 1e3),
        Some(x) => format!("{x:.0} {unit}"),
        None => "-".into(),
    }
}

pub fn print(doc: &Value) {
    let m = &doc["machine"];
    println!(
        "machine: {} ({} CPUs online), sides pinned to CPUs {}, kernel {}, load average {}",
        m["cpu_model"].as_str().unwrap_or("?"),
        m["online_cpus"],
        m["cpu_pair"],
        m["kernel"].as_str().unwrap_or("?"),
        m["load_average"].as_str().unwrap_or("?")
    );
    println!("{} rounds, scale {}\n", doc["rounds"], doc["scale"]);
    println!(
        "{:<9} {:<30} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "latency", "transport", "size", "p50", "p99", "p99.9", "max", "cpu/msg"
    );
    for e in doc["latency"].as_array().into_iter().flatten() {
        println!(
            "{:<9} {:<30} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10}",
            e["mode"].as_str().unwrap_or(""),
            e["transport"].as_str().unwrap_or(""),
            size_name(e["size"].as_u64().unwrap_or(0) as usize),
            ns(&e["p50_ns"]),
            ns(&e["p99_ns"]),
            ns(&e["p999_ns"]),
            ns(&e["max_ns"]),
            ns(&e["cpu_ns_per_message"]),
        );
    }
    println!(
        "\n{:<30} {:>7} {:>13} {:>12} {:>10}",
        "throughput", "size", "items/s", "bytes/s", "cpu/item"
    );
    for e in doc["throughput"].as_array().into_iter().flatten() {
        println!(
            "{:<30} {:>7} {:>13} {:>12} {:>10}",
            e["transport"].as_str().unwrap_or(""),
            size_name(e["size"].as_u64().unwrap_or(0) as usize),
            si(&e["items_per_s"], "/s"),
            si(&e["bytes_per_s"], "B/s"),
            ns(&e["cpu_ns_per_item"]),
        );
    }
    println!(
        "\n{:<80} {:>8} {:>17} {:>8} {:>5}",
        "ratio (median of per-round ratios)", "median", "spread", "goal", "met"
    );
    for r in doc["ratios"].as_array().into_iter().flatten() {
        let f = |v: &Value| v.as_f64().map(|x| format!("{x:.2}")).unwrap_or("-".into());
        println!(
            "{:<80} {:>8} {:>17} {:>8} {:>5}",
            r["name"].as_str().unwrap_or(""),
            f(&r["median"]),
            format!("{}..{}", f(&r["min"]), f(&r["max"])),
            r["goal"].as_str().unwrap_or(""),
            match r["met"].as_bool() {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        );
    }
    let fp = &doc["footprint"];
    for (triple, p) in fp["stripped_bytes"].as_object().into_iter().flatten() {
        let list: Vec<String> = p
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {v} B"))
            .collect();
        println!("static libc-free programs for {triple}, stripped: {}", list.join(", "));
    }
    if !fp["producer"].is_null() {
        println!("producer: {}", fp["producer"]);
    }
    if let Some(errs) = doc["errors"].as_array().filter(|e| !e.is_empty()) {
        println!("\n{} failed runs:", errs.len());
        for e in errs {
            println!("  {e}");
        }
    }
}

pub const JSON: &str = "bench.json";

pub fn write(out: &Path, doc: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join(JSON), serde_json::to_string_pretty(doc)? + "\n")?;
    crate::plot::charts(out, doc).map_err(std::io::Error::other)
}

/// Checks what was written: the JSON parses, every planned case has finite positive numbers, every ratio has a
/// median, and each chart is a complete SVG document.
pub fn check(out: &Path, plan: &[Case]) -> Result<String, String> {
    let text = std::fs::read_to_string(out.join(JSON)).map_err(|e| format!("{JSON}: {e}"))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{JSON} does not parse: {e}"))?;
    let mut problems = Vec::new();
    let positive = |v: &Value| v.as_f64().is_some_and(|x| x.is_finite() && x > 0.0);
    for case in plan {
        let k = case.key();
        let (list, fields): (&str, &[&str]) = match case.mode {
            Mode::Stream => ("throughput", &["items_per_s", "bytes_per_s", "cpu_ns_per_item"]),
            _ => (
                "latency",
                &["p50_ns", "p99_ns", "p999_ns", "max_ns", "cpu_ns_per_message"],
            ),
        };
        let entry = doc[list]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["case"] == k.as_str()));
        match entry {
            None => problems.push(format!("{k}: missing")),
            Some(e) => {
                for f in fields {
                    if !positive(&e[*f]) {
                        problems.push(format!("{k}: {f} is {}", e[*f]));
                    }
                }
            }
        }
    }
    let ratios = doc["ratios"].as_array().map(Vec::len).unwrap_or(0);
    for r in doc["ratios"].as_array().into_iter().flatten() {
        if !positive(&r["median"]) {
            problems.push(format!("ratio {}: no median", r["name"]));
        }
    }
    let charts = crate::plot::CHARTS;
    for name in charts {
        match std::fs::read_to_string(out.join(name)) {
            Ok(s) if s.contains("<svg") && s.trim_end().ends_with("</svg>") => {}
            Ok(_) => problems.push(format!("{name}: not a complete SVG document")),
            Err(e) => problems.push(format!("{name}: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(format!(
            "{} cases with numbers, {ratios} ratios, {} SVG charts",
            plan.len(),
            charts.len()
        ))
    } else {
        Err(problems.join("; "))
    }
}
