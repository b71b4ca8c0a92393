//! The seed checks themselves, shared by `dialects/tests/seeds.rs` (replay
//! lines in process) and `server/tests/seeds_http.rs` (the same lines as
//! real HTTP requests sent with `curl`). The crate root that includes this
//! file provides `Replayer`, `replay_line`, `burst` and `HONOURS_NOW`.
//!
//! The seeds' response examples are illustrations (placeholders such as
//! `"errorDesc"`, keys that differ from the request's); each test builds the
//! state that makes the documented answer the right one, then checks every
//! field the document shows: its presence, its type and, where the document
//! fixes it, its value.

use crate::{burst, replay_line, Replayer, HONOURS_NOW};
use serde_json::{json, Value};

fn send(r: &mut Replayer, line: Value) -> (u64, Value) {
    let out = replay_line(r, &line.to_string());
    let v: Value = serde_json::from_str(&out).unwrap();
    (v["status"].as_u64().unwrap(), v["body"].clone())
}

fn ok(r: &mut Replayer, line: Value) {
    let (status, body) = send(r, line);
    assert_eq!((status, body), (200, json!({})));
}

/// The member names of an object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

// ----- Tencent (seed 000) -----

#[test]
fn tencent_set_room_metadata_example() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "tencent", "control": "create_room", "room": "live-room", "creator": "host"}),
    );
    let (status, body) = send(
        &mut r,
        json!({"vendor": "tencent", "method": "POST",
               "path": "/v4/live_engine_http_srv/set_room_metadata",
               "query": {"sdkappid": "88888888", "identifier": "admin", "usersig": "xxx",
                         "random": "99999999", "contenttype": "json"},
               "body": {"RoomId": "live-room", "Metadata": [
                   {"Key": "key1", "Value": "value1"}, {"Key": "key2", "Value": "value2"}]}}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        keys(&body),
        ["ActionStatus", "ErrorCode", "ErrorInfo", "RequestId"]
    );
    assert_eq!(body["ActionStatus"], "OK");
    assert_eq!(body["ErrorInfo"], "");
    assert_eq!(body["ErrorCode"], 0);
    assert!(body["RequestId"].as_str().unwrap().starts_with("Id-"));
    // The same URL with the query in the path: the documented form.
    let (_, body) = send(
        &mut r,
        json!({"vendor": "tencent", "method": "POST",
               "path": "/v4/live_engine_http_srv/get_room_metadata?sdkappid=88888888&identifier=admin&usersig=xxx&random=99999999&contenttype=json",
               "body": {"RoomId": "live-room"}}),
    );
    assert_eq!(body["ErrorCode"], 0);
    // Tencent's reference nests the answer: Response.{RoomId, Metadata}.
    assert_eq!(body["Response"]["RoomId"], "live-room");
    assert_eq!(
        body["Response"]["Metadata"],
        json!([{"Key": "key1", "Value": "value1"}, {"Key": "key2", "Value": "value2"}])
    );
    // The reference's delete endpoint, del_room_metadata, as the console's
    // administrator (an App admin identifier).
    let (_, body) = send(
        &mut r,
        json!({"vendor": "tencent", "method": "POST",
               "path": "/v4/live_engine_http_srv/del_room_metadata?sdkappid=88888888&identifier=administrator&usersig=xxx&random=99999999&contenttype=json",
               "body": {"RoomId": "live-room", "Keys": ["key1"]}}),
    );
    assert_eq!(
        keys(&body),
        ["ActionStatus", "ErrorCode", "ErrorInfo", "RequestId"]
    );
    assert_eq!(body["ErrorCode"], 0);
}

// Seed 000's error table: 100500 "The number of keys for room metadata
// exceeds the upper limit of 10". Eleven keys in one request get it, and
// nothing is written.
#[test]
fn tencent_eleven_keys_in_one_request_is_100500() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "tencent", "control": "create_room", "room": "live-room", "creator": "host"}),
    );
    let metadata: Vec<Value> = (0..11)
        .map(|i| json!({"Key": format!("key{i}"), "Value": "v"}))
        .collect();
    let (status, body) = send(
        &mut r,
        json!({"vendor": "tencent", "method": "POST",
               "path": "/v4/live_engine_http_srv/set_room_metadata",
               "query": {"identifier": "admin"},
               "body": {"RoomId": "live-room", "Metadata": metadata}}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["ActionStatus"], "FAIL");
    assert_eq!(body["ErrorCode"], 100_500);
    let (_, body) = send(
        &mut r,
        json!({"vendor": "tencent", "method": "POST",
               "path": "/v4/live_engine_http_srv/get_room_metadata",
               "query": {"identifier": "admin"},
               "body": {"RoomId": "live-room"}}),
    );
    assert_eq!(body["Response"]["Metadata"], json!([]));
}

