//! # roomstate-dialects
//!
//! Each vendor's documented REST API over the [`roomstate`] engine: a
//! request is data ([`Request`]), mapped to engine [`Command`]s; the
//! [`Outcome`] is mapped to the vendor's documented
//! response JSON and HTTP status ([`Response`]). No HTTP server, no clock,
//! no randomness: the same lines in give the same bytes out.
//!
//! A [`Dialect`] is one vendor over one [`Engine`] with that vendor's
//! built-in profile; a [`Replayer`] holds one per vendor (Agora Chat is the
//! Easemob dialect with Agora's profile) and answers replay lines;
//! [`replay_line`] is the entry point of the `roomstate-replay` binary and
//! of fuzz targets.
//!
//! ## Replay lines
//!
//! One JSON object per line, one output line
//! `{"status": <HTTP status>, "body": <vendor JSON>}` per input line:
//!
//! ```text
//! {"vendor": "tencent" | "easemob" | "agora_chat" | "netease" | "zego",
//!  "method": "POST", "path": "/the/path", "query": {…}, "form": {…}, "body": <json>, "now": <ms>}
//! {"vendor": "…", "control": "create_room", "room": "…", "creator": "…"}
//! {"vendor": "…", "control": "join" | "leave" | "exit", "room": "…", "user": "…"}
//! {"vendor": "…", "control": "set_role", "room": "…", "user": "…", "role": "admin" | "member"}
//! ```
//!
//! - `query`, `form`, `body` and `now` are optional. A `?a=b&…` in `path`
//!   is parsed (percent-decoded) as query parameters too; the `query`
//!   object's values win over it. Form and query values are text: a JSON
//!   number or boolean stands for its text, an array or object is a
//!   parameter error.
//! - `now` (milliseconds, a non-negative integer) defaults to the previous
//!   well-formed line's, starting at 0; control lines may carry one too.
//!   The clock is shared by the five engines; each engine treats an earlier
//!   `now` as the latest it has seen.
//! - Control lines answer `{"status": 200, "body": {}}`, or the vendor's
//!   own error response (for example Tencent 100003 for a room that exists).
//! - Request ids come from a per-vendor counter of the lines that vendor
//!   answered (requests, control lines and bad input alike): Tencent
//!   `Id-<32 hex digits>-O-Seq-<n>`, ZEGO `req-<n>`. Easemob/Agora
//!   `timestamp` is the line's `now`.
//! - Events are kept per line ([`Dialect::events`]) and not printed.
//!
//! ## Bad input
//!
//! Malformed JSON, a wrong type, a missing field, an unknown path or a
//! non-numeric NetEase `roomid` give the vendor's parameter error and
//! change nothing in any engine: Tencent HTTP 200 `ErrorCode` 100002,
//! Easemob/Agora HTTP 400 `illegal_argument`, NetEase HTTP 200 `code` 414,
//! ZEGO HTTP 200 `Code` 660000002. An unknown path (or a known path with
//! the wrong method, or an unknown ZEGO `Action`) is the same body with
//! HTTP 404. For a line that is not valid JSON the vendor is picked out of
//! its text (`"vendor": "<name>"`) if possible; a line naming no known
//! vendor gets HTTP 400 `{"error": "…"}`. Objects with a repeated member
//! name are malformed. Nothing panics.
//!
//! ## Tencent (seed 000)
//!
//! `POST /v4/live_engine_http_srv/set_room_metadata`, `get_room_metadata`,
//! `del_room_metadata` (the name in Tencent's API reference;
//! `delete_room_metadata` is kept as an alias); body `RoomId` and
//! `Metadata: [{Key, Value}]` (set) or `Keys` (get: optional; delete:
//! required). Answer `{ActionStatus, ErrorInfo, ErrorCode, RequestId}`;
//! get adds `Response: {RoomId, Metadata: [{Key, Value}]}` in listing
//! order, nested as Tencent's reference shows (clients read
//! `Response.Metadata`). HTTP 200 always (404 for an unknown path).
//!
//! - Set is atomic (any bad key rejects all); ≤10 keys per request
//!   (more: 100500, seed 000's "number of keys exceeds the upper limit
//!   of 10"), key ≤50 B (100002), value ≤2048 B (100501), ≤10 keys
//!   per room (100500), ≤16384 B per room (100502). A key that exists is
//!   updated in place.
//! - Delete is best effort with no per-key report; 100503 when none of the
//!   keys could be deleted.
//! - Room exists (control `create_room`): 100003. Unknown room: 100002.
//! - The App admin identifiers are configuration
//!   ([`Dialect::set_admin_identifiers`], default `administrator`, the
//!   console's admin account): such an `identifier` acts as
//!   [`Actor::Admin`]. *Choice:* no `identifier` is the app admin too; any
//!   other identifier (the literal `admin` included) is that user, who may
//!   write new keys but not keys someone else owns: 100006 (on delete too,
//!   when that is why nothing was deleted).
//! - *Choice:* `Keys: []` on get means all keys, like no `Keys`.
//! - *Choice:* the rate limit (200/s, public docs) answers 100001
//!   ("internal error, please retry"): the seed names no rate-limit code.
//! - Not modelled: 100007 (no payment).
//!
//! ## Easemob and Agora Chat (seeds 001, 002)
//!
//! `PUT /{org}/{app}/metadata/chatroom/{id}/user/{user}` (set; `/forced`
//! forced set), `POST /{org}/{app}/metadata/chatroom/{id}` (get; `keys`
//! optional), `DELETE …/user/{user}` (delete; `/forced` forced delete).
//! Success: HTTP 200 `{uri, timestamp, action, data, duration}` with
//! `data: {successKeys: [...], errorKeys: {key: reason}}` for writes (also
//! when every key failed) and `data: {key: value}` for get.
//!
//! - The path user must be in the chatroom for set, forced set and delete:
//!   401 `{"error": "MetadataException", "error_description": "user is not
//!   in chatroom"}` (seed 001 lists it on the forced set).
//! - *Choice:* a forced delete needs no membership and acts with the app
//!   token's authority ([`Actor::Admin`]): seed 002 documents no
//!   membership error for it, it assigns no owner, and Easemob's own Java
//!   server SDK sends forced deletes as user `admin`, who is in no room.
//! - More than 10 keys in one set or delete: 400
//!   `exceed allowed batch size 10`.
//! - Per key, in `errorKeys`: key longer than 128 characters
//!   (`properties key 'k' is exceeding maximum limit 128`, the seed's
//!   wording), key outside `A-Za-z0-9_.-`, value longer than 4096 (Easemob)
//!   or 4086 (Agora) characters, the room's 100th key, the app's 10 GB,
//!   a key another user owns (unforced set or delete), a key that does not
//!   exist (delete). *Choice:* the wording of every reason but the first.
//! - `autoDelete`: `DELETE` (default) or `NO_DELETE`; a key set with
//!   `DELETE` goes when its owner leaves. A forced set makes the path user
//!   the owner.
//! - *Choice:* error bodies are
//!   `{error, exception, timestamp, duration, error_description}`; an
//!   unknown chatroom is 404 `service_resource_not_found`; the rate limit
//!   (100/s) is 429 `reach_limit`; other parameter errors are 400
//!   `illegal_argument`.
//! - *Choice:* a delete without `keys` (or with `[]`) is 400, although the
//!   seed marks `keys` optional there; `keys: []` on get means all keys.
//!
//! ## NetEase (seed 003)
//!
//! `POST /nimserver/chatroom/{queueOffer, queueBatchOffer,
//! queueBatchUpdateElements, queueList, queuePoll, queueMultiGet,
//! queueInit, queueDrop}.action` with form fields; `elements` and `keys`
//! are JSON inside the form field, as documented. Answer HTTP 200
//! `{"code": 200, "desc": {…}}` or `{"code": <error>, "desc": "<text>"}`.
//!
//! - `roomid` is a Long: non-numeric or out of range is 414; `036` is `36`.
//! - Boolean form fields (`transient`, `needNotify`): `true`/`false` as
//!   documented, and *choice:* `1`/`0` too, which clients send and which a
//!   Java form binding like the vendor's reads as booleans; anything else
//!   is 414.
//!   Unknown room: 414 `roomid not exsit` (the vendor's spelling).
//! - Offer: `key` ≤128 and `value` ≤4096 characters (414); `operator`
//!   defaults to the creator; `transient=true` with the operator not in the
//!   room is 302; the operator becomes the owner of an updated element.
//! - Batch offer (≤20 elements, else 414): an element whose `accid` (default
//!   the operator) is neither in the room nor the creator fails and is listed
//!   in `desc.failedKeys`; `desc` is `{}` when none failed.
//! - Batch update (≤200): the operator (required) must be creator or admin
//!   (403); keys that do not exist are listed in `desc.noExistElementKey`
//!   (*choice:* always present, possibly empty).
//! - List: `desc.list: [{key: value}, …]` in queue order; multi-get (≤100
//!   keys, else 414): the existing ones in the order asked; poll:
//!   `desc: {key, value}`, the named element or the head.
//! - `needNotify`, `notifyExt` (≤2048 characters, else 414) where
//!   documented (batch offer and update); `highPriority=1` with
//!   `highPriorityPolicy=1` over 10 high-priority notifications per second
//!   per room is 416; with policy 0 it is downgraded.
//! - *Choice:* `queueInit` takes `sizeLimit` (1..=100000, not below the
//!   queue's length, else 414) and `queueDrop` only `roomid`; both answer
//!   `desc: {}`.
//! - *Choice:* an `operator` that names no known account is 404 (the seed's
//!   "account does not exist"). Known accounts are the room creators and the
//!   users of successful `join` / `set_role` control lines of this vendor.
//! - *Choice:* polling a missing key or an empty queue is 404 (NetEase's
//!   "object does not exist"); a full queue is 414; creating a room that
//!   exists (control line) is 417 ("duplicate operation").
//! - *Choice:* poll, init and drop act as the app server
//!   ([`Actor::Admin`]), since they take no operator.
//! - Not modelled: 403 "chatroom not enabled", 500.
//!
//! ## ZEGO (seed 004)
//!
//! `POST /?Action=ModifyRoomAttribute` with `RoomId`, `FromUserId` and
//! `Attributes: [{Action, Key, Value, AutoDelete, StopOnError}]`;
//! `POST /?Action=QueryRoomAttributes` (ZEGO's public name
//! `QueryRoomAttribute` too) with `RoomId`. Answer HTTP 200
//! `{Code, Message, RequestId}`; modify adds `ErrKeyList: [{SubCode, Key}]`
//! only when some attribute failed (with `Code` 0: the others were
//! applied); query adds `AttributeSeq` (the room's sequence number) and
//! `Attributes: [{Key, Value, AutoDelete}]` in listing order.
//!
//! - `Action` 0 sets, 1 deletes; `Value` defaults to `""`; `AutoDelete` 1
//!   deletes the key when `FromUserId` exits, even if it only joins later.
//! - ≤20 attributes per request, else 660000002; key ≤16 B, value ≤1024 B,
//!   ≤20 keys and ≤5120 B per room (public docs); 20 requests/s, else
//!   660300005.
//! - *Choice:* `StopOnError` is documented per attribute; the request stops
//!   at the first error if any attribute sets `StopOnError: 1`.
//! - *Choice:* `SubCode`s (the seed gives none): 1 key empty or too long,
//!   2 value too long, 3 room key count, 4 room total size, 5 key owned by
//!   another user, 6 deleted key does not exist, 7 not attempted (after a
//!   `StopOnError` failure), 8 revision conflict, 9 other.
//! - *Choice:* `RoomId` and `FromUserId` are checked against the seed's
//!   charset and ZEGO's public 32-character limit (660000002); an unknown
//!   room is 660000002.
//! - `FromUserId` need not be in the room; a key another user owns cannot
//!   be changed or deleted by it (SubCode 5): the server API has no
//!   force or update-owner flag.

