//! The replay line format: a vendor request, or a control line.

use roomstate::Role;

use crate::json::Json;

/// The vendor whose API a line speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VendorId {
    /// Tencent Cloud live room engine (`"tencent"`).
    Tencent,
    /// Easemob (`"easemob"`).
    Easemob,
    /// Agora Chat (`"agora_chat"`), Easemob's API with Agora's profile.
    AgoraChat,
    /// NetEase Yunxin (`"netease"`).
    NetEase,
    /// ZEGO ZIM (`"zego"`).
    Zego,
}

impl VendorId {
    /// All five, in the order of SPEC §7.
    pub const ALL: [VendorId; 5] = [
        VendorId::Tencent,
        VendorId::Easemob,
        VendorId::AgoraChat,
        VendorId::NetEase,
        VendorId::Zego,
    ];

    /// The name used in replay lines.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            VendorId::Tencent => "tencent",
            VendorId::Easemob => "easemob",
            VendorId::AgoraChat => "agora_chat",
            VendorId::NetEase => "netease",
            VendorId::Zego => "zego",
        }
    }

    /// The vendor named `name` in a replay line.
    #[must_use]
    pub fn from_name(name: &str) -> Option<VendorId> {
        VendorId::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Position in [`VendorId::ALL`].
    #[must_use]
    pub const fn index(self) -> usize {
        match self {
            VendorId::Tencent => 0,
            VendorId::Easemob => 1,
            VendorId::AgoraChat => 2,
            VendorId::NetEase => 3,
            VendorId::Zego => 4,
        }
    }

    /// The built-in engine profile of the vendor.
    #[must_use]
    pub const fn profile(self) -> roomstate::Profile {
        match self {
            VendorId::Tencent => roomstate::Profile::tencent(),
            VendorId::Easemob => roomstate::Profile::easemob(),
            VendorId::AgoraChat => roomstate::Profile::agora_chat(),
            VendorId::NetEase => roomstate::Profile::netease(),
            VendorId::Zego => roomstate::Profile::zego(),
        }
    }
}

/// One vendor API request, as data.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Whose API.
    pub vendor: VendorId,
    /// HTTP method, upper-cased.
    pub method: String,
    /// The path without its query string.
    pub path: String,
    /// Query parameters: those of a `?…` in `path`, then those of the
    /// line's `query` object. Lookups take the last of a name.
    pub query: Vec<(String, String)>,
    /// Form fields (`application/x-www-form-urlencoded`), already decoded.
    pub form: Vec<(String, String)>,
    /// The JSON body, `None` when absent or `null`.
    pub body: Option<Json>,
}

impl Request {
    /// A request with no query, form or body.
    #[must_use]
    pub fn new(vendor: VendorId, method: &str, path: &str) -> Request {
        Request {
            vendor,
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: Vec::new(),
            form: Vec::new(),
            body: None,
        }
    }

    /// The last query parameter named `name`.
    #[must_use]
    pub fn query(&self, name: &str) -> Option<&str> {
        last(&self.query, name)
    }

    /// The last form field named `name`.
    #[must_use]
    pub fn form(&self, name: &str) -> Option<&str> {
        last(&self.form, name)
    }
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What no vendor API here covers: room lifecycle and membership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Create a room.
    CreateRoom {
        /// Room id.
        room: String,
        /// Creator's user id.
        creator: String,
    },
    /// Add a connection of `user`.
    Join {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// Remove a connection of `user`.
    Leave {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// Remove every connection of `user`.
    Exit {
        /// Room id.
        room: String,
        /// User id.
        user: String,
    },
    /// Set a user's role.
    SetRole {
        /// Room id.
        room: String,
        /// User id.
        user: String,
        /// `Admin` or `Member`.
        role: Role,
    },
}

/// A parsed replay line.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// A vendor API request.
    Request {
        /// The request.
        request: Request,
        /// The line's `now`, if it gave one.
        now: Option<u64>,
    },
    /// A control line.
    Control {
        /// Whose engine.
        vendor: VendorId,
        /// What to do.
        control: Control,
        /// The line's `now`, if it gave one.
        now: Option<u64>,
    },
}

/// Why a line could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The vendor, when it could be told (even from malformed JSON).
    pub vendor: Option<VendorId>,
    /// What is wrong.
    pub message: String,
}

fn bad(vendor: Option<VendorId>, message: impl Into<String>) -> LineError {
    LineError {
        vendor,
        message: message.into(),
    }
}

/// Parses one replay line.
pub fn parse_line(line: &str) -> Result<Line, LineError> {
    let json =
        Json::parse(line).map_err(|e| bad(sniff_vendor(line), format!("malformed JSON: {e}")))?;
    let Json::Obj(_) = &json else {
        return Err(bad(None, "a line must be a JSON object"));
    };
    let vendor = match json.get("vendor") {
        Some(Json::Str(name)) => VendorId::from_name(name)
            .ok_or_else(|| bad(None, format!("unknown vendor {name:?}")))?,
        Some(other) => {
            return Err(bad(
                None,
                format!("vendor must be a string, not {}", other.type_name()),
            ))
        }
        None => return Err(bad(None, "vendor is required")),
    };
    let v = Some(vendor);
    let now = match json.get("now") {
        None | Some(Json::Null) => None,
        Some(n) => Some(n.as_u64().ok_or_else(|| {
            bad(
                v,
                "now must be a non-negative integer number of milliseconds",
            )
        })?),
    };
    if let Some(control) = json.get("control") {
        let control = parse_control(&json, control).map_err(|m| bad(v, m))?;
        return Ok(Line::Control {
            vendor,
            control,
            now,
        });
    }
    let request = parse_request(vendor, &json).map_err(|m| bad(v, m))?;
    Ok(Line::Request { request, now })
}

