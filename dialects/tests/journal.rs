//! The journal a server logs (`Dialect::take_journal`) replays to the same
//! rooms.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use roomstate::{Command, Millis};
use roomstate_dialects::{Control, Dialect, Json, Request, VendorId};

fn put(d: &mut Dialect, now: u64, user: &str, key: &str) -> u16 {
    let mut r = Request::new(
        VendorId::Easemob,
        "PUT",
        &format!("/o/a/metadata/chatroom/r/user/{user}"),
    );
    r.body = Some(Json::parse(&format!(r#"{{"metaData":{{"{key}":"v"}}}}"#)).unwrap());
    d.request(Millis(now), &r).status
}

fn state(d: &Dialect) -> (u64, Vec<String>) {
    let room = d.engine().room("r").unwrap();
    let members = room.members().iter().map(|m| m.to_string()).collect();
    (room.seq(), members)
}

fn replay(journal: Vec<(Millis, Command)>) -> Dialect {
    let mut d = Dialect::new(VendorId::Easemob);
    for (now, command) in journal {
        let _ = d.handle(now, command);
    }
    d
}

#[test]
fn a_journal_replays_to_the_same_rooms_including_expiries_run_by_rejected_commands() {
    let mut d = Dialect::new(VendorId::Easemob);
    d.enable_journal();
    let create = Control::CreateRoom {
        room: "r".into(),
        creator: "host".into(),
    };
    assert_eq!(d.control(Millis(0), &create).status, 200);
    for user in ["u1", "u2"] {
        let join = Control::Join {
            room: "r".into(),
            user: user.into(),
        };
        assert_eq!(d.control(Millis(0), &join).status, 200);
    }
    assert_eq!(put(&mut d, 1, "u1", "seat"), 200);
    // u1's socket drops; 40 s later (past the 30 s grace) a write by a
    // stranger is refused, and the engine expires u1 first.
    assert!(d
        .handle(
            Millis(2),
            Command::Disconnect {
                room: "r".into(),
                user: "u1".into()
            }
        )
        .is_ok());
    assert_eq!(put(&mut d, 40_000, "stranger", "x"), 401);
    assert!(!d.events().is_empty(), "the refused write ran u1's expiry");
    // Reads leave nothing behind but the tick.
    let journal = d.take_journal();
    assert!(journal
        .iter()
        .all(|(_, c)| !matches!(c, Command::Read { .. })));
    assert!(matches!(
        journal.last(),
        Some((Millis(40_000), Command::Tick))
    ));
    let replayed = replay(journal);
    assert_eq!(state(&replayed), state(&d));
    assert_eq!(state(&d).1, ["u2"]);
    // Nothing new: an empty journal.
    assert!(d.take_journal().is_empty());
}

#[test]
fn a_journal_is_empty_unless_enabled() {
    let mut d = Dialect::new(VendorId::Easemob);
    let create = Control::CreateRoom {
        room: "r".into(),
        creator: "host".into(),
    };
    assert_eq!(d.control(Millis(0), &create).status, 200);
    assert!(d.take_journal().is_empty());
}

#[test]
fn request_id_salts_keep_ids_of_several_dialects_apart() {
    let id = |salt: u64, vendor: VendorId| {
        let mut d = Dialect::new(vendor);
        d.set_request_id_salt(salt);
        let body = d.bad_input(Millis(0), "x").body;
        body.get("RequestId")
            .and_then(Json::as_str)
            .unwrap()
            .to_owned()
    };
    // Salt 0 is the replay tool's format.
    assert_eq!(
        id(0, VendorId::Tencent),
        "Id-00000000000000000000000000000001-O-Seq-1"
    );
    assert_eq!(id(0, VendorId::Zego), "req-1");
    assert_ne!(id(1, VendorId::Tencent), id(2, VendorId::Tencent));
    assert_eq!(
        id(0xab, VendorId::Tencent),
        "Id-00000000000000ab0000000000000001-O-Seq-1"
    );
    assert_eq!(id(0xab, VendorId::Zego), "req-ab-1");
}
