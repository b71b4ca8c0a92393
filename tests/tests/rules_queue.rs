//! Queue rules (NetEase chatroom queue, seed 003 / SPEC §5), one test per
//! rule, each citing its source (seed 003, a SPEC section, or the choices in
//! the crate docs, `core/src/lib.rs`).

mod common;

use common::*;
use roomstate::{
    Actor, Cause, Command, Delivery, ElementsReport, HighPolicy, NewElement, Notify, OpError,
    Profile, Rejection, Role, Success,
};

fn netease_room() -> Driver {
    let mut d = Driver::new(Profile::netease());
    d.create("r", "host");
    d.join("r", "u1");
    d.join("r", "u2");
    // Start every test in a fresh notification window (SPEC §6 flow).
    d.advance(5_000);
    d
}

fn ne(key: &str, value: &str, owner: Option<&str>, transient: Option<bool>) -> NewElement {
    NewElement {
        key: key.into(),
        value: value.into(),
        owner: owner.map(Into::into),
        transient,
    }
}

fn batch_offer(room: &str, operator: Actor, elements: Vec<NewElement>, transient: bool) -> Command {
    Command::QueueBatchOffer {
        room: room.into(),
        operator,
        elements,
        transient,
        notify: Notify::default(),
    }
}

fn batch_update(room: &str, operator: Actor, elements: &[(&str, &str)]) -> Command {
    Command::QueueBatchUpdate {
        room: room.into(),
        operator,
        elements: elements
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        notify: Notify::default(),
    }
}

fn multi_get(room: &str, keys: &[String]) -> Command {
    Command::QueueMultiGet {
        room: room.into(),
        keys: keys.iter().map(Into::into).collect(),
    }
}

fn list(room: &str) -> Command {
    Command::QueueList { room: room.into() }
}

fn init(room: &str, capacity: u32) -> Command {
    Command::QueueInit {
        room: room.into(),
        operator: Actor::Admin,
        capacity,
    }
}

fn quiet() -> Notify {
    Notify {
        notify: false,
        ..Notify::default()
    }
}

/// Offers `keys` (non-transient, by Admin, without notification).
fn fill(d: &mut Driver, keys: &[&str]) {
    for k in keys {
        let out = d.handle(offer_with("r", Actor::Admin, k, "v", false, quiet()));
        assert_eq!(out, Ok(Success::Done), "offer {k}");
    }
}

// SPEC §5 "Created on first offer"; SPEC §7 "use 1000 by default"; lib.rs: the
// first offer's event starts with `QueueInit`, later offers' do not.
#[test]
fn first_offer_creates_queue_with_default_capacity_1000() {
    let mut d = netease_room();
    let s0 = d.seq("r");
    let (out, evs) = d.run(offer("r", u("u1"), "k1", "v1", false));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![
                roomstate::Change::QueueInit { capacity: 1000 },
                qset_ch("k1", "v1", u("u1"), false),
            ],
        )]
    );
    let (_, evs) = d.run(offer("r", u("u1"), "k2", "v2", false));
    assert_eq!(evs[0].changes, vec![qset_ch("k2", "v2", u("u1"), false)]);
    // Capacity 1000: the 1001st distinct key does not fit.
    for i in 2..1000 {
        let out = d.handle(offer_with(
            "r",
            Actor::Admin,
            &format!("k{}", i + 1),
            "v",
            false,
            quiet(),
        ));
        assert_eq!(out, Ok(Success::Done));
    }
    assert_eq!(d.queue("r").len(), 1000);
    d.rejected(
        "r",
        offer("r", Actor::Admin, "one-too-many", "v", false),
        Rejection::Op {
            index: 0,
            error: OpError::QueueFull,
        },
    );
    d.check();
}

