//! Deterministic simulation of engine against model.
//!
//! `simulate [--seeds N] [--first S] [--commands C] [--seed S]`: runs seeds
//! `S..S+N` (or the one `--seed`), `C` commands each, every seed twice.
//! Prints one summary line; on a finding, the seed and the replay command.

use std::time::Instant;

use roomstate_tests::sim::run_twice;

fn main() {
    let mut seeds = 200u64;
    let mut first = 0u64;
    let mut commands = 10_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (flag.as_str(), value) {
            ("--seeds", Some(v)) => seeds = v,
            ("--first", Some(v)) => first = v,
            ("--commands", Some(v)) => commands = v as usize,
            ("--seed", Some(v)) => {
                first = v;
                seeds = 1;
            }
            _ => {
                eprintln!("usage: simulate [--seeds N] [--first S] [--commands C] [--seed S]");
                std::process::exit(2);
            }
        }
    }
    let started = Instant::now();
    let (mut events, mut rejected) = (0u64, 0u64);
    let (mut caught_up, mut full_reads, mut checks) = (0u64, 0u64, 0u64);
    let (mut peak_attributes, mut peak_members) = (0u64, 0u64);
    for seed in first..first + seeds {
        let d = run_twice(seed, commands);
        events += d.events;
        rejected += d.rejected;
        caught_up += d.follow.caught_up;
        full_reads += d.follow.full_reads;
        checks += d.follow.checks;
        peak_attributes = peak_attributes.max(d.peak_attributes);
        peak_members = peak_members.max(d.peak_members);
    }
    println!(
        "simulate: {seeds} seeds x {commands} commands, each run twice: {} commands, {events} events, {rejected} rejections per pass; identical hashes; {:.1} s",
        seeds * commands as u64 * 2,
        started.elapsed().as_secs_f64()
    );
    println!(
        "reconnecting clients: {caught_up} catch-ups from history, {full_reads} full reads, {checks} states equal to the engine's"
    );
    println!("largest rooms: {peak_attributes} attributes, {peak_members} members");
    // Rooms that never outgrow the small layouts (users found by a scan
    // up to 8 records) leave the indexed paths unchecked.
    if seeds * commands as u64 >= 100_000 && (peak_attributes <= 32 || peak_members <= 16) {
        eprintln!("no room outgrew the small layouts");
        std::process::exit(1);
    }
    // A follower that never catches up from history, or is never compared,
    // proves nothing.
    if seeds * commands as u64 >= 100_000 && (caught_up == 0 || full_reads == 0 || checks == 0) {
        eprintln!("the reconnecting clients were not exercised");
        std::process::exit(1);
    }
}
