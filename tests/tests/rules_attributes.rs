//! Attribute rules, one test per rule. Each test cites where its rule comes
//! from: a seed (`seeds/00N_*.txt`, see `seeds/README.md`), a SPEC section,
//! or the semantics chosen in the crate docs (`core/src/lib.rs`).

mod common;

use common::*;
use roomstate::{
    Actor, BatchPolicy, Cause, Command, Expect, Limits, Op, OpError, Profile, Rejection, Success,
    Write,
};

fn easemob_room() -> Driver {
    let mut d = Driver::new(Profile::easemob());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    d
}

fn zego_room() -> Driver {
    let mut d = Driver::new(Profile::zego());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    d
}

fn tencent_room() -> Driver {
    let mut d = Driver::new(Profile::tencent());
    d.create("r", "host");
    d
}

// ---- key and value validation (SPEC §4 step 1, §7) --------------------------

// Seed 001 (Easemob): keys may use only a-z A-Z 0-9 "_" "-" "."; SPEC §7 row
// "key charset". BestEffort: the bad key fails alone, the good one is written.
#[test]
fn easemob_key_charset_rejects_exclamation_mark() {
    let mut d = easemob_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("seat!1", "x"))
            .op(Op::set("Seat_1.a-Z9", "y")),
    );
    assert_eq!(
        out,
        written(s0 + 1, 1, &[(0, "seat!1", OpError::KeyCharset)])
    );
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![set_ch("Seat_1.a-Z9", "y", u("u1"), true)],
        )]
    );
    assert!(d.attr("r", "seat!1").is_none());
    assert_eq!(d.keys("r"), ["Seat_1.a-Z9"]);
    d.check();
}

// Seed 001 / seed 002: the charset is ASCII letters, digits and `_-.` only; a
// space, a slash, a colon and non-ASCII letters are outside it. A batch in
// which every op fails applies nothing and emits nothing (lib.rs).
#[test]
fn easemob_key_charset_rejects_space_slash_colon_and_non_ascii() {
    let mut d = easemob_room();
    let before = d.snap("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a b", "1"))
            .op(Op::set("a/b", "1"))
            .op(Op::set("a:b", "1"))
            .op(Op::set("é", "1"))
            .op(Op::set("座位", "1")),
    );
    assert_eq!(
        out,
        written(
            before.seq,
            0,
            &[
                (0, "a b", OpError::KeyCharset),
                (1, "a/b", OpError::KeyCharset),
                (2, "a:b", OpError::KeyCharset),
                (3, "é", OpError::KeyCharset),
                (4, "座位", OpError::KeyCharset),
            ]
        )
    );
    assert!(evs.is_empty());
    assert_eq!(d.snap("r"), before);
    d.check();
}

// Seed 002 (Agora Chat) documents the same key charset as Easemob.
#[test]
fn agora_key_charset_rejects_exclamation_mark() {
    let mut d = Driver::new(Profile::agora_chat());
    d.create("r", "host");
    d.join("r", "u1");
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("k!", "x"))
            .op(Op::set("k", "x")),
    );
    assert_eq!(out, written(s0 + 1, 1, &[(0, "k!", OpError::KeyCharset)]));
    assert_eq!(evs.len(), 1);
    assert_eq!(d.keys("r"), ["k"]);
    d.check();
}

// SPEC §7 "key charset: any" for Tencent, NetEase and ZEGO: punctuation and
// non-ASCII keys are fine there.
#[test]
fn tencent_zego_netease_key_charset_is_any() {
    for p in [Profile::tencent(), Profile::zego(), Profile::netease()] {
        let mut d = Driver::new(p);
        d.create("r", "host");
        let ev = d.write_all(
            Write::new("r", Actor::Admin)
                .op(Op::set("a!b c", "1"))
                .op(Op::set("座位", "2")),
        );
        assert_eq!(ev.changes.len(), 2);
        assert_eq!(d.keys("r"), ["a!b c", "座位"]);
        d.check();
    }
}

// Seed 000 (Tencent): "each key length restricted to 50 bytes or less";
// SPEC §7 "50 B". 25 × "é" is 50 bytes (ok), 26 × "é" is 26 chars but 52
// bytes (too long). Tencent sets are Atomic, so the failure rejects the request.
#[test]
fn tencent_key_length_counts_utf8_bytes_50() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set(rep("é", 25), "v")));
    d.write_all(Write::new("r", Actor::Admin).op(Op::set(rep("a", 50), "v")));
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set(rep("é", 26), "v")));
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::KeyTooLong,
        },
    );
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set(rep("a", 51), "v")));
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::KeyTooLong,
        },
    );
    d.check();
}

// Seed 001 (Easemob): "key ... 最多可包含 128 个字符"; SPEC §7 "128 chars".
#[test]
fn easemob_key_length_limit_is_128_chars() {
    let mut d = easemob_room();
    let s0 = d.seq("r");
    let long = rep("k", 129);
    let (out, _) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set(rep("k", 128), "v"))
            .op(Op::set(long.as_str(), "v")),
    );
    assert_eq!(
        out,
        written(s0 + 1, 1, &[(1, long.as_str(), OpError::KeyTooLong)])
    );
    assert_eq!(d.keys("r"), [rep("k", 128)]);
    d.check();
}

// Seed 003 (NetEase): key "最大长度 128 位字符"; SPEC §7 "128 chars" with any
// charset: 128 × "中" (384 bytes) fits, 129 does not.
#[test]
fn netease_key_length_counts_chars_not_bytes() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    let s0 = d.seq("r");
    let long = rep("中", 129);
    let (out, _) = d.write(
        Write::new("r", Actor::Admin)
            .op(Op::set(rep("中", 128), "v"))
            .op(Op::set(long.as_str(), "v")),
    );
    assert_eq!(
        out,
        written(s0 + 1, 1, &[(1, long.as_str(), OpError::KeyTooLong)])
    );
    assert_eq!(d.keys("r"), [rep("中", 128)]);
    d.check();
}

