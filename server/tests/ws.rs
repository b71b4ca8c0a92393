//! Live events over WebSocket against the real binary: ordering across
//! clients, grace periods on a dropped socket, `since` resumption, token
//! checks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use support::{
    admin, create_room, curl, easemob_get_all as get_all, easemob_set as set, join, Opts, Server,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn token(s: &Server, room: &str, user: &str) -> String {
    let a = admin(
        s,
        "POST",
        "/admin/tokens",
        Some(json!({"room": room, "user": user})),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["token"].as_str().unwrap().to_owned()
}

async fn connect(s: &Server, tok: &str, since: Option<u64>) -> Ws {
    let mut url = format!("ws://{}/ws?token={tok}", s.addr);
    if let Some(n) = since {
        url.push_str(&format!("&since={n}"));
    }
    connect_async(url).await.unwrap().0
}

/// The next message of any kind, within 5 s.
async fn next_message(ws: &mut Ws) -> Message {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("no message within 5 s")
        .expect("socket ended")
        .unwrap()
}

/// The next text message as JSON (pings skipped), within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        match next_message(ws).await {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Close(f) => panic!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Events until one with `seq` (inclusive).
async fn until_seq(ws: &mut Ws, seq: u64) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let v = next(ws).await;
        let s = v["seq"].as_u64().unwrap();
        out.push(v);
        if s >= seq {
            return out;
        }
    }
}

fn easemob(extra: &str) -> Server {
    Server::start_with(
        "easemob",
        &Opts {
            shards: 2,
            requests_per_second: Some(0),
            extra_config: extra.to_owned(),
            ..Opts::default()
        },
    )
}

