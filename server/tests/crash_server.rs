//! Crash tests of the real server binary (Easemob profile, fsync on):
//! kill -9 while it answers writes, restart on the same data directory,
//! and every write that got a success reply is there, read back over HTTP.
//! Also: a torn tail written to a log is cut off on start; a flipped bit in
//! the middle of a log stops the start naming the file and the offset;
//! `--repair` then starts.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // a test

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{admin, curl, Opts, Server, ADMIN_TOKEN, APP_TOKEN, TOKEN_SECRET};

const WRITERS: usize = 4;
const KEYS_PER_ROOM: u64 = 40;

fn room(t: usize) -> String {
    format!("crash-room-{t}")
}

fn start(data: &Path) -> Server {
    Server::start_with(
        "easemob",
        &Opts {
            shards: 2,
            fsync: "always",
            requests_per_second: Some(0),
            data: Some(data.to_path_buf()),
            // Snapshots every few dozen writes, so kills land around them.
            extra_config: "snapshot_every_records = 60".to_owned(),
        },
    )
}

/// Every attribute of `room`, read over HTTP.
fn read_room(s: &Server, room: &str) -> BTreeMap<String, String> {
    let a = curl(&[
        "-X".into(),
        "POST".into(),
        "-H".into(),
        format!("Authorization: Bearer {APP_TOKEN}"),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        "{}".into(),
        s.url(&format!("/org/app/metadata/chatroom/{room}")),
    ]);
    assert_eq!(a.status, 200, "{}", a.body);
    let data = a.json()["data"].clone();
    data.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// One Easemob set over a keep-alive connection: `Some(true)` for a
/// success reply, `Some(false)` for any other reply, `None` when the
/// connection failed (the server died).
fn put(conn: &mut BufReader<TcpStream>, room: &str, key: &str, value: &str) -> Option<bool> {
    let body = json!({"metaData": {key: value}, "autoDelete": "NO_DELETE"}).to_string();
    let request = format!(
        "PUT /org/app/metadata/chatroom/{room}/user/writer HTTP/1.1\r\nHost: localhost\r\n\
         Authorization: Bearer {APP_TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.get_mut().write_all(request.as_bytes()).ok()?;
    let mut status_line = String::new();
    if conn.read_line(&mut status_line).ok()? == 0 {
        return None;
    }
    let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if conn.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).ok()?;
    let v: Value = serde_json::from_slice(&body).ok()?;
    Some(status == 200 && v["data"]["successKeys"] == json!([key]))
}

/// What a room must hold for each key: the acknowledged value, or, when
/// a write to it was in flight at the kill, either that or the new one.
#[derive(Clone, Debug, Default)]
struct Expected {
    keys: BTreeMap<String, Vec<Option<String>>>,
}

impl Expected {
    fn acked(&mut self, key: &str, value: &str) {
        self.keys
            .insert(key.to_owned(), vec![Some(value.to_owned())]);
    }

    fn in_flight(&mut self, key: &str, value: &str) {
        let e = self
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| vec![None]);
        e.push(Some(value.to_owned()));
    }

    /// Checks `got`, and settles in-flight writes to what survived.
    fn check(&mut self, got: &BTreeMap<String, String>, what: &str) {
        for (key, allowed) in &mut self.keys {
            let have = got.get(key).cloned();
            assert!(
                allowed.contains(&have),
                "{what}: key {key} is {have:?}, expected one of {allowed:?}"
            );
            *allowed = vec![have];
        }
        for key in got.keys() {
            assert!(self.keys.contains_key(key), "{what}: unexpected key {key}");
        }
    }
}

/// A key and its value.
type KeyValue = (String, String);