// Seed 002 (Agora Chat): value "不能超过 4086 个字符" (not Easemob's 4096);
// SPEC §7 "4086 chars". 4086 × "中" is 12258 bytes and fits; 4087 chars do
// not, nor do 4087 ASCII chars.
#[test]
fn agora_value_limit_is_4086_chars_not_bytes() {
    let mut d = Driver::new(Profile::agora_chat());
    d.create("r", "host");
    d.join("r", "u1");
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a", rep("中", 4086)))
            .op(Op::set("b", rep("中", 4087)))
            .op(Op::set("c", rep("x", 4087)))
            .op(Op::set("d", rep("x", 4086))),
    );
    assert_eq!(
        out,
        written(
            s0 + 1,
            2,
            &[
                (1, "b", OpError::ValueTooLong),
                (2, "c", OpError::ValueTooLong)
            ]
        )
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(d.keys("r"), ["a", "d"]);
    assert_eq!(d.value_bytes("r"), 4086 * 3 + 4086);
    d.check();
}

// Seed 001 (Easemob): value "不能超过 4096 个字符"; SPEC §7 "4096 chars".
#[test]
fn easemob_value_limit_is_4096_chars() {
    let mut d = easemob_room();
    let s0 = d.seq("r");
    let (out, _) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a", rep("中", 4096)))
            .op(Op::set("b", rep("中", 4097))),
    );
    assert_eq!(out, written(s0 + 1, 1, &[(1, "b", OpError::ValueTooLong)]));
    assert_eq!(d.keys("r"), ["a"]);
    d.check();
}

// Seed 000 (Tencent): "Individual values can be up to 2KB"; SPEC §7 "2048 B".
// 1025 × "é" is only 1025 chars but 2050 bytes.
#[test]
fn tencent_value_limit_is_2048_bytes() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("a", rep("x", 2048))));
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set("b", rep("é", 1025))));
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::ValueTooLong,
        },
    );
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set("b", rep("x", 2049))));
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::ValueTooLong,
        },
    );
    d.check();
}

// SPEC §7 (ZEGO public docs): key ≤ 16 B, value ≤ 1024 B. 9 × "é" is 18
// bytes; 513 × "é" is 1026 bytes. ZEGO's default policy is BestEffort.
#[test]
fn zego_key_16_bytes_value_1024_bytes() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let bad_key = rep("é", 9);
    let (out, _) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set(rep("k", 16), "v"))
            .op(Op::set(bad_key.as_str(), "v"))
            .op(Op::set("v1", rep("x", 1024)))
            .op(Op::set("v2", rep("é", 513)))
            .op(Op::set(rep("k", 17), "v")),
    );
    let k17 = rep("k", 17);
    assert_eq!(
        out,
        written(
            s0 + 1,
            2,
            &[
                (1, bad_key.as_str(), OpError::KeyTooLong),
                (3, "v2", OpError::ValueTooLong),
                (4, k17.as_str(), OpError::KeyTooLong),
            ]
        )
    );
    assert_eq!(d.keys("r"), [rep("k", 16), "v1".to_string()]);
    d.check();
}

// lib.rs, per-op step 1: an empty key is `KeyEmpty`.
#[test]
fn empty_key_fails_key_empty() {
    let mut d = easemob_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("", "v"))
            .op(Op::delete("")),
    );
    assert_eq!(
        out,
        written(
            s0,
            0,
            &[(0, "", OpError::KeyEmpty), (1, "", OpError::KeyEmpty)]
        )
    );
    assert!(evs.is_empty());
    d.check();
}

// ---- request-level rejections (SPEC §4 "Request-level rejections") ---------

// Seed 001 (Easemob): HTTP 400 "exceed allowed batch size 10"; SPEC §4: too
// many ops is request-level and nothing is applied. Exactly 10 is fine.
#[test]
fn too_many_ops_is_request_level_and_applies_nothing() {
    let mut d = easemob_room();
    let mut w = Write::new("r", u("u1"));
    for i in 0..11 {
        w = w.op(Op::set(format!("k{i}"), "v"));
    }
    d.rejected("r", Command::Write(w), Rejection::TooManyOps { max: 10 });
    assert!(d.attrs("r").is_empty());

    let mut w = Write::new("r", u("u1"));
    for i in 0..10 {
        w = w.op(Op::set(format!("k{i}"), "v"));
    }
    let ev = d.write_all(w);
    assert_eq!(ev.changes.len(), 10);
    d.check();
}

// SPEC §7 "ops per request": ZEGO 20.
#[test]
fn zego_too_many_ops_is_21() {
    let mut d = zego_room();
    let mut w = Write::new("r", u("u1"));
    for i in 0..21 {
        w = w.op(Op::delete(format!("k{i}")));
    }
    d.rejected("r", Command::Write(w), Rejection::TooManyOps { max: 20 });
    let mut w = Write::new("r", u("u1"));
    for i in 0..20 {
        w = w.op(Op::set(format!("k{i}"), "v"));
    }
    d.write_all(w);
    assert_eq!(d.attrs("r").len(), 20);
    d.check();
}

// lib.rs: "at least one op (`Rejection::Empty`)".
#[test]
fn empty_write_is_rejected_empty() {
    let mut d = easemob_room();
    d.rejected(
        "r",
        Command::Write(Write::new("r", u("u1"))),
        Rejection::Empty,
    );
    d.check();
}

// SPEC §4: unknown room is a request-level rejection.
#[test]
fn write_to_unknown_room_is_room_not_found() {
    let mut d = easemob_room();
    let (out, evs) = d.write(Write::new("nope", Actor::Admin).op(Op::set("k", "v")));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    assert!(evs.is_empty());
    assert!(!d.exists("nope"));
    d.check();
}