mod easemob;
mod json;
mod netease;
mod replay;
mod request;
mod tencent;
mod zego;

use std::collections::BTreeSet;

#[cfg(doc)]
use roomstate::Actor;
use roomstate::{
    Command, Engine, Event, Limits, Millis, OpError, Outcome, QueueLimits, Rejection, Str, Unit,
};

pub use json::{obj, Json};
pub use replay::{check_replay, replay_line, Replayer};
pub use request::{parse_line, percent_decode, Control, Line, LineError, Request, VendorId};

/// A vendor response: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The vendor's response body.
    pub body: Json,
}

impl Response {
    /// The replay output line: `{"status": …, "body": …}`, no newline.
    #[must_use]
    pub fn to_line(&self) -> String {
        obj([
            ("status", Json::from(self.status)),
            ("body", self.body.clone()),
        ])
        .to_text()
    }

    fn ok(body: Json) -> Response {
        Response { status: 200, body }
    }
}

/// Why a request did not succeed, before it is put in a vendor's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Malformed request: a missing field, a wrong type, a bad value.
    BadParam(String),
    /// No API at this method and path (HTTP 404).
    NoRoute(String),
    /// The engine rejected the command; nothing changed.
    Rejected(Rejection),
    /// NetEase: the operator account does not exist (code 404).
    NoAccount(String),
    /// A missing or wrong credential (a server's authentication layer).
    Unauthorized(String),
}