// Seed 003 queueOffer: "添加或更新元素"; "若该元素由用户 A 添加,之后再由用户 B
// 更新,则该元素的所有者为用户 B"; SPEC §5: update in place, owner becomes the
// operator; lib.rs: the transient flag is the request's.
#[test]
fn offer_updates_in_place_and_updater_becomes_owner() {
    let mut d = netease_room();
    for k in ["a", "b", "c"] {
        d.run(offer("r", u("u1"), k, "old", false)).0.unwrap();
    }
    let s0 = d.seq("r");
    let (out, evs) = d.run(offer("r", u("u2"), "b", "new", true));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u2"),
            Cause::Written,
            vec![qset_ch("b", "new", u("u2"), true)],
        )]
    );
    assert_eq!(
        d.queue("r"),
        vec![
            elem("a", "old", u("u1"), false),
            elem("b", "new", u("u2"), true),
            elem("c", "old", u("u1"), false),
        ]
    );
    d.check();
}

// Seed 003 queueOffer `transient`: "当指定该参数为 true 时,若 operator 当前不在该
// 聊天室内,则会返回 302 错误"; SPEC §7 NetEase "writer must be a member:
// transient only"; SPEC §2 `Admin` passes every membership check.
#[test]
fn transient_offer_by_non_member_is_302_not_in_room() {
    let mut d = netease_room();
    d.rejected(
        "r",
        offer("r", u("ghost"), "k", "v", true),
        Rejection::NotInRoom,
    );
    assert_eq!(d.profile.code(Rejection::NotInRoom.class()), Some(302));
    assert!(d.queue("r").is_empty());
    // Not transient: a non-member may offer.
    d.run(offer("r", u("ghost"), "k", "v", false)).0.unwrap();
    assert_eq!(d.queue("r"), vec![elem("k", "v", u("ghost"), false)]);
    // A transient offer that would *update* k is refused the same way.
    d.rejected(
        "r",
        offer("r", u("ghost"), "k", "v2", true),
        Rejection::NotInRoom,
    );
    d.run(offer("r", Actor::Admin, "adm", "v", true)).0.unwrap();
    d.check();
}

// Seed 003 queueBatchOffer: "若队列元素所属账号不在线且非聊天室创建者,则添加元素失败",
// `failedKeys`; SPEC §5: the rest succeed. Element `accid` defaults to the
// operator and `transient` to the batch's flag.
#[test]
fn batch_offer_owner_not_in_room_and_not_creator_fails_that_key_only() {
    let mut d = netease_room();
    let s0 = d.seq("r");
    let (out, evs) = d.run(batch_offer(
        "r",
        u("u1"),
        vec![
            ne("a", "1", None, None),
            ne("b", "2", Some("ghost"), None),
            ne("c", "3", Some("host"), None),
            ne("d", "4", Some("u2"), Some(true)),
        ],
        false,
    ));
    assert_eq!(
        out,
        queue_batch(s0 + 1, 3, &[(1, "b", OpError::OwnerNotInRoom)])
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
                roomstate::Change::QueueInit { capacity: 1000 },
                qset_ch("a", "1", u("u1"), false),
                qset_ch("c", "3", u("host"), false),
                qset_ch("d", "4", u("u2"), true),
            ],
        )]
    );
    assert_eq!(d.queue_keys("r"), ["a", "c", "d"]);

    // An operator who is not in the room cannot own the elements it names no
    // owner for.
    let (out, _) = d.run(batch_offer(
        "r",
        u("ghost"),
        vec![ne("x", "1", None, None), ne("y", "2", Some("u1"), None)],
        true,
    ));
    assert_eq!(
        out,
        queue_batch(s0 + 2, 1, &[(0, "x", OpError::OwnerNotInRoom)])
    );
    assert_eq!(d.queue("r")[3], elem("y", "2", u("u1"), true));
    d.check();
}

// Seed 003 queueBatchOffer: "elements ... 最多 20 个"; SPEC §5 "batch offer
// (≤20)"; lib.rs: batch sizes are request-level (`TooManyOps`), an empty
// batch is `Empty`.
#[test]
fn batch_offer_is_limited_to_20() {
    let mut d = netease_room();
    let els = |n: usize| -> Vec<NewElement> {
        (0..n)
            .map(|i| ne(&format!("k{i}"), "v", None, None))
            .collect()
    };
    d.rejected(
        "r",
        batch_offer("r", u("u1"), els(21), false),
        Rejection::TooManyOps { max: 20 },
    );
    d.rejected(
        "r",
        batch_offer("r", u("u1"), els(0), false),
        Rejection::Empty,
    );
    let s0 = d.seq("r");
    let (out, _) = d.run(batch_offer("r", u("u1"), els(20), false));
    assert_eq!(out, queue_batch(s0 + 1, 20, &[]));
    assert_eq!(d.queue("r").len(), 20);
    d.check();
}

