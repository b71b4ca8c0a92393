//! Malformed input: every line gets exactly one output line, a JSON object
//! `{"status", "body"}`, never a panic; a line that cannot be parsed changes
//! nothing in any engine. `replay_line` is the entry point a fuzz target
//! calls; this is the deterministic, proptest-free version of that target.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use roomstate_dialects::{replay_line, Replayer, VendorId};
use serde_json::{json, Value};

/// What must not change: per vendor, rooms, value bytes, each room's
/// sequence number and attributes, request counters aside.
fn state(r: &Replayer) -> Vec<String> {
    VendorId::ALL
        .iter()
        .map(|v| {
            let e = r.dialect(*v).engine();
            let mut s = format!(
                "{} rooms={} bytes={}",
                v.name(),
                e.room_count(),
                e.value_bytes()
            );
            for room in ["r1", "36"] {
                if let Some(view) = e.room(room) {
                    s.push_str(&format!(
                        " {room}:seq={} attrs={:?} queue={:?}",
                        view.seq(),
                        view.attributes()
                            .map(|a| (a.key, a.value))
                            .collect::<Vec<_>>(),
                        view.queue().map(|q| (q.key, q.value)).collect::<Vec<_>>()
                    ));
                }
            }
            s
        })
        .collect()
}

fn setup() -> Replayer {
    let mut r = Replayer::new();
    for line in [
        json!({"vendor": "tencent", "control": "create_room", "room": "r1", "creator": "host"}),
        json!({"vendor": "easemob", "control": "create_room", "room": "r1", "creator": "host"}),
        json!({"vendor": "easemob", "control": "join", "room": "r1", "user": "u1"}),
        json!({"vendor": "agora_chat", "control": "create_room", "room": "r1", "creator": "host"}),
        json!({"vendor": "agora_chat", "control": "join", "room": "r1", "user": "u1"}),
        json!({"vendor": "netease", "control": "create_room", "room": "36", "creator": "host"}),
        json!({"vendor": "zego", "control": "create_room", "room": "r1", "creator": "host"}),
    ] {
        assert_eq!(
            replay_line(&mut r, &line.to_string()),
            r#"{"status":200,"body":{}}"#
        );
    }
    r
}

/// Valid requests, one per API, used as material for truncation and
/// mutation.
fn valid_lines() -> Vec<Value> {
    vec![
        json!({"vendor": "tencent", "method": "POST", "path": "/v4/live_engine_http_srv/set_room_metadata",
               "query": {"identifier": "admin"}, "body": {"RoomId": "r1", "Metadata": [{"Key": "k", "Value": "v"}]}}),
        json!({"vendor": "tencent", "method": "POST", "path": "/v4/live_engine_http_srv/delete_room_metadata",
               "body": {"RoomId": "r1", "Keys": ["k"]}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u1",
               "body": {"metaData": {"k": "v"}, "autoDelete": "DELETE"}}),
        json!({"vendor": "agora_chat", "method": "DELETE", "path": "/o/a/metadata/chatroom/r1/user/u1/forced",
               "body": {"keys": ["k"]}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueBatchOffer.action",
               "form": {"roomid": "36", "elements": "[{\"key\":\"k\",\"value\":\"v\"}]"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "36", "key": "k", "value": "v"}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [{"Action": 0, "Key": "k", "Value": "v"}]}}),
    ]
}