// Seed 001 (Easemob): HTTP 401 "user is not in chatroom"; SPEC §7 "writer
// must be a member: yes"; SPEC §2: `Admin` passes every membership check.
#[test]
fn easemob_non_member_write_rejected_401() {
    let mut d = easemob_room();
    let cmd = Command::Write(Write::new("r", u("stranger")).op(Op::set("k", "v")));
    d.rejected("r", cmd, Rejection::NotInRoom);
    assert_eq!(
        d.profile.code(Rejection::NotInRoom.class()),
        Some(401),
        "Easemob 401 user is not in chatroom"
    );
    // Forcing does not help a non-member: membership is request-level.
    let cmd = Command::Write(
        Write::new("r", u("stranger"))
            .op(Op::set("k", "v"))
            .forced(),
    );
    d.rejected("r", cmd, Rejection::NotInRoom);
    // A user who has left is no longer a member.
    d.leave("r", "u2").0.unwrap();
    let cmd = Command::Write(Write::new("r", u("u2")).op(Op::set("k", "v")));
    d.rejected("r", cmd, Rejection::NotInRoom);
    // The application's authority needs no membership.
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "v")));
    d.check();
}

// SPEC §7 "writer must be a member: no" for Tencent (admin API) and ZEGO
// (seed 004: FromUserId "不会自动加入房间", it need not be in the room).
#[test]
fn tencent_and_zego_non_member_user_may_write() {
    for p in [Profile::tencent(), Profile::zego()] {
        let mut d = Driver::new(p);
        d.create("r", "host");
        let s0 = d.seq("r");
        let ev = d.write_all(Write::new("r", u("outsider")).op(Op::set("k", "v")));
        assert_eq!(
            ev,
            event(
                "r",
                s0 + 1,
                d.now,
                u("outsider"),
                Cause::Written,
                vec![set_ch("k", "v", u("outsider"), false)],
            )
        );
        assert!(!d.present("r", "outsider"), "writing does not join");
        d.check();
    }
}

// ---- room limits (SPEC §4 step 4) ------------------------------------------

// SPEC §4 step 4 + BestEffort (seed 001 successKeys/errorKeys): a batch that
// crosses Easemob's 100-key limit applies the ops that fit, in order, and
// names `KeyCountLimit` for the rest; overwrites and deletes still apply, and
// an op after a delete sees the freed slot.
#[test]
fn best_effort_batch_fills_key_count_then_fails_rest_with_limit_named() {
    let mut d = easemob_room();
    for chunk in 0..10 {
        let mut w = Write::new("r", u("u1"));
        for i in 0..10 {
            let n = chunk * 10 + i;
            if n < 95 {
                w = w.op(Op::set(format!("k{n:03}"), "v"));
            }
        }
        d.write_all(w);
    }
    assert_eq!(d.attrs("r").len(), 95);
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("new0", "n"))
            .op(Op::set("new1", "n"))
            .op(Op::set("new2", "n"))
            .op(Op::set("new3", "n"))
            .op(Op::set("new4", "n"))
            .op(Op::set("new5", "n"))
            .op(Op::set("k000", "over"))
            .op(Op::set("new6", "n"))
            .op(Op::delete("k001"))
            .op(Op::set("new7", "n")),
    );
    assert_eq!(
        out,
        written(
            s0 + 1,
            8,
            &[
                (5, "new5", OpError::KeyCountLimit),
                (7, "new6", OpError::KeyCountLimit),
            ]
        )
    );
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![
                set_ch("new0", "n", u("u1"), true),
                set_ch("new1", "n", u("u1"), true),
                set_ch("new2", "n", u("u1"), true),
                set_ch("new3", "n", u("u1"), true),
                set_ch("new4", "n", u("u1"), true),
                set_ch("k000", "over", u("u1"), true),
                del_ch("k001"),
                set_ch("new7", "n", u("u1"), true),
            ],
        )]
    );
    let keys = d.keys("r");
    assert_eq!(keys.len(), 100);
    assert_eq!(keys[0], "k000", "overwrite keeps its position");
    assert_eq!(keys[99], "new7");
    assert!(d.attr("r", "new5").is_none() && d.attr("r", "new6").is_none());
    d.check();
}

// Seed 000 (Tencent): "The key count is limited to 10", error 100500; SPEC §4
// Atomic: the 11th key rejects the whole request, the overwrite in it too.
#[test]
fn tencent_eleventh_key_rejects_whole_batch_with_key_count() {
    let mut d = tencent_room();
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..10 {
        w = w.op(Op::set(format!("k{i}"), "v"));
    }
    d.write_all(w);
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::set("k0", "changed"))
            .op(Op::set("k10", "v")),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 1,
            error: OpError::KeyCountLimit,
        },
    );
    assert_eq!(d.value("r", "k0"), "v");
    // Overwriting within the limit is fine.
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k0", "changed")));
    d.check();
}

// Seed 000 (Tencent): "aggregate size of all values should not surpass
// 16KB" (100502); SPEC §7 16384 B. Op by op: a batch that first shrinks a
// value may then grow another up to the limit.
#[test]
fn tencent_room_total_16384_bytes() {
    let mut d = tencent_room();
    let mut w = Write::new("r", Actor::Admin);
    for i in 0..8 {
        w = w.op(Op::set(format!("k{i}"), rep("a", 2048)));
    }
    d.write_all(w);
    assert_eq!(d.value_bytes("r"), 16384);
    let cmd = Command::Write(Write::new("r", Actor::Admin).op(Op::set("k8", "x")));
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::RoomSizeLimit,
        },
    );
    // Same-size overwrite fits.
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k0", rep("b", 2048))));
    // Shrink then grow in one atomic batch: checked op by op.
    d.write_all(
        Write::new("r", Actor::Admin)
            .op(Op::set("k0", "x"))
            .op(Op::set("k8", rep("c", 2047))),
    );
    assert_eq!(d.value_bytes("r"), 16384);
    d.check();
}

// SPEC §7 (ZEGO public docs): 5120 B per room; SPEC §4 step 4 "room limits
// after this op": an op is checked against the effects of the ops before it,
// not against the batch's end state.
#[test]
fn zego_room_total_5120_bytes_checked_op_by_op() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let kb = rep("z", 1024);
    let mut w = Write::new("r", u("u1"));
    for i in 0..6 {
        w = w.op(Op::set(format!("s{i}"), kb.as_str()));
    }
    let (out, _) = d.write(w);
    assert_eq!(
        out,
        written(s0 + 1, 5, &[(5, "s5", OpError::RoomSizeLimit)])
    );
    assert_eq!(d.value_bytes("r"), 5120);

    // The set comes before the delete that would make room: it fails.
    // The set after the delete fits.
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("s6", kb.as_str()))
            .op(Op::delete("s0"))
            .op(Op::set("s7", kb.as_str())),
    );
    assert_eq!(
        out,
        written(s0 + 2, 2, &[(0, "s6", OpError::RoomSizeLimit)])
    );
    assert_eq!(
        evs[0].changes,
        vec![del_ch("s0"), set_ch("s7", &kb, u("u1"), false)]
    );
    assert_eq!(d.value_bytes("r"), 5120);
    assert_eq!(d.keys("r"), ["s1", "s2", "s3", "s4", "s7"]);
    d.check();
}