// SPEC §4 lists NetEase batch offer as best effort: an element with a bad
// key or value fails alone, reported in `failedKeys` with its index; the
// others are applied (issue 10; it used to reject the whole batch).
#[test]
fn batch_offer_malformed_element_fails_alone() {
    let mut d = netease_room();
    let long = rep("k", 129);
    let (out, evs) = d.run(batch_offer(
        "r",
        u("u1"),
        vec![
            ne("ok", "v", None, None),
            ne(&long, "v", None, None),
            ne("", "v", None, None),
            ne("big", &rep("v", 4097), None, None),
        ],
        false,
    ));
    let Ok(Success::QueueBatch(report)) = out else {
        panic!("expected a batch report, got {out:?}");
    };
    assert_eq!(report.applied, 1);
    let failed: Vec<(usize, OpError)> = report.failed.iter().map(|f| (f.index, f.error)).collect();
    assert_eq!(
        failed,
        [
            (1, OpError::KeyTooLong),
            (2, OpError::KeyEmpty),
            (3, OpError::ValueTooLong)
        ]
    );
    assert_eq!(d.queue_keys("r"), ["ok"]);
    assert_eq!(evs.len(), 1);
    // A batch whose every element is malformed creates nothing.
    let seq = d.seq("r");
    let (out, evs) = d.run(batch_offer(
        "r",
        u("u1"),
        vec![ne("", "v", None, None)],
        false,
    ));
    assert!(matches!(out, Ok(Success::QueueBatch(r)) if r.applied == 0));
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), seq);
    d.check();
}

// Seed 003 queueBatchUpdateElements: "operator ... 必须是管理员或创建者";
// SPEC §5; lib.rs: `Admin`, or a user with role `Admin` or `Creator`, else
// `NoPermission` (NetEase 403).
#[test]
fn batch_update_only_admin_or_creator() {
    let mut d = netease_room();
    fill(&mut d, &["a"]);
    d.rejected(
        "r",
        batch_update("r", u("u1"), &[("a", "x")]),
        Rejection::NoPermission,
    );
    assert_eq!(d.profile.code(Rejection::NoPermission.class()), Some(403));
    d.set_role("r", "u2", Role::Admin).0.unwrap();
    let s0 = d.seq("r");
    for (i, op) in [u("u2"), u("host"), Actor::Admin].into_iter().enumerate() {
        let (out, evs) = d.run(batch_update("r", op.clone(), &[("a", "x")]));
        let seq = s0 + 1 + i as u64;
        assert_eq!(out, queue_batch(seq, 1, &[]), "{op:?}");
        assert_eq!(evs[0].changes, vec![qset_ch("a", "x", op, false)]);
    }
    d.check();
}

// Seed 003 queueBatchUpdateElements: `noExistElementKey`; SPEC §5 "updates
// only existing keys, owner becomes the operator; report keys that did not
// exist"; lib.rs: transient flag kept, position kept.
#[test]
fn batch_update_reports_missing_keys_and_updater_becomes_owner() {
    let mut d = netease_room();
    d.run(offer("r", u("u1"), "a", "1", true)).0.unwrap();
    d.run(offer("r", u("u2"), "b", "2", false)).0.unwrap();
    d.run(offer("r", u("u1"), "c", "3", false)).0.unwrap();
    d.set_role("r", "u2", Role::Admin).0.unwrap();
    let s0 = d.seq("r");
    let (out, evs) = d.run(batch_update(
        "r",
        u("u2"),
        &[("c", "C"), ("zz", "x"), ("a", "A")],
    ));
    assert_eq!(out, queue_batch(s0 + 1, 2, &[(1, "zz", OpError::NotFound)]));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u2"),
            Cause::Written,
            vec![
                qset_ch("c", "C", u("u2"), false),
                qset_ch("a", "A", u("u2"), true)
            ],
        )]
    );
    assert_eq!(
        d.queue("r"),
        vec![
            elem("a", "A", u("u2"), true),
            elem("b", "2", u("u2"), false),
            elem("c", "C", u("u2"), false),
        ]
    );
    // "a" is u2's now: u1's exit leaves it, u2's exit removes it.
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", roomstate::ExitKind::Left)]
    );
    let (_, evs) = d.leave("r", "u2");
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u2", roomstate::ExitKind::Left), qrm_ch("a")]
    );
    d.check();
}