fn parse_request(vendor: VendorId, json: &Json) -> Result<Request, String> {
    let method = match json.get("method") {
        Some(Json::Str(m)) => m.to_ascii_uppercase(),
        Some(other) => {
            return Err(format!(
                "method must be a string, not {}",
                other.type_name()
            ))
        }
        None => return Err("method is required".into()),
    };
    let full = match json.get("path") {
        Some(Json::Str(p)) => p.as_str(),
        Some(other) => return Err(format!("path must be a string, not {}", other.type_name())),
        None => return Err("path is required".into()),
    };
    let (path, query_text) = match full.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (full, None),
    };
    let mut query = match query_text {
        Some(q) => parse_query_string(q)?,
        None => Vec::new(),
    };
    query.extend(string_pairs(json.get("query"), "query")?);
    let form = string_pairs(json.get("form"), "form")?;
    let body = match json.get("body") {
        None | Some(Json::Null) => None,
        Some(b) => Some(b.clone()),
    };
    Ok(Request {
        vendor,
        method,
        path: path.to_owned(),
        query,
        form,
        body,
    })
}

/// An object of form or query fields. A field is text; a number or a
/// boolean stands for its JSON text, anything else is an error.
fn string_pairs(json: Option<&Json>, what: &str) -> Result<Vec<(String, String)>, String> {
    let members = match json {
        None | Some(Json::Null) => return Ok(Vec::new()),
        Some(Json::Obj(m)) => m,
        Some(other) => {
            return Err(format!(
                "{what} must be an object, not {}",
                other.type_name()
            ))
        }
    };
    members
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Json::Str(s) => s.clone(),
                Json::Num(n) => n.to_string(),
                Json::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "{what} field {k:?} must be a string, not {}",
                        other.type_name()
                    ))
                }
            };
            Ok((k.clone(), text))
        })
        .collect()
}

fn parse_query_string(q: &str) -> Result<Vec<(String, String)>, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(k, true), percent_decode(v, true)) {
                (Some(k), Some(v)) => Ok((k, v)),
                _ => Err(format!("bad percent-encoding in query {pair:?}")),
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set); `None`
/// for a broken escape or a result that is not UTF-8.
#[must_use]
pub fn percent_decode(s: &str, plus: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn parse_control(json: &Json, control: &Json) -> Result<Control, String> {
    let name = control
        .as_str()
        .ok_or_else(|| format!("control must be a string, not {}", control.type_name()))?;
    let field = |f: &str| -> Result<String, String> {
        match json.get(f) {
            Some(Json::Str(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{f} must be a string, not {}", other.type_name())),
            None => Err(format!("{f} is required")),
        }
    };
    Ok(match name {
        "create_room" => Control::CreateRoom {
            room: field("room")?,
            creator: field("creator")?,
        },
        "join" => Control::Join {
            room: field("room")?,
            user: field("user")?,
        },
        "leave" => Control::Leave {
            room: field("room")?,
            user: field("user")?,
        },
        "exit" => Control::Exit {
            room: field("room")?,
            user: field("user")?,
        },
        "set_role" => Control::SetRole {
            room: field("room")?,
            user: field("user")?,
            role: match field("role")?.as_str() {
                "admin" => Role::Admin,
                "member" => Role::Member,
                other => {
                    return Err(format!(
                        "role must be \"admin\" or \"member\", not {other:?}"
                    ))
                }
            },
        },
        other => return Err(format!("unknown control {other:?}")),
    })
}

/// The vendor named in a line that is not valid JSON, if a
/// `"vendor": "<name>"` member can be picked out of its text, so that even
/// a truncated line gets its vendor's parameter error.
fn sniff_vendor(line: &str) -> Option<VendorId> {
    let at = line.find("\"vendor\"")?;
    let rest = line.get(at + "\"vendor\"".len()..)?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let name = rest.get(..rest.find('"')?)?;
    VendorId::from_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vendor_is_at_its_index() {
        for (i, v) in VendorId::ALL.into_iter().enumerate() {
            assert_eq!(v.index(), i, "{v:?}");
        }
    }

    /// `%XX` in either case of hex, `+` as a space only in a query, and
    /// no answer for a cut or non-hex escape or bytes that are not UTF-8.
    #[test]
    fn percent_escapes_decode_to_their_bytes() {
        let cases = [
            ("room-1", true, Some("room-1")),
            ("a%20b%2Fc%2fd", false, Some("a b/c/d")),
            ("%E6%97%A5%e6%9c%ac", false, Some("日本")),
            ("%ff%FE%7e", false, None),
            ("a+b", true, Some("a b")),
            ("a+b", false, Some("a+b")),
            ("%2B+", true, Some("+ ")),
            ("100%", false, None),
            ("%4", false, None),
            ("%zz", false, None),
            ("%7E%7e", false, Some("~~")),
        ];
        for (s, plus, want) in cases {
            assert_eq!(percent_decode(s, plus).as_deref(), want, "{s:?} {plus}");
        }
    }
}
