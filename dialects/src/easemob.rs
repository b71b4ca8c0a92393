//! Easemob and Agora Chat: chatroom custom attributes (seeds 001, 002).
//!
//! One module for both: the APIs are the same, the profiles differ (Agora
//! values are limited to 4086 characters, Easemob's to 4096).
//!
//! - `PUT    /{org}/{app}/metadata/chatroom/{id}/user/{user}` set
//! - `PUT    …/user/{user}/forced` forced set
//! - `POST   /{org}/{app}/metadata/chatroom/{id}` get (`keys` optional)
//! - `DELETE …/user/{user}` delete, `DELETE …/user/{user}/forced` forced delete

use roomstate::{Actor, Command, Millis, Op, OpError, Rejection, Str, Success, Write};

use crate::json::{obj, Json};
use crate::request::percent_decode;
use crate::{body_obj, member, opt_str_array, rejection_text, str_array, strings};
use crate::{Dialect, Failure, Request, Response};

enum Api {
    Get,
    Set { user: String, forced: bool },
    Delete { user: String, forced: bool },
}

struct Route {
    org: String,
    app: String,
    room: String,
    api: Api,
}

fn route(method: &str, path: &str) -> Option<Route> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<String> = rest
        .split('/')
        .map(|s| percent_decode(s, false))
        .collect::<Option<Vec<_>>>()?;
    if segs.iter().any(String::is_empty) {
        return None;
    }
    let (org, app, tail) = match segs.as_slice() {
        [org, app, m, c, tail @ ..] if m == "metadata" && c == "chatroom" => (org, app, tail),
        _ => return None,
    };
    let (room, api) = match (method, tail) {
        ("POST", [room]) => (room, Api::Get),
        ("PUT" | "DELETE", [room, u, user]) if u == "user" => {
            (room, make(method, user.clone(), false))
        }
        ("PUT" | "DELETE", [room, u, user, f]) if u == "user" && f == "forced" => {
            (room, make(method, user.clone(), true))
        }
        _ => return None,
    };
    Some(Route {
        org: org.clone(),
        app: app.clone(),
        room: room.clone(),
        api,
    })
}

fn make(method: &str, user: String, forced: bool) -> Api {
    if method == "PUT" {
        Api::Set { user, forced }
    } else {
        Api::Delete { user, forced }
    }
}

