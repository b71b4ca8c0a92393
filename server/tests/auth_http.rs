//! Vendor authentication over HTTP: a wrong signature, a stale `CurTime`,
//! a missing token, a wrong UserSig and a wrong ZEGO signature each get
//! the vendor's auth error, change nothing, and are counted in /metrics.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use roomstate_server::auth::{netease_checksum, zego_signature};
use serde_json::{json, Value};
use support::{
    admin, create_room, curl, join, now_secs, prepare, request_args, Server, APP_TOKEN,
    NETEASE_APP_KEY, NETEASE_APP_SECRET, ZEGO_APP_ID, ZEGO_SECRET,
};

/// Sends a request line with the given extra curl arguments (headers) and
/// no vendor credentials of the helper's own.
fn send_unsigned(s: &Server, line: &Value, extra: &[String], url_suffix: &str) -> (u16, Value) {
    let p = prepare(s, line, false);
    let mut args = vec!["-X".to_owned(), p.method];
    args.extend(extra.iter().cloned());
    if let Some((ct, body)) = p.body {
        args.extend([
            "-H".into(),
            format!("Content-Type: {ct}"),
            "--data-binary".into(),
            body,
        ]);
    }
    let sep = if p.target.contains('?') { '&' } else { '?' };
    let url = if url_suffix.is_empty() {
        s.url(&p.target)
    } else {
        format!("{}{sep}{url_suffix}", s.url(&p.target))
    };
    args.push(url);
    let a = curl(&args);
    (a.status, a.json())
}

fn signed(s: &Server, line: &Value) -> (u16, Value) {
    let a = curl(&request_args(s, line, true));
    (a.status, a.json())
}

