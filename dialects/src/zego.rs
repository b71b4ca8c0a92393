//! ZEGO ZIM: server room attributes (seed 004).
//!
//! `POST /?Action=ModifyRoomAttribute` and `POST /?Action=QueryRoomAttributes`
//! (ZEGO's own name, `QueryRoomAttribute`, is accepted too), JSON body,
//! answer `{Code, Message, RequestId, …}`, always HTTP 200 except for an
//! unknown path or action (404).

use roomstate::{Actor, BatchPolicy, Command, Millis, Op, OpError, Rejection, Str, Success, Write};

use crate::json::{obj, Json};
use crate::{body_obj, member, rejection_text, req_str};
use crate::{Dialect, Failure, Request, Response};

/// Parameter error.
const PARAM: u32 = 660_000_002;
/// Longest `RoomId` / `FromUserId` (ZEGO's public docs).
const MAX_ID_CHARS: usize = 32;

/// `SubCode` of an `ErrKeyList` entry. The seed documents the field but no
/// values; these are this crate's.
#[must_use]
pub const fn sub_code(e: OpError) -> u32 {
    match e {
        OpError::KeyEmpty | OpError::KeyTooLong | OpError::KeyCharset => 1,
        OpError::ValueTooLong => 2,
        OpError::KeyCountLimit => 3,
        OpError::RoomSizeLimit | OpError::EngineSizeLimit => 4,
        OpError::NotOwner => 5,
        OpError::NotFound => 6,
        OpError::NotAttempted => 7,
        OpError::Conflict { .. } => 8,
        _ => 9,
    }
}

enum Api {
    Modify,
    Query,
}

/// The seed's id charset: digits, ASCII letters and
/// `! # $ % & ( ) + - : ; < = . > ? @ [ ] ^ _ { } | ~` (and a space in user ids).
fn valid_id(id: &str, space: bool) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || "!#$%&()+-:;<=.>?@[]^_{}|~".contains(c)
                || (space && c == ' ')
        })
}

fn id_field<'a>(body: &'a Json, name: &str, space: bool) -> Result<&'a str, Failure> {
    let id = req_str(body, name)?;
    if valid_id(id, space) {
        Ok(id)
    } else {
        Err(Failure::BadParam(format!(
            "{name} must be 1 to {MAX_ID_CHARS} characters of digits, letters and !#$%&()+-:;<=.>?@[]^_{{}}|~{}",
            if space { " or space" } else { "" }
        )))
    }
}

fn small_flag(item: &Json, name: &str, i: usize) -> Result<Option<bool>, Failure> {
    match member(item, name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(Failure::BadParam(format!(
                "Attributes[{i}].{name} must be 0 or 1"
            ))),
        },
    }
}

