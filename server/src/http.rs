//! The HTTP routes: each vendor's REST API (everything not below), the
//! management API under `/admin`, `/ws`, `/healthz` and `/metrics`.
//!
//! A vendor request is turned into a [`Request`] (method, path, decoded
//! query, form fields, JSON body) and answered by the room's shard; the
//! dialect is the single source of vendor semantics. Transport problems
//! get the vendor's own error, rendered by a dialect that runs no command:
//! a missing or wrong credential its auth error, bad bytes or a wrong
//! content type its parameter error (HTTP 413 for a body over
//! [`limits::MAX_BODY_BYTES`], 415 for a content type, 408 for a body
//! that does not arrive in time), a full shard queue its rate-limit error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{delete, get, post};
use axum::Router;
use roomstate::Millis;
use roomstate_dialects::{percent_decode, Control, Dialect, Json, Request, Response, VendorId};
use tokio::sync::oneshot;

use crate::auth;
use crate::config::Config;
use crate::engine_api;
use crate::limits;
use crate::metrics as m;
use crate::shard::{busy, shard_of, AdminAction, Job, ShardHandle};
use crate::ws;

/// What every handler shares.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The shards, by index.
    pub shards: Vec<ShardHandle>,
    /// Renders transport errors in the vendor's words; runs no command.
    pub front: Mutex<Dialect>,
    /// Next WebSocket subscriber id.
    pub next_conn: AtomicU64,
}

impl App {
    /// The shard of a room (canonical id).
    #[must_use]
    pub fn shard(&self, room: &str) -> Option<&ShardHandle> {
        self.shards.get(shard_of(room, self.shards.len()))
    }

    fn front<T>(&self, f: impl FnOnce(&mut Dialect) -> T) -> Option<T> {
        self.front.lock().ok().map(|mut d| f(&mut d))
    }
}

/// Unix time in milliseconds.
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The router.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/admin/rooms", post(admin_create))
        .route("/admin/rooms/{room}", delete(admin_destroy))
        .route(
            "/admin/rooms/{room}/members/{user}",
            post(admin_join).delete(admin_leave),
        )
        .route("/admin/tokens", post(admin_token))
        .route("/ws", get(ws::handler))
        .fallback(vendor)
        .with_state(app)
}

async fn metrics() -> HttpResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m::render(),
    )
        .into_response()
}

/// A vendor response as HTTP.
pub fn to_http(r: &Response) -> HttpResponse {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        r.body.to_text(),
    )
        .into_response()
}

fn with_status(mut r: HttpResponse, status: StatusCode) -> HttpResponse {
    *r.status_mut() = status;
    r
}

fn fallback_error(status: StatusCode) -> HttpResponse {
    status.into_response()
}

/// Why a request body was not taken.
enum BodyError {
    TooLarge,
    Timeout,
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<bytes::Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits::MAX_BODY_BYTES as u64) {
        return Err(BodyError::TooLarge);
    }
    match tokio::time::timeout(
        limits::BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, limits::MAX_BODY_BYTES),
    )
    .await
    {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Timeout),
    }
}

fn parse_pairs(text: &str) -> Option<Vec<(String, String)>> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k, true)?, percent_decode(v, true)?))
        })
        .collect()
}