// ----- Easemob (seed 001) -----

/// A room whose 99 keys leave room for exactly one more (limit 100).
fn almost_full_room(r: &mut Replayer, vendor: &str, room: &str) {
    ok(
        r,
        json!({"vendor": vendor, "control": "create_room", "room": room, "creator": "owner"}),
    );
    ok(
        r,
        json!({"vendor": vendor, "control": "join", "room": room, "user": "filler"}),
    );
    for batch in 0..10 {
        let meta: serde_json::Map<String, Value> = (0..10)
            .map(|i| 10 * batch + i)
            .filter(|n| *n < 99)
            .map(|n| (format!("fill{n:02}"), json!("v")))
            .collect();
        let (status, body) = send(
            r,
            json!({"vendor": vendor, "method": "PUT",
                   "path": format!("/org/app/metadata/chatroom/{room}/user/filler"),
                   "body": {"metaData": meta, "autoDelete": "NO_DELETE"}}),
        );
        assert_eq!(status, 200);
        assert_eq!(body["data"]["errorKeys"], json!({}));
    }
}

#[test]
fn easemob_forced_set_example_partial_success() {
    let mut r = Replayer::new();
    almost_full_room(&mut r, "easemob", "662XXXX13");
    ok(
        &mut r,
        json!({"vendor": "easemob", "control": "join", "room": "662XXXX13", "user": "user1"}),
    );
    let (status, body) = send(
        &mut r,
        json!({"vendor": "easemob", "method": "PUT",
               "path": "/XXXX/XXXX/metadata/chatroom/662XXXX13/user/user1/forced",
               "body": {"metaData": {"key1": "value1", "key2": "value2"}, "autoDelete": "DELETE"},
               "now": 1_720_769_458_528u64}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"]["successKeys"], json!(["key1"]));
    let errors = body["data"]["errorKeys"].as_object().unwrap();
    assert_eq!(keys(&body["data"]["errorKeys"]), ["key2"]);
    assert!(errors["key2"]
        .as_str()
        .unwrap()
        .contains("exceeding maximum limit 100"));
    // The envelope of the seed's second example.
    assert_eq!(body["uri"], "/XXXX/XXXX/metadata/chatroom");
    if HONOURS_NOW {
        assert_eq!(body["timestamp"], 1_720_769_458_528u64);
    } else {
        assert!(body["timestamp"].is_u64());
    }
    assert_eq!(body["action"], "put");
}

#[test]
fn easemob_all_keys_failing_is_still_200() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "easemob", "control": "create_room", "room": "r", "creator": "u"}),
    );
    ok(
        &mut r,
        json!({"vendor": "easemob", "control": "join", "room": "r", "user": "user1"}),
    );
    let k1 = format!("key1{}", "x".repeat(125));
    let k2 = format!("key2{}", "x".repeat(125));
    let (status, body) = send(
        &mut r,
        json!({"vendor": "easemob", "method": "PUT",
               "path": "/easemob-demo/chatdemoui/metadata/chatroom/r/user/user1",
               "body": {"metaData": {k1.clone(): "value1", k2.clone(): "value2"}},
               "now": 1_720_769_458_528u64}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["uri"], "/easemob-demo/chatdemoui/metadata/chatroom");
    if HONOURS_NOW {
        assert_eq!(body["timestamp"], 1_720_769_458_528u64);
    } else {
        assert!(body["timestamp"].is_u64());
    }
    assert_eq!(body["action"], "put");
    assert_eq!(body["data"]["successKeys"], json!([]));
    assert_eq!(
        body["data"]["errorKeys"],
        json!({
            k1.clone(): format!("properties key '{k1}' is exceeding maximum limit 128"),
            k2.clone(): format!("properties key '{k2}' is exceeding maximum limit 128"),
        })
    );
}

