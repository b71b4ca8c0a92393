//! Hostile and broken input over HTTP: oversized bodies, invalid UTF-8,
//! wrong content types, slowloris headers and bodies. Each gets the
//! vendor's parameter error (or a timeout), changes nothing, and the
//! server's memory stays bounded.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{create_room, credentials, curl, easemob_get_all, join, raw, Server};

fn easemob_room() -> Server {
    let s = Server::start("easemob");
    create_room(&s, "r", "host");
    join(&s, "r", "u1");
    s
}

fn auth_header(s: &Server) -> String {
    credentials(&s.vendor).1.into_iter().next().unwrap()
}

/// Writes `body` to a temporary file for `curl --data-binary @file`.
fn body_file(bytes: &[u8]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body");
    std::fs::write(&path, bytes).unwrap();
    let arg = format!("@{}", path.display());
    (dir, arg)
}

fn put(s: &Server, content_type: &str, body_arg: &str) -> support::Answer {
    curl(&[
        "-X".into(),
        "PUT".into(),
        "-H".into(),
        auth_header(s),
        "-H".into(),
        format!("Content-Type: {content_type}"),
        "--data-binary".into(),
        body_arg.into(),
        s.url("/org/app/metadata/chatroom/r/user/u1"),
    ])
}

fn keys(s: &Server) -> serde_json::Value {
    easemob_get_all(s, "r")
}

#[test]
fn an_oversized_body_is_413_with_the_vendors_error() {
    let s = easemob_room();
    let big = format!(r#"{{"metaData": {{"k": "{}"}}}}"#, "x".repeat(2 << 20));
    let (_dir, arg) = body_file(big.as_bytes());
    let a = put(&s, "application/json", &arg);
    assert_eq!(a.status, 413);
    assert_eq!(a.json()["error"], "illegal_argument");
    assert_eq!(keys(&s), json!({}));
    // The limit itself is taken (curl declares the length): a body of
    // exactly 1 MiB reaches the dialect, whose answer is not 413, and a
    // byte more does not.
    let limit = 1 << 20;
    let at = format!(r#"{{"metaData": {{"k": "v"}}}}{}"#, " ".repeat(limit - 24));
    assert_eq!(at.len(), limit);
    let (_dir, arg) = body_file(at.as_bytes());
    let a = put(&s, "application/json", &arg);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(keys(&s), json!({"k": "v"}));
    let (_dir, arg) = body_file(format!("{at} ").as_bytes());
    assert_eq!(put(&s, "application/json", &arg).status, 413);
}

#[test]
fn invalid_utf8_is_the_vendors_parameter_error() {
    let s = easemob_room();
    let (_dir, arg) = body_file(b"{\"metaData\": {\"k\": \"\xff\xfe\"}}");
    let a = put(&s, "application/json", &arg);
    assert_eq!(a.status, 400);
    let body = a.json();
    assert_eq!(body["error"], "illegal_argument");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("UTF-8"));
    assert_eq!(keys(&s), json!({}));
}

#[test]
fn a_wrong_content_type_is_415_with_the_vendors_error() {
    let s = easemob_room();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let a = put(&s, ct, r#"{"metaData": {"k": "v"}}"#);
        assert_eq!(a.status, 415, "{ct}: {}", a.body);
        assert_eq!(a.json()["error"], "illegal_argument");
        let why = a.json()["error_description"].to_string();
        assert!(
            why.contains("Content-Type must be application/json"),
            "{why}"
        );
    }
    // NetEase wants a form, not JSON.
    let n = Server::start("netease");
    let (_, headers) = credentials("netease");
    let mut args = vec!["-X".to_owned(), "POST".to_owned()];
    for h in headers {
        args.extend(["-H".to_owned(), h]);
    }
    args.extend([
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        r#"{"roomid": "36"}"#.into(),
        n.url("/nimserver/chatroom/queueList.action"),
    ]);
    let a = curl(&args);
    assert_eq!(a.status, 415);
    assert_eq!(a.json()["code"], 414);
    let why = a.json()["desc"].to_string();
    assert!(
        why.contains("Content-Type must be application/x-www-form-urlencoded"),
        "{}",
        a.body
    );
    assert_eq!(keys(&s), json!({}));
}

#[test]
fn a_slowloris_request_is_cut_off() {
    let s = easemob_room();
    // Headers that never end.
    let start = Instant::now();
    let mut c = raw(&s);
    c.write_all(b"PUT /org/app/metadata/chatroom/r/user/u1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(15),
        "header timeout took {took:?}"
    );
    // A body that never arrives: the vendor's error with 408.
    let start = Instant::now();
    let mut c = raw(&s);
    let auth = auth_header(&s);
    c.write_all(
        format!(
            "PUT /org/app/metadata/chatroom/r/user/u1 HTTP/1.1\r\nHost: x\r\n{auth}\r\n\
             Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"metaData\""
        )
        .as_bytes(),
    )
    .unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    let took = start.elapsed();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("illegal_argument"), "{text}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert_eq!(keys(&s), json!({}));
}

#[test]
fn an_idle_keep_alive_connection_outlives_the_header_timeout() {
    let s = easemob_room();
    let mut c = raw(&s);
    let get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 1024];
    c.write_all(get).unwrap();
    let n = c.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Idle past the 5 s a begun request head gets (default idle: 60 s).
    std::thread::sleep(Duration::from_secs(7));
    c.write_all(get).unwrap();
    let n = c.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}

#[test]
fn keep_alive_idle_seconds_closes_an_idle_connection() {
    let opts = support::Opts {
        extra_config: "keep_alive_idle_seconds = 1".into(),
        ..support::Opts::default()
    };
    let s = Server::start_with("easemob", &opts);
    let mut c = raw(&s);
    let start = Instant::now();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    // The answer, then the server closes the idle connection.
    let _ = c.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(buf.starts_with(b"HTTP/1.1 200"));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn memory_stays_bounded_under_oversized_and_broken_requests() {
    let s = easemob_room();
    let before = s.rss_kib();
    let big = vec![b'x'; 3 << 20];
    let (_dir, arg) = body_file(&big);
    for _ in 0..40 {
        let a = put(&s, "application/json", &arg);
        assert_eq!(a.status, 413);
    }
    // Bodies just under the limit, but not JSON.
    let near = vec![b'['; (1 << 20) - 10];
    let (_dir2, arg2) = body_file(&near);
    for _ in 0..40 {
        let a = put(&s, "application/json", &arg2);
        assert_eq!(a.status, 400);
    }
    let after = s.rss_kib();
    // 80 MiB of request bodies went by; the server keeps at most a few.
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert_eq!(keys(&s), json!({}));
}