#[tokio::test]
async fn two_clients_in_a_room_see_the_same_events_in_the_same_order() {
    let s = easemob("");
    create_room(&s, "r1", "host");
    let mut alice = connect(&s, &token(&s, "r1", "alice"), None).await;
    // Alice sees her own join (seq 2: the room's creation was 1).
    let first = next(&mut alice).await;
    assert_eq!(first["seq"], 2);
    assert_eq!(first["type"], "event");
    let mut bob = connect(&s, &token(&s, "r1", "bob"), None).await;
    // Bob's join (3) is applied after the handshake: wait for it, so that
    // every write comes after it and both see the same stream.
    let bob_join = next(&mut bob).await;
    assert_eq!(bob_join["seq"], 3);
    for i in 0..20 {
        set(
            &s,
            "r1",
            "alice",
            &format!("k{i}"),
            &format!("v{i}"),
            "NO_DELETE",
        );
    }
    // Bob's join is 3, the writes 4..=23.
    let seen_by_alice = until_seq(&mut alice, 23).await;
    let mut seen_by_bob = vec![bob_join];
    seen_by_bob.extend(until_seq(&mut bob, 23).await);
    assert_eq!(seen_by_alice, seen_by_bob);
    let seqs: Vec<u64> = seen_by_bob
        .iter()
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (3..=23).collect::<Vec<_>>());
    // Every event carries the room and what changed.
    assert!(seen_by_bob.iter().all(|v| v["room"] == "r1"));
    assert!(seen_by_bob[1]["changes"].to_string().contains("k0"));
    // Each event queued for a client is counted in the queue-depth
    // histogram: alice's 22 (2..=23) and bob's 21 (3..=23).
    let metrics = curl(&[s.url("/metrics")]).body;
    assert!(
        metrics.contains("roomstate_ws_queue_depth_count 43\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_dropped_socket_keeps_auto_delete_keys_inside_the_grace_and_loses_them_after() {
    let s = easemob("disconnect_grace_ms = 1000");
    create_room(&s, "r2", "host");
    let tok = token(&s, "r2", "carol");
    let mut carol = connect(&s, &tok, None).await;
    next(&mut carol).await; // her join
    set(&s, "r2", "carol", "seat", "3", "DELETE");
    set(&s, "r2", "carol", "bio", "hi", "NO_DELETE");
    // Drop the socket and come back inside the grace.
    carol.close(None).await.unwrap();
    drop(carol);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let carol = connect(&s, &tok, None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(get_all(&s, "r2"), json!({"seat": "3", "bio": "hi"}));
    // Drop it again and stay away past the grace: the auto-delete key goes.
    drop(carol);
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get_all(&s, "r2") == json!({"bio": "hi"}) {
            gone = true;
            break;
        }
    }
    assert!(gone, "auto-delete key still there: {}", get_all(&s, "r2"));
}

#[tokio::test]
async fn since_resumes_without_gaps_or_duplicates() {
    let s = easemob("");
    create_room(&s, "r3", "host");
    join(&s, "r3", "host");
    let tok = token(&s, "r3", "dave");
    let mut dave = connect(&s, &tok, None).await;
    // 1 created, 2 host joined, 3 dave joined, 4 and 5 the writes. Dave's
    // join is applied after the handshake, and his writes need him in the
    // room: wait for it (under load, writing at once was refused).
    let mut seen = until_seq(&mut dave, 3).await;
    set(&s, "r3", "dave", "a", "1", "NO_DELETE");
    set(&s, "r3", "dave", "b", "2", "NO_DELETE");
    seen.extend(until_seq(&mut dave, 5).await);
    assert_eq!(seen.first().unwrap()["seq"], 3);
    let last = seen.last().unwrap()["seq"].as_u64().unwrap();
    assert_eq!(last, 5);
    dave.close(None).await.unwrap();
    drop(dave);
    // Changes while Dave is away.
    set(&s, "r3", "host", "c", "3", "NO_DELETE");
    set(&s, "r3", "host", "b2", "x", "NO_DELETE");
    // Back with the last number seen: the missed events come from the
    // room's catch-up history, then the live stream goes on after them.
    let mut dave = connect(&s, &tok, Some(last)).await;
    let missed = until_seq(&mut dave, 7).await;
    let got: Vec<(&str, u64)> = missed
        .iter()
        .map(|v| (v["type"].as_str().unwrap(), v["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("event", 6), ("event", 7)]);
    assert_eq!(missed[0]["changes"][0]["AttributeSet"]["key"], "c");
    let at = 7;
    set(&s, "r3", "host", "d", "4", "NO_DELETE");
    let ev = next(&mut dave).await;
    assert_eq!(
        (ev["type"].as_str(), ev["seq"].as_u64()),
        (Some("event"), Some(at + 1))
    );
    // Resuming from the latest seq sends no state: the events just go on.
    dave.close(None).await.unwrap();
    drop(dave);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut dave = connect(&s, &tok, Some(at + 1)).await;
    set(&s, "r3", "host", "e", "5", "NO_DELETE");
    let ev = next(&mut dave).await;
    assert_eq!(
        (ev["type"].as_str(), ev["seq"].as_u64()),
        (Some("event"), Some(at + 2))
    );
}

// Away for longer than the room's history reaches (256 events by
// default): the client gets the full state first, then live events.
#[tokio::test]
async fn since_beyond_the_history_sends_the_full_state() {
    let s = easemob("");
    create_room(&s, "r6", "host");
    join(&s, "r6", "host");
    let tok = token(&s, "r6", "gus");
    let mut gus = connect(&s, &tok, None).await;
    set(&s, "r6", "host", "k", "0", "NO_DELETE");
    let last = until_seq(&mut gus, 4).await.last().unwrap()["seq"]
        .as_u64()
        .unwrap();
    gus.close(None).await.unwrap();
    drop(gus);
    for i in 1..=260 {
        set(&s, "r6", "host", "k", &i.to_string(), "NO_DELETE");
    }
    let mut gus = connect(&s, &tok, Some(last)).await;
    let state = next(&mut gus).await;
    assert_eq!(state["type"], "state");
    let at = state["seq"].as_u64().unwrap();
    assert_eq!(at, last + 260);
    assert_eq!(state["attributes"][0]["value"], "260");
    // Who is present, by role and connections: gus through his socket,
    // the creator through the management API.
    assert_eq!(
        state["members"],
        json!([
            {"user": "gus", "role": "member", "connections": 1},
            {"user": "host", "role": "creator", "connections": 1},
        ]),
        "{state}"
    );
    set(&s, "r6", "host", "k", "261", "NO_DELETE");
    let ev = next(&mut gus).await;
    assert_eq!(
        (ev["type"].as_str(), ev["seq"].as_u64()),
        (Some("event"), Some(at + 1))
    );
}

#[tokio::test]
async fn forged_expired_and_missing_tokens_are_refused() {
    let s = easemob("");
    create_room(&s, "r4", "host");
    let good = token(&s, "r4", "erin");
    // Another room in the token, same signature: forged.
    let forged = good.replacen(&hex("r4"), &hex("r5"), 1);
    let expired = roomstate_server::auth::make_token(support::TOKEN_SECRET, "r4", "erin", 1);
    let wrong_key = roomstate_server::auth::make_token("not-the-secret", "r4", "erin", u64::MAX);
    for tok in [forged.as_str(), expired.as_str(), wrong_key.as_str(), ""] {
        let url = if tok.is_empty() {
            format!("ws://{}/ws", s.addr)
        } else {
            format!("ws://{}/ws?token={tok}", s.addr)
        };
        match connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401);
            }
            other => panic!("token {tok:?} was not refused: {:?}", other.map(|_| ())),
        }
    }
    // Nobody joined: from the start, the room's history is its creation,
    // then Erin's own join.
    let mut ok = connect(&s, &good, Some(0)).await;
    let seen = until_seq(&mut ok, 2).await;
    let changes: Vec<&Value> = seen.iter().map(|v| &v["changes"][0]).collect();
    assert_eq!(
        changes,
        [
            &json!({"RoomCreated": {"creator": "host"}}),
            &json!({"MemberJoined": {"user": "erin"}})
        ]
    );
    ok.send(Message::Close(None)).await.unwrap();
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_is_closed_with_a_reason_and_a_fast_one_misses_nothing() {
    let s = easemob("");
    create_room(&s, "r6", "host");
    assert_eq!(
        admin(&s, "POST", "/admin/rooms/r6/members/w", None).status,
        200
    );
    let mut slow = connect(&s, &token(&s, "r6", "slow"), None).await;
    let mut fast = connect(&s, &token(&s, "r6", "fast"), None).await;
    // The fast client reads everything, concurrently.
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Ok(Some(Ok(msg))) =
            tokio::time::timeout(Duration::from_secs(5), fast.next()).await
        {
            if let Message::Text(t) = msg {
                // Cheap: the seq is near the start; a debug-build JSON parse
                // of every large event would make this client slow too.
                let text = t.as_str();
                let at = text.find("\"seq\":").unwrap() + 6;
                let digits: String = text[at..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                seqs.push(digits.parse::<u64>().unwrap());
            }
        }
        seqs
    });
    // 8 KB events (2 keys of 4000 characters each), far more than the
    // slow client's queue (4 MiB) and the socket buffers hold.
    let values: serde_json::Map<String, Value> = (0..2)
        .map(|i| (format!("k{i}"), json!("x".repeat(4000))))
        .collect();
    let line = json!({"method": "PUT", "path": "/org/app/metadata/chatroom/r6/user/w",
                      "body": {"metaData": values, "autoDelete": "NO_DELETE"}});
    let request = support::raw_request(&support::prepare(&s, &line, true));
    let writes = 2500;
    let s = std::sync::Arc::new(s);
    let server = std::sync::Arc::clone(&s);
    tokio::task::spawn_blocking(move || {
        for _ in 0..writes / 100 {
            let answers = support::pipelined(&server, &vec![request.clone(); 100]);
            assert!(answers.iter().all(|a| a.status == 200));
        }
    })
    .await
    .unwrap();
    // The slow client now reads: what was queued, then a close with a reason.
    let mut reason = None;
    let mut read = 0;
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(15), slow.next()).await {
        match msg {
            Ok(Message::Close(frame)) => {
                reason = frame.map(|f| f.reason.to_string());
                break;
            }
            Ok(_) => read += 1,
            Err(e) => panic!("after {read} messages: {e}"),
        }
    }
    assert_eq!(
        reason.as_deref(),
        Some("too slow: outgoing queue full"),
        "after {read} messages"
    );
    assert!(read < writes, "{read}");
    // The fast client saw every event: its join (3), the slow one's (4) is
    // before it, then the writes 5..=2504, no gap.
    let seqs = reader.await.unwrap();
    let first = *seqs.first().unwrap();
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(*seqs.last().unwrap(), 4 + writes);
    let metrics = curl(&[s.url("/metrics")]).body;
    assert!(
        metrics.contains("roomstate_ws_dropped_total{why=\"too_slow\"} 1"),
        "{metrics}"
    );
    // The kick ended the slow client's subscription; its socket's close,
    // reported after, must not end it a second time (the fast client has
    // gone too now, so the gauge is back at zero, not below).
    ws_gauge_reaches(&s, 0).await;
}

