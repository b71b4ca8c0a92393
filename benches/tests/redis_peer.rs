//! `redis_peer` on a machine without `redis-server`: issue 9 asks for a
//! clear line saying so and exit status 0, so that a checkout without
//! Redis still runs every other benchmark. (With Redis, `.ci/run` runs the
//! whole comparison, which fails if Redis and the engine disagree.)

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn without_redis_server_on_path_it_says_so_and_succeeds() {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_redis_peer"))
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert_eq!(
        stdout,
        "redis_peer: redis-server is not on PATH; skipped (install it: apt-get install -y redis-server)\n"
    );
}
