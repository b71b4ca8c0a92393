//! Tencent Cloud live room engine: room metadata (seed 000).
//!
//! `POST /v4/live_engine_http_srv/{set,get,del}_room_metadata`
//! (`delete_room_metadata` is an alias), JSON body, answer `{ActionStatus,
//! ErrorInfo, ErrorCode, RequestId}` (plus `Response: {RoomId, Metadata}`
//! on get), always HTTP 200 except for an unknown path (404).

use roomstate::{Actor, Command, ErrorClass, Millis, Op, Rejection, Str, Success, Write};

use crate::json::{obj, Json};
use crate::{body_obj, member, opt_str_array, rejection_text, req_str, str_array};
use crate::{Dialect, Failure, Request, Response};

const PREFIX: &str = "/v4/live_engine_http_srv/";

/// Parameter error.
const INVALID_PARAMETER: u32 = 100_002;
/// No permission to operate room metadata.
const NO_PERMISSION: u32 = 100_006;
/// Internal error, "please retry": this crate's answer to the rate limit,
/// for which the seed names no code.
const RETRY: u32 = 100_001;

enum Api {
    Set,
    Get,
    Delete,
}

pub(crate) fn request(d: &mut Dialect, now: Millis, req: &Request) -> Result<Response, Failure> {
    let api = match (req.method.as_str(), req.path.strip_prefix(PREFIX)) {
        ("POST", Some("set_room_metadata")) => Api::Set,
        ("POST", Some("get_room_metadata")) => Api::Get,
        // Tencent's API reference names it `del_room_metadata`; the longer
        // name is kept as an alias for clients written against it.
        ("POST", Some("del_room_metadata" | "delete_room_metadata")) => Api::Delete,
        _ => {
            return Err(Failure::NoRoute(format!(
                "no API at {} {}",
                req.method, req.path
            )))
        }
    };
    let operator = match req.query("identifier") {
        None => Actor::Admin,
        Some("") => return Err(Failure::BadParam("identifier is empty".into())),
        Some(id) if d.is_admin_identifier(id) => Actor::Admin,
        Some(user) => Actor::user(user),
    };
    let body = body_obj(req.body.as_ref())?;
    let room = Str::from(req_str(body, "RoomId")?);
    match api {
        Api::Set => {
            let items = match member(body, "Metadata") {
                Some(Json::Arr(items)) => items,
                Some(other) => {
                    return Err(Failure::BadParam(format!(
                        "Metadata must be an array, not {}",
                        other.type_name()
                    )))
                }
                None => return Err(Failure::BadParam("Metadata is required".into())),
            };
            let mut ops = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if item.as_obj().is_none() {
                    return Err(Failure::BadParam(format!(
                        "Metadata[{i}] must be an object, not {}",
                        item.type_name()
                    )));
                }
                let key = req_str(item, "Key").map_err(|f| index_msg(f, i))?;
                let value = req_str(item, "Value").map_err(|f| index_msg(f, i))?;
                ops.push(Op::set(key, value));
            }
            write(d, now, room, operator, ops)
        }
        Api::Delete => {
            let keys = match member(body, "Keys") {
                Some(v) => str_array(v, "Keys")?,
                None => return Err(Failure::BadParam("Keys is required".into())),
            };
            write(
                d,
                now,
                room,
                operator,
                keys.into_iter().map(Op::delete).collect(),
            )
        }
        Api::Get => {
            let keys = opt_str_array(body, "Keys")?.filter(|k| !k.is_empty());
            let room_id = room.clone();
            match d.run(now, Command::Read { room, keys }) {
                Ok(Success::Read(report)) => {
                    let metadata = report
                        .attributes
                        .iter()
                        .map(|a| {
                            obj([
                                ("Key", Json::from(a.key.as_str())),
                                ("Value", Json::from(a.value.as_str())),
                            ])
                        })
                        .collect();
                    // Tencent nests the answer: `Response: {RoomId, Metadata}`.
                    let mut body = ok_body(d);
                    if let Json::Obj(members) = &mut body {
                        members.push((
                            "Response".into(),
                            obj([
                                ("RoomId", Json::from(room_id.as_str())),
                                ("Metadata", Json::Arr(metadata)),
                            ]),
                        ));
                    }
                    Ok(Response::ok(body))
                }
                Ok(_) => Ok(Response::ok(ok_body(d))),
                Err(r) => Err(Failure::Rejected(r)),
            }
        }
    }
}