/// The vendor API name of a request, for metrics (a fixed set of names).
fn api_name(
    vendor: VendorId,
    method: &Method,
    path: &str,
    query: &[(String, String)],
) -> &'static str {
    const NAMES: [&str; 13] = [
        "set_room_metadata",
        "get_room_metadata",
        "del_room_metadata",
        "delete_room_metadata",
        "queueOffer.action",
        "queueBatchOffer.action",
        "queueBatchUpdateElements.action",
        "queueList.action",
        "queuePoll.action",
        "queueMultiGet.action",
        "queueInit.action",
        "queueDrop.action",
        "forced",
    ];
    match vendor {
        VendorId::Zego => {
            let action = query
                .iter()
                .rev()
                .find(|(k, _)| k == "Action")
                .map(|(_, v)| v.as_str());
            match action {
                Some("ModifyRoomAttribute") => "ModifyRoomAttribute",
                Some("QueryRoomAttributes" | "QueryRoomAttribute") => "QueryRoomAttributes",
                _ => "other",
            }
        }
        VendorId::Easemob | VendorId::AgoraChat => {
            let forced = path.ends_with("/forced");
            match (method.as_str(), forced) {
                ("PUT", false) => "set",
                ("PUT", true) => "forced_set",
                ("POST", _) => "get",
                ("DELETE", false) => "delete",
                ("DELETE", true) => "forced_delete",
                _ => "other",
            }
        }
        VendorId::Tencent | VendorId::NetEase => {
            let last = path.rsplit('/').next().unwrap_or("");
            NAMES.into_iter().find(|n| *n == last).unwrap_or("other")
        }
    }
}

/// The room a vendor request names (canonical), to pick its shard.
fn room_of(vendor: VendorId, req: &Request) -> Option<String> {
    let raw = match vendor {
        VendorId::Tencent | VendorId::Zego => req
            .body
            .as_ref()
            .and_then(|b| b.get("RoomId"))
            .and_then(Json::as_str)
            .map(str::to_owned),
        VendorId::Easemob | VendorId::AgoraChat => {
            // /{org}/{app}/metadata/chatroom/{id}[/user/{user}[/forced]]
            let mut parts = req.path.split('/').skip(1);
            let (_, _, meta, chat, id) = (
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
                parts.next(),
            );
            match (meta, chat, id) {
                (Some("metadata"), Some("chatroom"), Some(id)) => percent_decode(id, false),
                _ => None,
            }
        }
        VendorId::NetEase => req.form("roomid").map(str::to_owned),
    }?;
    Some(engine_api::canonical_room(vendor, &raw))
}

fn content_type_ok(vendor: VendorId, headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(ct) = ct.to_str() else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match vendor {
        VendorId::NetEase => mime == "application/x-www-form-urlencoded",
        _ => mime == "application/json" || mime.ends_with("+json"),
    }
}

/// Every vendor API path.
async fn vendor(State(app): State<Arc<App>>, request: axum::extract::Request) -> HttpResponse {
    let vendor_id = app.config.vendor;
    let (parts, body) = request.into_parts();
    let now = Millis(now_ms());
    let path = parts.uri.path().to_owned();
    let query = match parts.uri.query().map(parse_pairs) {
        None => Vec::new(),
        Some(Some(q)) => q,
        Some(None) => {
            m::rejection("bad_input");
            return front_bad_input(&app, now, "bad percent-encoding in the query string", None);
        }
    };
    let api = api_name(vendor_id, &parts.method, &path, &query);
    if let Err(why) = auth::check_vendor(
        vendor_id,
        &app.config.auth,
        &parts.headers,
        &query,
        now.0 / 1000,
    ) {
        m::rejection("auth");
        m::request(vendor_id.name(), api, 401);
        return match app.front(|d| d.unauthorized(now, &why)) {
            Some(r) => to_http(&r),
            None => fallback_error(StatusCode::UNAUTHORIZED),
        };
    }
    let bytes = match read_body(&parts.headers, body).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            m::rejection("too_large");
            return front_bad_input(
                &app,
                now,
                &format!("request body over {} bytes", limits::MAX_BODY_BYTES),
                Some(StatusCode::PAYLOAD_TOO_LARGE),
            );
        }
        Err(BodyError::Timeout) => {
            m::rejection("timeout");
            return front_bad_input(
                &app,
                now,
                "request body timed out",
                Some(StatusCode::REQUEST_TIMEOUT),
            );
        }
    };
    if !bytes.is_empty() && !content_type_ok(vendor_id, &parts.headers) {
        m::rejection("bad_input");
        let want = if vendor_id == VendorId::NetEase {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        return front_bad_input(
            &app,
            now,
            &format!("Content-Type must be {want}"),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        );
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        m::rejection("bad_input");
        return front_bad_input(&app, now, "request body is not valid UTF-8", None);
    };
    let mut req = Request::new(vendor_id, parts.method.as_str(), &path);
    req.query = query;
    if vendor_id == VendorId::NetEase {
        match parse_pairs(text) {
            Some(form) => req.form = form,
            None => {
                m::rejection("bad_input");
                return front_bad_input(&app, now, "bad percent-encoding in the form", None);
            }
        }
    } else if !text.trim().is_empty() {
        match Json::parse(text) {
            Ok(Json::Null) => {}
            Ok(json) => req.body = Some(json),
            Err(e) => {
                m::rejection("bad_input");
                return front_bad_input(&app, now, &format!("malformed JSON: {e}"), None);
            }
        }
    }
    let room = room_of(vendor_id, &req).unwrap_or_default();
    let (tx, rx) = oneshot::channel();
    let job = Job::Vendor {
        request: req,
        reply: tx,
    };
    let response = if send_job(&app, &room, job) {
        match rx.await {
            Ok(r) => r,
            Err(_) => return busy_http(&app, now),
        }
    } else {
        {
            m::rejection("busy");
            m::request(vendor_id.name(), api, 429);
            return busy_http(&app, now);
        }
    };
    m::request(vendor_id.name(), api, response.status);
    to_http(&response)
}