/// Lines that must be refused whole: each gives one line and changes nothing.
fn malformed_lines() -> Vec<String> {
    let mut lines: Vec<String> = [
        "",
        " ",
        "\t",
        "null",
        "true",
        "42",
        "-1",
        "1e400",
        "\"tencent\"",
        "[]",
        "{}",
        "[{}]",
        "{\"vendor\":",
        "{\"vendor\":\"tencent\"",
        "{\"vendor\":\"tencent\",}",
        "{\"vendor\":\"nobody\",\"method\":\"POST\",\"path\":\"/\"}",
        "{\"vendor\":7,\"method\":\"POST\",\"path\":\"/\"}",
        "{\"vendor\":null}",
        "{\"vendor\":\"tencent\",\"vendor\":\"zego\",\"method\":\"POST\",\"path\":\"/\"}",
        "{\"vendor\":\"zego\",\"method\":\"POST\",\"path\":\"/\"} trailing",
        "\u{feff}{\"vendor\":\"zego\"}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Deep nesting must not overflow the stack.
    lines.push(format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)));
    lines.push(format!(
        "{{\"vendor\":\"tencent\",\"method\":\"POST\",\"path\":\"/v4/live_engine_http_srv/set_room_metadata\",\"body\":{}{}}}",
        "{\"a\":".repeat(50_000),
        "}".repeat(50_000)
    ));
    let tp = "/v4/live_engine_http_srv/";
    let structured = vec![
        // huge, negative and fractional numbers where integers belong
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}get_room_metadata"), "body": {"RoomId": "r1"}, "now": -1}),
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}get_room_metadata"), "body": {"RoomId": "r1"}, "now": 1.5}),
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}get_room_metadata"), "body": {"RoomId": "r1"}, "now": "5"}),
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}get_room_metadata"), "body": {"RoomId": "r1"}, "now": 1e300}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [{"Action": 1e30, "Key": "k"}]}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [{"Action": -0.0, "Key": "k"}]}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [{"Action": 0, "Key": "k", "AutoDelete": 18446744073709551615u64}]}}),
        // non-numeric, overflowing and odd NetEase room ids
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "thirty-six", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "36.0", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": " 36", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "9223372036854775808", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "1e400", "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": {"id": 36}, "key": "k", "value": "v"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": "roomid=36&key=k&value=v"}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueBatchOffer.action",
               "form": {"roomid": "36", "elements": "[{\"key\":\"k\",\"value\":\"v\"},"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueBatchOffer.action",
               "form": {"roomid": "36", "elements": "{\"key\":\"k\"}"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueBatchOffer.action",
               "form": {"roomid": "36", "elements": "[{\"key\":\"k\",\"value\":\"v\",\"transient\":\"yes\"}]"}}),
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "36", "key": "k", "value": "v", "highPriority": "99999999999999999999"}}),
        // unknown paths, methods, vendors, actions
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}set_room_metadata/extra"), "body": {"RoomId": "r1"}}),
        json!({"vendor": "tencent", "method": "PATCH", "path": format!("{tp}set_room_metadata"), "body": {"RoomId": "r1"}}),
        json!({"vendor": "tencent", "method": 5, "path": format!("{tp}set_room_metadata")}),
        json!({"vendor": "tencent", "method": "POST", "path": ["x"]}),
        json!({"vendor": "tencent", "method": "POST"}),
        json!({"vendor": "tencent", "path": "/"}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/", "body": {"metaData": {"k": "v"}}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u1/forced/more", "body": {"metaData": {"k": "v"}}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u%ZZ", "body": {"metaData": {"k": "v"}}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u%FF", "body": {"metaData": {"k": "v"}}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "", "body": {"metaData": {"k": "v"}}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=%", "body": {"RoomId": "r1"}}),
        json!({"vendor": "zego", "method": "POST", "path": "/v2", "query": {"Action": "ModifyRoomAttribute"}}),
        json!({"vendor": "zego", "method": "POST", "path": "/", "query": ["Action"]}),
        json!({"vendor": "zego", "method": "POST", "path": "/", "query": {"Action": {"x": 1}}}),
        json!({"vendor": "ZEGO", "method": "POST", "path": "/?Action=ModifyRoomAttribute"}),
        // wrong body types
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}set_room_metadata"), "body": "RoomId=r1"}),
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}set_room_metadata"), "body": {"RoomId": "r1", "Metadata": {"k": "v"}}}),
        json!({"vendor": "tencent", "method": "POST", "path": format!("{tp}set_room_metadata"), "body": {"RoomId": "r1", "Metadata": [["k", "v"]]}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u1", "body": {"metaData": {"k": null}}}),
        json!({"vendor": "easemob", "method": "PUT", "path": "/o/a/metadata/chatroom/r1/user/u1", "body": {"metaData": {"k": "v"}, "autoDelete": true}}),
        json!({"vendor": "agora_chat", "method": "DELETE", "path": "/o/a/metadata/chatroom/r1/user/u1", "body": {"keys": [1, 2]}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute", "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [null]}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute", "body": {"RoomId": "r1", "FromUserId": "u", "Attributes": [{"Action": "0", "Key": "k"}]}}),
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute", "body": {"RoomId": "r1", "FromUserId": "u".repeat(33), "Attributes": [{"Action": 0, "Key": "k"}]}}),
        // control lines with bad fields
        json!({"vendor": "tencent", "control": "create_room", "room": "r2"}),
        json!({"vendor": "tencent", "control": "create_room", "room": 5, "creator": "c"}),
        json!({"vendor": "tencent", "control": "destroy_room", "room": "r1"}),
        json!({"vendor": "tencent", "control": ["join"], "room": "r1", "user": "u"}),
        json!({"vendor": "tencent", "control": "set_role", "room": "r1", "user": "u", "role": "creator"}),
        json!({"vendor": "tencent", "control": "set_role", "room": "r1", "user": "host", "role": "admin"}),
        json!({"vendor": "netease", "control": "join", "room": "not-a-number", "user": "u"}),
        json!({"vendor": "easemob", "control": "leave", "room": "r1", "user": "nobody"}),
        json!({"vendor": "easemob", "control": "join", "room": "no-room", "user": "u"}),
        json!({"vendor": "zego", "control": "create_room", "room": "", "creator": "c"}),
    ];
    lines.extend(structured.iter().map(Value::to_string));
    // Every proper prefix of every valid line is malformed JSON.
    for v in valid_lines() {
        let text = v.to_string();
        for (i, _) in text.char_indices() {
            lines.push(text[..i].to_string());
        }
    }
    lines
}

fn assert_one_line(out: &str, line: &str) -> Value {
    assert!(!out.contains('\n'), "output has a newline for {line:?}");
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("bad output {out:?}: {e}"));
    let status = v["status"].as_u64().unwrap();
    assert!((200..600).contains(&status), "status {status}");
    assert!(v["body"].is_object(), "body of {out}");
    v
}

