//! Starting and stopping the binary: SIGTERM commits, snapshots and exits
//! 0, and a restart has everything; `--fsync never` says so; missing
//! secrets refuse to start; /healthz and /metrics answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::process::Command;

use support::{admin, create_room, curl, easemob_get_all, easemob_set, join, Opts, Server};

fn put(s: &Server, key: &str) {
    easemob_set(s, "r", "u", key, "v", "NO_DELETE");
}

fn keys(s: &Server) -> serde_json::Value {
    easemob_get_all(s, "r")
}

#[test]
fn sigterm_commits_snapshots_and_exits_0_and_a_restart_has_everything() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        shards: 2,
        fsync: "always",
        data: Some(dir.path().join("data")),
        ..Opts::default()
    };
    let mut s = Server::start_with("easemob", &opts);
    create_room(&s, "r", "h");
    join(&s, "r", "u");
    for i in 0..20 {
        put(&s, &format!("k{i}"));
    }
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}\n{}", s.stderr());
    // Every shard wrote a snapshot on the way out.
    for shard in ["shard-0", "shard-1"] {
        let snaps: Vec<_> = std::fs::read_dir(dir.path().join("data").join(shard))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
            .collect();
        assert_eq!(snaps.len(), 1, "{shard}");
    }
    let s = Server::start_with("easemob", &opts);
    let got = keys(&s);
    assert_eq!(got.as_object().unwrap().len(), 20, "{got}");
    // The member is still there: a write needs membership.
    put(&s, "after");
    // And the members gauge counts the restored room's present member
    // (u; the creator never connected), not zero.
    let m = curl(&[s.url("/metrics")]);
    assert!(m.body.contains("roomstate_members 1\n"), "{}", m.body);
}

#[test]
fn fsync_never_says_so_at_start() {
    let s = Server::start("easemob");
    // The helper starts with --fsync never; the warning is logged at once.
    let mut log = String::new();
    for _ in 0..50 {
        log = s.stderr();
        if log.contains("fsync never") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(log.contains("fsync never"), "{log}");
}

#[test]
fn missing_secrets_or_secret_flags_refuse_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_roomstate-server"))
        .args(["--vendor", "easemob", "--listen", "127.0.0.1:0"])
        .env_remove("ROOMSTATE_APP_TOKEN")
        .env("ROOMSTATE_ADMIN_TOKEN", "a")
        .env("ROOMSTATE_TOKEN_SECRET", "b")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("app_token (ROOMSTATE_APP_TOKEN)"), "{err}");
    // No flag takes a secret.
    let out = Command::new(env!("CARGO_BIN_EXE_roomstate-server"))
        .args(["--vendor", "easemob", "--app-token", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
}

#[test]
fn healthz_and_metrics_answer() {
    let s = Server::start("easemob");
    let h = curl(&[s.url("/healthz")]);
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    create_room(&s, "r", "h");
    join(&s, "r", "u");
    join(&s, "r", "v");
    create_room(&s, "q", "h");
    join(&s, "q", "w");
    put(&s, "k");
    let m = curl(&[s.url("/metrics")]);
    assert_eq!(m.status, 200);
    for name in [
        "roomstate_rooms{shard=\"0\"} 2\n",
        "roomstate_members 3\n",
        "roomstate_requests_total{vendor=\"easemob\",api=\"set\",status=\"200\"} 1\n",
        "roomstate_wal_fsync_seconds_count",
    ] {
        assert!(m.body.contains(name), "{name} missing:\n{}", m.body);
    }
    // A leave and a destroyed room move the gauges down.
    let left = admin(&s, "DELETE", "/admin/rooms/r/members/v", None);
    assert_eq!(left.status, 200, "{}", left.body);
    let gone = admin(&s, "DELETE", "/admin/rooms/q", None);
    assert_eq!(gone.status, 200, "{}", gone.body);
    // A rejection is counted by its class.
    let refused = admin(&s, "POST", "/admin/rooms/nope/members/x", None);
    assert_eq!(refused.status, 404, "{}", refused.body);
    let m = curl(&[s.url("/metrics")]);
    for name in [
        "roomstate_rooms{shard=\"0\"} 1\n",
        "roomstate_members 1\n",
        "roomstate_rejections_total{class=\"roomnotfound\"} 1\n",
    ] {
        assert!(m.body.contains(name), "{name} missing:\n{}", m.body);
    }
}