#[tokio::test]
async fn connections_open_at_sigterm_get_their_grace_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        shards: 2,
        requests_per_second: Some(0),
        extra_config: "disconnect_grace_ms = 1000".to_owned(),
        data: Some(dir.path().join("data")),
        ..Opts::default()
    };
    let mut s = Server::start_with("easemob", &opts);
    create_room(&s, "r7", "host");
    let mut ws = connect(&s, &token(&s, "r7", "gina"), None).await;
    next(&mut ws).await;
    set(&s, "r7", "gina", "seat", "1", "DELETE");
    assert!(s.terminate().success());
    // The server closed the socket on its way out.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(msg)) = ws.next().await {
            if matches!(msg, Message::Close(_)) {
                return true;
            }
        }
        true
    })
    .await;
    assert_eq!(closed, Ok(true));
    let s = Server::start_with("easemob", &opts);
    // Gina does not come back: her grace runs out after the restart and her
    // auto-delete key goes with her.
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get_all(&s, "r7") == json!({}) {
            gone = true;
            break;
        }
    }
    assert!(gone, "{}", get_all(&s, "r7"));
}

#[tokio::test]
async fn connections_open_at_a_crash_get_their_grace_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Opts {
        shards: 2,
        fsync: "always",
        requests_per_second: Some(0),
        extra_config: "disconnect_grace_ms = 1000".to_owned(),
        data: Some(dir.path().join("data")),
    };
    let mut s = Server::start_with("easemob", &opts);
    create_room(&s, "r8", "host");
    join(&s, "r8", "keeper");
    let mut ws = connect(&s, &token(&s, "r8", "hana"), None).await;
    next(&mut ws).await;
    set(&s, "r8", "hana", "seat", "1", "DELETE");
    set(&s, "r8", "keeper", "kept", "1", "DELETE");
    s.kill9();
    drop(ws);
    let s = Server::start_with("easemob", &opts);
    // Hana's connection died with the process: after the grace her
    // auto-delete key goes. Keeper joined through the management API and
    // stays, with his key.
    let mut left = json!(null);
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = get_all(&s, "r8");
        if left == json!({"kept": "1"}) {
            break;
        }
    }
    assert_eq!(left, json!({"kept": "1"}));
    // A client reconnecting after the crash is an ordinary new connection.
    let mut again = connect(&s, &token(&s, "r8", "hana"), None).await;
    assert_eq!(
        next(&mut again).await["changes"][0]["MemberJoined"]["user"],
        "hana"
    );
}

