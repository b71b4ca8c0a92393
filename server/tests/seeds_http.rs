//! Every seed example request of `dialects/tests/seeds/cases.rs`, sent as
//! a real HTTP request with `curl` to a `roomstate-server` of the vendor
//! (started on a free loopback port), signed as the vendor requires, and
//! checked field by field by the very same assertions. Control lines go
//! through the management API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

pub use support::HttpReplayer as Replayer;

/// The server stamps its own clock; a line's `now` is not sent.
pub const HONOURS_NOW: bool = false;

/// One replay line over HTTP.
pub fn replay_line(r: &mut Replayer, line: &str) -> String {
    r.line(line)
}

/// The same request `n` times over one keep-alive connection.
pub fn burst(r: &mut Replayer, line: &serde_json::Value, n: usize) -> Vec<String> {
    r.burst(line, n)
}

#[path = "../../dialects/tests/seeds/cases.rs"]
mod cases;