// SPEC §7 "engine-wide total" (Easemob/Agora 10 GB per application): the
// total counts every room's values. A custom profile shrinks it to 10 bytes.
#[test]
fn engine_wide_total_is_shared_across_rooms() {
    let base = Profile::easemob();
    let p = Profile {
        limits: Limits {
            max_engine_value_bytes: Some(10),
            ..base.limits
        },
        ..base
    };
    let mut d = Driver::new(p);
    for r in ["a", "b"] {
        d.create(r, "host");
        d.join(r, "u1");
    }
    d.write_all(Write::new("a", u("u1")).op(Op::set("k", "123456")));
    let sb = d.seq("b");
    let (out, evs) = d.write(Write::new("b", u("u1")).op(Op::set("k", "12345")));
    assert_eq!(out, written(sb, 0, &[(0, "k", OpError::EngineSizeLimit)]));
    assert!(evs.is_empty());
    d.write_all(Write::new("b", u("u1")).op(Op::set("k", "1234")));
    // Freeing bytes in room a makes room in room b.
    d.write_all(Write::new("a", u("u1")).op(Op::delete("k")));
    d.write_all(Write::new("b", u("u1")).op(Op::set("k", "1234567890")));
    assert_eq!(d.value_bytes("a") + d.value_bytes("b"), 10);
    d.check();
}

// ---- ownership (SPEC §4 steps 3 and 5) --------------------------------------

// Seed 002 (Agora): a normal delete "只能删除当前用户设置的聊天室自定义属性";
// SPEC §4 step 3: a non-forced op on another user's key fails `NotOwner`.
#[test]
fn non_forced_overwrite_of_other_users_key_fails_not_owner() {
    let mut d = easemob_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("seat", "u1")));
    let before = d.snap("r");
    let (out, evs) = d.write(
        Write::new("r", u("u2"))
            .op(Op::set("seat", "u2"))
            .op(Op::delete("seat")),
    );
    assert_eq!(
        out,
        written(
            before.seq,
            0,
            &[
                (0, "seat", OpError::NotOwner),
                (1, "seat", OpError::NotOwner)
            ]
        )
    );
    assert!(evs.is_empty());
    assert_eq!(d.snap("r"), before);
    d.check();
}

// lib.rs step 3: "a key whose owner is someone else (another user, or
// `Admin`)": a user cannot overwrite an Admin-owned key without force.
#[test]
fn user_cannot_overwrite_admin_owned_key_without_force() {
    let mut d = zego_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("title", "quiz")));
    let cmd = Command::Write(
        Write::new("r", u("u1"))
            .op(Op::set("title", "mine"))
            .policy(BatchPolicy::Atomic),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 0,
            error: OpError::NotOwner,
        },
    );
    d.check();
}

// SPEC §4 step 3: "`Admin` and forced ops pass" ownership. ZEGO keeps the
// owner on overwrite (SPEC §7 "owner on overwrite: update_owner"). A forced
// write's event has cause `Forced` (SPEC §3, lib.rs Events).
#[test]
fn forced_and_admin_writes_pass_ownership() {
    let mut d = zego_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    let s0 = d.seq("r");
    let ev = d.write_all(Write::new("r", u("u2")).op(Op::set("k", "b")).forced());
    assert_eq!(
        ev,
        event(
            "r",
            s0 + 1,
            d.now,
            u("u2"),
            Cause::Forced,
            vec![set_ch("k", "b", u("u1"), false)],
        )
    );
    let ev = d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "c")));
    assert_eq!(
        ev,
        event(
            "r",
            s0 + 2,
            d.now,
            Actor::Admin,
            Cause::Written,
            vec![set_ch("k", "c", u("u1"), false)],
        )
    );
    let ev = d.write_all(Write::new("r", u("u2")).op(Op::delete("k")).forced());
    assert_eq!(
        ev,
        event(
            "r",
            s0 + 3,
            d.now,
            u("u2"),
            Cause::Forced,
            vec![del_ch("k")],
        )
    );
    assert!(d.attr("r", "k").is_none());
    d.check();
}

// Seed 001 (Easemob forced set "可覆盖其他用户设置的聊天室自定义属性");
// SPEC §4 step 5 / §7 "owner on overwrite: forced: operator".
#[test]
fn easemob_forced_overwrite_makes_operator_owner() {
    let mut d = easemob_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    let s0 = d.seq("r");
    let ev = d.write_all(Write::new("r", u("u2")).op(Op::set("k", "b")).forced());
    assert_eq!(
        ev,
        event(
            "r",
            s0 + 1,
            d.now,
            u("u2"),
            Cause::Forced,
            vec![set_ch("k", "b", u("u2"), true)],
        )
    );
    assert_eq!(d.owner("r", "k"), u("u2"));
    d.check();
}

// SPEC §7 "owner on overwrite: forced: operator" means a non-forced
// overwrite (here by Admin, who passes ownership) keeps the owner (Agora).
#[test]
fn agora_non_forced_admin_overwrite_keeps_owner() {
    let mut d = Driver::new(Profile::agora_chat());
    d.create("r", "host");
    d.join("r", "u1");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    let ev = d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "b")));
    assert_eq!(ev.changes, vec![set_ch("k", "b", u("u1"), true)]);
    assert_eq!(d.owner("r", "k"), u("u1"));
    d.check();
}

