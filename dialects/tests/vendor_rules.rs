//! Rules each vendor's mapping applies before the engine sees a request:
//! its routes, its id charsets, its required fields, and the wording of the
//! rejections it words itself. Each test here failed a mutant of that rule
//! that every other test let through (cargo-mutants over the vendor files).
//!
//! Two mutants of those files pass and cannot fail: Tencent's
//! `owned_by_other` with `&&` made `||` (it differs only for an admin, whose
//! delete removes every key that exists, so it is never refused as
//! "nothing deleted" while one of its keys is present), and ZEGO's
//! `sub_code` without its `Conflict` arm (a ZEGO write carries no
//! expectation, so no conflict reaches it).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use roomstate::{Millis, Rejection};
use roomstate_dialects::{replay_line, Dialect, Replayer, VendorId};
use serde_json::{json, Value};

/// Replays `line`, returns its `{status, body}`.
fn send(r: &mut Replayer, line: &Value) -> Value {
    serde_json::from_str(&replay_line(r, &line.to_string())).unwrap()
}

/// A replayer with room `room` created by `host` for `vendor`.
fn with_room(vendor: &str, room: &str) -> Replayer {
    let mut r = Replayer::new();
    let made = send(
        &mut r,
        &json!({"vendor": vendor, "control": "create_room", "room": room, "creator": "host"}),
    );
    assert_eq!(made["status"], 200);
    r
}

fn attribute_count(r: &Replayer, vendor: VendorId, room: &str) -> usize {
    r.dialect(vendor)
        .engine()
        .room(room)
        .map_or(0, |v| v.attribute_count())
}

/// Easemob's user routes end in `user/{user}` or `user/{user}/forced`; a
/// path that differs in either fixed segment is no API (404), and writes
/// nothing.
#[test]
fn easemob_routes_match_their_fixed_segments() {
    let mut r = with_room("easemob", "r1");
    let joined = send(
        &mut r,
        &json!({"vendor": "easemob", "control": "join", "room": "r1", "user": "host"}),
    );
    assert_eq!(joined["status"], 200);
    let put = |path: &str| json!({"vendor": "easemob", "method": "PUT", "path": path, "body": {"metaData": {"k": "v"}}});
    for path in [
        "/o/a/metadata/chatroom/r1/usr/host",
        "/o/a/metadata/chatroom/r1/user/host/forcd",
        "/o/a/metadata/chatroom/r1/usr/host/forced",
    ] {
        let out = send(&mut r, &put(path));
        assert_eq!(out["status"], 404, "{path}: {out}");
        assert_eq!(out["body"]["error"], "service_resource_not_found", "{path}");
        assert_eq!(attribute_count(&r, VendorId::Easemob, "r1"), 0, "{path}");
    }
    for path in [
        "/o/a/metadata/chatroom/r1/user/host",
        "/o/a/metadata/chatroom/r1/user/host/forced",
    ] {
        let out = send(&mut r, &put(path));
        assert_eq!(out["status"], 200, "{path}: {out}");
    }
    assert_eq!(attribute_count(&r, VendorId::Easemob, "r1"), 1);
}

/// A NetEase batch offer needs each element's `key` and `value`; either
/// missing is the parameter error naming it, and nothing is queued.
#[test]
fn netease_batch_offer_requires_key_and_value() {
    let mut r = with_room("netease", "36");
    let offer = |elements: &str| {
        json!({"vendor": "netease", "method": "POST", "path": "/nimserver/chatroom/queueBatchOffer.action",
               "form": {"roomid": "36", "elements": elements}})
    };
    for (elements, desc) in [
        (r#"[{"value":"v"}]"#, "elements[0].key is required"),
        (
            r#"[{"key":"a","value":"v"},{"key":"b"}]"#,
            "elements[1].value is required",
        ),
    ] {
        let out = send(&mut r, &offer(elements));
        assert_eq!(out["body"]["code"], 414, "{elements}");
        assert_eq!(out["body"]["desc"], desc);
        let queued = r.dialect(VendorId::NetEase).engine().room("36").unwrap();
        assert_eq!(queued.queue().count(), 0, "{elements}");
    }
    let out = send(&mut r, &offer(r#"[{"key":"a","value":"v"}]"#));
    assert_eq!(out["body"]["code"], 200, "{out}");
}

/// An invalid parameter that did not come from a queue API (here one a
/// server rejects before the engine) reads as itself, not as the queue
/// APIs' `sizeLimit` or `notifyExt` wording.
#[test]
fn netease_words_a_plain_invalid_parameter_plainly() {
    let mut d = Dialect::new(VendorId::NetEase);
    let out = d.rejection(Millis(1), Rejection::InvalidParameter);
    let body: Value = serde_json::from_str(&out.to_line()).unwrap();
    assert_eq!(body["body"]["code"], 414);
    assert_eq!(body["body"]["desc"], "invalid parameter");
}

/// Tencent words a missing membership and a missing permission as its
/// own permission error.
#[test]
fn tencent_words_membership_and_permission_as_its_permission_error() {
    for rejection in [Rejection::NotInRoom, Rejection::NoPermission] {
        let mut d = Dialect::new(VendorId::Tencent);
        let out = d.rejection(Millis(1), rejection);
        let body: Value = serde_json::from_str(&out.to_line()).unwrap();
        assert_eq!(body["body"]["ActionStatus"], "FAIL", "{rejection:?}");
        assert_eq!(
            body["body"]["ErrorInfo"], "no permission to operate room metadata",
            "{rejection:?}"
        );
    }
}

/// ZEGO ids: up to 32 of digits, letters and the seed's punctuation; a
/// user id may also hold a space, a room id may not. Anything else is the
/// parameter error, and nothing is written.
#[test]
fn zego_ids_keep_to_their_charsets() {
    let mut r = with_room("zego", "r1");
    let modify = |room: &str, user: &str| {
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": room, "FromUserId": user,
                        "Attributes": [{"Action": 0, "Key": "k", "Value": "v"}]}})
    };
    for (room, user) in [("r 1", "host"), ("r1", "h*st"), ("r1", "hôst"), ("r1", "")] {
        let out = send(&mut r, &modify(room, user));
        assert_eq!(out["body"]["Code"], 660_000_002, "{room:?} {user:?}: {out}");
        assert_eq!(attribute_count(&r, VendorId::Zego, "r1"), 0);
    }
    let out = send(&mut r, &modify("r1", "host x"));
    assert_eq!(out["body"]["Code"], 0, "{out}");
    assert_eq!(attribute_count(&r, VendorId::Zego, "r1"), 1);
}