#[tokio::test]
async fn destroying_a_room_sends_its_last_event_and_closes_its_sockets() {
    let s = easemob("");
    create_room(&s, "r9", "host");
    let mut ws = connect(&s, &token(&s, "r9", "ivan"), None).await;
    assert_eq!(next(&mut ws).await["seq"], 2);
    let a = admin(&s, "DELETE", "/admin/rooms/r9", None);
    assert_eq!((a.status, a.body.as_str()), (200, "{}"));
    let last = next(&mut ws).await;
    assert_eq!(last["seq"], 3);
    assert_eq!(last["changes"], json!(["RoomDestroyed"]));
    let closed = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(frame.reason.as_str(), "room destroyed")
        }
        other => panic!("expected a close, got {other:?}"),
    }
    // Gone: a new client of the room is refused with the vendor's error.
    let mut late = connect(&s, &token(&s, "r9", "ivan"), None).await;
    match tokio::time::timeout(Duration::from_secs(5), late.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert!(
                frame.reason.as_str().contains("service_resource_not_found"),
                "{frame:?}"
            );
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

/// Polls /metrics until the open-subscriptions gauge reads `want` (a
/// closed socket is unsubscribed once the server reads its close), for at
/// most 5 s.
async fn ws_gauge_reaches(s: &Server, want: u64) {
    let line = format!("roomstate_ws_connections {want}\n");
    let mut body = String::new();
    for _ in 0..100 {
        body = curl(&[s.url("/metrics")]).body;
        if body.contains(&line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {line:?} within 5 s:\n{body}");
}

// Closing one socket ends its subscription alone: the gauge of open
// subscriptions goes down by one, and the other client in the room still
// gets the room's events.
#[tokio::test]
async fn a_closed_socket_ends_its_subscription_and_no_other() {
    let s = easemob("");
    create_room(&s, "r7", "host");
    let mut alice = connect(&s, &token(&s, "r7", "alice"), None).await;
    next(&mut alice).await; // her join
    let mut bob = connect(&s, &token(&s, "r7", "bob"), None).await;
    next(&mut bob).await; // his join
    ws_gauge_reaches(&s, 2).await;
    bob.close(None).await.unwrap();
    drop(bob);
    ws_gauge_reaches(&s, 1).await;
    set(&s, "r7", "alice", "seat", "1", "NO_DELETE");
    loop {
        let ev = next(&mut alice).await;
        if ev["changes"].to_string().contains("seat") {
            break;
        }
    }
    // A destroyed room closes the sockets left in it, with the policy
    // code and the reason.
    let gone = admin(&s, "DELETE", "/admin/rooms/r7", None);
    assert_eq!(gone.status, 200, "{}", gone.body);
    ws_gauge_reaches(&s, 0).await;
    loop {
        if let Message::Close(frame) = next_message(&mut alice).await {
            let frame = frame.expect("a close frame with a code");
            assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
            assert_eq!(frame.reason.as_str(), "room destroyed");
            break;
        }
    }
}