// SPEC §4 step 5 + §7 ZEGO "owner on overwrite: update_owner": only a write
// with `update_owner` moves ownership; forced alone does not.
#[test]
fn zego_update_owner_moves_ownership() {
    let mut d = zego_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    d.write_all(Write::new("r", u("u2")).op(Op::set("k", "b")).forced());
    assert_eq!(d.owner("r", "k"), u("u1"));
    let ev = d.write_all(
        Write::new("r", u("u2"))
            .op(Op::set("k", "c"))
            .forced()
            .update_owner(),
    );
    assert_eq!(ev.changes, vec![set_ch("k", "c", u("u2"), false)]);
    assert_eq!(d.owner("r", "k"), u("u2"));
    let ev = d.write_all(
        Write::new("r", Actor::Admin)
            .op(Op::set("k", "d"))
            .update_owner(),
    );
    assert_eq!(ev.changes, vec![set_ch("k", "d", Actor::Admin, false)]);
    assert_eq!(d.owner("r", "k"), Actor::Admin);
    d.check();
}

// SPEC §4: `update_owner` says who owns the key *after* a successful
// overwrite; it does not skip the ownership check of step 3.
#[test]
fn update_owner_does_not_bypass_ownership_check() {
    let mut d = zego_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u2"))
            .op(Op::set("k", "b"))
            .update_owner(),
    );
    assert_eq!(out, written(s0, 0, &[(0, "k", OpError::NotOwner)]));
    assert!(evs.is_empty());
    assert_eq!(d.owner("r", "k"), u("u1"));
    d.check();
}

// Seed 003 (NetEase): "若该元素由用户 A 添加,之后再由用户 B 更新,则该元素的所有者为用户 B";
// SPEC §7 "owner on overwrite: always operator" (no update_owner needed).
#[test]
fn netease_update_always_makes_updater_owner() {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    let ev = d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "b")));
    assert_eq!(ev.changes, vec![set_ch("k", "b", Actor::Admin, false)]);
    let ev = d.write_all(Write::new("r", u("u2")).op(Op::set("k", "c")).forced());
    assert_eq!(ev.changes, vec![set_ch("k", "c", u("u2"), false)]);
    assert_eq!(d.owner("r", "k"), u("u2"));
    d.check();
}

// SPEC §7 Tencent "owner on overwrite: —" = keep (lib.rs OwnerRule::Keep)
// unless the request sets `update_owner`.
#[test]
fn tencent_overwrite_keeps_owner_unless_update_owner() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a")));
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k", "b")));
    assert_eq!(d.owner("r", "k"), u("u1"));
    d.write_all(
        Write::new("r", Actor::Admin)
            .op(Op::set("k", "c"))
            .update_owner(),
    );
    assert_eq!(d.owner("r", "k"), Actor::Admin);
    d.check();
}

// ---- compare-and-set (SPEC §4 step 2) ----------------------------------------

// SPEC §4: "compare-and-set, so two users grabbing the same seat cannot both
// win". The loser gets `Conflict` with the winner's revision; forcing does
// not help (the expectation is checked before ownership).
#[test]
fn cas_absent_two_users_race_exactly_one_wins() {
    let mut d = easemob_room();
    let ev =
        d.write_all(Write::new("r", u("u1")).op(Op::set("seat1", "u1").expect(Expect::Absent)));
    let rev = ev.seq;
    let before = d.snap("r");
    let (out, evs) =
        d.write(Write::new("r", u("u2")).op(Op::set("seat1", "u2").expect(Expect::Absent)));
    assert_eq!(
        out,
        written(
            before.seq,
            0,
            &[(0, "seat1", OpError::Conflict { current: Some(rev) })]
        )
    );
    assert!(evs.is_empty());
    let (out, _) = d.write(
        Write::new("r", u("u2"))
            .op(Op::set("seat1", "u2").expect(Expect::Absent))
            .forced(),
    );
    assert_eq!(
        out,
        written(
            before.seq,
            0,
            &[(0, "seat1", OpError::Conflict { current: Some(rev) })]
        )
    );
    assert_eq!(d.snap("r"), before);
    assert_eq!(d.value("r", "seat1"), "u1");
    assert_eq!(d.owner("r", "seat1"), u("u1"));
    d.check();
}

// SPEC §4 step 2 + lib.rs: `Revision(n)` needs the key present at revision n,
// else `Conflict { current }` (None when absent). A matching revision
// applies and the key's revision becomes the new sequence number.
#[test]
fn cas_revision_mismatch_reports_current() {
    let mut d = zego_room();
    let r1 = d
        .write_all(Write::new("r", u("u1")).op(Op::set("k", "a")))
        .seq;
    assert_eq!(d.attr("r", "k").unwrap().revision, r1);
    let (out, evs) =
        d.write(Write::new("r", u("u1")).op(Op::set("k", "b").expect(Expect::Revision(r1 - 1))));
    assert_eq!(
        out,
        written(r1, 0, &[(0, "k", OpError::Conflict { current: Some(r1) })])
    );
    assert!(evs.is_empty());
    let (out, _) =
        d.write(Write::new("r", u("u1")).op(Op::set("missing", "b").expect(Expect::Revision(r1))));
    assert_eq!(
        out,
        written(
            r1,
            0,
            &[(0, "missing", OpError::Conflict { current: None })]
        )
    );
    let r2 = d
        .write_all(Write::new("r", u("u1")).op(Op::set("k", "b").expect(Expect::Revision(r1))))
        .seq;
    assert_eq!(r2, r1 + 1);
    assert_eq!(d.attr("r", "k").unwrap().revision, r2);
    // A stale delete fails too; `Absent` on an existing key conflicts.
    let (out, _) = d.write(
        Write::new("r", u("u1"))
            .op(Op::delete("k").expect(Expect::Revision(r1)))
            .op(Op::delete("k").expect(Expect::Absent)),
    );
    assert_eq!(
        out,
        written(
            r2,
            0,
            &[
                (0, "k", OpError::Conflict { current: Some(r2) }),
                (1, "k", OpError::Conflict { current: Some(r2) }),
            ]
        )
    );
    d.write_all(Write::new("r", u("u1")).op(Op::delete("k").expect(Expect::Revision(r2))));
    assert!(d.attr("r", "k").is_none());
    d.check();
}