/// Offers a job to a room's shard without waiting: `false` when its queue
/// is full or it has stopped.
pub fn send_job(app: &App, room: &str, job: Job) -> bool {
    app.shard(room).is_some_and(|s| s.tx.try_send(job).is_ok())
}

fn busy_http(app: &App, now: Millis) -> HttpResponse {
    to_http(&busy(&app.front, now))
}

fn front_bad_input(
    app: &App,
    now: Millis,
    message: &str,
    status: Option<StatusCode>,
) -> HttpResponse {
    match app.front(|d| d.bad_input(now, message)) {
        Some(r) => match status {
            Some(s) => with_status(to_http(&r), s),
            None => to_http(&r),
        },
        None => fallback_error(status.unwrap_or(StatusCode::BAD_REQUEST)),
    }
}

// ----- the management API -----

fn admin_error(status: StatusCode, message: &str) -> HttpResponse {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

fn admin_denied() -> HttpResponse {
    m::rejection("auth");
    admin_error(
        StatusCode::UNAUTHORIZED,
        "admin credential missing or wrong",
    )
}

/// Reads an admin JSON body with two string members.
async fn admin_body(
    headers: &HeaderMap,
    body: Body,
    a: &str,
    b: &str,
) -> Result<(String, String), Box<HttpResponse>> {
    let bytes = read_body(headers, body).await.map_err(|_| {
        Box::new(admin_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large or too slow",
        ))
    })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(admin_error(
            StatusCode::BAD_REQUEST,
            &format!("malformed JSON: {e}"),
        ))
    })?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                Box::new(admin_error(
                    StatusCode::BAD_REQUEST,
                    &format!("{name} (a non-empty string) is required"),
                ))
            })
    };
    Ok((field(a)?, field(b)?))
}

async fn admin_job(app: &App, room: &str, action: AdminAction) -> HttpResponse {
    let (tx, rx) = oneshot::channel();
    let now = Millis(now_ms());
    if !send_job(app, room, Job::Admin { action, reply: tx }) {
        m::rejection("busy");
        return busy_http(app, now);
    }
    match rx.await {
        Ok(r) => to_http(&r),
        Err(_) => busy_http(app, now),
    }
}