// Seed 003: batch update "最多 200 个"; SPEC §5 "(≤200)".
#[test]
fn batch_update_is_limited_to_200() {
    let mut d = netease_room();
    let keys: Vec<String> = (0..201).map(|i| format!("k{i:03}")).collect();
    for chunk in keys[..200].chunks(20) {
        let els = chunk.iter().map(|k| ne(k, "v", None, None)).collect();
        let out = d.handle(Command::QueueBatchOffer {
            room: "r".into(),
            operator: Actor::Admin,
            elements: els,
            transient: false,
            notify: quiet(),
        });
        assert!(out.is_ok(), "{out:?}");
    }
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "w")).collect();
    d.rejected(
        "r",
        batch_update("r", Actor::Admin, &pairs),
        Rejection::TooManyOps { max: 200 },
    );
    let s0 = d.seq("r");
    let (out, evs) = d.run(batch_update("r", Actor::Admin, &pairs[..200]));
    assert_eq!(out, queue_batch(s0 + 1, 200, &[]));
    assert_eq!(evs[0].changes.len(), 200);
    assert!(d.queue("r").iter().all(|e| e.value == "w"));
    d.check();
}

// Seed 003 queueMultiGet: "最大100个"; SPEC §5 "multi-get (≤100 keys): those
// that exist, in the order asked". Reads change nothing.
#[test]
fn multi_get_at_most_100_in_asked_order_omitting_missing() {
    let mut d = netease_room();
    fill(&mut d, &["a", "b", "c"]);
    let seq = d.seq("r");
    let q = d.queue("r");
    let asked: Vec<String> = ["c", "zz", "a"].iter().map(|s| s.to_string()).collect();
    let (out, evs) = d.run(multi_get("r", &asked));
    assert_eq!(
        out,
        Ok(Success::Elements(ElementsReport {
            seq,
            elements: vec![q[2].clone(), q[0].clone()],
        }))
    );
    assert!(evs.is_empty());
    let many: Vec<String> = (0..101).map(|i| format!("m{i}")).collect();
    d.rejected(
        "r",
        multi_get("r", &many),
        Rejection::TooManyOps { max: 100 },
    );
    let (out, _) = d.run(multi_get("r", &many[..100]));
    assert_eq!(
        out,
        Ok(Success::Elements(ElementsReport {
            seq,
            elements: vec![]
        }))
    );
    d.check();
}

// error.rs `Rejection::Empty`: "The request has no ops or no keys"; seed 003
// marks `keys` as required ("必须: 是").
#[test]
fn multi_get_with_no_keys_is_rejected_empty() {
    let mut d = netease_room();
    fill(&mut d, &["a"]);
    d.rejected("r", multi_get("r", &[]), Rejection::Empty);
    d.check();
}