fn index_msg(f: Failure, i: usize) -> Failure {
    match f {
        Failure::BadParam(m) => Failure::BadParam(format!("Metadata[{i}].{m}")),
        other => other,
    }
}

fn write(
    d: &mut Dialect,
    now: Millis,
    room: Str,
    operator: Actor,
    ops: Vec<Op>,
) -> Result<Response, Failure> {
    let keys: Vec<Str> = ops.iter().map(|op| op.key().clone()).collect();
    let mut w = Write::new(room.clone(), operator.clone());
    w.ops = ops;
    match d.run(now, Command::Write(w)) {
        Ok(_) => Ok(Response::ok(ok_body(d))),
        // A delete that removed nothing because the keys belong to someone
        // else is a permission error, not "no valid key" (nothing changed,
        // so the room seen now is the room the delete saw).
        Err(Rejection::NothingDeleted) if owned_by_other(d, &room, &operator, &keys) => {
            Ok(Response::ok(fail_body(
                d,
                NO_PERMISSION,
                "no permission to delete room metadata owned by another user".into(),
            )))
        }
        Err(r) => Ok(rejected(d, r, &keys)),
    }
}

fn owned_by_other(d: &Dialect, room: &str, operator: &Actor, keys: &[Str]) -> bool {
    let Some(view) = d.engine().room(room) else {
        return false;
    };
    operator.as_user().is_some()
        && keys.iter().any(|k| {
            view.attribute(k)
                .is_some_and(|a| a.owner_actor() != *operator)
        })
}

fn request_id(d: &Dialect) -> String {
    format!(
        "Id-{:016x}{:016x}-O-Seq-{}",
        d.request_id_salt(),
        d.requests(),
        d.requests()
    )
}

fn ok_body(d: &Dialect) -> Json {
    obj([
        ("ActionStatus", Json::from("OK")),
        ("ErrorInfo", Json::from("")),
        ("ErrorCode", Json::from(0u32)),
        ("RequestId", Json::from(request_id(d))),
    ])
}

fn fail_body(d: &Dialect, code: u32, info: String) -> Json {
    obj([
        ("ActionStatus", Json::from("FAIL")),
        ("ErrorInfo", Json::from(info)),
        ("ErrorCode", Json::from(code)),
        ("RequestId", Json::from(request_id(d))),
    ])
}

fn rejected(d: &Dialect, r: Rejection, keys: &[Str]) -> Response {
    let code = d.code(r).unwrap_or(match r.class() {
        ErrorClass::RateLimited => RETRY,
        _ => INVALID_PARAMETER,
    });
    let limits = d.engine().profile().limits;
    let info = match r {
        Rejection::RateLimited => match limits.request_rate {
            Some(rate) => format!(
                "request rate limit of {}/s exceeded, please retry",
                rate.per_second
            ),
            None => "request rate limit exceeded, please retry".into(),
        },
        Rejection::NotInRoom | Rejection::NoPermission => {
            "no permission to operate room metadata".into()
        }
        Rejection::Op {
            error: roomstate::OpError::NotOwner,
            ..
        } => format!(
            "no permission to operate room metadata: {}",
            rejection_text(r, &limits, keys)
        ),
        _ => rejection_text(r, &limits, keys),
    };
    Response::ok(fail_body(d, code, info))
}

pub(crate) fn failure(d: &Dialect, f: Failure) -> Response {
    match f {
        Failure::BadParam(m) | Failure::NoAccount(m) => {
            Response::ok(fail_body(d, INVALID_PARAMETER, m))
        }
        Failure::NoRoute(m) => Response {
            status: 404,
            body: fail_body(d, INVALID_PARAMETER, m),
        },
        Failure::Rejected(r) => rejected(d, r, &[]),
        Failure::Unauthorized(m) => Response::ok(fail_body(d, UNAUTHORIZED, m)),
    }
}

/// Tencent IM's "UserSig verification failed" (not in the seed).
const UNAUTHORIZED: u32 = 70_009;