// lib.rs: per-op order is validate → expectation → NotFound/NotOwner. A
// delete of a missing key expecting `Absent` passes step 2 and fails NotFound.
#[test]
fn delete_missing_key_expecting_absent_is_not_found() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let (out, _) = d.write(Write::new("r", u("u1")).op(Op::delete("k").expect(Expect::Absent)));
    assert_eq!(out, written(s0, 0, &[(0, "k", OpError::NotFound)]));
    d.check();
}

// ---- batch policies (SPEC §4 "Batch policies") ------------------------------

// Seed 000 / SPEC §7 Tencent set policy Atomic: "any op error rejects the whole
// batch, nothing applied".
#[test]
fn atomic_batch_failure_applies_nothing() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("k0", "old")));
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::set("k0", "new"))
            .op(Op::set("k1", "v"))
            .op(Op::set(rep("x", 51), "v"))
            .op(Op::set("k2", "v")),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 2,
            error: OpError::KeyTooLong,
        },
    );
    assert_eq!(d.value("r", "k0"), "old");
    assert_eq!(d.keys("r"), ["k0"]);
    d.check();
}

// lib.rs: a request naming a policy where the profile's rule is `Fixed` and
// differs is `PolicyNotAllowed`; naming the fixed one is fine.
#[test]
fn fixed_policy_rejects_request_naming_another() {
    let mut d = tencent_room();
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::set("k", "v"))
            .policy(BatchPolicy::BestEffort),
    );
    d.rejected("r", cmd, Rejection::PolicyNotAllowed);
    d.write_all(
        Write::new("r", Actor::Admin)
            .op(Op::set("k", "v"))
            .policy(BatchPolicy::Atomic),
    );

    let mut d = easemob_room();
    let cmd = Command::Write(
        Write::new("r", u("u1"))
            .op(Op::set("k", "v"))
            .policy(BatchPolicy::StopOnError),
    );
    d.rejected("r", cmd, Rejection::PolicyNotAllowed);
    d.check();
}

// Seed 004 (ZEGO): StopOnError=1 "停止更新操作并返回本次更新的属性,已执行成功的更新操作会保留";
// SPEC §4 StopOnError: keep what was applied, report the rest not attempted.
#[test]
fn stop_on_error_keeps_applied_and_marks_rest_not_attempted() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a", "1"))
            .op(Op::delete("zz"))
            .op(Op::set("c", "3"))
            .op(Op::delete("a"))
            .policy(BatchPolicy::StopOnError),
    );
    assert_eq!(
        out,
        written(
            s0 + 1,
            1,
            &[
                (1, "zz", OpError::NotFound),
                (2, "c", OpError::NotAttempted),
                (3, "a", OpError::NotAttempted),
            ]
        )
    );
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![set_ch("a", "1", u("u1"), false)],
        )]
    );
    assert_eq!(d.keys("r"), ["a"]);
    d.check();
}

// Seed 004 (ZEGO): StopOnError "默认为关闭" (0: record the error and go on);
// SPEC §7 ZEGO "per request", defaulting to BestEffort.
#[test]
fn zego_default_policy_is_best_effort() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("a", "1"))
            .op(Op::delete("zz"))
            .op(Op::set("c", "3")),
    );
    assert_eq!(out, written(s0 + 1, 2, &[(1, "zz", OpError::NotFound)]));
    assert_eq!(
        evs[0].changes,
        vec![
            set_ch("a", "1", u("u1"), false),
            set_ch("c", "3", u("u1"), false)
        ]
    );
    d.check();
}

// lib.rs: with a `PerRequest` rule the request may name any policy,
// `Atomic` included.
#[test]
fn zego_request_may_choose_atomic() {
    let mut d = zego_room();
    let cmd = Command::Write(
        Write::new("r", u("u1"))
            .op(Op::set("a", "1"))
            .op(Op::delete("zz"))
            .policy(BatchPolicy::Atomic),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 1,
            error: OpError::NotFound,
        },
    );
    assert!(d.attrs("r").is_empty());
    d.check();
}

// Seed 000 (Tencent) 100503 "None of the specified keys are valid when
// deleting"; SPEC §7 Tencent delete policy "BestEffort, error if none
// deleted". A delete that removes at least one key succeeds with a report.
#[test]
fn tencent_delete_of_only_missing_keys_is_nothing_deleted_100503() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("a", "1")));
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::delete("x"))
            .op(Op::delete("y")),
    );
    d.rejected("r", cmd, Rejection::NothingDeleted);
    assert_eq!(
        d.profile.code(Rejection::NothingDeleted.class()),
        Some(100_503)
    );
    // A key the operator may not delete is not "valid" either.
    let cmd = Command::Write(Write::new("r", u("u9")).op(Op::delete("a")));
    d.rejected("r", cmd, Rejection::NothingDeleted);

    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", Actor::Admin)
            .op(Op::delete("a"))
            .op(Op::delete("x")),
    );
    assert_eq!(out, written(s0 + 1, 1, &[(1, "x", OpError::NotFound)]));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::Written,
            vec![del_ch("a")],
        )]
    );
    d.check();
}

// Seed 002 (Agora delete: successKeys / errorKeys, HTTP 200) and SPEC §7
// Easemob delete policy BestEffort without 100503: deleting only missing keys
// is a success that reports them, with no event.
#[test]
fn easemob_delete_of_missing_keys_reports_not_found_without_event() {
    let mut d = easemob_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::delete("x"))
            .op(Op::delete("y")),
    );
    assert_eq!(
        out,
        written(
            s0,
            0,
            &[(0, "x", OpError::NotFound), (1, "y", OpError::NotFound)]
        )
    );
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), s0);
    d.check();
}

// ---- events and sequence numbers (SPEC §3) ----------------------------------

