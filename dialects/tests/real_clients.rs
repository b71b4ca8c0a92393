//! What published server SDKs and apps send, checked against the dialects
//! (issue 12, "What real clients send").
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use roomstate::Millis;
use roomstate_dialects::{replay_line, Control, Dialect, Json, Replayer, Request, VendorId};
use serde_json::{json, Value};

fn send(r: &mut Replayer, line: Value) -> (u64, Value) {
    let out = replay_line(r, &line.to_string());
    let v: Value = serde_json::from_str(&out).unwrap();
    (v["status"].as_u64().unwrap(), v["body"].clone())
}

fn tencent(api: &str, identifier: &str, body: Value) -> Value {
    json!({"vendor": "tencent", "method": "POST",
           "path": format!("/v4/live_engine_http_srv/{api}"),
           "query": {"identifier": identifier}, "body": body})
}

fn tencent_room(r: &mut Replayer) {
    send(
        r,
        json!({"vendor": "tencent", "control": "create_room", "room": "lr", "creator": "host"}),
    );
    let (_, body) = send(
        r,
        tencent(
            "set_room_metadata",
            "administrator",
            json!({"RoomId": "lr", "Metadata": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
        ),
    );
    assert_eq!(body["ErrorCode"], 0);
}

#[test]
fn tencent_del_room_metadata_deletes_and_delete_room_metadata_is_an_alias() {
    let mut r = Replayer::new();
    tencent_room(&mut r);
    let (_, body) = send(
        &mut r,
        tencent(
            "del_room_metadata",
            "administrator",
            json!({"RoomId": "lr", "Keys": ["a"]}),
        ),
    );
    assert_eq!(body["ErrorCode"], 0);
    let (_, body) = send(
        &mut r,
        tencent(
            "delete_room_metadata",
            "administrator",
            json!({"RoomId": "lr", "Keys": ["b"]}),
        ),
    );
    assert_eq!(body["ErrorCode"], 0);
    let (_, body) = send(
        &mut r,
        tencent(
            "get_room_metadata",
            "administrator",
            json!({"RoomId": "lr"}),
        ),
    );
    assert_eq!(body["Response"]["Metadata"], json!([]));
}

#[test]
fn tencent_get_nests_room_id_and_metadata_under_response() {
    let mut r = Replayer::new();
    tencent_room(&mut r);
    let (status, body) = send(
        &mut r,
        tencent(
            "get_room_metadata",
            "administrator",
            json!({"RoomId": "lr"}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body["Response"],
        json!({"RoomId": "lr", "Metadata": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]})
    );
    assert!(
        body.get("Metadata").is_none(),
        "no top-level Metadata: {body}"
    );
}

#[test]
fn tencent_admin_identifiers_are_configuration_and_act_as_admin() {
    let mut d = Dialect::new(VendorId::Tencent);
    // Default: the console's `administrator`.
    assert!(d.is_admin_identifier("administrator"));
    assert!(!d.is_admin_identifier("admin"));
    d.set_admin_identifiers(["ops".to_owned()]);
    let now = Millis(0);
    let created = d.control(
        now,
        &Control::CreateRoom {
            room: "lr".into(),
            creator: "host".into(),
        },
    );
    assert_eq!(created.status, 200);
    let req = |identifier: &str, api: &str, body: &str| {
        let mut q = Request::new(
            VendorId::Tencent,
            "POST",
            &format!("/v4/live_engine_http_srv/{api}"),
        );
        q.query = vec![("identifier".into(), identifier.into())];
        q.body = Some(Json::parse(body).unwrap());
        q
    };
    // A user writes a key; "administrator" is now just another user and may
    // not delete it (100006); "ops" is the admin and may.
    let set = d.request(
        now,
        &req(
            "alice",
            "set_room_metadata",
            r#"{"RoomId":"lr","Metadata":[{"Key":"k","Value":"v"}]}"#,
        ),
    );
    assert_eq!(set.body.get("ErrorCode").and_then(Json::as_u64), Some(0));
    let del = r#"{"RoomId":"lr","Keys":["k"]}"#;
    let denied = d.request(now, &req("administrator", "del_room_metadata", del));
    assert_eq!(
        denied.body.get("ErrorCode").and_then(Json::as_u64),
        Some(100_006)
    );
    let allowed = d.request(now, &req("ops", "del_room_metadata", del));
    assert_eq!(
        allowed.body.get("ErrorCode").and_then(Json::as_u64),
        Some(0)
    );
}

#[test]
fn easemob_forced_delete_needs_no_membership_but_forced_set_does() {
    for vendor in ["easemob", "agora_chat"] {
        let mut r = Replayer::new();
        send(
            &mut r,
            json!({"vendor": vendor, "control": "create_room", "room": "r", "creator": "host"}),
        );
        send(
            &mut r,
            json!({"vendor": vendor, "control": "join", "room": "r", "user": "u1"}),
        );
        let (status, _) = send(
            &mut r,
            json!({"vendor": vendor, "method": "PUT", "path": "/o/a/metadata/chatroom/r/user/u1",
                   "body": {"metaData": {"k": "v"}}}),
        );
        assert_eq!(status, 200);
        // Easemob's Java server SDK: forced delete as "admin", in no room.
        let (status, body) = send(
            &mut r,
            json!({"vendor": vendor, "method": "DELETE", "path": "/o/a/metadata/chatroom/r/user/admin/forced",
                   "body": {"keys": ["k"]}}),
        );
        assert_eq!(status, 200, "{vendor}: {body}");
        assert_eq!(body["data"]["successKeys"], json!(["k"]));
        // A forced set still needs the path user in the room (seed 001).
        let (status, body) = send(
            &mut r,
            json!({"vendor": vendor, "method": "PUT", "path": "/o/a/metadata/chatroom/r/user/admin/forced",
                   "body": {"metaData": {"k": "v"}}}),
        );
        assert_eq!(status, 401, "{vendor}: {body}");
        assert_eq!(body["error_description"], "user is not in chatroom");
    }
}

#[test]
fn netease_one_and_zero_are_booleans_anything_else_is_414() {
    let mut r = Replayer::new();
    send(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "36", "creator": "host"}),
    );
    let offer = |transient: &str| {
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
               "form": {"roomid": "36", "key": format!("k{transient}"), "value": "v", "transient": transient}})
    };
    // 1 is true: a transient offer by an operator not in the room is 302.
    assert_eq!(send(&mut r, offer("1")).1["code"], 302);
    assert_eq!(send(&mut r, offer("true")).1["code"], 302);
    // 0 is false: offered.
    assert_eq!(send(&mut r, offer("0")).1["code"], 200);
    let (_, body) = send(&mut r, offer("2"));
    assert_eq!(body["code"], 414);
    assert!(body["desc"].as_str().unwrap().contains("transient"));
}