impl From<String> for Failure {
    fn from(m: String) -> Failure {
        Failure::BadParam(m)
    }
}

/// One vendor's API over one engine with that vendor's built-in profile.
pub struct Dialect {
    vendor: VendorId,
    engine: Engine,
    requests: u64,
    /// NetEase accounts: room creators and users named by control lines.
    accounts: BTreeSet<String>,
    events: Vec<Event>,
    /// The `now` of the line being answered (Easemob `timestamp`).
    stamp: Millis,
    /// The state-changing commands applied since the last
    /// [`Dialect::take_journal`], when journaling is on.
    journal: Option<Vec<(Millis, Command)>>,
    /// The engine's last rejection while answering the current line.
    last_rejection: Option<Rejection>,
    /// Tencent: the App admin identifiers, acting as [`Actor::Admin`].
    admin_identifiers: Vec<String>,
    /// Mixed into request ids (0: ids are the counter alone).
    request_id_salt: u64,
}

/// Tencent's default App admin identifier (the console's admin account).
pub const DEFAULT_ADMIN_IDENTIFIER: &str = "administrator";

impl Dialect {
    /// A dialect with a fresh engine.
    #[must_use]
    pub fn new(vendor: VendorId) -> Dialect {
        Dialect::with_engine(vendor, Engine::new(vendor.profile()))
    }