#[test]
fn easemob_documented_http_errors() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "easemob", "control": "create_room", "room": "662XXXX13", "creator": "u"}),
    );
    ok(
        &mut r,
        json!({"vendor": "easemob", "control": "join", "room": "662XXXX13", "user": "user1"}),
    );
    let meta: serde_json::Map<String, Value> =
        (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, body) = send(
        &mut r,
        json!({"vendor": "easemob", "method": "PUT",
               "path": "/XXXX/XXXX/metadata/chatroom/662XXXX13/user/user1/forced",
               "body": {"metaData": meta}}),
    );
    assert_eq!(status, 400);
    assert_eq!(body["error_description"], "exceed allowed batch size 10");
    let (status, body) = send(
        &mut r,
        json!({"vendor": "easemob", "method": "PUT",
               "path": "/XXXX/XXXX/metadata/chatroom/662XXXX13/user/stranger/forced",
               "body": {"metaData": {"key1": "value1"}}}),
    );
    assert_eq!(status, 401);
    assert_eq!(body["error"], "MetadataException");
    assert_eq!(body["error_description"], "user is not in chatroom");
}

// ----- Agora Chat (seed 002) -----

const AGORA_USER1: &str = "/XXXX/XXXX/metadata/chatroom/662XXXX13/user/user1";

fn agora_room() -> Replayer {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "agora_chat", "control": "create_room", "room": "662XXXX13", "creator": "host"}),
    );
    for u in ["user1", "user2"] {
        ok(
            &mut r,
            json!({"vendor": "agora_chat", "control": "join", "room": "662XXXX13", "user": u}),
        );
    }
    // user2 owns key2, so user1's unforced calls fail on it.
    let (status, _) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "PUT",
               "path": "/XXXX/XXXX/metadata/chatroom/662XXXX13/user/user2",
               "body": {"metaData": {"key2": "value2"}}}),
    );
    assert_eq!(status, 200);
    r
}

fn assert_one_each(body: &Value) {
    assert_eq!(
        keys(body),
        ["action", "data", "duration", "timestamp", "uri"]
    );
    assert_eq!(keys(&body["data"]), ["errorKeys", "successKeys"]);
    assert_eq!(body["data"]["successKeys"], json!(["key1"]));
    assert_eq!(keys(&body["data"]["errorKeys"]), ["key2"]);
    assert!(body["data"]["errorKeys"]["key2"].is_string());
    assert!(body["timestamp"].is_u64());
    assert!(body["duration"].is_u64());
}

#[test]
fn agora_set_get_delete_examples() {
    let mut r = agora_room();
    // Set: key1 written, key2 belongs to user2.
    let (status, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "PUT", "path": AGORA_USER1,
               "body": {"metaData": {"key1": "value1", "key2": "value2"}, "autoDelete": "DELETE"}}),
    );
    assert_eq!(status, 200);
    assert_one_each(&body);
    assert_eq!(body["action"], "put");
    // Get.
    let (status, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "POST",
               "path": "/XXXX/XXXX/metadata/chatroom/662XXXX13",
               "body": {"keys": ["key1", "key2"]}}),
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!({"key1": "value1", "key2": "value2"}));
    // Delete: user1 may delete only its own key.
    let (status, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "DELETE", "path": AGORA_USER1,
               "body": {"keys": ["key1", "key2"]}}),
    );
    assert_eq!(status, 200);
    assert_one_each(&body);
    assert_eq!(body["action"], "delete");
}

#[test]
fn agora_forced_set_example() {
    let mut r = Replayer::new();
    almost_full_room(&mut r, "agora_chat", "662XXXX13");
    ok(
        &mut r,
        json!({"vendor": "agora_chat", "control": "join", "room": "662XXXX13", "user": "user1"}),
    );
    let (status, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "PUT", "path": format!("{AGORA_USER1}/forced"),
               "body": {"metaData": {"key1": "value1", "key2": "value2"}, "autoDelete": "DELETE"}}),
    );
    assert_eq!(status, 200);
    assert_one_each(&body);
}