async fn admin_create(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> HttpResponse {
    if !auth::check_admin(&app.config.auth, &headers) {
        return admin_denied();
    }
    let (room, creator) = match admin_body(&headers, body, "room", "creator").await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let canon = engine_api::canonical_room(app.config.vendor, &room);
    admin_job(
        &app,
        &canon,
        AdminAction::Control(Control::CreateRoom { room, creator }),
    )
    .await
}

async fn admin_destroy(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(room): Path<String>,
) -> HttpResponse {
    if !auth::check_admin(&app.config.auth, &headers) {
        return admin_denied();
    }
    let canon = engine_api::canonical_room(app.config.vendor, &room);
    admin_job(&app, &canon, AdminAction::Destroy(canon.clone())).await
}

async fn admin_join(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((room, user)): Path<(String, String)>,
) -> HttpResponse {
    admin_member(&app, &headers, Control::Join { room, user }).await
}

async fn admin_leave(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((room, user)): Path<(String, String)>,
) -> HttpResponse {
    admin_member(&app, &headers, Control::Leave { room, user }).await
}

/// A membership change through the management API.
async fn admin_member(app: &App, headers: &HeaderMap, control: Control) -> HttpResponse {
    if !auth::check_admin(&app.config.auth, headers) {
        return admin_denied();
    }
    let (Control::Join { room, .. } | Control::Leave { room, .. }) = &control else {
        return admin_error(StatusCode::BAD_REQUEST, "not a membership change");
    };
    let canon = engine_api::canonical_room(app.config.vendor, room);
    admin_job(app, &canon, AdminAction::Control(control)).await
}

async fn admin_token(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> HttpResponse {
    if !auth::check_admin(&app.config.auth, &headers) {
        return admin_denied();
    }
    let (room, user) = match admin_body(&headers, body, "room", "user").await {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let ttl = u64::try_from(app.config.auth.token_ttl.as_millis()).unwrap_or(u64::MAX);
    let expires = now_ms().saturating_add(ttl);
    let token = auth::make_token(&app.config.auth.token_secret, &room, &user, expires);
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "token": token, "expires_at_ms": expires, "room": room, "user": user })
            .to_string(),
    )
        .into_response()
}