    /// A dialect over `engine` (for example one restored from a snapshot,
    /// or one with a custom profile). NetEase accounts start empty; see
    /// [`Dialect::add_account`].
    #[must_use]
    pub fn with_engine(vendor: VendorId, engine: Engine) -> Dialect {
        Dialect {
            vendor,
            engine,
            requests: 0,
            accounts: BTreeSet::new(),
            events: Vec::new(),
            stamp: Millis::ZERO,
            journal: None,
            last_rejection: None,
            admin_identifiers: vec![DEFAULT_ADMIN_IDENTIFIER.to_owned()],
            request_id_salt: 0,
        }
    }

    /// Starts keeping a journal of every command that changed state (see
    /// [`Dialect::take_journal`]). Off by default: the replay tool needs none.
    pub fn enable_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The `(now, command)` pairs applied since the last call, in order:
    /// every command that succeeded, except pure reads, and a
    /// [`Command::Tick`] at the `now` of a left-out command that emitted
    /// events (the expiries the engine runs before any command). Replaying them with
    /// [`Dialect::handle`] on the state they started from gives the same
    /// rooms (a write-ahead log stores them). Rejected commands are left
    /// out: they change no room, and a replay that lacks their spent
    /// request-rate tokens only has more to spare.
    pub fn take_journal(&mut self) -> Vec<(Millis, Command)> {
        match &mut self.journal {
            Some(j) => core::mem::take(j),
            None => Vec::new(),
        }
    }

    /// Applies an engine command at `now` directly: for what a server does
    /// on its own authority (ticks, disconnects, destroying a room) and for
    /// replaying a journal. Its events replace [`Dialect::events`].
    pub fn handle(&mut self, now: Millis, command: Command) -> Outcome {
        self.stamp = now.max(self.engine.now());
        self.events.clear();
        self.last_rejection = None;
        self.run(now, command)
    }

    /// Tencent: sets the App admin identifiers (default
    /// [`DEFAULT_ADMIN_IDENTIFIER`]). A request whose `identifier` is one of
    /// them acts as [`Actor::Admin`]; any other identifier is that user.
    pub fn set_admin_identifiers(&mut self, ids: impl IntoIterator<Item = String>) {
        self.admin_identifiers = ids.into_iter().collect();
    }