// Seed 003 queueList "排序列出队列中所有元素"; SPEC §5 "list: all elements in
// order"; lib.rs: list and multi-get of a missing queue are empty.
#[test]
fn list_returns_all_elements_in_order_and_missing_queue_is_empty() {
    let mut d = netease_room();
    let seq = d.seq("r");
    let (out, _) = d.run(list("r"));
    assert_eq!(
        out,
        Ok(Success::Elements(ElementsReport {
            seq,
            elements: vec![]
        }))
    );
    let (out, _) = d.run(multi_get("r", &["a".to_string()]));
    assert_eq!(
        out,
        Ok(Success::Elements(ElementsReport {
            seq,
            elements: vec![]
        }))
    );
    fill(&mut d, &["b", "a", "c"]);
    let seq = d.seq("r");
    let (out, evs) = d.run(list("r"));
    assert_eq!(
        out,
        Ok(Success::Elements(ElementsReport {
            seq,
            elements: d.queue("r"),
        }))
    );
    assert!(evs.is_empty());
    assert_eq!(d.queue_keys("r"), ["b", "a", "c"]);
    let (out, _) = d.run(list("nope"));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    d.check();
}

// Seed 003 queuePoll: "key ... 不填表示取出队列的第一个元素"; SPEC §5 "poll (key
// optional): remove and return the named element, or the head"; lib.rs:
// missing named key → `Op { index: 0, NotFound }`, empty head → `QueueEmpty`.
#[test]
fn poll_removes_head_or_named_element() {
    let mut d = netease_room();
    d.rejected("r", poll("r", Actor::Admin, None), Rejection::QueueEmpty);
    fill(&mut d, &["a", "b", "c"]);
    let q = d.queue("r");
    let s0 = d.seq("r");
    let (out, evs) = d.run(poll("r", u("u1"), None));
    assert_eq!(out, Ok(Success::Polled(q[0].clone())));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            u("u1"),
            Cause::Written,
            vec![qrm_ch("a")],
        )]
    );
    let (out, evs) = d.run(poll("r", u("u1"), Some("c")));
    assert_eq!(out, Ok(Success::Polled(q[2].clone())));
    assert_eq!(evs[0].changes, vec![qrm_ch("c")]);
    assert_eq!(evs[0].seq, s0 + 2);
    d.rejected(
        "r",
        poll("r", u("u1"), Some("zz")),
        Rejection::Op {
            index: 0,
            error: OpError::NotFound,
        },
    );
    assert_eq!(d.queue_keys("r"), ["b"]);
    d.run(poll("r", u("u1"), None)).0.unwrap();
    d.rejected("r", poll("r", u("u1"), None), Rejection::QueueEmpty);
    d.check();
}

// Seed 003 `needNotify` (default true); command.rs / lib.rs: `notify: false`
// still advances the room's sequence number but emits no event.
#[test]
fn notify_false_advances_seq_without_event() {
    let mut d = netease_room();
    let s0 = d.seq("r");
    let (out, evs) = d.run(offer_with("r", u("u1"), "k", "v", false, quiet()));
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), s0 + 1);
    assert_eq!(d.queue("r"), vec![elem("k", "v", u("u1"), false)]);
    let (_, evs) = d.run(offer("r", u("u1"), "k2", "v", false));
    assert_eq!(evs[0].seq, s0 + 2, "listeners see the gap");
    let (_, evs) = d.run(Command::QueuePoll {
        room: "r".into(),
        operator: Actor::Admin,
        key: None,
        notify: quiet(),
    });
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), s0 + 3);
    d.check();
}

// Seed 003 `notifyExt`: "通知事件扩展字段,最大长度 2048 位字符"; SPEC §5 "an
// extension string (≤2048 chars)"; lib.rs: an over-long ext is
// `InvalidParameter`.
#[test]
fn ext_up_to_2048_chars_is_carried_on_event() {
    let mut d = netease_room();
    let ext = rep("中", 2048);
    let s0 = d.seq("r");
    // Built as a caller would: the builder sets the field and nothing else.
    let notify = Notify::normal().ext(ext.as_str());
    assert_eq!(
        notify,
        Notify {
            ext: Some(ext.as_str().into()),
            ..Notify::default()
        }
    );
    let (out, evs) = d.run(offer_with("r", u("u1"), "k", "v", false, notify));
    assert_eq!(out, Ok(Success::Done));
    let mut want = event(
        "r",
        s0 + 1,
        d.now,
        u("u1"),
        Cause::Written,
        vec![
            roomstate::Change::QueueInit { capacity: 1000 },
            qset_ch("k", "v", u("u1"), false),
        ],
    );
    want.ext = Some(ext.as_str().into());
    assert_eq!(evs, vec![want]);
    let too_long = Notify {
        ext: Some(rep("中", 2049).into()),
        ..Notify::default()
    };
    d.rejected(
        "r",
        offer_with("r", u("u1"), "k2", "v", false, too_long),
        Rejection::InvalidParameter,
    );
    d.check();
}

