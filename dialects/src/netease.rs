//! NetEase Yunxin: chatroom queue (seed 003).
//!
//! `POST /nimserver/chatroom/{queueOffer,queueBatchOffer,
//! queueBatchUpdateElements,queueList,queuePoll,queueMultiGet,queueInit,
//! queueDrop}.action`, form fields, answer `{"code": 200, "desc": {…}}` or
//! `{"code": <error>, "desc": "<text>"}`, always HTTP 200 except for an
//! unknown path (404).

use roomstate::{
    Actor, Command, ErrorClass, HighPolicy, Millis, NewElement, Notify, QueueElement, Rejection,
    Str, Success,
};

use crate::json::{obj, Json};
use crate::{queue_error_text, strings};
use crate::{Dialect, Failure, Request, Response};

const PREFIX: &str = "/nimserver/chatroom/";
/// Parameter error.
const PARAM: u32 = 414;
/// "Object does not exist" in NetEase's global code table: this crate's
/// answer to polling a missing element or an empty queue.
const NOT_FOUND: u32 = 404;
/// "Duplicate operation" in NetEase's global code table: creating a room
/// that exists (control lines only).
const DUPLICATE: u32 = 417;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Offer,
    BatchOffer,
    BatchUpdate,
    List,
    Poll,
    MultiGet,
    Init,
    Drop,
}

/// The engine's room id for a NetEase `roomid` (a Long): its canonical
/// decimal text, so `"036"` and `"36"` name the same room.
pub(crate) fn room_id(text: &str) -> Result<String, Failure> {
    text.parse::<i64>()
        .map(|n| n.to_string())
        .map_err(|_| Failure::BadParam(format!("roomid must be a number (Long), not {text:?}")))
}

fn form<'a>(req: &'a Request, name: &str) -> Result<&'a str, Failure> {
    req.form(name)
        .ok_or_else(|| Failure::BadParam(format!("{name} is required")))
}

/// A Boolean form field: `true`/`false` (any case) as documented, and
/// `1`/`0`, which clients send and which the Java form binding of a
/// server like NetEase's reads as booleans; anything else is 414.
fn boolean(req: &Request, name: &str, default: bool) -> Result<bool, Failure> {
    match req.form(name) {
        None => Ok(default),
        Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
        Some(v) => Err(Failure::BadParam(format!(
            "{name} must be true or false (or 1 or 0), not {v:?}"
        ))),
    }
}

fn flag(req: &Request, name: &str) -> Result<bool, Failure> {
    match req.form(name) {
        None | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(v) => Err(Failure::BadParam(format!(
            "{name} must be 0 or 1, not {v:?}"
        ))),
    }
}

fn notify(req: &Request, api: Api) -> Result<Notify, Failure> {
    let documented = matches!(api, Api::BatchOffer | Api::BatchUpdate);
    let high = flag(req, "highPriority")?;
    let reject = flag(req, "highPriorityPolicy")?;
    Ok(Notify {
        notify: if documented {
            boolean(req, "needNotify", true)?
        } else {
            true
        },
        ext: if documented {
            req.form("notifyExt").map(Str::from)
        } else {
            None
        },
        high: high.then_some(if reject {
            HighPolicy::Reject
        } else {
            HighPolicy::Downgrade
        }),
    })
}

fn parse_json(req: &Request, name: &str) -> Result<Json, Failure> {
    Json::parse(form(req, name)?)
        .map_err(|e| Failure::BadParam(format!("{name} is not valid JSON: {e}")))
}