    /// Mixes `salt` into the request ids this dialect hands out (Tencent
    /// `Id-<salt, 16 hex><counter, 16 hex>-O-Seq-<counter>`, ZEGO
    /// `req-<salt hex>-<counter>`), so that several dialects of one server
    /// (shards), and its restarts, never repeat an id. 0, the default,
    /// keeps the replay tool's ids.
    pub fn set_request_id_salt(&mut self, salt: u64) {
        self.request_id_salt = salt;
    }

    /// The request id salt (see [`Dialect::set_request_id_salt`]).
    #[must_use]
    pub fn request_id_salt(&self) -> u64 {
        self.request_id_salt
    }

    /// Whether `id` is a configured App admin identifier (Tencent).
    #[must_use]
    pub fn is_admin_identifier(&self, id: &str) -> bool {
        self.admin_identifiers.iter().any(|a| a == id)
    }

    /// The last rejection the engine gave while answering the last line or
    /// command, if any (for a server's metrics).
    #[must_use]
    pub fn last_rejection(&self) -> Option<Rejection> {
        self.last_rejection
    }

    /// When the engine next needs a [`Command::Tick`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Millis> {
        self.engine.poll_timeout()
    }

    /// NetEase accounts: room creators and users who joined or got a role
    /// through this dialect (the `operator`s it knows).
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(String::as_str)
    }

    /// Adds a NetEase account (when restoring a dialect's state).
    pub fn add_account(&mut self, account: &str) {
        self.accounts.insert(account.to_owned());
    }

    /// The vendor's authentication error at `now` (a server's auth layer:
    /// a missing or wrong credential). Changes nothing but the request
    /// counter. Tencent HTTP 200 `ErrorCode` 70009; Easemob/Agora HTTP 401
    /// `unauthorized` (seed 001); NetEase HTTP 200 `code` 403; ZEGO HTTP 200
    /// `Code` 100000004. *Choice:* the seeds name only Easemob's; the
    /// others are the vendors' public signature-failure codes.
    pub fn unauthorized(&mut self, now: Millis, message: &str) -> Response {
        self.begin(now);
        self.failure(Failure::Unauthorized(message.to_owned()))
    }

    /// The vendor's answer to a command rejected with `rejection` at `now`
    /// without reaching the engine, such as a server too busy to queue it
    /// ([`Rejection::RateLimited`]). Changes nothing but the request counter.
    pub fn rejection(&mut self, now: Millis, rejection: Rejection) -> Response {
        self.begin(now);
        self.failure(Failure::Rejected(rejection))
    }

    /// Whose API this is.
    #[must_use]
    pub fn vendor(&self) -> VendorId {
        self.vendor
    }

    /// The engine behind it.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The events the last line produced (the replay tool prints responses
    /// only; a server would hand these to its transport).
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Number of lines this dialect has answered; the last request id.
    #[must_use]
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Answers a vendor API request at `now`.
    pub fn request(&mut self, now: Millis, req: &Request) -> Response {
        self.begin(now);
        let result = match self.vendor {
            VendorId::Tencent => tencent::request(self, now, req),
            VendorId::Easemob | VendorId::AgoraChat => easemob::request(self, now, req),
            VendorId::NetEase => netease::request(self, now, req),
            VendorId::Zego => zego::request(self, now, req),
        };
        result.unwrap_or_else(|f| self.failure(f))
    }

    /// Applies a control line at `now`: `200 {}` or the vendor's error.
    pub fn control(&mut self, now: Millis, control: &Control) -> Response {
        self.begin(now);
        match self.apply_control(now, control) {
            Ok(()) => Response::ok(Json::Obj(Vec::new())),
            Err(f) => self.failure(f),
        }
    }

    /// The vendor's parameter-error response, at `now`, for input that
    /// could not be parsed. Changes nothing but the request counter.
    pub fn bad_input(&mut self, now: Millis, message: &str) -> Response {
        self.begin(now);
        self.failure(Failure::BadParam(message.to_owned()))
    }

    fn begin(&mut self, now: Millis) {
        self.requests += 1;
        // The engine never goes back in time; neither do timestamps.
        self.stamp = now.max(self.engine.now());
        self.events.clear();
        self.last_rejection = None;
    }

    fn failure(&self, f: Failure) -> Response {
        match self.vendor {
            VendorId::Tencent => tencent::failure(self, f),
            VendorId::Easemob | VendorId::AgoraChat => easemob::failure(self, f),
            VendorId::NetEase => netease::failure(self, f),
            VendorId::Zego => zego::failure(self, f),
        }
    }

    fn apply_control(&mut self, now: Millis, control: &Control) -> Result<(), Failure> {
        let canon = |room: &str| -> Result<Str, Failure> {
            if self.vendor == VendorId::NetEase {
                netease::room_id(room).map(Str::from)
            } else {
                Ok(Str::from(room))
            }
        };
        let command = match control {
            Control::CreateRoom { room, creator } => Command::CreateRoom {
                room: canon(room)?,
                creator: creator.into(),
            },
            Control::Join { room, user } => Command::Join {
                room: canon(room)?,
                user: user.into(),
            },
            Control::Leave { room, user } => Command::Leave {
                room: canon(room)?,
                user: user.into(),
            },
            Control::Exit { room, user } => Command::Exit {
                room: canon(room)?,
                user: user.into(),
            },
            Control::SetRole { room, user, role } => Command::SetRole {
                room: canon(room)?,
                user: user.into(),
                role: *role,
            },
        };
        self.run(now, command).map_err(Failure::Rejected)?;
        Ok(())
    }

    /// Runs one engine command, keeps its events, journals it if it
    /// changed state and notes NetEase accounts.
    fn run(&mut self, now: Millis, command: Command) -> Outcome {
        let account = match &command {
            _ if self.vendor != VendorId::NetEase => None,
            Command::CreateRoom { creator, .. } => Some(creator.as_str().to_owned()),
            Command::Join { user, .. } | Command::SetRole { user, .. } => {
                Some(user.as_str().to_owned())
            }
            _ => None,
        };
        let read_only = matches!(
            command,
            Command::Read { .. } | Command::QueueList { .. } | Command::QueueMultiGet { .. }
        );
        let copy = match (&self.journal, read_only) {
            (Some(_), false) => Some(command.clone()),
            _ => None,
        };
        let events_before = self.events.len();
        let outcome = self.engine.handle(now, command);
        self.engine.drain_events(&mut self.events);
        let mut logged = false;
        if let Err(r) = &outcome {
            self.last_rejection = Some(*r);
        } else {
            if let Some(user) = account {
                self.accounts.insert(user);
            }
            if let (Some(journal), Some(command)) = (&mut self.journal, copy) {
                journal.push((now, command));
                logged = true;
            }
        }
        // The engine expires due grace periods before every command, a
        // rejected or read-only one too; a journal that leaves the command
        // out keeps the expiry with a tick at the same `now`.
        if !logged && self.events.len() > events_before {
            if let Some(journal) = &mut self.journal {
                journal.push((now, Command::Tick));
            }
        }
        outcome
    }

    /// The vendor code the profile names for a rejection.
    fn code(&self, r: Rejection) -> Option<u32> {
        // The five vendors' codes are positive and fit their u32 fields;
        // a negative (Agora Signaling) code has no place in their bodies.
        self.engine
            .profile()
            .code(r.class())
            .and_then(|c| u32::try_from(c).ok())
    }
}

