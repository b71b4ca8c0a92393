//! Every request example of the vendor documents in `shared/seeds/`,
//! replayed in process, with the documented response checked field by
//! field. The checks live in `seeds/cases.rs`; the server's
//! `seeds_http` test runs the same ones over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub use roomstate_dialects::{replay_line, Replayer};

/// Replay lines set the clock, so answers carry the line's `now`.
pub const HONOURS_NOW: bool = true;

/// Sends `line` `n` times in a row; the output lines.
pub fn burst(r: &mut Replayer, line: &serde_json::Value, n: usize) -> Vec<String> {
    let text = line.to_string();
    (0..n).map(|_| replay_line(r, &text)).collect()
}

#[path = "seeds/cases.rs"]
mod cases;
