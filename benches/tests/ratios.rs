//! The `ratios` tool, which prints the README's performance tables, run on
//! a criterion directory and a `name: value` file made up here, with
//! figures chosen to land on each target's boundary: its medians, ratios,
//! spreads, throughputs and verdicts are checked line by line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;
use std::process::Command;

/// One benchmark's `new/` files: its median, throughput in bytes, and
/// per-iteration sample times.
fn bench(root: &Path, id: &str, median: f64, bytes: Option<u64>, times: &[f64]) {
    let dir = root.join(id).join("new");
    fs::create_dir_all(&dir).unwrap();
    let throughput = bytes.map_or("null".to_string(), |b| format!("{{\"Bytes\":{b}}}"));
    let benchmark = format!("{{\"full_id\":\"{id}\",\"throughput\":{throughput}}}");
    fs::write(dir.join("benchmark.json"), benchmark).unwrap();
    let estimates = format!("{{\"median\":{{\"point_estimate\":{median}}}}}");
    fs::write(dir.join("estimates.json"), estimates).unwrap();
    if !times.is_empty() {
        // Two iterations per sample: the tool divides.
        let iters = vec!["2.0"; times.len()].join(",");
        let times: Vec<String> = times.iter().map(|t| format!("{}", t * 2.0)).collect();
        let sample = format!("{{\"iters\":[{iters}],\"times\":[{}]}}", times.join(","));
        fs::write(dir.join("sample.json"), sample).unwrap();
    }
}

fn ratios(args: &[&Path]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ratios"))
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn ratios_reports_each_figure_against_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("criterion");
    // Samples 100..500 ns: IQR (400 - 200) ÷ median 400 is 50%.
    bench(
        &root,
        "write/engine/hot",
        400.0,
        None,
        &[500.0, 100.0, 300.0, 200.0, 400.0],
    );
    bench(&root, "write/naive/hot", 500.0, None, &[]);
    // A criterion "base" beside "new" is last run's: not read.
    let base = root.join("write/engine/hot/base");
    fs::create_dir_all(&base).unwrap();
    fs::write(
        base.join("benchmark.json"),
        r#"{"full_id":"write/engine/hot"}"#,
    )
    .unwrap();
    fs::write(
        base.join("estimates.json"),
        r#"{"median":{"point_estimate":1.0}}"#,
    )
    .unwrap();
    bench(&root, "exit/engine/keys100", 1_500.0, None, &[]);
    bench(&root, "exit/naive/keys100", 14_999.0, None, &[]);
    bench(&root, "exit/engine/keys10", 1_000.0, None, &[]);
    bench(&root, "mixed/engine/10k", 2_500_000.0, None, &[]);
    // Batched: 600 ns against the baseline's 1 µs and the engine's 1.2 µs
    // one by one.
    bench(&root, "write/engine_batch/cold_stream", 600.0, None, &[]);
    bench(&root, "write/naive/cold_stream", 1_000.0, None, &[]);
    bench(&root, "write/engine/cold_stream", 1_200.0, None, &[]);
    bench(
        &root,
        "snapshot/engine/restore",
        1e9,
        Some(300_000_000),
        &[],
    );
    bench(&root, "scaling/rooms/engine/write/10k", 1_000.0, None, &[]);
    bench(&root, "scaling/rooms/engine/write/500k", 3_000.0, None, &[]);
    bench(&root, "scaling/rooms/naive/write/10k", 4_000.0, None, &[]);
    bench(&root, "scaling/engine/exit/10", 1_000.0, None, &[]);
    bench(&root, "scaling/engine/exit/100", 1_100.0, None, &[]);
    bench(&root, "scaling/engine/exit/1000", 1_250.0, None, &[]);
    let lines = dir.path().join("lines.txt");
    fs::write(
        &lines,
        "heap_bytes_per_attr: 128\nredis_heap_bytes_per_attr: 256\n\
         redis_cpu_ratio: 19.5\nnot a figure\nrestore_peak_over_input: x\n",
    )
    .unwrap();

    let (ok, out) = ratios(&[&root, Path::new("--lines"), &lines]);
    assert!(ok, "{out}");
    let has = |line: &str| assert!(out.lines().any(|l| l == line), "no {line:?} in\n{out}");
    has("| write hot | 400.0 ns | 500.0 ns | 0.800 | ≤ 0.8 | yes | 50% / — |");
    has("| exit keys100 | 1.500 µs | 14.999 µs | 0.100 | ≤ 0.1 | no | — / — |");
    has("| mixed 10k | 2.500 ms | — | — | ≤ 0.5 | ? | — / — |");
    has("| write cold_stream | 1.200 µs | 1.000 µs | 1.200 | ≤ 0.6 | no | — / — |");
    has("| write cold_stream, batched (÷ one by one: 0.50) | 600.0 ns | 1.000 µs | 0.600 | ≤ 0.6 | yes | — / — |");
    has("| exit cold_stream, batched (÷ one by one: —) | — | — | — | ≤ 0.3 | ? | — / — |");
    has("| exit engine keys100 ÷ keys10 | 1.500 µs | 1.000 µs | 1.500 | ≤ 1.5 | yes | |");
    has("| snapshot restore | 1.000 s (300.0 MB) | — | 300 MB/s | ≥ 300 MB/s | yes | — |");
    has("| engine exit | 1.000 µs | 1.100 µs | 1.250 µs | 1.25 |");
    has("| engine write | — | — | — | — |");
    has("| engine write | 1.000 µs (IQR —) | — | 3.000 µs (IQR —) | 3.00 |");
    has("| engine ÷ naive write | 0.250 | — | — | |");
    has("| `heap_bytes_per_attr` | 128 | ≤ 128 | yes |");
    has("| `redis_cpu_ratio` | 19.5 | ≥ 20 | no |");
    has("| `restore_peak_over_input` | — | ≤ 2 | ? |");
    has("| engine ÷ Redis heap per attribute | 0.500 | ≤ 0.5 | yes |");

    // No estimates at all is an error, not an empty table.
    let empty = tempfile::tempdir().unwrap();
    let (ok, out) = ratios(&[empty.path()]);
    assert!(!ok && out.is_empty(), "{out}");
}