pub(crate) fn request(d: &mut Dialect, now: Millis, req: &Request) -> Result<Response, Failure> {
    let Some(route) = route(&req.method, &req.path) else {
        return Err(Failure::NoRoute(format!(
            "no API at {} {}",
            req.method, req.path
        )));
    };
    let room = Str::from(route.room.as_str());
    let uri = format!("/{}/{}/metadata/chatroom", route.org, route.app);
    let action = req.method.to_ascii_lowercase();
    match route.api {
        Api::Get => {
            // The body is optional: no body, or no `keys`, reads every key.
            let keys = match req.body.as_ref() {
                None => None,
                Some(b) => opt_str_array(body_obj(Some(b))?, "keys")?,
            }
            .filter(|k| !k.is_empty());
            match d.run(now, Command::Read { room, keys }) {
                Ok(Success::Read(report)) => {
                    let data = Json::Obj(
                        report
                            .attributes
                            .iter()
                            .map(|a| (a.key.to_string(), Json::from(a.value.as_str())))
                            .collect(),
                    );
                    Ok(success(d, &uri, &action, data))
                }
                Ok(_) => Ok(success(d, &uri, &action, Json::Obj(Vec::new()))),
                Err(r) => Err(Failure::Rejected(r)),
            }
        }
        Api::Set { user, forced } => {
            let body = body_obj(req.body.as_ref())?;
            let meta = match member(body, "metaData") {
                Some(Json::Obj(m)) => m,
                Some(other) => {
                    return Err(Failure::BadParam(format!(
                        "metaData must be an object, not {}",
                        other.type_name()
                    )))
                }
                None => return Err(Failure::BadParam("metaData is required".into())),
            };
            let auto_delete = match member(body, "autoDelete") {
                None => None,
                Some(Json::Str(s)) if s == "DELETE" => Some(true),
                Some(Json::Str(s)) if s == "NO_DELETE" => Some(false),
                Some(_) => {
                    return Err(Failure::BadParam(
                        "autoDelete must be \"DELETE\" or \"NO_DELETE\"".into(),
                    ))
                }
            };
            let mut ops = Vec::with_capacity(meta.len());
            for (key, value) in meta {
                let Json::Str(value) = value else {
                    return Err(Failure::BadParam(format!(
                        "metaData value of {key:?} must be a string, not {}",
                        value.type_name()
                    )));
                };
                ops.push(Op::Set {
                    key: key.as_str().into(),
                    value: value.as_str().into(),
                    auto_delete,
                    expect: None,
                    ttl: None,
                });
            }
            write(
                d,
                now,
                room,
                Actor::user(user.as_str()),
                forced,
                ops,
                &uri,
                &action,
            )
        }
        Api::Delete { user, forced } => {
            let keys = match req.body.as_ref() {
                Some(b) => match member(body_obj(Some(b))?, "keys") {
                    Some(v) => str_array(v, "keys")?,
                    None => Vec::new(),
                },
                None => Vec::new(),
            };
            if keys.is_empty() {
                return Err(Failure::BadParam(
                    "keys must name at least one attribute".into(),
                ));
            }
            let ops = keys.into_iter().map(Op::delete).collect();
            // A forced delete needs no membership: seed 002 documents no
            // "user is not in chatroom" for it (seed 001's 401 is the forced
            // *set*'s), it assigns no owner, and Easemob's own server SDK
            // sends it as user `admin`, who is in no room. It acts with the
            // app token's authority.
            let actor = if forced {
                Actor::Admin
            } else {
                Actor::user(user.as_str())
            };
            write(d, now, room, actor, forced, ops, &uri, &action)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn write(
    d: &mut Dialect,
    now: Millis,
    room: Str,
    actor: Actor,
    forced: bool,
    ops: Vec<Op>,
    uri: &str,
    action: &str,
) -> Result<Response, Failure> {
    let keys: Vec<Str> = ops.iter().map(|op| op.key().clone()).collect();
    let mut w = Write::new(room, actor);
    w.ops = ops;
    w.force = forced;
    let report = match d.run(now, Command::Write(w)) {
        Ok(Success::Written(report)) => report,
        Ok(_) => return Ok(success(d, uri, action, Json::Obj(Vec::new()))),
        Err(r) => return Err(Failure::Rejected(r)),
    };
    let names: Vec<&str> = keys.iter().map(Str::as_str).collect();
    let success_keys: Vec<&str> = report.applied_keys(&names).collect();
    let error_keys: Vec<(String, Json)> = report
        .failed
        .iter()
        .map(|f| (f.key.to_string(), Json::from(reason(d, &f.key, f.error))))
        .collect();
    let data = obj([
        ("successKeys", strings(success_keys)),
        ("errorKeys", Json::Obj(error_keys)),
    ]);
    Ok(success(d, uri, action, data))
}

/// The per-key reason of `errorKeys`, in the style of the seed's
/// `properties key 'key1' is exceeding maximum limit 128`.
fn reason(d: &Dialect, key: &str, e: OpError) -> String {
    let limits = d.engine().profile().limits;
    match e {
        OpError::KeyEmpty => "properties key '' is empty".into(),
        OpError::KeyTooLong => format!(
            "properties key '{key}' is exceeding maximum limit {}",
            limits.max_key_len
        ),
        OpError::KeyCharset => {
            format!("properties key '{key}' contains characters outside [a-zA-Z0-9_.-]")
        }
        OpError::ValueTooLong => format!(
            "properties value of key '{key}' is exceeding maximum limit {}",
            limits.max_value_len
        ),
        OpError::NotOwner => {
            format!("properties key '{key}' is owned by another user, use the forced API")
        }
        OpError::NotFound => format!("properties key '{key}' does not exist"),
        OpError::KeyCountLimit => format!(
            "properties count is exceeding maximum limit {}",
            limits.max_keys_per_room.unwrap_or(0)
        ),
        OpError::EngineSizeLimit | OpError::RoomSizeLimit => {
            format!("properties key '{key}': total size of properties is exceeding maximum limit")
        }
        other => format!(
            "properties key '{key}': {}",
            crate::op_error_text(other, &limits)
        ),
    }
}

fn success(d: &Dialect, uri: &str, action: &str, data: Json) -> Response {
    Response::ok(obj([
        ("uri", Json::from(uri)),
        ("timestamp", Json::from(d.stamp.0)),
        ("action", Json::from(action)),
        ("data", data),
        ("duration", Json::from(0u32)),
    ]))
}

fn error(d: &Dialect, status: u16, error: &str, exception: &str, description: String) -> Response {
    Response {
        status,
        body: obj([
            ("error", Json::from(error)),
            ("exception", Json::from(exception)),
            ("timestamp", Json::from(d.stamp.0)),
            ("duration", Json::from(0u32)),
            ("error_description", Json::from(description)),
        ]),
    }
}

fn bad_request(d: &Dialect, description: String) -> Response {
    error(
        d,
        400,
        "illegal_argument",
        "java.lang.IllegalArgumentException",
        description,
    )
}

pub(crate) fn failure(d: &Dialect, f: Failure) -> Response {
    let limits = d.engine().profile().limits;
    match f {
        Failure::BadParam(m) | Failure::NoAccount(m) => bad_request(d, m),
        Failure::NoRoute(m) => error(
            d,
            404,
            "service_resource_not_found",
            "ResourceNotFoundException",
            m,
        ),
        // Seed 001's error table: 401 unauthorized, "Unable to authenticate (OAuth)".
        Failure::Unauthorized(m) => error(
            d,
            401,
            "unauthorized",
            "UnauthorizedException",
            format!("Unable to authenticate (OAuth): {m}"),
        ),
        Failure::Rejected(r) => match r {
            Rejection::TooManyOps { max } => error(
                d,
                d.code(r).and_then(|c| u16::try_from(c).ok()).unwrap_or(400),
                "illegal_argument",
                "java.lang.IllegalArgumentException",
                format!("exceed allowed batch size {max}"),
            ),
            Rejection::NotInRoom => error(
                d,
                d.code(r).and_then(|c| u16::try_from(c).ok()).unwrap_or(401),
                "MetadataException",
                "MetadataException",
                "user is not in chatroom".into(),
            ),
            Rejection::RoomNotFound => error(
                d,
                404,
                "service_resource_not_found",
                "ResourceNotFoundException",
                "chatroom does not exist".into(),
            ),
            Rejection::RateLimited => error(
                d,
                429,
                "reach_limit",
                "TooManyRequestsException",
                format!(
                    "request rate limit of {}/s per app key exceeded",
                    limits.request_rate.map_or(0, |r| r.per_second)
                ),
            ),
            other => bad_request(d, rejection_text(other, &limits, &[])),
        },
    }
}
