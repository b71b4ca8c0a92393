//! Prints the performance tables of issues 5 and 9 from criterion's
//! estimates: medians, engine ÷ naive ratios against the targets, the
//! scaling curves (keys per room, rooms) and the snapshot throughput; and,
//! given the saved output of `alloc_report` and `redis_peer`, their
//! figures against the targets.
//!
//! ```text
//! cargo run -p roomstate-benches --release --bin ratios [CRITERION_DIR] [--lines FILE]...
//! ```
//!
//! `CRITERION_DIR` defaults to `$CARGO_TARGET_DIR/criterion`, else
//! `target/criterion`. Each benchmark is found by the `full_id` in its
//! `new/benchmark.json`; its median is `median.point_estimate` of
//! `new/estimates.json`, in nanoseconds. Each `--lines FILE` holds
//! `name: value` lines (the output of `alloc_report` or `redis_peer`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A benchmark's median (ns) and throughput in bytes per iteration, if any.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    median_ns: f64,
    /// Spread of the samples' per-iteration times: interquartile range ÷
    /// median.
    spread: Option<f64>,
    bytes: Option<f64>,
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// Every `<dir>/**/new/` with both JSON files, by full id.
fn collect(dir: &Path, out: &mut BTreeMap<String, Estimate>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            let bench = read_json(&path.join("benchmark.json"));
            let est = read_json(&path.join("estimates.json"));
            if let (Some(bench), Some(est)) = (bench, est) {
                let id = bench["full_id"].as_str().map(str::to_string);
                let median = est["median"]["point_estimate"].as_f64();
                let bytes = bench["throughput"]["Bytes"]
                    .as_f64()
                    .or_else(|| bench["throughput"]["BytesDecimal"].as_f64());
                let spread = read_json(&path.join("sample.json")).and_then(|s| {
                    let iters = s["iters"].as_array()?;
                    let times = s["times"].as_array()?;
                    let per: Vec<f64> = iters
                        .iter()
                        .zip(times)
                        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
                        .collect();
                    let mut per = per;
                    per.sort_by(f64::total_cmp);
                    let q = |f: f64| {
                        per.get(((per.len() - 1) as f64 * f).round() as usize)
                            .copied()
                    };
                    Some((q(0.75)? - q(0.25)?) / median?)
                });
                if let (Some(id), Some(median_ns)) = (id, median) {
                    out.insert(
                        id,
                        Estimate {
                            median_ns,
                            spread,
                            bytes,
                        },
                    );
                }
            }
        } else {
            collect(&path, out);
        }
    }
}

fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.3} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Every `name: value` line of `path` whose value is a number.
fn read_lines(path: &Path, out: &mut BTreeMap<String, f64>) {
    let Ok(text) = fs::read_to_string(path) else {
        eprintln!("cannot read {}", path.display());
        std::process::exit(1);
    };
    for line in text.lines() {
        if let Some((name, value)) = line.split_once(": ") {
            if let Ok(v) = value.trim().parse::<f64>() {
                out.insert(name.trim().to_string(), v);
            }
        }
    }
}

/// How a figure is judged: at most or at least the target.
#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    None,
}

impl Goal {
    fn cells(self, value: Option<f64>) -> (String, &'static str) {
        let verdict = |ok: bool| if ok { "yes" } else { "no" };
        match (self, value) {
            (Goal::AtMost(t), Some(v)) => (format!("≤ {t}"), verdict(v <= t)),
            (Goal::AtLeast(t), Some(v)) => (format!("≥ {t}"), verdict(v >= t)),
            (Goal::AtMost(t), None) => (format!("≤ {t}"), "?"),
            (Goal::AtLeast(t), None) => (format!("≥ {t}"), "?"),
            (Goal::None, _) => ("—".to_string(), ""),
        }
    }
}