pub(crate) fn request(d: &mut Dialect, now: Millis, req: &Request) -> Result<Response, Failure> {
    let api = match (req.method.as_str(), req.path.strip_prefix(PREFIX)) {
        ("POST", Some("queueOffer.action")) => Api::Offer,
        ("POST", Some("queueBatchOffer.action")) => Api::BatchOffer,
        ("POST", Some("queueBatchUpdateElements.action")) => Api::BatchUpdate,
        ("POST", Some("queueList.action")) => Api::List,
        ("POST", Some("queuePoll.action")) => Api::Poll,
        ("POST", Some("queueMultiGet.action")) => Api::MultiGet,
        ("POST", Some("queueInit.action")) => Api::Init,
        ("POST", Some("queueDrop.action")) => Api::Drop,
        _ => {
            return Err(Failure::NoRoute(format!(
                "no API at {} {}",
                req.method, req.path
            )))
        }
    };
    let room = Str::from(room_id(form(req, "roomid")?)?);
    // `operator` defaults to the room's creator; an operator that names no
    // known account is NetEase 404.
    let operator = |d: &Dialect, required: bool| -> Result<Actor, Failure> {
        match req.form("operator") {
            Some(op) if d.accounts.contains(op) => Ok(Actor::user(op)),
            Some(op) => Err(Failure::NoAccount(format!(
                "operator account {op:?} does not exist"
            ))),
            None if required => Err(Failure::BadParam("operator is required".into())),
            None => Ok(d
                .engine()
                .room(&room)
                .map_or(Actor::Admin, |r| Actor::User(r.creator().clone()))),
        }
    };
    let (command, keys): (Command, Vec<Str>) = match api {
        Api::Offer => {
            let key = Str::from(form(req, "key")?);
            let value = Str::from(form(req, "value")?);
            let command = Command::QueueOffer {
                room: room.clone(),
                operator: operator(d, false)?,
                key: key.clone(),
                value,
                transient: boolean(req, "transient", false)?,
                notify: notify(req, api)?,
            };
            (command, vec![key])
        }
        Api::BatchOffer => {
            let elements = batch_offer_elements(&parse_json(req, "elements")?)?;
            let keys = elements.iter().map(|e| e.key.clone()).collect();
            let command = Command::QueueBatchOffer {
                room: room.clone(),
                operator: operator(d, false)?,
                elements,
                transient: boolean(req, "transient", false)?,
                notify: notify(req, api)?,
            };
            (command, keys)
        }
        Api::BatchUpdate => {
            let operator = operator(d, true)?;
            let parsed = parse_json(req, "elements")?;
            let Some(members) = parsed.as_obj() else {
                return Err(Failure::BadParam(format!(
                    "elements must be a JSON object of key-value pairs, not {}",
                    parsed.type_name()
                )));
            };
            let mut elements = Vec::with_capacity(members.len());
            for (k, v) in members {
                let Json::Str(v) = v else {
                    return Err(Failure::BadParam(format!(
                        "elements value of {k:?} must be a string, not {}",
                        v.type_name()
                    )));
                };
                elements.push((Str::from(k.as_str()), Str::from(v.as_str())));
            }
            let keys = elements.iter().map(|(k, _)| k.clone()).collect();
            let command = Command::QueueBatchUpdate {
                room: room.clone(),
                operator,
                elements,
                notify: notify(req, api)?,
            };
            (command, keys)
        }
        Api::List => (Command::QueueList { room: room.clone() }, Vec::new()),
        Api::Poll => {
            let key = req.form("key").map(Str::from);
            let keys = key.iter().cloned().collect();
            let command = Command::QueuePoll {
                room: room.clone(),
                operator: Actor::Admin,
                key,
                notify: notify(req, api)?,
            };
            (command, keys)
        }
        Api::MultiGet => {
            let parsed = parse_json(req, "keys")?;
            let keys = crate::str_array(&parsed, "keys")?;
            let command = Command::QueueMultiGet {
                room: room.clone(),
                keys: keys.clone(),
            };
            (command, keys)
        }
        Api::Init => {
            let text = form(req, "sizeLimit")?;
            let capacity = text.parse::<u32>().map_err(|_| {
                Failure::BadParam(format!(
                    "sizeLimit must be a positive integer, not {text:?}"
                ))
            })?;
            let command = Command::QueueInit {
                room: room.clone(),
                operator: Actor::Admin,
                capacity,
            };
            (command, Vec::new())
        }
        Api::Drop => (
            Command::QueueDrop {
                room: room.clone(),
                operator: Actor::Admin,
            },
            Vec::new(),
        ),
    };
    let desc = match d.run(now, command) {
        Ok(Success::QueueBatch(report)) => {
            let failed: Vec<&str> = report.failed.iter().map(|f| f.key.as_str()).collect();
            match api {
                Api::BatchUpdate => obj([("noExistElementKey", strings(failed))]),
                _ if failed.is_empty() => Json::Obj(Vec::new()),
                _ => obj([("failedKeys", strings(failed))]),
            }
        }
        Ok(Success::Elements(report)) => obj([("list", list(&report.elements))]),
        Ok(Success::Polled(e)) => obj([
            ("key", Json::from(e.key.as_str())),
            ("value", Json::from(e.value.as_str())),
        ]),
        Ok(_) => Json::Obj(Vec::new()),
        Err(r) => return Ok(rejected(d, r, &keys, Some(api))),
    };
    Ok(Response::ok(obj([
        ("code", Json::from(200u32)),
        ("desc", desc),
    ])))
}