/// Hands out subscriber ids.
pub fn next_conn_id(app: &App) -> u64 {
    app.next_conn.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use tokio::sync::mpsc;

    fn test_app(vendor: VendorId, queue: usize) -> (App, mpsc::Receiver<Job>) {
        let config = Config::for_tests(vendor);
        let (tx, rx) = mpsc::channel(queue);
        let app = App {
            front: Mutex::new(Dialect::new(vendor)),
            config,
            shards: vec![ShardHandle { tx }],
            next_conn: AtomicU64::new(1),
        };
        (app, rx)
    }

    fn vendor_job() -> Job {
        let (reply, _rx) = oneshot::channel();
        Job::Vendor {
            request: Request::new(VendorId::Easemob, "POST", "/o/a/metadata/chatroom/r"),
            reply,
        }
    }

    #[test]
    fn a_full_shard_queue_refuses_at_once_with_the_vendors_rate_limit_error() {
        let (app, _rx) = test_app(VendorId::Easemob, 1);
        assert!(send_job(&app, "r", vendor_job()));
        assert!(!send_job(&app, "r", vendor_job()), "the queue holds one");
        let r = busy(&app.front, Millis(5));
        assert_eq!(r.status, 429);
        assert_eq!(
            r.body.get("error").and_then(Json::as_str),
            Some("reach_limit")
        );
        // NetEase and Tencent answer in their own words.
        let (ne, _rx) = test_app(VendorId::NetEase, 1);
        let r = busy(&ne.front, Millis(5));
        assert_eq!(
            (r.status, r.body.get("code").and_then(Json::as_u64)),
            (200, Some(416))
        );
        let (t, _rx) = test_app(VendorId::Tencent, 1);
        let r = busy(&t.front, Millis(5));
        assert_eq!(
            r.body.get("ErrorCode").and_then(Json::as_u64),
            Some(100_001)
        );
    }

    #[test]
    fn a_stopped_shard_refuses_too() {
        let (app, rx) = test_app(VendorId::Easemob, 4);
        drop(rx);
        assert!(!send_job(&app, "r", vendor_job()));
    }

    #[test]
    fn rooms_are_found_where_each_vendor_puts_them() {
        let mut easemob = Request::new(
            VendorId::Easemob,
            "PUT",
            "/o/a/metadata/chatroom/r%201/user/u",
        );
        easemob.body = None;
        assert_eq!(room_of(VendorId::Easemob, &easemob).as_deref(), Some("r 1"));
        let mut ne = Request::new(
            VendorId::NetEase,
            "POST",
            "/nimserver/chatroom/queueList.action",
        );
        ne.form = vec![("roomid".into(), "036".into())];
        assert_eq!(room_of(VendorId::NetEase, &ne).as_deref(), Some("36"));
        let mut t = Request::new(
            VendorId::Tencent,
            "POST",
            "/v4/live_engine_http_srv/get_room_metadata",
        );
        t.body = Some(Json::parse(r#"{"RoomId":"live"}"#).unwrap());
        assert_eq!(room_of(VendorId::Tencent, &t).as_deref(), Some("live"));
    }

    #[test]
    fn each_request_is_counted_under_its_vendor_api_name() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let name = |vendor, method: &str, path: &str, query: &[(String, String)]| {
            api_name(
                vendor,
                &Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                query,
            )
        };
        let user = "/o/a/metadata/chatroom/r/user/u";
        let forced = "/o/a/metadata/chatroom/r/user/u/forced";
        for vendor in [VendorId::Easemob, VendorId::AgoraChat] {
            assert_eq!(name(vendor, "PUT", user, &[]), "set");
            assert_eq!(name(vendor, "PUT", forced, &[]), "forced_set");
            assert_eq!(name(vendor, "POST", "/o/a/metadata/chatroom/r", &[]), "get");
            assert_eq!(name(vendor, "DELETE", user, &[]), "delete");
            assert_eq!(name(vendor, "DELETE", forced, &[]), "forced_delete");
            assert_eq!(name(vendor, "GET", user, &[]), "other");
        }
        // ZEGO names its action in the query; the last one given counts.
        let zego = |action: &str| name(VendorId::Zego, "GET", "/", &q(&[("Action", action)]));
        assert_eq!(zego("ModifyRoomAttribute"), "ModifyRoomAttribute");
        assert_eq!(zego("QueryRoomAttributes"), "QueryRoomAttributes");
        assert_eq!(zego("QueryRoomAttribute"), "QueryRoomAttributes");
        assert_eq!(zego("DescribeUsers"), "other");
        let twice = q(&[
            ("Action", "DescribeUsers"),
            ("Action", "ModifyRoomAttribute"),
        ]);
        assert_eq!(
            name(VendorId::Zego, "GET", "/", &twice),
            "ModifyRoomAttribute"
        );
        assert_eq!(name(VendorId::Zego, "GET", "/", &[]), "other");
        // Tencent and NetEase: the path's last segment, from a fixed list.
        let tencent = "/v4/live_engine_http_srv/";
        for api in [
            "set_room_metadata",
            "get_room_metadata",
            "del_room_metadata",
        ] {
            let path = format!("{tencent}{api}");
            assert_eq!(name(VendorId::Tencent, "POST", &path, &[]), api);
        }
        for api in ["queueOffer.action", "queuePoll.action", "queueDrop.action"] {
            let path = format!("/nimserver/chatroom/{api}");
            assert_eq!(name(VendorId::NetEase, "POST", &path, &[]), api);
        }
        let unknown = "/nimserver/chatroom/queueSomething.action";
        assert_eq!(name(VendorId::NetEase, "POST", unknown, &[]), "other");
    }
}