fn main() {
    let mut dir = None;
    let mut lines = BTreeMap::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--lines" {
            match args.next() {
                Some(file) => read_lines(Path::new(&file), &mut lines),
                None => {
                    eprintln!("--lines needs a file");
                    std::process::exit(2);
                }
            }
        } else {
            dir = Some(PathBuf::from(arg));
        }
    }
    let dir = dir.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("criterion")
    });
    let mut est = BTreeMap::new();
    collect(&dir, &mut est);
    if est.is_empty() {
        eprintln!("no criterion estimates under {}", dir.display());
        std::process::exit(1);
    }
    let median = |id: &str| est.get(id).map(|e| e.median_ns);

    // Spread: interquartile range of the samples ÷ median, engine / naive.
    let spread = |id: &str| {
        est.get(id)
            .and_then(|e| e.spread)
            .map_or_else(|| "—".to_string(), |s| format!("{:.0}%", s * 100.0))
    };
    println!(
        "| benchmark | engine | naive | engine ÷ naive | target | met | IQR ÷ median, engine / naive |"
    );
    println!("|---|---|---|---|---|---|---|");
    let pairs = [
        ("write", "hot", Goal::AtMost(0.8)),
        ("write", "cold", Goal::AtMost(0.5)),
        ("write", "cold_stream", Goal::AtMost(0.6)),
        ("exit", "keys10", Goal::None),
        ("exit", "keys100", Goal::AtMost(0.1)),
        ("exit", "cold_stream", Goal::AtMost(0.3)),
        ("read_all", "20", Goal::AtMost(0.8)),
        // Issue 9 sets no target for cold reads: the hot read's goal.
        ("read_all", "cold_stream", Goal::AtMost(0.8)),
        ("queue", "offer_poll", Goal::AtMost(0.1)),
        ("mixed", "10k", Goal::AtMost(0.5)),
    ];
    for (group, case, goal) in pairs {
        let e = median(&format!("{group}/engine/{case}"));
        let n = median(&format!("{group}/naive/{case}"));
        let show = |m: Option<f64>| m.map_or_else(|| "—".to_string(), human);
        let ratio = e.zip(n).map(|(e, n)| e / n);
        let (target_s, met) = goal.cells(ratio);
        let spreads = format!(
            "{} / {}",
            spread(&format!("{group}/engine/{case}")),
            spread(&format!("{group}/naive/{case}"))
        );
        println!(
            "| {group} {case} | {} | {} | {} | {target_s} | {met} | {spreads} |",
            show(e),
            show(n),
            ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.3}")),
        );
    }
    // The engine through `handle_batch` (`engine_batch`), against the
    // same naive cases and targets, and against the engine one by one.
    for (group, case, goal) in [
        ("write", "hot", Goal::AtMost(0.8)),
        ("write", "cold_stream", Goal::AtMost(0.6)),
        ("exit", "cold_stream", Goal::AtMost(0.3)),
    ] {
        let b = median(&format!("{group}/engine_batch/{case}"));
        let n = median(&format!("{group}/naive/{case}"));
        let e = median(&format!("{group}/engine/{case}"));
        let ratio = b.zip(n).map(|(b, n)| b / n);
        let (target_s, met) = goal.cells(ratio);
        let over_engine = b
            .zip(e)
            .map_or_else(|| "—".to_string(), |(b, e)| format!("{:.2}", b / e));
        println!(
            "| {group} {case}, batched (÷ one by one: {over_engine}) | {} | {} | {} | {target_s} | {met} | {} / {} |",
            b.map_or_else(|| "—".to_string(), human),
            n.map_or_else(|| "—".to_string(), human),
            ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.3}")),
            spread(&format!("{group}/engine_batch/{case}")),
            spread(&format!("{group}/naive/{case}"))
        );
    }
    if let (Some(k100), Some(k10)) = (median("exit/engine/keys100"), median("exit/engine/keys10")) {
        let r = k100 / k10;
        println!(
            "| exit engine keys100 ÷ keys10 | {} | {} | {r:.3} | ≤ 1.5 | {} | |",
            human(k100),
            human(k10),
            if r <= 1.5 { "yes" } else { "no" }
        );
    }
    if let Some(e) = est.get("snapshot/engine/restore") {
        if let Some(b) = e.bytes {
            let mbs = b / e.median_ns * 1e3;
            println!(
                "| snapshot restore | {} ({:.1} MB) | — | {mbs:.0} MB/s | ≥ 300 MB/s | {} | {} |",
                human(e.median_ns),
                b / 1e6,
                if mbs >= 300.0 { "yes" } else { "no" },
                spread("snapshot/engine/restore")
            );
        }
    }
    if let Some(e) = est.get("snapshot/engine/encode") {
        if let Some(b) = e.bytes {
            println!(
                "| snapshot encode | {} | — | {:.0} MB/s | — | | {} |",
                human(e.median_ns),
                b / e.median_ns * 1e3,
                spread("snapshot/engine/encode")
            );
        }
    }

    println!();
    println!("| scaling (keys per room) | 10 | 100 | 1000 | 1000 ÷ 10 |");
    println!("|---|---|---|---|---|");
    for what in ["exit", "write"] {
        let m: Vec<Option<f64>> = [10, 100, 1000]
            .iter()
            .map(|k| median(&format!("scaling/engine/{what}/{k}")))
            .collect();
        let cell = |x: Option<f64>| x.map_or_else(|| "—".to_string(), human);
        let flat = match (m[0], m[2]) {
            (Some(a), Some(c)) => format!("{:.2}", c / a),
            _ => "—".to_string(),
        };
        println!(
            "| engine {what} | {} | {} | {} | {flat} |",
            cell(m[0]),
            cell(m[1]),
            cell(m[2])
        );
    }

    println!();
    println!("| scaling (rooms, cold streams) | 10k | 100k | 500k | 500k ÷ 10k |");
    println!("|---|---|---|---|---|");
    for what in ["write", "exit"] {
        let ids = |side: &str| -> Vec<String> {
            ["10k", "100k", "500k"]
                .iter()
                .map(|r| format!("scaling/rooms/{side}/{what}/{r}"))
                .collect()
        };
        let m =
            |side: &str| -> Vec<Option<f64>> { ids(side).iter().map(|id| median(id)).collect() };
        let (e, b, n) = (m("engine"), m("engine_batch"), m("naive"));
        let growth = |v: &[Option<f64>]| match (v[0], v[2]) {
            (Some(a), Some(c)) => format!("{:.2}", c / a),
            _ => "—".to_string(),
        };
        for (side, v) in [("engine", &e), ("engine_batch", &b), ("naive", &n)] {
            let id = ids(side);
            let cell = |i: usize| {
                v[i].map_or_else(
                    || "—".to_string(),
                    |x| format!("{} (IQR {})", human(x), spread(&id[i])),
                )
            };
            println!(
                "| {side} {what} | {} | {} | {} | {} |",
                cell(0),
                cell(1),
                cell(2),
                growth(v)
            );
        }
        for (side, v) in [("engine", &e), ("engine_batch", &b)] {
            let ratio = |i: usize| {
                v[i].zip(n[i])
                    .map_or_else(|| "—".to_string(), |(a, b)| format!("{:.3}", a / b))
            };
            println!(
                "| {side} ÷ naive {what} | {} | {} | {} | |",
                ratio(0),
                ratio(1),
                ratio(2)
            );
        }
    }

    if lines.is_empty() {
        return;
    }
    println!();
    println!("| figure | value | target | met |");
    println!("|---|---|---|---|");
    let figures = [
        ("heap_bytes_per_attr", Goal::AtMost(128.0)),
        ("naive_heap_bytes_per_attr", Goal::None),
        ("redis_heap_bytes_per_attr", Goal::None),
        ("overwrite_allocs_per_cmd", Goal::AtMost(0.0)),
        ("exit_allocs_per_cmd", Goal::AtMost(0.0)),
        ("read_all_allocs", Goal::AtMost(0.0)),
        ("room_bytes_8_members", Goal::AtMost(600.0)),
        ("naive_room_bytes_8_members", Goal::None),
        ("restore_peak_over_input", Goal::AtMost(2.0)),
        ("redis_server_cpu_us_per_cmd", Goal::None),
        ("engine_cpu_us_per_cmd", Goal::None),
        ("redis_cpu_ratio", Goal::AtLeast(20.0)),
        ("redis_server_cpu_us_per_cmd_with_history", Goal::None),
        ("engine_cpu_us_per_cmd_with_history", Goal::None),
        ("redis_cpu_ratio_with_history", Goal::None),
    ];
    for (name, goal) in figures {
        let v = lines.get(name).copied();
        let (target, met) = goal.cells(v);
        let shown = v.map_or_else(|| "—".to_string(), |v| format!("{v}"));
        println!("| `{name}` | {shown} | {target} | {met} |");
    }
    if let (Some(e), Some(r)) = (
        lines.get("heap_bytes_per_attr"),
        lines.get("redis_heap_bytes_per_attr"),
    ) {
        let (target, met) = Goal::AtMost(0.5).cells(Some(e / r));
        println!(
            "| engine ÷ Redis heap per attribute | {:.3} | {target} | {met} |",
            e / r
        );
    }
}
