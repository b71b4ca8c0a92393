//! Every use of the engine's API in the server, in one place, so that a
//! change of the engine's shape is a small edit here: state reads through
//! commands, events to JSON, room ids, shard snapshots.

use roomstate::{Actor, Change, Command, Delivery, Engine, Event, Millis, Rejection, Role, Str};
use roomstate_dialects::{Dialect, VendorId};
use serde::{Deserialize, Serialize};

/// The id the engine knows a room by: NetEase room ids are numbers
/// (`036` is `36`); others are taken as they are.
#[must_use]
pub fn canonical_room(vendor: VendorId, room: &str) -> String {
    if vendor == VendorId::NetEase {
        if let Ok(n) = room.trim().parse::<i64>() {
            return n.to_string();
        }
    }
    room.to_owned()
}

/// A room's sequence number, 0 for a room that does not exist.
#[must_use]
pub fn room_seq(dialect: &Dialect, room: &str) -> u64 {
    dialect.engine().room(room).map_or(0, |r| r.seq())
}

/// Number of present members of a room (0 for none or no room).
#[must_use]
pub fn member_count(dialect: &Dialect, room: &str) -> usize {
    dialect.engine().room(room).map_or(0, |r| r.members().len())
}

/// Every room with members, and how many: what a restarted shard's
/// members gauge starts from.
#[must_use]
pub fn members_by_room(dialect: &Dialect) -> std::collections::HashMap<String, usize> {
    dialect
        .engine()
        .rooms()
        .map(|r| (r.id().as_str().to_owned(), r.members().len()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Number of rooms of the engine.
#[must_use]
pub fn room_count(dialect: &Dialect) -> usize {
    dialect.engine().room_count()
}

/// The room of an event.
#[must_use]
pub fn event_room(event: &Event) -> &str {
    event.room.as_str()
}

/// The sequence number of an event.
#[must_use]
pub fn event_seq(event: &Event) -> u64 {
    event.seq
}

/// Whether the transport may drop the event.
#[must_use]
pub fn event_droppable(event: &Event) -> bool {
    event.delivery == Delivery::Overflow
}

/// Whether the event ends its room.
#[must_use]
pub fn event_destroys_room(event: &Event) -> bool {
    event
        .changes
        .iter()
        .any(|c| matches!(c, Change::RoomDestroyed))
}

/// Whether the event changes who is present.
#[must_use]
pub fn event_changes_members(event: &Event) -> bool {
    event.changes.iter().any(|c| {
        matches!(
            c,
            Change::MemberJoined { .. }
                | Change::MemberExited { .. }
                | Change::RoomDestroyed
                | Change::RoomCreated { .. }
        )
    })
}

/// An event as the JSON text a WebSocket client receives:
/// `{"type":"event","room":…,"seq":…,"at":…,"operator":…,"cause":…,
/// "delivery":…,"ext":…,"changes":[…]}`, the engine's own serde form of
/// each part.
#[must_use]
pub fn event_json(event: &Event) -> String {
    // Serialized straight from borrowed parts: no `serde_json::Value` tree
    // (building one cost a quarter of a shard's time under load).
    let out = EventJson {
        kind: "event",
        room: event.room.as_str(),
        seq: event.seq,
        at: event.at.0,
        operator: actor_name(&event.operator),
        cause: &event.cause,
        delivery: &event.delivery,
        ext: event.ext.as_ref().map(Str::as_str),
        changes: &event.changes[..],
    };
    // Serializing these types into a String does not fail.
    serde_json::to_string(&out).unwrap_or_default()
}

/// The WebSocket form of an event (see [`event_json`]).
#[derive(Serialize)]
struct EventJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    seq: u64,
    at: u64,
    operator: Option<&'a str>,
    cause: &'a roomstate::Cause,
    delivery: &'a Delivery,
    ext: Option<&'a str>,
    changes: &'a [Change],
}

/// A user's name, `None` (JSON `null`) for the app admin.
fn actor_name(actor: &Actor) -> Option<&str> {
    match actor {
        Actor::Admin => None,
        Actor::User(u) => Some(u.as_str()),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Creator => "creator",
        Role::Admin => "admin",
        _ => "member",
    }
}

/// The room's events after `since` and up to `upto`, as the JSON texts of
/// [`event_json`], from the engine's catch-up history; `None` when the
/// history no longer reaches back to `since` (or the room is gone), and
/// the client needs the full state instead. Reads the engine's view: no
/// command, so no rate token.
#[must_use]
pub fn catch_up_json(dialect: &Dialect, room: &str, since: u64, upto: u64) -> Option<Vec<String>> {
    let view = dialect.engine().room(room)?;
    let events = view.events_since(since).ok()?;
    Some(
        events
            .take_while(|e| e.seq <= upto)
            .map(|e| event_json(&e))
            .collect(),
    )
}

/// The full state of a room as the JSON text a resuming WebSocket client
/// receives first: `{"type":"state","room":…,"seq":…,"attributes":[{key,
/// value,owner,auto_delete,revision}],"queue":[{key,value,owner,
/// transient}],"counters":[{key,value}],"locks":[{name,holder,token}],
/// "members":[{user,role,connections}]}`. `owner` and `holder` are `null`
/// for none (the app admin owns). Read through the engine's view, at the
/// room's `seq`: no command, so no request-rate token is spent (the state
/// is the server's own resumption, not a client's API call).
pub fn room_state_json(
    dialect: &mut Dialect,
    _now: Millis,
    room: &str,
) -> Result<String, Rejection> {
    let view = dialect.engine().room(room).ok_or(Rejection::RoomNotFound)?;
    let owner = |o: Option<&str>| o.map_or(serde_json::Value::Null, serde_json::Value::from);
    let attributes: Vec<serde_json::Value> = view
        .attributes()
        .map(|a| {
            serde_json::json!({
                "key": a.key,
                "value": a.value,
                "owner": owner(a.owner),
                "auto_delete": a.auto_delete,
                "revision": a.revision,
            })
        })
        .collect();
    let elements: Vec<serde_json::Value> = view
        .queue()
        .map(|e| {
            serde_json::json!({
                "key": e.key,
                "value": e.value,
                "owner": owner(e.owner),
                "transient": e.transient,
            })
        })
        .collect();
    let counters: Vec<serde_json::Value> = view
        .counters()
        .map(|(key, value)| serde_json::json!({"key": key, "value": value}))
        .collect();
    let locks: Vec<serde_json::Value> = view
        .locks()
        .map(|l| serde_json::json!({"name": l.name, "holder": owner(l.holder), "token": l.token}))
        .collect();
    let members: Vec<serde_json::Value> = view
        .members()
        .into_iter()
        .map(|user| {
            serde_json::json!({
                "user": user.as_str(),
                "role": role_name(view.role(user)),
                "connections": view.connections(user),
            })
        })
        .collect();
    Ok(serde_json::json!({
        "type": "state",
        "room": room,
        "seq": view.seq(),
        "attributes": attributes,
        "queue": elements,
        "counters": counters,
        "locks": locks,
        "members": members,
    })
    .to_string())
}

/// What a shard snapshot holds: the engine and the NetEase accounts the
/// dialect knows (which the engine does not keep).
#[derive(Serialize, Deserialize)]
struct ShardSnapshot {
    engine: Vec<u8>,
    accounts: Vec<String>,
}

/// Marks a shard snapshot (a bare engine snapshot lacks it).
const SHARD_SNAPSHOT_MAGIC: &[u8; 8] = b"RSSHARD1";

/// The bytes of a shard's snapshot.
#[must_use]
pub fn shard_snapshot(dialect: &Dialect) -> Vec<u8> {
    let snap = ShardSnapshot {
        engine: dialect.engine().snapshot(),
        accounts: dialect.accounts().map(str::to_owned).collect(),
    };
    let out = SHARD_SNAPSHOT_MAGIC.to_vec();
    // Serializing into a Vec does not fail; an empty snapshot would refuse
    // to restore rather than restore something wrong.
    postcard::to_extend(&snap, out).unwrap_or_default()
}

/// A dialect from a shard snapshot (or a bare engine snapshot).
pub fn restore_shard(vendor: VendorId, bytes: &[u8]) -> Result<Dialect, String> {
    if let Some(rest) = bytes.strip_prefix(SHARD_SNAPSHOT_MAGIC.as_slice()) {
        let snap: ShardSnapshot =
            postcard::from_bytes(rest).map_err(|e| format!("shard snapshot: {e}"))?;
        let engine =
            Engine::restore(&snap.engine).map_err(|e| format!("engine snapshot: {e:?}"))?;
        let mut dialect = Dialect::with_engine(vendor, engine);
        for a in &snap.accounts {
            dialect.add_account(a);
        }
        Ok(dialect)
    } else {
        let engine = Engine::restore(bytes).map_err(|e| format!("engine snapshot: {e:?}"))?;
        Ok(Dialect::with_engine(vendor, engine))
    }
}

/// A fresh dialect for `vendor`, with the request rate set per shard
/// (`None` keeps the vendor's, `Some(0)` lifts it, `Some(n)` sets it) and
/// the disconnect grace period (`None` keeps the profile's).
#[must_use]
pub fn new_dialect(
    vendor: VendorId,
    requests_per_second: Option<u32>,
    disconnect_grace_ms: Option<u64>,
) -> Dialect {
    let mut profile = vendor.profile();
    if let Some(grace) = disconnect_grace_ms {
        profile.limits.disconnect_grace_ms = grace;
    }
    match requests_per_second {
        None => {}
        Some(0) => profile.limits.request_rate = None,
        Some(n) => profile.limits.request_rate = Some(roomstate::Rate { per_second: n }),
    }
    Dialect::with_engine(vendor, Engine::new(profile))
}

/// Applies a logged command while recovering (its events are dropped).
pub fn replay(dialect: &mut Dialect, now: Millis, command: Command) {
    let _ = dialect.handle(now, command);
}

/// The engine's `now`.
#[must_use]
pub fn engine_now(dialect: &Dialect) -> Millis {
    dialect.engine().now()
}

/// A user's connection to a room dropped (a closed WebSocket).
#[must_use]
pub fn disconnect(room: &str, user: &str) -> Command {
    Command::Disconnect {
        room: room.into(),
        user: user.into(),
    }
}

/// A user connects to a room (an opened WebSocket).
#[must_use]
pub fn join(room: &str, user: &str) -> Command {
    Command::Join {
        room: room.into(),
        user: user.into(),
    }
}

/// Destroys a room.
#[must_use]
pub fn destroy(room: &str) -> Command {
    Command::DestroyRoom { room: room.into() }
}

/// The periodic tick.
#[must_use]
pub fn tick() -> Command {
    Command::Tick
}

/// A short name of a rejection's class, for metrics labels.
#[must_use]
pub fn rejection_class(r: Rejection) -> String {
    format!("{:?}", r.class()).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;
    use roomstate_dialects::{Control, Request};

    /// The form `event_json` had when it built a `serde_json::Value`.
    fn as_value_tree(event: &Event) -> serde_json::Value {
        let changes: Vec<&Change> = event.changes.iter().collect();
        serde_json::json!({
            "type": "event",
            "room": event.room.as_str(),
            "seq": event.seq,
            "at": event.at.0,
            "operator": match &event.operator {
                Actor::Admin => serde_json::Value::Null,
                Actor::User(u) => serde_json::Value::from(u.as_str()),
            },
            "cause": event.cause,
            "delivery": event.delivery,
            "ext": event.ext.as_ref().map(Str::as_str),
            "changes": changes,
        })
    }

    #[test]
    fn the_state_names_each_members_role() {
        let mut d = new_dialect(VendorId::Easemob, Some(0), None);
        let now = Millis(1_000);
        let create = Control::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        };
        d.control(now, &create);
        for user in ["host", "ann", "bob"] {
            d.handle(now, join("r", user)).unwrap();
        }
        let promote = Control::SetRole {
            room: "r".into(),
            user: "ann".into(),
            role: Role::Admin,
        };
        d.control(now, &promote);
        let state: serde_json::Value =
            serde_json::from_str(&room_state_json(&mut d, now, "r").unwrap()).unwrap();
        let roles: Vec<(&str, &str)> = state["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["user"].as_str().unwrap(), m["role"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [("ann", "admin"), ("bob", "member"), ("host", "creator")]
        );
    }

    #[test]
    fn event_json_says_what_the_value_tree_said() {
        let mut d = new_dialect(VendorId::Easemob, Some(0), None);
        let now = Millis(1_000);
        let mut events = Vec::new();
        let create = Control::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        };
        d.control(now, &create);
        events.extend_from_slice(d.events());
        d.handle(now, join("r", "u1")).unwrap();
        events.extend_from_slice(d.events());
        let mut set = Request::new(VendorId::Easemob, "PUT", "/o/a/metadata/chatroom/r/user/u1");
        set.body = Some(
            roomstate_dialects::Json::parse(
                r#"{"metaData":{"k":"v \"quoted\" \u00e9"},"autoDelete":"DELETE"}"#,
            )
            .unwrap(),
        );
        d.request(now, &set);
        events.extend_from_slice(d.events());
        d.handle(now, disconnect("r", "u1")).unwrap();
        events.extend_from_slice(d.events());
        assert!(events.len() >= 3, "{events:?}");
        for event in &events {
            let text = event_json(event);
            let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, as_value_tree(event), "{text}");
        }
    }
}