// Seed 003 highPriority / highPriorityPolicy: over the 10/s high budget,
// 0 = downgrade to a normal notification (default), 1 = return 416; SPEC §5,
// §6; lib.rs: `Reject` rejects before anything changes.
#[test]
fn high_priority_over_budget_downgrade_vs_reject() {
    let mut d = netease_room();
    for i in 0..10 {
        let (out, evs) = d.run(offer_with(
            "r",
            Actor::Admin,
            &format!("h{i}"),
            "v",
            false,
            high(HighPolicy::Downgrade),
        ));
        assert!(out.is_ok());
        assert_eq!(evs[0].delivery, Delivery::High, "high #{}", i + 1);
    }
    // 11th, Reject: refused, nothing changed, NetEase 416.
    d.rejected(
        "r",
        offer_with(
            "r",
            Actor::Admin,
            "h10",
            "v",
            false,
            high(HighPolicy::Reject),
        ),
        Rejection::NotificationBudget,
    );
    assert_eq!(
        d.profile.code(Rejection::NotificationBudget.class()),
        Some(416)
    );
    // 11th, Downgrade: applied, delivered as a normal notification.
    let s0 = d.seq("r");
    let (out, evs) = d.run(offer_with(
        "r",
        Actor::Admin,
        "h10",
        "v",
        false,
        high(HighPolicy::Downgrade),
    ));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::Written,
            vec![qset_ch("h10", "v", Actor::Admin, false)],
        )]
    );
    assert_eq!(d.queue("r").len(), 11);
    d.check();
}

// SPEC §5 capacity (SPEC §7: default 1000, "configurable by init"); lib.rs: a
// new key in a full queue fails `QueueFull`; updating an existing key is fine.
#[test]
fn queue_full_fails_new_key_but_updates_existing() {
    let mut d = netease_room();
    let s0 = d.seq("r");
    let (out, evs) = d.run(init("r", 2));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::Written,
            vec![roomstate::Change::QueueInit { capacity: 2 }],
        )]
    );
    fill(&mut d, &["a", "b"]);
    d.rejected(
        "r",
        offer("r", u("u1"), "c", "v", false),
        Rejection::Op {
            index: 0,
            error: OpError::QueueFull,
        },
    );
    d.run(offer("r", u("u1"), "a", "updated", false)).0.unwrap();
    let s1 = d.seq("r");
    let (out, _) = d.run(batch_offer(
        "r",
        u("u1"),
        vec![ne("b", "u", None, None), ne("d", "v", None, None)],
        false,
    ));
    assert_eq!(out, queue_batch(s1 + 1, 1, &[(1, "d", OpError::QueueFull)]));
    assert_eq!(d.queue_keys("r"), ["a", "b"]);
    d.check();
}

// lib.rs: "`QueueInit` on an existing queue changes its capacity (not below
// its length)"; a capacity of zero or above `max_capacity` is invalid.
#[test]
fn queue_init_changes_capacity_but_not_below_length() {
    let mut d = netease_room();
    d.rejected("r", init("r", 0), Rejection::InvalidParameter);
    d.rejected(
        "r",
        init("r", d.profile.limits.queue.max_capacity + 1),
        Rejection::InvalidParameter,
    );
    fill(&mut d, &["a", "b", "c"]);
    d.rejected("r", init("r", 2), Rejection::InvalidParameter);
    let (out, evs) = d.run(init("r", 3));
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs[0].changes,
        vec![roomstate::Change::QueueInit { capacity: 3 }]
    );
    assert_eq!(
        d.queue_keys("r"),
        ["a", "b", "c"],
        "init keeps the elements"
    );
    d.rejected(
        "r",
        offer("r", Actor::Admin, "d", "v", false),
        Rejection::Op {
            index: 0,
            error: OpError::QueueFull,
        },
    );
    d.check();
}