/// One writer: sets keys of its room with unique values until the
/// connection fails; returns what it knows.
fn writer(
    addr: std::net::SocketAddr,
    t: usize,
    round: usize,
    acks: Arc<AtomicU64>,
) -> (Vec<KeyValue>, Option<KeyValue>) {
    let mut conn = BufReader::new(TcpStream::connect(addr).unwrap());
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let room = room(t);
    let mut acked = Vec::new();
    for i in 0u64.. {
        let key = format!("k{}", (i * 7 + t as u64) % KEYS_PER_ROOM);
        let value = format!("round {round} writer {t} write {i}");
        match put(&mut conn, &room, &key, &value) {
            Some(true) => {
                acked.push((key, value));
                acks.fetch_add(1, Ordering::SeqCst);
            }
            Some(false) => panic!("writer {t}: a write was refused"),
            None => return (acked, Some((key, value))),
        }
    }
    unreachable!()
}

#[test]
fn kill_9_while_answering_writes_loses_no_acknowledged_write() {
    let data = tempfile::tempdir().unwrap();
    let mut expected: Vec<Expected> = vec![Expected::default(); WRITERS];
    {
        let s = start(data.path());
        for t in 0..WRITERS {
            let a = admin(
                &s,
                "POST",
                "/admin/rooms",
                Some(json!({"room": room(t), "creator": "host"})),
            );
            assert_eq!(a.status, 200, "{}", a.body);
            let a = admin(
                &s,
                "POST",
                &format!("/admin/rooms/{}/members/writer", room(t)),
                None,
            );
            assert_eq!(a.status, 200, "{}", a.body);
        }
    }
    let mut total_acked = 0;
    for round in 0..5 {
        let mut s = start(data.path());
        for (t, e) in expected.iter_mut().enumerate() {
            e.check(&read_room(&s, &room(t)), &format!("before round {round}"));
        }
        let acks = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..WRITERS)
            .map(|t| {
                let acks = Arc::clone(&acks);
                let addr = s.addr;
                std::thread::spawn(move || writer(addr, t, round, acks))
            })
            .collect();
        // Kill once writes flow, at a moment that varies by round.
        let deadline = Instant::now() + Duration::from_secs(30);
        let target = 150 + 50 * round as u64;
        while acks.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "writes do not flow");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(1_300 * round as u64));
        s.kill9();
        for (t, h) in handles.into_iter().enumerate() {
            let (acked, in_flight) = h.join().unwrap();
            total_acked += acked.len();
            for (k, v) in &acked {
                expected[t].acked(k, v);
            }
            if let Some((k, v)) = in_flight {
                expected[t].in_flight(&k, &v);
            }
        }
    }
    let s = start(data.path());
    for (t, e) in expected.iter_mut().enumerate() {
        e.check(&read_room(&s, &room(t)), "after the last kill");
    }
    assert!(total_acked >= 5 * 150, "{total_acked} writes acknowledged");
    let snapshots = std::fs::read_dir(data.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        // The shard directories (beside them, the `shards` count file).
        .filter(|path| path.is_dir())
        .flat_map(|shard| std::fs::read_dir(shard).unwrap())
        .filter(|f| {
            let name = f.as_ref().unwrap().file_name();
            name.to_str().unwrap().starts_with("snap-")
        })
        .count();
    assert!(snapshots > 0, "the kills landed among snapshots");
}

// ----- damaged logs -----

