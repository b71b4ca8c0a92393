//! Built-in profiles (SPEC §7) and vendor error codes (SPEC §8). One test per
//! profile asserts every field; one test per vendor drives the engine into
//! each documented error and maps it to the vendor's code.

mod common;

use common::*;
use roomstate::{
    Actor, BatchPolicy, Charset, Command, ErrorClass, Flow, Limits, Op, OpError, OwnerRule,
    PolicyRule, Profile, QueueLimits, Rate, Rejection, Rules, Unit, Vendor, VendorCodes, Write,
    AGORA_LOCKS, DEFAULT_DISCONNECT_GRACE_MS,
};

/// SPEC §5 / §7 queue limits: capacity 1000 by default (SPEC §7), batch
/// offer 20, batch update 200, multi-get 100, key 128 chars, value 4096
/// chars, ext 2048 chars (seed 003). `max_capacity` is the crate's choice.
const QUEUE: QueueLimits = QueueLimits {
    default_capacity: 1000,
    max_capacity: 100_000,
    max_batch_offer: 20,
    max_batch_update: 200,
    max_multi_get: 100,
    max_key_len: 128,
    key_unit: Unit::Chars,
    max_value_len: 4096,
    value_unit: Unit::Chars,
    max_ext_chars: 2048,
};

const TEN_GB: u64 = 10_000_000_000;

// SPEC §7 column "tencent" (seed 000) and SPEC §8 Tencent codes. Where SPEC
// names no code (room not found, not in room) the crate's choice is 100002 /
// 100006; Tencent documents no rate-limit code.
#[test]
fn tencent_profile_values_match_spec() {
    let want = Profile {
        vendor: Vendor::Tencent,
        limits: Limits {
            max_keys_per_room: Some(10),
            max_ops_per_write: 10,
            locks: AGORA_LOCKS,
            max_key_len: 50,
            key_unit: Unit::Bytes,
            max_value_len: 2048,
            value_unit: Unit::Bytes,
            key_charset: Charset::Any,
            max_room_value_bytes: Some(16384),
            max_engine_value_bytes: None,
            request_rate: Some(Rate { per_second: 200 }),
            notification_flow: None,
            disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
            queue: QUEUE,
            max_counters_per_room: Some(20),
            max_counter_key_len: 128,
            history_events: 256,
            history_bytes: 65536,
        },
        rules: Rules {
            writer_must_be_member: false,
            default_auto_delete: false,
            owner_on_overwrite: OwnerRule::Keep,
            set_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
            delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: true,
        },
        codes: VendorCodes {
            invalid_parameter: Some(100_002),
            room_exists: Some(100_003),
            room_not_found: Some(100_002),
            no_permission: Some(100_006),
            not_in_room: Some(100_006),
            too_many_ops: Some(100_500),
            key_count: Some(100_500),
            value_size: Some(100_501),
            total_size: Some(100_502),
            nothing_deleted: Some(100_503),
            rate_limited: None,
            ..VendorCodes::NONE
        },
    };
    assert_eq!(Profile::tencent(), want);
    assert_eq!(DEFAULT_DISCONNECT_GRACE_MS, 30_000);
}

// SPEC §7 column "easemob" (seed 001: 10 per request, key 128 chars in
// A-Za-z0-9_.-, value 4096 chars, 100 keys per room, 10 GB per app,
// autoDelete default DELETE, forced set, 100/s) and SPEC §8 (HTTP 400, 401).
#[test]
fn easemob_profile_values_match_spec() {
    let want = Profile {
        vendor: Vendor::Easemob,
        limits: Limits {
            max_keys_per_room: Some(100),
            max_ops_per_write: 10,
            locks: AGORA_LOCKS,
            max_key_len: 128,
            key_unit: Unit::Chars,
            max_value_len: 4096,
            value_unit: Unit::Chars,
            key_charset: Charset::Restricted,
            max_room_value_bytes: None,
            max_engine_value_bytes: Some(TEN_GB),
            request_rate: Some(Rate { per_second: 100 }),
            notification_flow: None,
            disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
            queue: QUEUE,
            max_counters_per_room: Some(20),
            max_counter_key_len: 128,
            history_events: 256,
            history_bytes: 65536,
        },
        rules: Rules {
            writer_must_be_member: true,
            default_auto_delete: true,
            owner_on_overwrite: OwnerRule::OperatorWhenForced,
            set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: false,
        },
        codes: VendorCodes {
            invalid_parameter: Some(400),
            not_in_room: Some(401),
            too_many_ops: Some(400),
            ..VendorCodes::NONE
        },
    };
    assert_eq!(Profile::easemob(), want);
}