#[test]
fn agora_forced_delete_example() {
    let mut r = agora_room();
    let (status, _) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "PUT", "path": AGORA_USER1,
               "body": {"metaData": {"key1": "value1"}}}),
    );
    assert_eq!(status, 200);
    // key2 is gone by the time of the forced delete, which fails on it.
    let (_, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "DELETE", "path": format!("{AGORA_USER1}/forced"),
               "body": {"keys": ["key2"]}}),
    );
    assert_eq!(body["data"]["successKeys"], json!(["key2"]));
    let (status, body) = send(
        &mut r,
        json!({"vendor": "agora_chat", "method": "DELETE", "path": format!("{AGORA_USER1}/forced"),
               "body": {"keys": ["key1", "key2"]}}),
    );
    assert_eq!(status, 200);
    assert_one_each(&body);
}

// ----- NetEase (seed 003) -----

fn ne(api: &str, form: Value) -> Value {
    json!({"vendor": "netease", "method": "POST",
           "path": format!("/nimserver/chatroom/{api}.action"), "form": form})
}

#[test]
fn netease_offer_examples() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "36", "creator": "host"}),
    );
    let (status, body) = send(
        &mut r,
        ne(
            "queueOffer",
            json!({"roomid": "36", "key": "1111", "value": "66666"}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(body, json!({"desc": {}, "code": 200}));
    // The failure example: a room that does not exist.
    let (status, body) = send(
        &mut r,
        ne(
            "queueOffer",
            json!({"roomid": "35", "key": "1111", "value": "66666"}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(body, json!({"code": 414, "desc": "roomid not exsit"}));
}

#[test]
fn netease_batch_offer_examples() {
    let elements =
        r#"[{"key":"key01","value":"{\"priority\":10}","accid":"user01","transient":true}]"#;
    let form = json!({"roomid": "64", "operator": "user01", "transient": "false",
                      "needNotify": "false", "elements": elements});
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "64", "creator": "host"}),
    );
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "join", "room": "64", "user": "user01"}),
    );
    let (status, body) = send(&mut r, ne("queueBatchOffer", form.clone()));
    assert_eq!(status, 200);
    assert_eq!(body, json!({"code": 200, "desc": {}}));
    // The partial-success example: user01 has left, so its element fails.
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "leave", "room": "64", "user": "user01"}),
    );
    let (status, body) = send(&mut r, ne("queueBatchOffer", form));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code": 200, "desc": {"failedKeys": ["key01"]}})
    );
}

// SPEC §4: NetEase batch offer is best effort. An element whose key is
// over 128 chars (seed 003) fails alone, in `failedKeys`; the others are
// applied.
#[test]
fn netease_batch_offer_bad_element_fails_alone() {
    let long = "k".repeat(129);
    let elements = json!([
        {"key": "good", "value": "v"},
        {"key": long, "value": "v"},
    ])
    .to_string();
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "64", "creator": "host"}),
    );
    let (status, body) = send(
        &mut r,
        ne(
            "queueBatchOffer",
            json!({"roomid": "64", "operator": "host", "elements": elements}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(body, json!({"code": 200, "desc": {"failedKeys": [long]}}));
    let (_, body) = send(&mut r, ne("queueList", json!({"roomid": "64"})));
    assert_eq!(body["desc"]["list"], json!([{"good": "v"}]));
}

#[test]
fn netease_batch_update_example() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "18", "creator": "zhouliangwei"}),
    );
    let (_, body) = send(
        &mut r,
        ne(
            "queueOffer",
            json!({"roomid": "18", "key": "k2", "value": "old"}),
        ),
    );
    assert_eq!(body["code"], 200);
    let (status, body) = send(
        &mut r,
        ne(
            "queueBatchUpdateElements",
            json!({"roomid": "18", "operator": "zhouliangwei",
                                              "elements": "{\"k1\":\"v1\",\"k2\":\"v2\"}"}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code": 200, "desc": {"noExistElementKey": ["k1"]}})
    );
}

#[test]
fn netease_list_poll_multiget_examples() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "36", "creator": "host"}),
    );
    for (k, v) in [("1111", "66666"), ("33333", "33333")] {
        let (_, body) = send(
            &mut r,
            ne("queueOffer", json!({"roomid": "36", "key": k, "value": v})),
        );
        assert_eq!(body["code"], 200);
    }
    // The poll example asks for key 333334444 but answers element 1111;
    // this replays the answer: poll 1111.
    let (status, body) = send(
        &mut r,
        ne("queuePoll", json!({"roomid": "36", "key": "1111"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"desc": {"value": "66666", "key": "1111"}, "code": 200})
    );
    let (status, body) = send(&mut r, ne("queueList", json!({"roomid": "36"})));
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"desc": {"list": [{"33333": "33333"}]}, "code": 200})
    );

    ok(
        &mut r,
        json!({"vendor": "netease", "control": "create_room", "room": "64", "creator": "host"}),
    );
    for i in 1..=3 {
        let (_, body) = send(
            &mut r,
            ne(
                "queueOffer",
                json!({"roomid": "64", "key": format!("key{i}"), "value": format!("value{i}")}),
            ),
        );
        assert_eq!(body["code"], 200);
    }
    let (status, body) = send(
        &mut r,
        ne(
            "queueMultiGet",
            json!({"roomid": "64", "keys": "[\"key1\",\"key2\",\"key3\"]"}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"code": 200, "desc": {"list": [{"key1": "value1"}, {"key2": "value2"}, {"key3": "value3"}]}})
    );
}