// SPEC §3: "A command that changes nothing emits no event and does not advance
// the sequence number" (a batch whose ops all fail, a second connection,
// setting the role a user has, dropping a missing queue, a read).
#[test]
fn unchanged_command_emits_no_event_and_keeps_seq() {
    let mut d = zego_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    let before = d.snap("r");

    let (out, evs) = d.write(Write::new("r", u("u2")).op(Op::delete("k")));
    assert_eq!(out, written(before.seq, 0, &[(0, "k", OpError::NotOwner)]));
    assert!(evs.is_empty());

    assert!(d.join("r", "u1").is_empty());
    let (out, evs) = d.set_role("r", "u1", roomstate::Role::Member);
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    let (out, evs) = d.run(Command::QueueDrop {
        room: "r".into(),
        operator: Actor::Admin,
    });
    assert!(out.is_ok());
    assert!(evs.is_empty());
    let (out, evs) = d.run(read("r", None));
    assert!(out.is_ok());
    assert!(evs.is_empty());

    assert_eq!(d.snap("r"), before);
    d.check();
}

// SPEC §3: a batch produces one event listing its changes in request order,
// sets and deletes mixed (ZEGO ModifyRoomAttribute Action 0/1, seed 004).
#[test]
fn mixed_batch_is_one_event_with_changes_in_request_order() {
    let mut d = zego_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("a", "1")));
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("b", "2"))
            .op(Op::delete("a"))
            .op(Op::set("c", "3").auto_delete(true)),
    );
    assert_eq!(out, written(s0 + 1, 3, &[]));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![
                set_ch("b", "2", u("u1"), false),
                del_ch("a"),
                set_ch("c", "3", u("u1"), true),
            ],
        )]
    );
    d.check();
}

// lib.rs: "Then per op, in order, seeing the effects of the ops applied
// before it" — a later op of a batch sees an earlier one's key and revision.
#[test]
fn ops_in_one_batch_see_earlier_ops() {
    let mut d = zego_room();
    let s0 = d.seq("r");
    let (out, evs) = d.write(
        Write::new("r", u("u1"))
            .op(Op::set("j", "1"))
            .op(Op::set("j", "2").expect(Expect::Absent))
            .op(Op::delete("j"))
            .op(Op::delete("j")),
    );
    assert_eq!(
        out,
        written(
            s0 + 1,
            2,
            &[
                (
                    1,
                    "j",
                    OpError::Conflict {
                        current: Some(s0 + 1)
                    }
                ),
                (3, "j", OpError::NotFound),
            ]
        )
    );
    assert_eq!(
        evs[0].changes,
        vec![set_ch("j", "1", u("u1"), false), del_ch("j")]
    );
    assert!(d.attr("r", "j").is_none());
    d.check();
}

// SPEC §4: an attribute's revision is "the room sequence number of its last
// change" and it records the time of its last change.
#[test]
fn revision_is_event_seq_and_changed_at_is_now() {
    let mut d = zego_room();
    let e1 = d.write_all(Write::new("r", u("u1")).op(Op::set("a", "1")));
    let t1 = d.now;
    d.advance(500);
    let e2 = d.write_all(Write::new("r", u("u1")).op(Op::set("b", "1")));
    let a = d.attr("r", "a").unwrap();
    let b = d.attr("r", "b").unwrap();
    assert_eq!((a.revision, a.changed_at), (e1.seq, t1));
    assert_eq!((b.revision, b.changed_at), (e2.seq, d.now));
    assert_eq!(e1.at, t1);
    assert_eq!(e2.at, d.now);
    assert_eq!(e2.seq, e1.seq + 1);
    d.check();
}

// SPEC §4: "Listing order is insertion order of the key; updating keeps the
// position, delete + set appends."
#[test]
fn update_keeps_position_delete_then_set_appends() {
    let mut d = zego_room();
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("c", "1"))
            .op(Op::set("a", "1"))
            .op(Op::set("b", "1")),
    );
    d.write_all(Write::new("r", u("u1")).op(Op::set("c", "2")));
    assert_eq!(d.keys("r"), ["c", "a", "b"]);
    d.write_all(Write::new("r", u("u1")).op(Op::delete("a")));
    d.write_all(Write::new("r", u("u1")).op(Op::set("a", "3")));
    assert_eq!(d.keys("r"), ["c", "b", "a"]);
    // Delete and set in one batch appends too.
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::delete("c"))
            .op(Op::set("c", "4")),
    );
    assert_eq!(d.keys("r"), ["b", "a", "c"]);
    d.check();
}

// SPEC §2/§3: "A read of a room returns its current sequence number"; SPEC §4
// values in listing order; lib.rs: named keys that exist, each once, in
// listing order; reads need no membership.
#[test]
fn read_returns_seq_and_listing_order() {
    let mut d = easemob_room();
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("c", "3"))
            .op(Op::set("a", "1"))
            .op(Op::set("b", "2")),
    );
    let seq = d.seq("r");
    let all = d.attrs("r");
    assert_eq!(
        all.iter().map(|a| a.key.to_string()).collect::<Vec<_>>(),
        ["c", "a", "b"]
    );
    let (out, evs) = d.run(read("r", None));
    assert_eq!(
        out,
        Ok(Success::Read(roomstate::ReadReport {
            seq,
            attributes: all.clone()
        }))
    );
    assert!(evs.is_empty());
    let (out, _) = d.run(read("r", Some(&["b", "zz", "c", "b"])));
    assert_eq!(
        out,
        Ok(Success::Read(roomstate::ReadReport {
            seq,
            attributes: vec![all[0].clone(), all[2].clone()]
        }))
    );
    let (out, _) = d.run(read("nope", None));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    d.check();
}

// SPEC §7 "default auto-delete": Easemob/Agora yes (seed 001 autoDelete
// default 'DELETE'), Tencent/ZEGO/NetEase no; an explicit flag wins.
#[test]
fn default_auto_delete_follows_profile() {
    for (p, default) in [
        (Profile::tencent(), false),
        (Profile::easemob(), true),
        (Profile::agora_chat(), true),
        (Profile::netease(), false),
        (Profile::zego(), false),
    ] {
        let mut d = Driver::new(p);
        d.create("r", "host");
        d.join("r", "u1");
        d.write_all(
            Write::new("r", u("u1"))
                .op(Op::set("d", "v"))
                .op(Op::set("on", "v").auto_delete(true))
                .op(Op::set("off", "v").auto_delete(false)),
        );
        assert_eq!(d.attr("r", "d").unwrap().auto_delete, default, "{p:?}");
        assert!(d.attr("r", "on").unwrap().auto_delete);
        assert!(!d.attr("r", "off").unwrap().auto_delete);
        d.check();
    }
}