// SPEC §7 column "agora_chat" (seed 002): as Easemob but values ≤ 4086 chars.
#[test]
fn agora_chat_profile_values_match_spec() {
    let want = Profile {
        vendor: Vendor::AgoraChat,
        limits: Limits {
            max_keys_per_room: Some(100),
            max_ops_per_write: 10,
            locks: AGORA_LOCKS,
            max_key_len: 128,
            key_unit: Unit::Chars,
            max_value_len: 4086,
            value_unit: Unit::Chars,
            key_charset: Charset::Restricted,
            max_room_value_bytes: None,
            max_engine_value_bytes: Some(TEN_GB),
            request_rate: Some(Rate { per_second: 100 }),
            notification_flow: None,
            disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
            queue: QUEUE,
            max_counters_per_room: Some(20),
            max_counter_key_len: 128,
            history_events: 256,
            history_bytes: 65536,
        },
        rules: Rules {
            writer_must_be_member: true,
            default_auto_delete: true,
            owner_on_overwrite: OwnerRule::OperatorWhenForced,
            set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: false,
        },
        codes: VendorCodes {
            invalid_parameter: Some(400),
            not_in_room: Some(401),
            too_many_ops: Some(400),
            ..VendorCodes::NONE
        },
    };
    assert_eq!(Profile::agora_chat(), want);
}

// SPEC §7 column "netease" (seed 003): no key count, 20 per batch, key 128
// chars, value 4096 chars, any charset, membership for transient only (the
// queue rule; attributes need none), no auto-delete, updater always owner,
// no request rate, flow 20/s + 10/s high; SPEC §8 302/403/414/416.
#[test]
fn netease_profile_values_match_spec() {
    let want = Profile {
        vendor: Vendor::NetEase,
        limits: Limits {
            max_keys_per_room: None,
            max_ops_per_write: 20,
            locks: AGORA_LOCKS,
            max_key_len: 128,
            key_unit: Unit::Chars,
            max_value_len: 4096,
            value_unit: Unit::Chars,
            key_charset: Charset::Any,
            max_room_value_bytes: None,
            max_engine_value_bytes: None,
            request_rate: None,
            notification_flow: Some(Flow {
                normal_per_second: 20,
                high_per_second: 10,
            }),
            disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
            queue: QUEUE,
            max_counters_per_room: Some(20),
            max_counter_key_len: 128,
            history_events: 256,
            history_bytes: 65536,
        },
        rules: Rules {
            writer_must_be_member: false,
            default_auto_delete: false,
            owner_on_overwrite: OwnerRule::Operator,
            set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: false,
        },
        codes: VendorCodes {
            invalid_parameter: Some(414),
            room_not_found: Some(414),
            no_permission: Some(403),
            not_in_room: Some(302),
            too_many_ops: Some(414),
            key_count: Some(414),
            value_size: Some(414),
            total_size: Some(414),
            rate_limited: Some(416),
            ..VendorCodes::NONE
        },
    };
    assert_eq!(Profile::netease(), want);
}