// ----- ZEGO (seed 004) -----

fn zego_example() -> Value {
    json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
           "body": {"RoomId": "room123", "FromUserId": "fromUserId", "Attributes": [
               {"Action": 0, "Key": "attribute1", "Value": "value1", "AutoDelete": 1},
               {"Action": 1, "Key": "attribute2", "Value": "", "AutoDelete": 0}]}})
}

#[test]
fn zego_modify_room_attribute_example() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "zego", "control": "create_room", "room": "room123", "creator": "host"}),
    );
    // attribute2 does not exist: the response lists it in ErrKeyList.
    let (status, body) = send(&mut r, zego_example());
    assert_eq!(status, 200);
    assert_eq!(keys(&body), ["Code", "ErrKeyList", "Message", "RequestId"]);
    assert_eq!(body["Code"], 0);
    assert_eq!(body["Message"], "success");
    assert!(body["RequestId"].is_string());
    let errs = body["ErrKeyList"].as_array().unwrap();
    assert_eq!(errs.len(), 1);
    assert_eq!(keys(&errs[0]), ["Key", "SubCode"]);
    assert!(errs[0]["SubCode"].is_u64());
    assert_eq!(errs[0]["Key"], "attribute2");
    // With attribute2 present, nothing fails and ErrKeyList is absent.
    let (_, body) = send(
        &mut r,
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "room123", "FromUserId": "fromUserId",
                        "Attributes": [{"Action": 0, "Key": "attribute2", "Value": "x"}]}}),
    );
    assert_eq!(body["Code"], 0);
    let (_, body) = send(&mut r, zego_example());
    assert_eq!(keys(&body), ["Code", "Message", "RequestId"]);
    assert_eq!(body["Code"], 0);
    // Query answers the attributes as [{Key, Value, …}].
    let (_, body) = send(
        &mut r,
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=QueryRoomAttributes",
               "body": {"RoomId": "room123"}}),
    );
    assert_eq!(body["Code"], 0);
    assert_eq!(body["Attributes"][0]["Key"], "attribute1");
    assert_eq!(body["Attributes"][0]["Value"], "value1");
    assert_eq!(body["Attributes"].as_array().unwrap().len(), 1);
}

#[test]
fn zego_documented_return_codes() {
    let mut r = Replayer::new();
    ok(
        &mut r,
        json!({"vendor": "zego", "control": "create_room", "room": "room123", "creator": "host"}),
    );
    let (_, body) = send(
        &mut r,
        json!({"vendor": "zego", "method": "POST", "path": "/?Action=ModifyRoomAttribute",
               "body": {"RoomId": "room123", "FromUserId": "fromUserId", "Attributes": "none"}}),
    );
    assert_eq!(body["Code"], 660_000_002);
    let query = json!({"vendor": "zego", "method": "POST", "path": "/?Action=QueryRoomAttributes",
                       "body": {"RoomId": "room123"}, "now": 1000});
    let codes: Vec<u64> = burst(&mut r, &query, 21)
        .iter()
        .map(|out| {
            let v: Value = serde_json::from_str(out).unwrap();
            v["body"]["Code"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(codes[..20], [0; 20]);
    assert_eq!(codes[20], 660_300_005);
}