/// The replay clock is the last `now` a well-formed line gave: a line
/// without one keeps it, and a malformed line's `now` is not taken.
#[test]
fn the_replay_clock_follows_well_formed_lines_only() {
    let mut r = Replayer::new();
    assert_eq!(r.now(), 0);
    let create = json!({"vendor": "easemob", "control": "create_room", "room": "c",
        "creator": "host", "now": 5_000});
    assert_eq!(
        replay_line(&mut r, &create.to_string()),
        r#"{"status":200,"body":{}}"#
    );
    assert_eq!(r.now(), 5_000);
    let join = json!({"vendor": "easemob", "control": "join", "room": "c", "user": "u1"});
    replay_line(&mut r, &join.to_string());
    assert_eq!(r.now(), 5_000);
    let bad = json!({"vendor": "easemob", "control": "no_such_control", "now": 9_000});
    let out = replay_line(&mut r, &bad.to_string());
    assert!(out.starts_with(r#"{"status":4"#), "{out}");
    assert_eq!(r.now(), 5_000);
    let join = json!({"vendor": "easemob", "control": "join", "room": "c", "user": "u2",
        "now": 7_000});
    replay_line(&mut r, &join.to_string());
    assert_eq!(r.now(), 7_000);
}

#[test]
fn malformed_lines_change_nothing_and_answer_once() {
    let mut r = setup();
    let before = state(&r);
    let lines = malformed_lines();
    assert!(lines.len() > 500);
    for line in &lines {
        let out = replay_line(&mut r, line);
        let v = assert_one_line(&out, line);
        assert_ne!(v["body"]["ActionStatus"], "OK", "{line}");
        assert_ne!(v["body"]["Code"], 0, "{line}");
        assert_ne!(v["body"]["code"], 200, "{line}");
        assert!(v["body"].get("data").is_none(), "{line}");
        assert_eq!(state(&r), before, "state changed by {line:?}");
    }
}

#[test]
fn parameter_errors_are_the_vendors_own() {
    let mut r = setup();
    let cases = [
        ("tencent", "ErrorCode", 100_002u64),
        ("netease", "code", 414),
        ("zego", "Code", 660_000_002),
    ];
    for (vendor, field, code) in cases {
        let line = format!("{{\"vendor\":\"{vendor}\",\"method\":\"POST\",\"path\":");
        let v = assert_one_line(&replay_line(&mut r, &line), &line);
        assert_eq!(v["status"], 200);
        assert_eq!(v["body"][field], code, "{vendor}");
    }
    for vendor in ["easemob", "agora_chat"] {
        let line = format!("{{\"vendor\":\"{vendor}\",\"method\":\"PUT\"");
        let v = assert_one_line(&replay_line(&mut r, &line), &line);
        assert_eq!(v["status"], 400);
        assert_eq!(v["body"]["error"], "illegal_argument");
    }
    // Unknown path: the parameter error with HTTP 404.
    for (vendor, path) in [
        ("tencent", "/v4/other"),
        ("easemob", "/o/a/users"),
        ("netease", "/nimserver/chatroom/queueNope.action"),
        ("zego", "/?Action=Nope"),
    ] {
        let line = json!({"vendor": vendor, "method": "POST", "path": path}).to_string();
        let v = assert_one_line(&replay_line(&mut r, &line), &line);
        assert_eq!(v["status"], 404, "{vendor}");
    }
    // No vendor to speak for: a plain 400.
    let v = assert_one_line(&replay_line(&mut r, "garbage"), "garbage");
    assert_eq!(v["status"], 400);
    assert!(v["body"]["error"].is_string());
}

/// Valid lines with one field swapped for a value of every other JSON type:
/// any outcome is allowed (some swaps are still valid requests), but each
/// gives exactly one line and no panic.
#[test]
fn every_field_of_every_type() {
    let mut r = setup();
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(18446744073709551615u64),
        json!(1.5e300),
        json!(""),
        json!("x"),
        json!([]),
        json!(["k"]),
        json!({}),
        json!({"k": "v"}),
    ];
    let mut count = 0;
    for base in valid_lines() {
        let mut paths: Vec<Vec<String>> = Vec::new();
        collect_paths(&base, &mut Vec::new(), &mut paths);
        for path in paths {
            for rep in &replacements {
                let mut v = base.clone();
                *pointer(&mut v, &path) = rep.clone();
                let line = v.to_string();
                assert_one_line(&replay_line(&mut r, &line), &line);
                count += 1;
            }
        }
    }
    assert!(count > 300, "{count}");
}

fn collect_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if !at.is_empty() {
        out.push(at.clone());
    }
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(k.clone());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                at.push(i.to_string());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    let p: String = path.iter().map(|s| format!("/{s}")).collect();
    v.pointer_mut(&p).unwrap()
}

