//! Prints the Performance table of issue 5 from criterion's estimates:
//! medians, engine ÷ naive ratios against the targets, the scaling curves
//! and the snapshot throughput.
//!
//! ```text
//! cargo run -p roomstate-benches --release --bin ratios [CRITERION_DIR]
//! ```
//!
//! `CRITERION_DIR` defaults to `$CARGO_TARGET_DIR/criterion`, else
//! `target/criterion`. Each benchmark is found by the `full_id` in its
//! `new/benchmark.json`; its median is `median.point_estimate` of
//! `new/estimates.json`, in nanoseconds.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A benchmark's median (ns) and throughput in bytes per iteration, if any.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    median_ns: f64,
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
                if let (Some(id), Some(median_ns)) = (id, median) {
                    out.insert(id, Estimate { median_ns, bytes });
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

fn main() {
    let dir = std::env::args_os().nth(1).map_or_else(
        || {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target.join("criterion")
        },
        PathBuf::from,
    );
    let mut est = BTreeMap::new();
    collect(&dir, &mut est);
    if est.is_empty() {
        eprintln!("no criterion estimates under {}", dir.display());
        std::process::exit(1);
    }
    let median = |id: &str| est.get(id).map(|e| e.median_ns);

    println!("| benchmark | engine | naive | engine ÷ naive | target | met |");
    println!("|---|---|---|---|---|---|");
    let pairs = [
        ("write", "hot", 0.8),
        ("write", "cold", 0.5),
        ("exit", "keys10", f64::NAN),
        ("exit", "keys100", 0.1),
        ("read_all", "20", 0.1),
        ("queue", "offer_poll", 0.1),
        ("mixed", "10k", 0.5),
    ];
    for (group, case, target) in pairs {
        let e = median(&format!("{group}/engine/{case}"));
        let n = median(&format!("{group}/naive/{case}"));
        let show = |m: Option<f64>| m.map_or_else(|| "—".to_string(), human);
        let ratio = e.zip(n).map(|(e, n)| e / n);
        let (target_s, met) = if target.is_nan() {
            ("—".to_string(), "".to_string())
        } else {
            let met = ratio.map_or("?", |r| if r <= target { "yes" } else { "no" });
            (format!("≤ {target}"), met.to_string())
        };
        println!(
            "| {group} {case} | {} | {} | {} | {target_s} | {met} |",
            show(e),
            show(n),
            ratio.map_or_else(|| "—".to_string(), |r| format!("{r:.3}")),
        );
    }
    if let (Some(k100), Some(k10)) = (median("exit/engine/keys100"), median("exit/engine/keys10")) {
        let r = k100 / k10;
        println!(
            "| exit engine keys100 ÷ keys10 | {} | {} | {r:.3} | ≤ 1.5 | {} |",
            human(k100),
            human(k10),
            if r <= 1.5 { "yes" } else { "no" }
        );
    }
    if let Some(e) = est.get("snapshot/engine/restore") {
        if let Some(b) = e.bytes {
            let mbs = b / e.median_ns * 1e3;
            println!(
                "| snapshot restore | {} ({:.1} MB) | — | {mbs:.0} MB/s | ≥ 200 MB/s | {} |",
                human(e.median_ns),
                b / 1e6,
                if mbs >= 200.0 { "yes" } else { "no" }
            );
        }
    }
    if let Some(e) = est.get("snapshot/engine/encode") {
        if let Some(b) = e.bytes {
            println!(
                "| snapshot encode | {} | — | {:.0} MB/s | — | |",
                human(e.median_ns),
                b / e.median_ns * 1e3
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
}