// SPEC §7 column "zego" (seed 004 + ZEGO public docs): 20 keys, 20 ops, key
// 16 B, value 1024 B, 5120 B per room, any charset, no membership needed, no
// auto-delete by default, owner moves only with update_owner, policy per
// request defaulting to StopOnError=0 (BestEffort), 20/s; SPEC §8 codes.
#[test]
fn zego_profile_values_match_spec() {
    let want = Profile {
        vendor: Vendor::Zego,
        limits: Limits {
            max_keys_per_room: Some(20),
            max_ops_per_write: 20,
            locks: AGORA_LOCKS,
            max_key_len: 16,
            key_unit: Unit::Bytes,
            max_value_len: 1024,
            value_unit: Unit::Bytes,
            key_charset: Charset::Any,
            max_room_value_bytes: Some(5120),
            max_engine_value_bytes: None,
            request_rate: Some(Rate { per_second: 20 }),
            notification_flow: None,
            disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
            queue: QUEUE,
            max_counters_per_room: Some(20),
            max_counter_key_len: 128,
            history_events: 256,
            history_bytes: 65536,
        },
        rules: Rules {
            writer_must_be_member: false,
            default_auto_delete: false,
            owner_on_overwrite: OwnerRule::Keep,
            set_policy: PolicyRule::PerRequest(BatchPolicy::BestEffort),
            delete_policy: PolicyRule::PerRequest(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: false,
        },
        codes: VendorCodes {
            invalid_parameter: Some(660_000_002),
            too_many_ops: Some(660_000_002),
            rate_limited: Some(660_300_005),
            ..VendorCodes::NONE
        },
    };
    assert_eq!(Profile::zego(), want);
}

// SPEC §7: five built-ins, in the table's order.
#[test]
fn builtins_are_the_five_profiles_in_spec_order() {
    let vendors: Vec<Vendor> = Profile::builtins().iter().map(|p| p.vendor).collect();
    assert_eq!(
        vendors,
        [
            Vendor::Tencent,
            Vendor::Easemob,
            Vendor::AgoraChat,
            Vendor::NetEase,
            Vendor::Zego
        ]
    );
    assert_eq!(Profile::builtins()[0], Profile::tencent());
    assert_eq!(Profile::builtins()[4], Profile::zego());
}

// SPEC §7 "chars means Unicode scalar values; B means UTF-8 bytes";
// SPEC §7 charset `A-Za-z0-9_.-`.
#[test]
fn units_and_charsets_measure_as_spec_says() {
    assert_eq!(Unit::Bytes.len("é中a"), 6);
    assert_eq!(Unit::Chars.len("é中a"), 3);
    assert!(Charset::Restricted.allows("AZaz09_.-"));
    for bad in ["!", " ", "é", "a/b", "中", "+"] {
        assert!(!Charset::Restricted.allows(bad), "{bad:?}");
        assert!(Charset::Any.allows(bad));
    }
}

fn code_of(p: &Profile, r: Rejection) -> Option<i64> {
    p.code(r.class())
}

fn op_code(p: &Profile, e: OpError) -> Option<i64> {
    p.code(e.class())
}

// SPEC §8 Tencent: 100002 invalid parameter, 100003 room exists, 100006 no
// permission, 100500 key count, 100501 value size, 100502 total size, 100503
// no valid key to delete (seed 000's table) — each produced by the engine.
#[test]
fn tencent_codes_map_100500_100501_100502_100503() {
    let mut d = Driver::new(Profile::tencent());
    let p = d.profile;
    d.create("r", "host");
    let admin = || Write::new("r", Actor::Admin);

    let mut w = admin();
    for i in 0..8 {
        w = w.op(Op::set(format!("k{i}"), rep("v", 2048)));
    }
    d.write_all(w);
    // 100502: total over 16 KB.
    let (out, _) = d.write(admin().op(Op::set("k8", "x")));
    let rej = out.unwrap_err();
    assert_eq!(
        rej,
        Rejection::Op {
            index: 0,
            error: OpError::RoomSizeLimit
        }
    );
    assert_eq!(code_of(&p, rej), Some(100_502));
    // 100501: one value over 2 KB.
    let (out, _) = d.write(admin().op(Op::set("k0", rep("v", 2049))));
    let rej = out.unwrap_err();
    assert_eq!(
        rej,
        Rejection::Op {
            index: 0,
            error: OpError::ValueTooLong
        }
    );
    assert_eq!(code_of(&p, rej), Some(100_501));
    // 100500: an 11th key.
    d.write_all(admin().op(Op::set("k8", "")).op(Op::set("k9", "")));
    let (out, _) = d.write(admin().op(Op::set("k10", "")));
    let rej = out.unwrap_err();
    assert_eq!(
        rej,
        Rejection::Op {
            index: 0,
            error: OpError::KeyCountLimit
        }
    );
    assert_eq!(code_of(&p, rej), Some(100_500));
    // 100503: no key could be deleted.
    let (out, _) = d.write(admin().op(Op::delete("zz")));
    assert_eq!(out, Err(Rejection::NothingDeleted));
    assert_eq!(code_of(&p, Rejection::NothingDeleted), Some(100_503));
    // 100002: invalid parameter (key over 50 bytes).
    let (out, _) = d.write(admin().op(Op::set(rep("k", 51), "")));
    assert_eq!(code_of(&p, out.unwrap_err()), Some(100_002));
    let mut w = admin();
    for i in 0..11 {
        w = w.op(Op::set(format!("k{i}"), ""));
    }
    let (out, _) = d.write(w);
    assert_eq!(out, Err(Rejection::TooManyOps { max: 10 }));
    // 100500: "the number of keys for room metadata exceeds the upper
    // limit of 10", in one request as in the room (seed 000).
    assert_eq!(
        code_of(&p, Rejection::TooManyOps { max: 10 }),
        Some(100_500)
    );
    // 100003: room exists.
    let (out, _) = d.run(Command::CreateRoom {
        room: "r".into(),
        creator: "x".into(),
    });
    assert_eq!(code_of(&p, out.unwrap_err()), Some(100_003));
    // 100006: no permission (a user overwriting someone else's key).
    let (out, _) = d.write(Write::new("r", u("u1")).op(Op::set("k0", "mine")));
    let rej = out.unwrap_err();
    assert_eq!(
        rej,
        Rejection::Op {
            index: 0,
            error: OpError::NotOwner
        }
    );
    assert_eq!(code_of(&p, rej), Some(100_006));
    d.check();
}

// SPEC §8 Easemob/Agora: HTTP 400 `exceed allowed batch size 10`, 401 user not
// in chatroom, per-key reasons (not codes) in `errorKeys` (seed 001).
#[test]
fn easemob_and_agora_codes_map_400_batch_size_and_401_not_in_room() {
    for p in [Profile::easemob(), Profile::agora_chat()] {
        let mut d = Driver::new(p);
        d.create("r", "host");
        d.join("r", "u1");
        let mut w = Write::new("r", u("u1"));
        for i in 0..11 {
            w = w.op(Op::set(format!("k{i}"), "v"));
        }
        let (out, _) = d.write(w);
        assert_eq!(out, Err(Rejection::TooManyOps { max: 10 }));
        assert_eq!(code_of(&p, out.unwrap_err()), Some(400));
        let (out, _) = d.write(Write::new("r", u("nobody")).op(Op::set("k", "v")));
        assert_eq!(out, Err(Rejection::NotInRoom));
        assert_eq!(code_of(&p, Rejection::NotInRoom), Some(401));
        // Per-key failures are reported in the batch, not as a request code.
        let (out, _) = d.write(Write::new("r", u("u1")).op(Op::set("bad!", "v")));
        assert_eq!(
            out,
            written(d.seq("r"), 0, &[(0, "bad!", OpError::KeyCharset)])
        );
        assert_eq!(op_code(&p, OpError::KeyCharset), Some(400));
        d.check();
    }
}

// SPEC §8 NetEase: 302 operator not in room, 403 forbidden, 414 parameter
// error (also "roomid not exsit", seed 003), 416 rate limited / high priority
// over budget with policy 1.
#[test]
fn netease_codes_map_302_403_414_416() {
    let mut d = Driver::new(Profile::netease());
    let p = d.profile;
    d.create("r", "host");
    d.join("r", "u1");
    let (out, _) = d.run(offer("r", u("ghost"), "k", "v", true));
    assert_eq!(out, Err(Rejection::NotInRoom));
    assert_eq!(code_of(&p, Rejection::NotInRoom), Some(302));
    d.run(offer("r", u("u1"), "k", "v", false)).0.unwrap();
    let (out, _) = d.run(Command::QueueBatchUpdate {
        room: "r".into(),
        operator: u("u1"),
        elements: vec![("k".into(), "w".into())],
        notify: roomstate::Notify::default(),
    });
    assert_eq!(out, Err(Rejection::NoPermission));
    assert_eq!(code_of(&p, Rejection::NoPermission), Some(403));
    let (out, _) = d.run(offer("nope", Actor::Admin, "k", "v", false));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    assert_eq!(code_of(&p, Rejection::RoomNotFound), Some(414));
    let (out, _) = d.run(offer("r", Actor::Admin, &rep("k", 129), "v", false));
    assert_eq!(code_of(&p, out.unwrap_err()), Some(414));
    for i in 0..10 {
        d.run(offer_with(
            "r",
            Actor::Admin,
            &format!("h{i}"),
            "v",
            false,
            high(roomstate::HighPolicy::Reject),
        ))
        .0
        .unwrap();
    }
    let (out, _) = d.run(offer_with(
        "r",
        Actor::Admin,
        "h10",
        "v",
        false,
        high(roomstate::HighPolicy::Reject),
    ));
    assert_eq!(out, Err(Rejection::NotificationBudget));
    assert_eq!(code_of(&p, Rejection::NotificationBudget), Some(416));
    assert_eq!(code_of(&p, Rejection::RateLimited), Some(416));
    d.check();
}

// SPEC §8 ZEGO: 660000002 parameter error, 660300005 rate limited (seed 004).
#[test]
fn zego_codes_map_660000002_660300005() {
    let mut d = Driver::new(Profile::zego());
    let p = d.profile;
    d.create("r", "host");
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..21 {
        w = w.op(Op::set(format!("k{i}"), "v"));
    }
    let (out, _) = d.write(w);
    assert_eq!(out, Err(Rejection::TooManyOps { max: 20 }));
    assert_eq!(code_of(&p, out.unwrap_err()), Some(660_000_002));
    let (out, _) = d.write(
        Write::new("r", Actor::Admin)
            .op(Op::set(rep("k", 17), "v"))
            .policy(BatchPolicy::Atomic),
    );
    assert_eq!(code_of(&p, out.unwrap_err()), Some(660_000_002));
    for _ in 0..18 {
        d.handle(read("r", None)).unwrap();
    }
    let (out, _) = d.run(read("r", None));
    assert_eq!(out, Err(Rejection::RateLimited));
    assert_eq!(code_of(&p, Rejection::RateLimited), Some(660_300_005));
    d.check();
}

// profile.rs `VendorCodes::code`: CAS conflicts and missing keys have no
// vendor code in any built-in (the vendors document none).
#[test]
fn conflict_and_not_found_have_no_vendor_code() {
    for p in Profile::builtins() {
        assert_eq!(p.code(ErrorClass::Conflict), None);
        assert_eq!(p.code(ErrorClass::NotFound), None);
    }
}

// profile.rs: a custom profile is a struct literal over a built-in; behaviour
// comes from limits and rules, never from the vendor tag.
#[test]
fn custom_profile_limits_and_rules_drive_behaviour() {
    let base = Profile::zego();
    let p = Profile {
        vendor: Vendor::Custom,
        limits: Limits {
            max_keys_per_room: Some(2),
            key_charset: Charset::Restricted,
            request_rate: None,
            ..base.limits
        },
        rules: Rules {
            writer_must_be_member: true,
            ..base.rules
        },
        ..base
    };
    let mut d = Driver::new(p);
    d.create("r", "host");
    d.join("r", "u1");
    let (out, _) = d.write(Write::new("r", u("u2")).op(Op::set("a", "1")));
    assert_eq!(out, Err(Rejection::NotInRoom));
    let s0 = d.seq("r");
    let (out, _) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a", "1"))
            .op(Op::set("b!", "1"))
            .op(Op::set("b", "1"))
            .op(Op::set("c", "1")),
    );
    assert_eq!(
        out,
        written(
            s0 + 1,
            2,
            &[
                (1, "b!", OpError::KeyCharset),
                (3, "c", OpError::KeyCountLimit)
            ]
        )
    );
    // No request rate: far more than ZEGO's 20 in one millisecond.
    for _ in 0..50 {
        d.handle(read("r", None)).unwrap();
    }
    d.check();
}