fn auth_rejections(s: &Server) -> u64 {
    let a = curl(&[s.url("/metrics")]);
    a.body
        .lines()
        .find(|l| l.starts_with("roomstate_rejections_total{class=\"auth\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |n| n.parse().unwrap())
}

fn netease_headers(key: &str, nonce: &str, curtime: &str, checksum: &str) -> Vec<String> {
    vec![
        "-H".into(),
        format!("AppKey: {key}"),
        "-H".into(),
        format!("Nonce: {nonce}"),
        "-H".into(),
        format!("CurTime: {curtime}"),
        "-H".into(),
        format!("CheckSum: {checksum}"),
    ]
}

#[test]
fn netease_wrong_checksum_and_stale_curtime_are_refused_and_change_nothing() {
    let s = Server::start("netease");
    create_room(&s, "36", "host");
    let offer = json!({"method": "POST", "path": "/nimserver/chatroom/queueOffer.action",
                       "form": {"roomid": "36", "key": "k", "value": "v"}});
    let list = json!({"method": "POST", "path": "/nimserver/chatroom/queueList.action",
                      "form": {"roomid": "36"}});
    let now = now_secs().to_string();
    let stale = (now_secs() - 3600).to_string();
    let cases = [
        // Signed with another secret.
        netease_headers(
            NETEASE_APP_KEY,
            "1",
            &now,
            &netease_checksum("wrong", "1", &now),
        ),
        // Right checksum, but CurTime an hour old.
        netease_headers(
            NETEASE_APP_KEY,
            "1",
            &stale,
            &netease_checksum(NETEASE_APP_SECRET, "1", &stale),
        ),
        // Another AppKey.
        netease_headers(
            "other",
            "1",
            &now,
            &netease_checksum(NETEASE_APP_SECRET, "1", &now),
        ),
        // No headers at all.
        vec![],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let (status, body) = send_unsigned(&s, &offer, headers, "");
        assert_eq!(
            (status, body["code"].as_u64()),
            (200, Some(403)),
            "case {i}: {body}"
        );
        assert!(body["desc"].is_string(), "case {i}: {body}");
    }
    assert_eq!(auth_rejections(&s), 4);
    // Nothing was offered.
    let (_, body) = signed(&s, &list);
    assert_eq!(body, json!({"code": 200, "desc": {"list": []}}));
    // The right signature works (so the refusals were about the signature).
    let good = netease_headers(
        NETEASE_APP_KEY,
        "7",
        &now,
        &netease_checksum(NETEASE_APP_SECRET, "7", &now),
    );
    let (_, body) = send_unsigned(&s, &offer, &good, "");
    assert_eq!(body["code"], 200);
}

#[test]
fn easemob_missing_or_wrong_bearer_token_is_401_and_changes_nothing() {
    let s = Server::start("easemob");
    create_room(&s, "r", "host");
    join(&s, "r", "u1");
    let put = json!({"method": "PUT", "path": "/org/app/metadata/chatroom/r/user/u1",
                     "body": {"metaData": {"k": "v"}}});
    for headers in [
        vec![],
        vec!["-H".to_owned(), "Authorization: Bearer nope".to_owned()],
        vec!["-H".to_owned(), format!("Authorization: {APP_TOKEN}")],
    ] {
        let (status, body) = send_unsigned(&s, &put, &headers, "");
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "unauthorized");
    }
    assert_eq!(auth_rejections(&s), 3);
    let get = json!({"method": "POST", "path": "/org/app/metadata/chatroom/r", "body": {}});
    let (status, body) = signed(&s, &get);
    assert_eq!((status, &body["data"]), (200, &json!({})));
}

#[test]
fn tencent_wrong_usersig_identifier_or_sdkappid_is_refused() {
    let s = Server::start("tencent");
    create_room(&s, "live-room", "host");
    let set = json!({"method": "POST", "path": "/v4/live_engine_http_srv/set_room_metadata",
                     "body": {"RoomId": "live-room", "Metadata": [{"Key": "k", "Value": "v"}]}});
    for q in [
        "sdkappid=88888888&identifier=administrator&usersig=wrong",
        "sdkappid=1&identifier=administrator&usersig=xxx",
        "sdkappid=88888888&identifier=mallory&usersig=xxx",
        "sdkappid=88888888&identifier=administrator",
    ] {
        let (status, body) = send_unsigned(&s, &set, &[], q);
        assert_eq!(status, 200);
        assert_eq!(body["ActionStatus"], "FAIL", "{q}: {body}");
        assert_eq!(body["ErrorCode"], 70009, "{q}: {body}");
    }
    assert_eq!(auth_rejections(&s), 4);
    let get = json!({"method": "POST", "path": "/v4/live_engine_http_srv/get_room_metadata",
                     "body": {"RoomId": "live-room"}});
    let (_, body) = signed(&s, &get);
    assert_eq!(body["ErrorCode"], 0, "{body}");
    assert!(!body.to_string().contains("\"Key\":\"k\""), "{body}");
}

#[test]
fn zego_wrong_or_stale_signature_is_refused() {
    let s = Server::start("zego");
    create_room(&s, "room123", "host");
    let modify = json!({"method": "POST", "path": "/?Action=ModifyRoomAttribute",
                        "body": {"RoomId": "room123", "FromUserId": "u",
                                 "Attributes": [{"Action": 0, "Key": "k", "Value": "v"}]}});
    let now = now_secs().to_string();
    let stale = (now_secs() - 3600).to_string();
    let q = |ts: &str, sig: &str| {
        format!("AppId={ZEGO_APP_ID}&SignatureNonce=n1&Timestamp={ts}&Signature={sig}&SignatureVersion=2.0")
    };
    for suffix in [
        q(&now, &zego_signature(ZEGO_APP_ID, "n1", "wrong", &now)),
        q(
            &stale,
            &zego_signature(ZEGO_APP_ID, "n1", ZEGO_SECRET, &stale),
        ),
        String::new(),
    ] {
        let (status, body) = send_unsigned(&s, &modify, &[], &suffix);
        assert_eq!(status, 200);
        assert_eq!(body["Code"], 100_000_004, "{suffix}: {body}");
    }
    assert_eq!(auth_rejections(&s), 3);
    let query = json!({"method": "POST", "path": "/?Action=QueryRoomAttributes",
                       "body": {"RoomId": "room123"}});
    let (_, body) = signed(&s, &query);
    assert_eq!(body["Attributes"], json!([]), "{body}");
}

#[test]
fn the_management_api_needs_the_admin_token() {
    let s = Server::start("easemob");
    for args in [
        vec![
            "-X".to_owned(),
            "POST".to_owned(),
            "-H".to_owned(),
            "Content-Type: application/json".to_owned(),
            "--data-binary".to_owned(),
            r#"{"room":"r","creator":"c"}"#.to_owned(),
            s.url("/admin/rooms"),
        ],
        vec![
            "-X".to_owned(),
            "POST".to_owned(),
            "-H".to_owned(),
            format!("Authorization: Bearer {APP_TOKEN}"),
            "--data-binary".to_owned(),
            r#"{"room":"r","user":"c"}"#.to_owned(),
            s.url("/admin/tokens"),
        ],
    ] {
        let a = curl(&args);
        assert_eq!(a.status, 401, "{}", a.body);
    }
    // The room was not created: creating it now succeeds.
    let a = admin(
        &s,
        "POST",
        "/admin/rooms",
        Some(json!({"room": "r", "creator": "c"})),
    );
    assert_eq!((a.status, a.body.as_str()), (200, "{}"));
}
