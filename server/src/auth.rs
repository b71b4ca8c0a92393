//! Credentials: each vendor's request authentication, the management
//! API's bearer token, and signed client tokens for WebSocket clients.

use std::time::Duration;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use md5::Md5;
use roomstate_dialects::VendorId;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::config::AuthConfig;

/// Checks a vendor API request's credentials. `query` are the decoded
/// query parameters, `now_secs` the server's Unix time. The error says
/// what is wrong (it goes into the vendor's auth error).
pub fn check_vendor(
    vendor: VendorId,
    auth: &AuthConfig,
    headers: &HeaderMap,
    query: &[(String, String)],
    now_secs: u64,
) -> Result<(), String> {
    let q = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match vendor {
        VendorId::Easemob | VendorId::AgoraChat => {
            let token = h("authorization")
                .and_then(|v| v.trim().strip_prefix("Bearer "))
                .map(str::trim)
                .ok_or("missing Authorization: Bearer <app token>")?;
            if ct_eq(token.as_bytes(), auth.app_token.as_bytes()) {
                Ok(())
            } else {
                Err("app token is not valid".into())
            }
        }
        VendorId::Tencent => {
            let appid = q("sdkappid").ok_or("sdkappid is required")?;
            if appid != auth.tencent_sdkappid {
                return Err(format!("sdkappid {appid} is not this app's"));
            }
            let identifier = q("identifier").ok_or("identifier is required")?;
            let sig = q("usersig").ok_or("usersig is required")?;
            match auth.tencent_usersigs.get(identifier) {
                Some(want) if ct_eq(sig.as_bytes(), want.as_bytes()) => Ok(()),
                _ => Err(format!("usersig of {identifier} is not valid")),
            }
        }
        VendorId::NetEase => {
            let key = h("appkey").ok_or("AppKey header is required")?;
            let nonce = h("nonce").ok_or("Nonce header is required")?;
            let cur = h("curtime").ok_or("CurTime header is required")?;
            let sum = h("checksum").ok_or("CheckSum header is required")?;
            if !ct_eq(key.as_bytes(), auth.netease_app_key.as_bytes()) {
                return Err("AppKey is not valid".into());
            }
            fresh(cur, now_secs, auth.signature_window, "CurTime")?;
            let want = sha1_hex(&[
                auth.netease_app_secret.as_bytes(),
                nonce.as_bytes(),
                cur.as_bytes(),
            ]);
            if ct_eq(sum.to_ascii_lowercase().as_bytes(), want.as_bytes()) {
                Ok(())
            } else {
                Err("CheckSum is not valid".into())
            }
        }
        VendorId::Zego => {
            let app = q("AppId").ok_or("AppId is required")?;
            let nonce = q("SignatureNonce").ok_or("SignatureNonce is required")?;
            let ts = q("Timestamp").ok_or("Timestamp is required")?;
            let sig = q("Signature").ok_or("Signature is required")?;
            if app != auth.zego_app_id {
                return Err(format!("AppId {app} is not this app's"));
            }
            fresh(ts, now_secs, auth.signature_window, "Timestamp")?;
            let want = md5_hex(&[
                app.as_bytes(),
                nonce.as_bytes(),
                auth.zego_server_secret.as_bytes(),
                ts.as_bytes(),
            ]);
            if ct_eq(sig.to_ascii_lowercase().as_bytes(), want.as_bytes()) {
                Ok(())
            } else {
                Err("Signature is not valid".into())
            }
        }
    }
}

fn fresh(text: &str, now_secs: u64, window: Duration, what: &str) -> Result<(), String> {
    let t: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{what} must be Unix seconds"))?;
    if t.abs_diff(now_secs) > window.as_secs() {
        return Err(format!("{what} is stale or in the future"));
    }
    Ok(())
}

/// The management API's `Authorization: Bearer <admin token>`.
#[must_use]
pub fn check_admin(auth: &AuthConfig, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .is_some_and(|t| ct_eq(t.trim().as_bytes(), auth.admin_token.as_bytes()))
}

/// NetEase's CheckSum: lower-case hex SHA1 of AppSecret + Nonce + CurTime.
#[must_use]
pub fn netease_checksum(secret: &str, nonce: &str, curtime: &str) -> String {
    sha1_hex(&[secret.as_bytes(), nonce.as_bytes(), curtime.as_bytes()])
}