// ----- shared field readers -----

/// The body as an object, or a parameter error.
pub(crate) fn body_obj(body: Option<&Json>) -> Result<&Json, Failure> {
    match body {
        Some(b @ Json::Obj(_)) => Ok(b),
        Some(other) => Err(Failure::BadParam(format!(
            "request body must be a JSON object, not {}",
            other.type_name()
        ))),
        None => Err(Failure::BadParam("request body is required".into())),
    }
}

/// A member that is present and not `null`.
pub(crate) fn member<'a>(obj: &'a Json, name: &str) -> Option<&'a Json> {
    obj.get(name).filter(|v| !matches!(v, Json::Null))
}

/// A required string member.
pub(crate) fn req_str<'a>(obj: &'a Json, name: &str) -> Result<&'a str, Failure> {
    match member(obj, name) {
        Some(Json::Str(s)) => Ok(s),
        Some(other) => Err(Failure::BadParam(format!(
            "{name} must be a string, not {}",
            other.type_name()
        ))),
        None => Err(Failure::BadParam(format!("{name} is required"))),
    }
}

/// An optional array of strings.
pub(crate) fn opt_str_array(obj: &Json, name: &str) -> Result<Option<Vec<Str>>, Failure> {
    match member(obj, name) {
        None => Ok(None),
        Some(v) => str_array(v, name).map(Some),
    }
}