fn list(elements: &[QueueElement]) -> Json {
    Json::Arr(
        elements
            .iter()
            .map(|e| Json::Obj(vec![(e.key.to_string(), Json::from(e.value.as_str()))]))
            .collect(),
    )
}

fn batch_offer_elements(parsed: &Json) -> Result<Vec<NewElement>, Failure> {
    let Some(items) = parsed.as_arr() else {
        return Err(Failure::BadParam(format!(
            "elements must be a JSON array, not {}",
            parsed.type_name()
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |name: &str| -> Result<Option<&Json>, Failure> {
                match item {
                    Json::Obj(_) => Ok(crate::member(item, name)),
                    other => Err(Failure::BadParam(format!(
                        "elements[{i}] must be an object, not {}",
                        other.type_name()
                    ))),
                }
            };
            let text = |name: &str, required: bool| -> Result<Option<Str>, Failure> {
                match field(name)? {
                    Some(Json::Str(s)) => Ok(Some(Str::from(s.as_str()))),
                    Some(other) => Err(Failure::BadParam(format!(
                        "elements[{i}].{name} must be a string, not {}",
                        other.type_name()
                    ))),
                    None if required => Err(Failure::BadParam(format!(
                        "elements[{i}].{name} is required"
                    ))),
                    None => Ok(None),
                }
            };
            let transient = match field("transient")? {
                None => None,
                Some(Json::Bool(b)) => Some(*b),
                Some(other) => {
                    return Err(Failure::BadParam(format!(
                        "elements[{i}].transient must be a boolean, not {}",
                        other.type_name()
                    )))
                }
            };
            Ok(NewElement {
                key: text("key", true)?.unwrap_or_else(|| Str::from("")),
                value: text("value", true)?.unwrap_or_else(|| Str::from("")),
                owner: text("accid", false)?,
                transient,
            })
        })
        .collect()
}

fn rejected(d: &Dialect, r: Rejection, keys: &[Str], api: Option<Api>) -> Response {
    let code = d.code(r).unwrap_or(match r.class() {
        ErrorClass::NotFound => NOT_FOUND,
        ErrorClass::RoomExists => DUPLICATE,
        _ => PARAM,
    });
    let limits = d.engine().profile().limits;
    let ql = limits.queue;
    let desc = match r {
        Rejection::RoomNotFound => "roomid not exsit".into(),
        Rejection::RoomExists => "chatroom already exists".into(),
        Rejection::NotInRoom => "operator not in chatroom".into(),
        Rejection::NoPermission => {
            "operator must be the creator or a manager of the chatroom".into()
        }
        Rejection::TooManyOps { max } => format!("too many elements, at most {max}"),
        Rejection::Empty => "elements is empty".into(),
        Rejection::InvalidParameter if api == Some(Api::Init) => format!(
            "sizeLimit must be between 1 and {} and not below the queue's length",
            ql.max_capacity
        ),
        Rejection::InvalidParameter if api.is_some() => {
            format!("notifyExt exceeds {} characters", ql.max_ext_chars)
        }
        Rejection::NotificationBudget => {
            "high priority notification over flow control (10/s per room)".into()
        }
        Rejection::QueueEmpty => "queue is empty".into(),
        Rejection::Op { index, error } => match keys.get(index) {
            Some(k) => format!(
                "element {:?}: {}",
                k.as_str(),
                queue_error_text(error, &limits)
            ),
            None => queue_error_text(error, &limits),
        },
        other => crate::rejection_text(other, &limits, keys),
    };
    Response::ok(obj([
        ("code", Json::from(code)),
        ("desc", Json::from(desc)),
    ]))
}

pub(crate) fn failure(d: &Dialect, f: Failure) -> Response {
    let body =
        |code: u32, desc: String| obj([("code", Json::from(code)), ("desc", Json::from(desc))]);
    match f {
        Failure::BadParam(m) => Response::ok(body(PARAM, m)),
        Failure::NoAccount(m) => Response::ok(body(404, m)),
        Failure::NoRoute(m) => Response {
            status: 404,
            body: body(PARAM, m),
        },
        Failure::Rejected(r) => rejected(d, r, &[], None),
        // NetEase answers a bad AppKey/CheckSum/CurTime with code 403.
        Failure::Unauthorized(m) => Response::ok(body(403, m)),
    }
}