/// ZEGO's Signature: lower-case hex MD5 of AppId + SignatureNonce +
/// ServerSecret + Timestamp.
#[must_use]
pub fn zego_signature(app_id: &str, nonce: &str, secret: &str, timestamp: &str) -> String {
    md5_hex(&[
        app_id.as_bytes(),
        nonce.as_bytes(),
        secret.as_bytes(),
        timestamp.as_bytes(),
    ])
}

fn sha1_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 15] {
            s.extend(char::from_digit(u32::from(nibble), 16));
        }
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

/// Equality that takes the same time wherever the inputs differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

type HmacSha256 = Hmac<Sha256>;

fn token_mac(secret: &str, payload: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(payload.as_bytes());
    Some(mac)
}

/// A client token for `user` in `room`, valid until `expires_ms` (Unix
/// milliseconds): `hex(room).hex(user).expires_ms.hex(HMAC-SHA256)`, the
/// MAC over the first three parts joined by `|`. Hex keeps any id
/// URL-safe and the MAC input unambiguous.
#[must_use]
pub fn make_token(secret: &str, room: &str, user: &str, expires_ms: u64) -> String {
    let payload = format!(
        "{}|{}|{expires_ms}",
        hex(room.as_bytes()),
        hex(user.as_bytes())
    );
    let mac = token_mac(secret, &payload)
        .map(|m| hex(&m.finalize().into_bytes()))
        .unwrap_or_default();
    format!(
        "{}.{}.{expires_ms}.{mac}",
        hex(room.as_bytes()),
        hex(user.as_bytes())
    )
}

/// The room and user of a valid, unexpired client token.
pub fn verify_token(
    secret: &str,
    token: &str,
    now_ms: u64,
) -> Result<(String, String), &'static str> {
    let mut parts = token.split('.');
    let (Some(room_hex), Some(user_hex), Some(exp), Some(mac_hex), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("malformed token");
    };
    let expires: u64 = exp.parse().map_err(|_| "malformed token")?;
    let given = unhex(mac_hex).ok_or("malformed token")?;
    let mac = token_mac(secret, &format!("{room_hex}|{user_hex}|{expires}")).ok_or("bad key")?;
    mac.verify_slice(&given)
        .map_err(|_| "token signature is not valid")?;
    if expires <= now_ms {
        return Err("token expired");
    }
    let room = unhex(room_hex).and_then(|b| String::from_utf8(b).ok());
    let user = unhex(user_hex).and_then(|b| String::from_utf8(b).ok());
    match (room, user) {
        (Some(r), Some(u)) if !r.is_empty() && !u.is_empty() => Ok((r, u)),
        _ => Err("malformed token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_and_a_forged_one_does_not() {
        let t = make_token("k", "room|1", "u", 2_000);
        assert_eq!(
            verify_token("k", &t, 1_000),
            Ok(("room|1".into(), "u".into()))
        );
        assert_eq!(verify_token("k", &t, 2_000), Err("token expired"));
        assert!(verify_token("other", &t, 1_000).is_err());
        let forged = t.replacen(&hex(b"room|1"), &hex(b"room|2"), 1);
        assert_eq!(
            verify_token("k", &forged, 1_000),
            Err("token signature is not valid")
        );
    }

    #[test]
    fn a_signed_token_with_an_empty_room_or_user_is_refused() {
        for (room, user) in [("", "u"), ("r", ""), ("", "")] {
            let t = make_token("k", room, user, 2_000);
            assert_eq!(verify_token("k", &t, 1_000), Err("malformed token"));
        }
        assert_eq!(
            verify_token("k", &make_token("k", "r", "u", 2_000), 1_000),
            Ok(("r".into(), "u".into()))
        );
    }

    #[test]
    fn a_signed_time_exactly_one_window_away_is_still_fresh() {
        let window = Duration::from_secs(300);
        for t in ["700", "1300", " 1000 "] {
            assert_eq!(fresh(t, 1_000, window, "CurTime"), Ok(()), "{t}");
        }
        for t in ["699", "1301"] {
            assert_eq!(
                fresh(t, 1_000, window, "CurTime"),
                Err("CurTime is stale or in the future".into()),
                "{t}"
            );
        }
        assert_eq!(
            fresh("-5", 1_000, window, "Timestamp"),
            Err("Timestamp must be Unix seconds".into())
        );
    }

    #[test]
    fn netease_checksum_is_sha1_hex_of_secret_nonce_curtime() {
        // sha1("abc") is a published test vector.
        assert_eq!(
            netease_checksum("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