/// A server process started directly, for starts that must fail.
struct Raw(Option<Child>);

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs the binary on `data` with `extra` flags and test secrets; returns
/// whether it came up (then kills it) and its stderr.
fn try_start(data: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut raw = Raw(Some(
        Command::new(env!("CARGO_BIN_EXE_roomstate-server"))
            .args(["--vendor", "easemob", "--listen", "127.0.0.1:0"])
            .args(["--shards", "2", "--fsync", "always"])
            .arg("--data")
            .arg(data)
            .args(extra)
            .env("ROOMSTATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("ROOMSTATE_TOKEN_SECRET", TOKEN_SECRET)
            .env("ROOMSTATE_APP_TOKEN", APP_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap(),
    ));
    let child = raw.0.as_mut().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let code = if line.starts_with("listening on ") {
        None // it runs; the guard kills it
    } else {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status.code().unwrap_or(-1));
            }
            assert!(Instant::now() < deadline, "a failed start did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    drop(raw);
    (code, std::fs::read_to_string(log.path()).unwrap())
}

/// A data directory whose shard logs hold some writes (the server was
/// killed, so no shutdown snapshot emptied them); returns the values.
fn data_with_writes(data: &Path) -> BTreeMap<String, String> {
    let mut s = start(data);
    let a = admin(
        &s,
        "POST",
        "/admin/rooms",
        Some(json!({"room": "logged", "creator": "host"})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let a = admin(&s, "POST", "/admin/rooms/logged/members/writer", None);
    assert_eq!(a.status, 200, "{}", a.body);
    let mut conn = BufReader::new(TcpStream::connect(s.addr).unwrap());
    let mut values = BTreeMap::new();
    for i in 0..12 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        assert_eq!(put(&mut conn, "logged", &k, &v), Some(true));
        values.insert(k, v);
    }
    s.kill9();
    values
}

/// The log that holds room "logged"'s records: the biggest one.
fn busiest_log(data: &Path) -> PathBuf {
    let mut logs: Vec<(u64, PathBuf)> = Vec::new();
    for shard in std::fs::read_dir(data).unwrap() {
        let shard = shard.unwrap().path();
        if !shard.is_dir() {
            continue; // the `shards` count file
        }
        for f in std::fs::read_dir(shard).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "log") {
                logs.push((std::fs::metadata(&p).unwrap().len(), p));
            }
        }
    }
    logs.sort();
    logs.pop().unwrap().1
}

#[test]
fn a_torn_tail_in_a_log_is_cut_off_on_start() {
    let data = tempfile::tempdir().unwrap();
    let values = data_with_writes(data.path());
    let log = busiest_log(data.path());
    let len = std::fs::metadata(&log).unwrap().len();
    // Half a frame, as a crash mid-write leaves it.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[40, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3])
        .unwrap();
    drop(f);

    let s = start(data.path());
    assert_eq!(read_room(&s, "logged"), values);
    assert!(s.stderr().contains("torn record"), "{}", s.stderr());
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len, "cut off");
}

#[test]
fn a_flipped_bit_in_a_log_stops_the_start_and_repair_starts() {
    let data = tempfile::tempdir().unwrap();
    let values = data_with_writes(data.path());
    let log = busiest_log(data.path());
    let mut bytes = std::fs::read(&log).unwrap();
    // Walk the frames; flip a bit inside the 6th record's payload.
    let mut starts = Vec::new();
    let mut pos = roomstate_server::wal::LOG_HEADER_LEN;
    while pos < bytes.len() {
        starts.push(pos);
        pos += 8 + u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
    }
    assert!(starts.len() >= 10, "{} records", starts.len());
    let bad = starts[5];
    bytes[bad + 10] ^= 0x08;
    std::fs::write(&log, &bytes).unwrap();

    let (code, stderr) = try_start(data.path(), &[]);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {stderr}");
    assert!(stderr.contains(&log.display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("offset {bad}")), "{stderr}");
    assert!(stderr.contains("--repair"), "{stderr}");
    assert_eq!(
        std::fs::read(&log).unwrap(),
        bytes,
        "a refused start changes nothing"
    );

    let (code, stderr) = try_start(data.path(), &["--repair"]);
    assert_eq!(code, None, "--repair starts: {stderr}");
    assert_eq!(std::fs::metadata(&log).unwrap().len(), bad as u64);

    // The repaired directory starts without --repair, with what came
    // before the damage.
    let s = start(data.path());
    let got = read_room(&s, "logged");
    assert!(
        got.len() < values.len(),
        "records after the damage are gone"
    );
    for (k, v) in &got {
        assert_eq!(values.get(k), Some(v));
    }
}

#[test]
fn a_second_server_on_the_same_data_directory_does_not_start() {
    let data = tempfile::tempdir().unwrap();
    let mut first = start(data.path());
    let (code, stderr) = try_start(data.path(), &[]);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {stderr}");
    assert!(stderr.contains("another process"), "{stderr}");
    // After a kill -9 the kernel has released the lock: a restart works.
    first.kill9();
    let (code, stderr) = try_start(data.path(), &[]);
    assert_eq!(code, None, "{stderr}");
}