/// An array of strings.
pub(crate) fn str_array(v: &Json, name: &str) -> Result<Vec<Str>, Failure> {
    let items = v.as_arr().ok_or_else(|| {
        Failure::BadParam(format!(
            "{name} must be an array of strings, not {}",
            v.type_name()
        ))
    })?;
    items
        .iter()
        .map(|k| {
            k.as_str().map(Str::from).ok_or_else(|| {
                Failure::BadParam(format!(
                    "{name} must be an array of strings, not hold {}",
                    k.type_name()
                ))
            })
        })
        .collect()
}

/// An array of JSON strings.
pub(crate) fn strings<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> Json {
    Json::Arr(items.into_iter().map(|s| Json::from(s.as_ref())).collect())
}

// ----- shared wording -----

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Bytes => "bytes",
        Unit::Chars => "characters",
    }
}

/// Why one op failed, in plain words, with the profile's attribute limits.
pub(crate) fn op_error_text(e: OpError, limits: &Limits) -> String {
    match e {
        OpError::KeyEmpty => "key is empty".into(),
        OpError::KeyTooLong => format!(
            "key exceeds {} {}",
            limits.max_key_len,
            unit_name(limits.key_unit)
        ),
        OpError::KeyCharset => "key may only contain A-Z a-z 0-9 _ - .".into(),
        OpError::ValueTooLong => format!(
            "value exceeds {} {}",
            limits.max_value_len,
            unit_name(limits.value_unit)
        ),
        OpError::Conflict { .. } => "the key changed since it was read".into(),
        OpError::NotOwner => "key is owned by another user".into(),
        OpError::NotFound => "key does not exist".into(),
        OpError::KeyCountLimit => match limits.max_keys_per_room {
            Some(n) => format!("room already holds the maximum of {n} keys"),
            None => "room holds too many keys".into(),
        },
        OpError::RoomSizeLimit => match limits.max_room_value_bytes {
            Some(n) => format!("room's values would exceed {n} bytes in total"),
            None => "room's values are too large".into(),
        },
        OpError::EngineSizeLimit => "application's values would exceed their total limit".into(),
        OpError::NotAttempted => "not attempted: an earlier attribute failed".into(),
        OpError::OwnerNotInRoom => "owner is not in the room and is not its creator".into(),
        OpError::QueueFull => "queue is full".into(),
        _ => e.to_string(),
    }
}

/// Why a queue element failed, with the queue's limits.
pub(crate) fn queue_error_text(e: OpError, limits: &Limits) -> String {
    let ql: &QueueLimits = &limits.queue;
    match e {
        OpError::KeyTooLong => format!("key exceeds {} {}", ql.max_key_len, unit_name(ql.key_unit)),
        OpError::ValueTooLong => format!(
            "value exceeds {} {}",
            ql.max_value_len,
            unit_name(ql.value_unit)
        ),
        OpError::NotFound => "element does not exist".into(),
        other => op_error_text(other, limits),
    }
}