/// Random lines from a JSON-ish alphabet, from a fixed seed.
#[test]
fn random_lines_never_panic() {
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"",
        "\\",
        "\"vendor\"",
        "\"tencent\"",
        "\"easemob\"",
        "\"agora_chat\"",
        "\"netease\"",
        "\"zego\"",
        "\"method\"",
        "\"POST\"",
        "\"PUT\"",
        "\"DELETE\"",
        "\"path\"",
        "\"/\"",
        "\"/?Action=ModifyRoomAttribute\"",
        "\"/nimserver/chatroom/queueOffer.action\"",
        "\"/v4/live_engine_http_srv/set_room_metadata\"",
        "\"/o/a/metadata/chatroom/r1/user/u1\"",
        "\"form\"",
        "\"body\"",
        "\"query\"",
        "\"now\"",
        "\"control\"",
        "\"join\"",
        "\"room\"",
        "\"r1\"",
        "\"36\"",
        "\"user\"",
        "0",
        "1",
        "-7",
        "1e999",
        "99999999999999999999999",
        "null",
        "true",
        "\"\\u0000\"",
        "\"\\ud800\"",
        "é",
        " ",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut r = setup();
    for _ in 0..5000 {
        let n = (next() % 40) as usize;
        let line: String = (0..n)
            .map(|_| tokens[(next() % tokens.len() as u64) as usize])
            .collect();
        assert_one_line(&replay_line(&mut r, &line), &line);
    }
}