pub(crate) fn request(d: &mut Dialect, now: Millis, req: &Request) -> Result<Response, Failure> {
    let api = match (req.method.as_str(), req.path.as_str(), req.query("Action")) {
        ("POST", "/" | "", Some("ModifyRoomAttribute")) => Api::Modify,
        ("POST", "/" | "", Some("QueryRoomAttributes" | "QueryRoomAttribute")) => Api::Query,
        (m, p, action) => {
            return Err(Failure::NoRoute(format!(
                "no API at {m} {p} with Action={}",
                action.unwrap_or("")
            )))
        }
    };
    let body = body_obj(req.body.as_ref())?;
    let room = Str::from(id_field(body, "RoomId", false)?);
    match api {
        Api::Modify => {
            let user = id_field(body, "FromUserId", true)?;
            let items = match member(body, "Attributes") {
                Some(Json::Arr(items)) => items,
                Some(other) => {
                    return Err(Failure::BadParam(format!(
                        "Attributes must be an array, not {}",
                        other.type_name()
                    )))
                }
                None => return Err(Failure::BadParam("Attributes is required".into())),
            };
            let mut ops = Vec::with_capacity(items.len());
            let mut stop_on_error = false;
            for (i, item) in items.iter().enumerate() {
                if item.as_obj().is_none() {
                    return Err(Failure::BadParam(format!(
                        "Attributes[{i}] must be an object, not {}",
                        item.type_name()
                    )));
                }
                let key = match member(item, "Key") {
                    Some(Json::Str(k)) => Str::from(k.as_str()),
                    _ => {
                        return Err(Failure::BadParam(format!(
                            "Attributes[{i}].Key must be a string"
                        )))
                    }
                };
                let value = match member(item, "Value") {
                    None => Str::from(""),
                    Some(Json::Str(v)) => Str::from(v.as_str()),
                    Some(_) => {
                        return Err(Failure::BadParam(format!(
                            "Attributes[{i}].Value must be a string"
                        )))
                    }
                };
                let delete = match member(item, "Action").map(Json::as_u64) {
                    Some(Some(0)) => false,
                    Some(Some(1)) => true,
                    _ => {
                        return Err(Failure::BadParam(format!(
                            "Attributes[{i}].Action must be 0 (set) or 1 (delete)"
                        )))
                    }
                };
                let auto_delete = small_flag(item, "AutoDelete", i)?;
                stop_on_error |= small_flag(item, "StopOnError", i)?.unwrap_or(false);
                ops.push(if delete {
                    Op::delete(key)
                } else {
                    Op::Set {
                        key,
                        value,
                        auto_delete,
                        expect: None,
                        ttl: None,
                    }
                });
            }
            let keys: Vec<Str> = ops.iter().map(|op| op.key().clone()).collect();
            let mut w = Write::new(room, Actor::user(user));
            w.ops = ops;
            if stop_on_error {
                w.policy = Some(BatchPolicy::StopOnError);
            }
            match d.run(now, Command::Write(w)) {
                Ok(Success::Written(report)) if !report.failed.is_empty() => {
                    let errs = report
                        .failed
                        .iter()
                        .map(|f| {
                            obj([
                                ("SubCode", Json::from(sub_code(f.error))),
                                ("Key", Json::from(f.key.as_str())),
                            ])
                        })
                        .collect();
                    let mut body = ok_body(d);
                    if let Json::Obj(m) = &mut body {
                        m.push(("ErrKeyList".into(), Json::Arr(errs)));
                    }
                    Ok(Response::ok(body))
                }
                Ok(_) => Ok(Response::ok(ok_body(d))),
                Err(r) => Ok(rejected(d, r, &keys)),
            }
        }
        Api::Query => {
            if member(body, "FromUserId").is_some() {
                id_field(body, "FromUserId", true)?;
            }
            match d.run(now, Command::Read { room, keys: None }) {
                Ok(Success::Read(report)) => {
                    let attrs = report
                        .attributes
                        .iter()
                        .map(|a| {
                            obj([
                                ("Key", Json::from(a.key.as_str())),
                                ("Value", Json::from(a.value.as_str())),
                                ("AutoDelete", Json::from(u32::from(a.auto_delete))),
                            ])
                        })
                        .collect();
                    let mut body = ok_body(d);
                    if let Json::Obj(m) = &mut body {
                        m.push(("AttributeSeq".into(), Json::from(report.seq)));
                        m.push(("Attributes".into(), Json::Arr(attrs)));
                    }
                    Ok(Response::ok(body))
                }
                Ok(_) => Ok(Response::ok(ok_body(d))),
                Err(r) => Ok(rejected(d, r, &[])),
            }
        }
    }
}

fn request_id(d: &Dialect) -> String {
    match d.request_id_salt() {
        0 => format!("req-{}", d.requests()),
        salt => format!("req-{salt:x}-{}", d.requests()),
    }
}

fn ok_body(d: &Dialect) -> Json {
    obj([
        ("Code", Json::from(0u32)),
        ("Message", Json::from("success")),
        ("RequestId", Json::from(request_id(d))),
    ])
}

fn fail_body(d: &Dialect, code: u32, message: String) -> Json {
    obj([
        ("Code", Json::from(code)),
        ("Message", Json::from(message)),
        ("RequestId", Json::from(request_id(d))),
    ])
}

fn rejected(d: &Dialect, r: Rejection, keys: &[Str]) -> Response {
    let code = d.code(r).unwrap_or(PARAM);
    let limits = d.engine().profile().limits;
    let message = match r {
        Rejection::RateLimited => format!(
            "request rate limit of {}/s exceeded",
            limits.request_rate.map_or(0, |r| r.per_second)
        ),
        _ => rejection_text(r, &limits, keys),
    };
    Response::ok(fail_body(d, code, message))
}

pub(crate) fn failure(d: &Dialect, f: Failure) -> Response {
    match f {
        Failure::BadParam(m) | Failure::NoAccount(m) => Response::ok(fail_body(d, PARAM, m)),
        Failure::NoRoute(m) => Response {
            status: 404,
            body: fail_body(d, PARAM, m),
        },
        Failure::Rejected(r) => rejected(d, r, &[]),
        Failure::Unauthorized(m) => Response::ok(fail_body(d, UNAUTHORIZED, m)),
    }
}

/// ZEGO's signature-check failure code (public server API return codes;
/// not in seed 004).
const UNAUTHORIZED: u32 = 100_000_004;