/// A rejection in plain words; `keys` names the request's ops by index.
pub(crate) fn rejection_text(r: Rejection, limits: &Limits, keys: &[Str]) -> String {
    match r {
        Rejection::RoomNotFound => "room does not exist".into(),
        Rejection::RoomExists => "room already exists".into(),
        Rejection::NotInRoom => "user is not in the room".into(),
        Rejection::NoPermission => "no permission".into(),
        Rejection::TooManyOps { max } => format!("too many keys in one request (at most {max})"),
        Rejection::Empty => "the request names no key".into(),
        Rejection::InvalidParameter => "invalid parameter".into(),
        Rejection::PolicyNotAllowed => "batch policy not allowed".into(),
        Rejection::Op { index, error } => match keys.get(index) {
            Some(key) => format!("key {:?}: {}", key.as_str(), op_error_text(error, limits)),
            None => op_error_text(error, limits),
        },
        Rejection::NothingDeleted => "none of the keys could be deleted".into(),
        Rejection::RateLimited => "request rate limit exceeded".into(),
        Rejection::NotificationBudget => "high-priority notification budget exceeded".into(),
        Rejection::QueueEmpty => "queue is empty".into(),
        _ => r.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomstate::Profile;

    /// What a server reads from a dialect besides its answers: NetEase
    /// accounts (noted for that vendor alone, and added back on restore),
    /// the last rejection (for its metrics), and when the engine next
    /// needs a tick.
    #[test]
    fn a_server_reads_accounts_rejections_and_the_next_tick() {
        let now = Millis(1_000);
        for vendor in [VendorId::NetEase, VendorId::Tencent] {
            let mut d = Dialect::new(vendor);
            let create = Command::CreateRoom {
                room: "r".into(),
                creator: "owner".into(),
            };
            assert!(d.handle(now, create.clone()).is_ok());
            assert_eq!(d.last_rejection(), None);
            let join = Command::Join {
                room: "r".into(),
                user: "guest".into(),
            };
            assert!(d.handle(now, join).is_ok());
            let noted: Vec<&str> = d.accounts().collect();
            match vendor {
                VendorId::NetEase => assert_eq!(noted, ["guest", "owner"]),
                _ => assert!(noted.is_empty(), "{noted:?}"),
            }
            d.add_account("restored");
            assert!(d.accounts().any(|a| a == "restored"));
            assert!(d.handle(now, create).is_err(), "a second create");
            assert_eq!(d.last_rejection(), Some(Rejection::RoomExists));
            assert_eq!(d.poll_timeout(), None, "nothing is due");
            let dropped = Command::Disconnect {
                room: "r".into(),
                user: "guest".into(),
            };
            assert!(d.handle(now, dropped).is_ok());
            let due = d.poll_timeout();
            assert!(due.is_some_and(|at| at > now), "{due:?}");
            assert_eq!(due, d.engine.poll_timeout());
        }
    }

    /// Each error the dialects word themselves has its own words, not
    /// the engine's sentence that the others fall back to.
    #[test]
    fn the_errors_the_dialects_word_read_as_worded() {
        let limits = Profile::easemob().limits;
        let ops = [
            (OpError::KeyEmpty, "key is empty"),
            (
                OpError::KeyCharset,
                "key may only contain A-Z a-z 0-9 _ - .",
            ),
            (
                OpError::Conflict { current: Some(3) },
                "the key changed since it was read",
            ),
            (OpError::NotOwner, "key is owned by another user"),
            (OpError::NotFound, "key does not exist"),
            (
                OpError::EngineSizeLimit,
                "application's values would exceed their total limit",
            ),
            (
                OpError::NotAttempted,
                "not attempted: an earlier attribute failed",
            ),
            (
                OpError::OwnerNotInRoom,
                "owner is not in the room and is not its creator",
            ),
            (OpError::QueueFull, "queue is full"),
        ];
        for (e, text) in ops {
            assert_eq!(op_error_text(e, &limits), text, "{e:?}");
        }
        let keys = [Str::from("k")];
        let rejections = [
            (Rejection::RoomNotFound, "room does not exist"),
            (Rejection::RoomExists, "room already exists"),
            (Rejection::NotInRoom, "user is not in the room"),
            (Rejection::NoPermission, "no permission"),
            (Rejection::Empty, "the request names no key"),
            (Rejection::InvalidParameter, "invalid parameter"),
            (Rejection::PolicyNotAllowed, "batch policy not allowed"),
            (
                Rejection::NothingDeleted,
                "none of the keys could be deleted",
            ),
            (Rejection::RateLimited, "request rate limit exceeded"),
            (
                Rejection::NotificationBudget,
                "high-priority notification budget exceeded",
            ),
            (Rejection::QueueEmpty, "queue is empty"),
            (
                Rejection::Op {
                    index: 0,
                    error: OpError::NotFound,
                },
                "key \"k\": key does not exist",
            ),
        ];
        for (r, text) in rejections {
            assert_eq!(rejection_text(r, &limits, &keys), text, "{r:?}");
        }
    }
}
