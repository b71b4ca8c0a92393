//! Helpers of the server's black-box tests: start the real binary on a
//! free loopback port with test credentials, send vendor requests with
//! `curl`, sign them as each vendor wants, and speak WebSocket.
//!
//! Every process started here is killed when its guard drops.

#![allow(dead_code)] // each test file uses a part
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roomstate_server::auth::{netease_checksum, zego_signature};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const TOKEN_SECRET: &str = "test-token-secret";
pub const APP_TOKEN: &str = "test-app-token";
pub const TENCENT_SDKAPPID: &str = "88888888";
/// The seed's own placeholder, accepted for `admin` and `administrator`.
pub const TENCENT_USERSIG: &str = "xxx";
pub const NETEASE_APP_KEY: &str = "fe416640c8e8a72734219e1847ad2547";
pub const NETEASE_APP_SECRET: &str = "test-netease-secret";
pub const ZEGO_APP_ID: &str = "1234567890";
pub const ZEGO_SECRET: &str = "test-zego-secret";

/// A running `roomstate-server`, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub vendor: String,
    pub data: PathBuf,
    _dir: tempfile::TempDir,
    stderr_log: PathBuf,
}

/// How to start a server.
#[derive(Clone)]
pub struct Opts {
    pub shards: usize,
    pub fsync: &'static str,
    pub requests_per_second: Option<u32>,
    pub extra_config: String,
    pub data: Option<PathBuf>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            shards: 1,
            fsync: "never",
            requests_per_second: None,
            extra_config: String::new(),
            data: None,
        }
    }
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl Server {
    /// Starts the binary for `vendor` and waits until it listens.
    pub fn start(vendor: &str) -> Server {
        Server::start_with(vendor, &Opts::default())
    }

    pub fn start_with(vendor: &str, opts: &Opts) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = opts.data.clone().unwrap_or_else(|| dir.path().join("data"));
        let config = dir.path().join("server.toml");
        let mut text = format!(
            "# Secrets of a test server; the others come from the environment.\n\
             tencent_sdkappid = {TENCENT_SDKAPPID}\n\
             netease_app_key = \"{NETEASE_APP_KEY}\"\n\
             zego_app_id = {ZEGO_APP_ID}\n\
             signature_window_seconds = 300\n\
             [tencent_usersigs]\n\
             admin = \"{TENCENT_USERSIG}\"\n\
             administrator = \"{TENCENT_USERSIG}\"\n"
        );
        if let Some(n) = opts.requests_per_second {
            text = format!("requests_per_second = {n}\n{text}");
        }
        text = format!("{}\n{text}", opts.extra_config);
        std::fs::write(&config, text).unwrap();
        let stderr_log = dir.path().join("stderr.log");
        let child = Command::new(env!("CARGO_BIN_EXE_roomstate-server"))
            .args(["--vendor", vendor, "--listen", "127.0.0.1:0"])
            .args(["--shards", &opts.shards.to_string(), "--fsync", opts.fsync])
            .arg("--data")
            .arg(&data)
            .arg("--config")
            .arg(&config)
            .env("ROOMSTATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("ROOMSTATE_TOKEN_SECRET", TOKEN_SECRET)
            .env("ROOMSTATE_APP_TOKEN", APP_TOKEN)
            .env("ROOMSTATE_NETEASE_APP_SECRET", NETEASE_APP_SECRET)
            .env("ROOMSTATE_ZEGO_SERVER_SECRET", ZEGO_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child: Some(child),
            addr: "127.0.0.1:0".parse().unwrap(),
            vendor: vendor.to_owned(),
            data,
            _dir: dir,
            stderr_log,
        };
        let stdout = server.child.as_mut().unwrap().stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            panic!(
                "server did not start: {line:?}\n{}",
                std::fs::read_to_string(&server.stderr_log).unwrap_or_default()
            );
        };
        server.addr = addr.parse().unwrap();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The server's log so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The resident set size of the process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// `application/x-www-form-urlencoded` / query encoding.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Runs `curl` with `args` (the URL included) and returns status and body.
pub fn curl(args: &[String]) -> Answer {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl must be installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    Answer {
        status: code.trim().parse().unwrap(),
        body: body.to_owned(),
    }
}

/// The credentials a vendor request carries: extra query parameters and
/// headers.
pub fn credentials(vendor: &str) -> (Vec<(String, String)>, Vec<String>) {
    let now = now_secs().to_string();
    match vendor {
        "tencent" => (
            vec![
                ("sdkappid".into(), TENCENT_SDKAPPID.into()),
                ("identifier".into(), "administrator".into()),
                ("usersig".into(), TENCENT_USERSIG.into()),
                ("random".into(), "99999999".into()),
                ("contenttype".into(), "json".into()),
            ],
            vec![],
        ),
        "easemob" | "agora_chat" => (vec![], vec![format!("Authorization: Bearer {APP_TOKEN}")]),
        "netease" => (
            vec![],
            vec![
                format!("AppKey: {NETEASE_APP_KEY}"),
                "Nonce: 12345".into(),
                format!("CurTime: {now}"),
                format!(
                    "CheckSum: {}",
                    netease_checksum(NETEASE_APP_SECRET, "12345", &now)
                ),
            ],
        ),
        "zego" => (
            vec![
                ("AppId".into(), ZEGO_APP_ID.into()),
                ("SignatureNonce".into(), "15215528852396".into()),
                ("Timestamp".into(), now.clone()),
                (
                    "Signature".into(),
                    zego_signature(ZEGO_APP_ID, "15215528852396", ZEGO_SECRET, &now),
                ),
                ("SignatureVersion".into(), "2.0".into()),
            ],
            vec![],
        ),
        other => panic!("unknown vendor {other}"),
    }
}

/// A vendor request ready to send: method, path with query, headers,
/// and body with its content type.
pub struct Prepared {
    pub method: String,
    pub target: String,
    pub headers: Vec<String>,
    pub body: Option<(&'static str, String)>,
}

/// A replay request line (`method`, `path`, `query`, `form`, `body`),
/// signed for the vendor when `signed`. `now` is not carried: the server
/// stamps its own clock.
pub fn prepare(server: &Server, line: &Value, signed: bool) -> Prepared {
    let method = line["method"].as_str().unwrap();
    let full = line["path"].as_str().unwrap();
    let (path, inline_query) = full.split_once('?').unwrap_or((full, ""));
    let mut query: Vec<(String, String)> = Vec::new();
    if let Some(q) = line["query"].as_object() {
        for (k, v) in q {
            query.push((k.clone(), v.as_str().map_or(v.to_string(), str::to_owned)));
        }
    }
    let (auth_query, headers) = if signed {
        credentials(&server.vendor)
    } else {
        (vec![], vec![])
    };
    for (k, v) in auth_query {
        if !query.iter().any(|(q, _)| *q == k) && !inline_query.contains(&format!("{k}=")) {
            query.push((k, v));
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !inline_query.is_empty() {
        parts.push(inline_query.to_owned());
    }
    parts.extend(
        query
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v))),
    );
    let target = if parts.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", parts.join("&"))
    };
    let body = if let Some(form) = line["form"].as_object() {
        let pairs: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or(v.to_string(), str::to_owned);
                format!("{}={}", urlencode(k), urlencode(&v))
            })
            .collect();
        Some(("application/x-www-form-urlencoded", pairs.join("&")))
    } else if !line["body"].is_null() {
        Some(("application/json", line["body"].to_string()))
    } else {
        None
    };
    Prepared {
        method: method.to_owned(),
        target,
        headers,
        body,
    }
}