// SPEC §5 "dropped by drop"; lib.rs: dropping a missing queue is a no-op; the
// next offer creates the queue again.
#[test]
fn queue_drop_removes_queue_and_missing_drop_is_noop() {
    let mut d = netease_room();
    fill(&mut d, &["a", "b"]);
    let s0 = d.seq("r");
    let drop = || Command::QueueDrop {
        room: "r".into(),
        operator: Actor::Admin,
    };
    let (out, evs) = d.run(drop());
    assert_eq!(out, Ok(Success::Done));
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::Written,
            vec![roomstate::Change::QueueDropped],
        )]
    );
    assert!(d.queue("r").is_empty());
    let (out, evs) = d.run(drop());
    assert_eq!(out, Ok(Success::Done));
    assert!(evs.is_empty());
    assert_eq!(d.seq("r"), s0 + 1);
    let (_, evs) = d.run(offer("r", u("u1"), "x", "v", false));
    assert_eq!(
        evs[0].changes[0],
        roomstate::Change::QueueInit { capacity: 1000 }
    );
    d.check();
}

// Seed 003 `transient`: removed "当该新元素的提交者 operator 的所有聊天室连接从该
// 聊天室掉线或者离开该聊天室时"; SPEC §4 "every transient queue element they
// own" goes in the exit event, in queue order (lib.rs); others stay.
#[test]
fn owner_exit_removes_only_transient_elements_in_queue_order() {
    let mut d = netease_room();
    d.run(offer("r", u("u1"), "t2", "v", true)).0.unwrap();
    d.run(offer("r", u("u1"), "keep", "v", false)).0.unwrap();
    d.run(offer("r", u("u2"), "other", "v", true)).0.unwrap();
    d.run(offer("r", u("u1"), "t1", "v", true)).0.unwrap();
    let s0 = d.seq("r");
    let (_, evs) = d.kick("r", "u1");
    assert_eq!(
        evs,
        vec![event(
            "r",
            s0 + 1,
            d.now,
            Actor::Admin,
            Cause::OwnerExited,
            vec![
                exited_ch("u1", roomstate::ExitKind::Kicked),
                qrm_ch("t2"),
                qrm_ch("t1"),
            ],
        )]
    );
    assert_eq!(d.queue_keys("r"), ["keep", "other"]);
    d.check();
}

// Seed 003: key "最大长度 128 位字符", value "最大长度 4096 位字符"; lib.rs: for a
// single-element command an over-long key or value rejects the request.
#[test]
fn queue_key_128_chars_value_4096_chars() {
    let mut d = netease_room();
    d.run(offer(
        "r",
        u("u1"),
        &rep("中", 128),
        &rep("中", 4096),
        false,
    ))
    .0
    .unwrap();
    d.rejected(
        "r",
        offer("r", u("u1"), &rep("中", 129), "v", false),
        Rejection::Op {
            index: 0,
            error: OpError::KeyTooLong,
        },
    );
    d.rejected(
        "r",
        offer("r", u("u1"), "k", &rep("中", 4097), false),
        Rejection::Op {
            index: 0,
            error: OpError::ValueTooLong,
        },
    );
    d.check();
}

// Seed 003 error 414 "roomid not exsit"; SPEC §8 NetEase 414.
#[test]
fn queue_command_on_unknown_room_is_room_not_found_414() {
    let mut d = netease_room();
    let (out, evs) = d.run(offer("nope", Actor::Admin, "k", "v", false));
    assert_eq!(out, Err(Rejection::RoomNotFound));
    assert!(evs.is_empty());
    assert_eq!(d.profile.code(Rejection::RoomNotFound.class()), Some(414));
    d.check();
}