// lib.rs step 5: "`auto_delete` is the op's, else the profile's default (also
// on overwrite)" — an overwrite that does not say resets the flag.
#[test]
fn overwrite_without_flag_takes_profile_default_auto_delete() {
    let mut d = easemob_room();
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "a").auto_delete(false)));
    assert!(!d.attr("r", "k").unwrap().auto_delete);
    let ev = d.write_all(Write::new("r", u("u1")).op(Op::set("k", "b")));
    assert_eq!(ev.changes, vec![set_ch("k", "b", u("u1"), true)]);
    assert!(d.attr("r", "k").unwrap().auto_delete);
    d.check();
}

// SPEC §4 / §7 "B means UTF-8 bytes": the room's value size counts bytes.
#[test]
fn value_bytes_counts_utf8_bytes() {
    let mut d = zego_room();
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("a", rep("é", 10)))
            .op(Op::set("b", "xyz")),
    );
    assert_eq!(d.value_bytes("r"), 23);
    d.write_all(Write::new("r", u("u1")).op(Op::set("a", "x")));
    assert_eq!(d.value_bytes("r"), 4);
    d.write_all(Write::new("r", u("u1")).op(Op::delete("b")));
    assert_eq!(d.value_bytes("r"), 1);
    d.check();
}

// lib.rs: "a batch with any set uses `set_policy`, a delete-only batch
// `delete_policy`" — a Tencent batch mixing a set and a delete is Atomic.
#[test]
fn tencent_mixed_batch_uses_atomic_set_policy() {
    let mut d = tencent_room();
    d.write_all(Write::new("r", Actor::Admin).op(Op::set("a", "1")));
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::set("b", "2"))
            .op(Op::delete("missing")),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 1,
            error: OpError::NotFound,
        },
    );
    assert_eq!(d.keys("r"), ["a"]);
    d.check();
}

// SPEC §4 step 2 under Atomic: a failed expectation rejects the whole request.
#[test]
fn cas_conflict_in_atomic_batch_rejects_request() {
    let mut d = tencent_room();
    let rev = d
        .write_all(Write::new("r", Actor::Admin).op(Op::set("seat", "u1")))
        .seq;
    let cmd = Command::Write(
        Write::new("r", Actor::Admin)
            .op(Op::set("other", "x"))
            .op(Op::set("seat", "u2").expect(Expect::Absent)),
    );
    d.rejected(
        "r",
        cmd,
        Rejection::Op {
            index: 1,
            error: OpError::Conflict { current: Some(rev) },
        },
    );
    d.check();
}

// Seed 002 (Agora "强制删除聊天室自定义属性": "还可以删除其他用户设置的自定义属性"),
// while the plain delete "不能删除其他成员设置的自定义属性".
#[test]
fn agora_forced_delete_removes_other_users_key() {
    let mut d = Driver::new(Profile::agora_chat());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    d.write_all(Write::new("r", u("u1")).op(Op::set("k", "v")));
    let s0 = d.seq("r");
    let (out, _) = d.write(Write::new("r", u("u2")).op(Op::delete("k")));
    assert_eq!(out, written(s0, 0, &[(0, "k", OpError::NotOwner)]));
    let ev = d.write_all(Write::new("r", u("u2")).op(Op::delete("k")).forced());
    assert_eq!(
        ev,
        event(
            "r",
            s0 + 1,
            d.now,
            u("u2"),
            Cause::Forced,
            vec![del_ch("k")]
        )
    );
    assert!(d.attr("r", "k").is_none());
    d.check();
}

// SPEC §7 "engine-wide total": destroying a room (SPEC §2 "drops its
// attributes") gives its bytes back to the application's total.
#[test]
fn destroying_a_room_frees_engine_wide_bytes() {
    let base = Profile::easemob();
    let p = Profile {
        limits: Limits {
            max_engine_value_bytes: Some(10),
            ..base.limits
        },
        ..base
    };
    let mut d = Driver::new(p);
    for r in ["a", "b"] {
        d.create(r, "host");
        d.join(r, "u1");
    }
    d.write_all(Write::new("a", u("u1")).op(Op::set("k", "1234567890")));
    let sb = d.seq("b");
    let (out, _) = d.write(Write::new("b", u("u1")).op(Op::set("k", "1")));
    assert_eq!(out, written(sb, 0, &[(0, "k", OpError::EngineSizeLimit)]));
    d.run(Command::DestroyRoom { room: "a".into() }).0.unwrap();
    assert_eq!(d.engine.value_bytes(), 0);
    d.write_all(Write::new("b", u("u1")).op(Op::set("k", "1234567890")));
    d.check();
}

// SPEC §4 auto-delete on exit removes the values, so the room's byte total
// (SPEC §4 step 4) goes down with them.
#[test]
fn exit_frees_room_value_bytes() {
    let mut d = zego_room();
    d.write_all(
        Write::new("r", u("u1"))
            .op(Op::set("a", rep("x", 1024)).auto_delete(true))
            .op(Op::set("b", rep("x", 1024))),
    );
    assert_eq!(d.value_bytes("r"), 2048);
    d.leave("r", "u1").0.unwrap();
    assert_eq!(d.value_bytes("r"), 1024);
    d.check();
}

// lib.rs "Reads": `Some` of an empty key list is `Rejection::Empty` (the
// seeds' `keys` lists are either omitted, meaning all, or name keys).
#[test]
fn read_of_an_empty_key_list_is_rejected_empty() {
    let mut e = roomstate::Engine::new(Profile::agora_chat());
    let now = roomstate::Millis(1);
    e.handle(
        now,
        Command::CreateRoom {
            room: "r".into(),
            creator: "h".into(),
        },
    )
    .unwrap();
    let out = e.handle(
        now,
        Command::Read {
            room: "r".into(),
            keys: Some(vec![]),
        },
    );
    assert_eq!(out, Err(Rejection::Empty));
    e.check_invariants().unwrap();
}