/// The curl arguments of a replay request line (see [`prepare`]).
pub fn request_args(server: &Server, line: &Value, signed: bool) -> Vec<String> {
    let p = prepare(server, line, signed);
    let mut args = vec!["-X".to_owned(), p.method];
    for h in p.headers {
        args.push("-H".into());
        args.push(h);
    }
    if let Some((ct, body)) = p.body {
        args.extend([
            "-H".into(),
            format!("Content-Type: {ct}"),
            "--data-binary".into(),
            body,
        ]);
    }
    args.push(server.url(&p.target));
    args
}

/// The bytes of an HTTP/1.1 request.
pub fn raw_request(p: &Prepared) -> Vec<u8> {
    let mut head = format!("{} {} HTTP/1.1\r\nHost: localhost\r\n", p.method, p.target);
    for h in &p.headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    let body = match &p.body {
        Some((ct, b)) => {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
            b.clone()
        }
        None => String::new(),
    };
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    bytes
}

/// Writes every request at once on one connection (HTTP/1.1 pipelining),
/// then reads the answers in order.
pub fn pipelined(server: &Server, requests: &[Vec<u8>]) -> Vec<Answer> {
    let mut s = raw(server);
    s.write_all(&requests.concat()).unwrap();
    let mut reader = BufReader::new(s);
    let mut answers = Vec::new();
    for _ in requests {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).unwrap();
        answers.push(Answer {
            status,
            body: String::from_utf8(body).unwrap(),
        });
    }
    answers
}

/// A management API call.
pub fn admin(server: &Server, method: &str, path: &str, body: Option<Value>) -> Answer {
    let mut args = vec![
        "-X".to_owned(),
        method.to_owned(),
        "-H".into(),
        format!("Authorization: Bearer {ADMIN_TOKEN}"),
    ];
    if let Some(b) = body {
        args.extend([
            "-H".into(),
            "Content-Type: application/json".into(),
            "--data-binary".into(),
            b.to_string(),
        ]);
    }
    args.push(server.url(path));
    curl(&args)
}