// SPEC §4: what goes on exit is what the user *still* owns: a transient
// element already polled, or dropped with its queue, is not announced again.
#[test]
fn polled_or_dropped_transient_elements_are_not_removed_again_on_exit() {
    let mut d = netease_room();
    d.run(offer("r", u("u1"), "a", "v", true)).0.unwrap();
    d.run(offer("r", u("u1"), "b", "v", true)).0.unwrap();
    d.run(poll("r", Actor::Admin, Some("a"))).0.unwrap();
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", roomstate::ExitKind::Left), qrm_ch("b")]
    );
    d.run(offer("r", u("u2"), "c", "v", true)).0.unwrap();
    d.run(Command::QueueDrop {
        room: "r".into(),
        operator: Actor::Admin,
    })
    .0
    .unwrap();
    let (_, evs) = d.leave("r", "u2");
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u2", roomstate::ExitKind::Left)]
    );
    d.check();
}

// lib.rs: on an offer of an existing key "the transient flag is the
// request's": the exit follows the flag as it is now.
#[test]
fn offer_update_changes_transient_flag_and_exit_follows_it() {
    let mut d = netease_room();
    d.run(offer("r", u("u1"), "was_t", "v", true)).0.unwrap();
    d.run(offer("r", u("u1"), "now_t", "v", false)).0.unwrap();
    d.run(offer("r", u("u1"), "was_t", "v", false)).0.unwrap();
    d.run(offer("r", u("u1"), "now_t", "v", true)).0.unwrap();
    let (_, evs) = d.leave("r", "u1");
    assert_eq!(
        evs[0].changes,
        vec![exited_ch("u1", roomstate::ExitKind::Left), qrm_ch("now_t")]
    );
    assert_eq!(d.queue_keys("r"), ["was_t"]);
    d.check();
}

// lib.rs: "An offer of an existing key updates it in place (position kept);
// ... the element's owner (batch offer) becomes its owner".
#[test]
fn batch_offer_updates_existing_key_in_place_with_element_owner() {
    let mut d = netease_room();
    fill(&mut d, &["a", "b"]);
    let s0 = d.seq("r");
    let (out, evs) = d.run(batch_offer(
        "r",
        u("u1"),
        vec![ne("a", "A", Some("u2"), None), ne("c", "C", None, None)],
        true,
    ));
    assert_eq!(out, queue_batch(s0 + 1, 2, &[]));
    assert_eq!(
        evs[0].changes,
        vec![
            qset_ch("a", "A", u("u2"), true),
            qset_ch("c", "C", u("u1"), true)
        ]
    );
    assert_eq!(
        d.queue("r"),
        vec![
            elem("a", "A", u("u2"), true),
            elem("b", "v", Actor::Admin, false),
            elem("c", "C", u("u1"), true),
        ]
    );
    d.check();
}

// lib.rs "Queue": a first batch offer in which every element failed
// creates nothing (no queue, no event, same sequence number); seed 003 says
// a batch offer initialises the queue, which we read as "when it offers".
#[test]
fn first_batch_offer_with_every_element_failing_creates_no_queue() {
    let mut e = roomstate::Engine::new(Profile::netease());
    let now = roomstate::Millis(1);
    e.handle(
        now,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    let mut sink = Vec::new();
    e.drain_events(&mut sink);
    let seq = e.room("r").unwrap().seq();
    let out = e.handle(
        now,
        Command::QueueBatchOffer {
            room: "r".into(),
            operator: roomstate::Actor::user("host"),
            elements: vec![roomstate::NewElement {
                key: "k".into(),
                value: "v".into(),
                owner: Some("absent-user".into()),
                transient: None,
            }],
            transient: false,
            notify: roomstate::Notify::default(),
        },
    );
    let Ok(roomstate::Success::QueueBatch(report)) = out else {
        panic!("{out:?}")
    };
    assert_eq!(report.applied, 0);
    assert_eq!(report.failed[0].error, roomstate::OpError::OwnerNotInRoom);
    assert_eq!(report.seq, seq);
    assert_eq!(e.room("r").unwrap().queue_capacity(), None);
    assert!(e.poll_event().is_none());
    e.check_invariants().unwrap();
}