/// Creates a room through the management API.
pub fn create_room(server: &Server, room: &str, creator: &str) {
    let a = admin(
        server,
        "POST",
        "/admin/rooms",
        Some(json!({"room": room, "creator": creator})),
    );
    assert_eq!((a.status, a.body.as_str()), (200, "{}"), "create {room}");
}

/// Adds a connection of `user` through the management API.
pub fn join(server: &Server, room: &str, user: &str) {
    let a = admin(
        server,
        "POST",
        &format!(
            "/admin/rooms/{}/members/{}",
            urlencode(room),
            urlencode(user)
        ),
        None,
    );
    assert_eq!((a.status, a.body.as_str()), (200, "{}"), "join {user}");
}

/// Easemob set of one key as `user`, with an `autoDelete` policy; the
/// key must be set.
pub fn easemob_set(
    server: &Server,
    room: &str,
    user: &str,
    key: &str,
    value: &str,
    auto_delete: &str,
) {
    let a = curl(&[
        "-X".into(),
        "PUT".into(),
        "-H".into(),
        format!("Authorization: Bearer {APP_TOKEN}"),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        json!({"metaData": {key: value}, "autoDelete": auto_delete}).to_string(),
        server.url(&format!("/org/app/metadata/chatroom/{room}/user/{user}")),
    ]);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["data"]["successKeys"], json!([key]), "{}", a.body);
}

/// Easemob get of every key of a room: its `data`.
pub fn easemob_get_all(server: &Server, room: &str) -> Value {
    let a = curl(&[
        "-X".into(),
        "POST".into(),
        "-H".into(),
        format!("Authorization: Bearer {APP_TOKEN}"),
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        "{}".into(),
        server.url(&format!("/org/app/metadata/chatroom/{room}")),
    ]);
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["data"].clone()
}

/// A control line as a management API call.
pub fn control(server: &Server, line: &Value) -> Answer {
    let room = line["room"].as_str().unwrap();
    let user = line["user"].as_str().unwrap_or("");
    let r = urlencode(room);
    let u = urlencode(user);
    match line["control"].as_str().unwrap() {
        "create_room" => admin(
            server,
            "POST",
            "/admin/rooms",
            Some(json!({"room": room, "creator": line["creator"]})),
        ),
        "join" => admin(
            server,
            "POST",
            &format!("/admin/rooms/{r}/members/{u}"),
            None,
        ),
        "leave" => admin(
            server,
            "DELETE",
            &format!("/admin/rooms/{r}/members/{u}"),
            None,
        ),
        other => panic!("control {other} has no management API call in these tests"),
    }
}

/// Replay lines over HTTP: one server per vendor, started on first use.
#[derive(Default)]
pub struct HttpReplayer {
    servers: BTreeMap<String, Server>,
}

impl HttpReplayer {
    /// No server yet.
    pub fn new() -> HttpReplayer {
        HttpReplayer {
            servers: BTreeMap::new(),
        }
    }

    /// The vendor's server, started on first use.
    pub fn server(&mut self, vendor: &str) -> &Server {
        self.servers
            .entry(vendor.to_owned())
            .or_insert_with(|| Server::start(vendor))
    }

    /// One replay line in, one `{"status":…,"body":…}` line out.
    pub fn line(&mut self, line: &str) -> String {
        let v: Value = serde_json::from_str(line).unwrap();
        let vendor = v["vendor"].as_str().unwrap().to_owned();
        let server = self.server(&vendor);
        let answer = if v.get("control").is_some() {
            control(server, &v)
        } else {
            curl(&request_args(server, &v, true))
        };
        json!({"status": answer.status, "body": answer.json()}).to_string()
    }

    /// The same request line `n` times, pipelined on one connection so
    /// that they arrive back to back (a rate-limit burst).
    pub fn burst(&mut self, line: &Value, n: usize) -> Vec<String> {
        let vendor = line["vendor"].as_str().unwrap().to_owned();
        let server = self.server(&vendor);
        let one = raw_request(&prepare(server, line, true));
        let all = vec![one; n];
        pipelined(server, &all)
            .iter()
            .map(|a| json!({"status": a.status, "body": a.json()}).to_string())
            .collect()
    }
}

/// A raw TCP connection to the server.
pub fn raw(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Sends raw bytes and reads until the server closes or `limit` passes.
pub fn raw_exchange(server: &Server, bytes: &[u8]) -> String {
    let mut s = raw(server);
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn data_dir(server: &Server) -> &Path {
    &server.data
}
