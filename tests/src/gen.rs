//! Proptest strategies: profiles and `(Millis, Command)` sequences over
//! small alphabets, so that commands collide on the same rooms, users and
//! keys and hit every limit of the tiny profiles.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use roomstate::{
    Actor, BatchPolicy, Charset, Command, CounterOp, Expect, Flow, HighPolicy, Limits, LockLimits,
    Millis, NewElement, Notify, Op, OwnerRule, PolicyRule, Profile, QueueLimits, Rate, Role, Rules,
    Str, Unit, Vendor, Write,
};

/// Rooms commands name.
pub const ROOMS: [&str; 3] = ["r0", "r1", "r2"];
/// Users commands name.
/// The last one is a user id that a JSON reply must escape.
pub const USERS: [&str; 4] = ["u0", "u1", "u2", "u\"3"];

/// Keys: valid ones (weighted up), then the empty key, one over-long for the
/// tiny profiles (4 chars), one over-long for every profile (>128 chars, >50
/// bytes), one outside the restricted charset, a multi-byte one (3 chars,
/// 5 bytes: fits a 3-char limit, not a 3-byte one), and one that a JSON
/// reply must escape (`AttrRef::plain` false).
fn key() -> BoxedStrategy<Str> {
    let long: String = "k".repeat(130);
    prop_oneof![
        30 => select(vec!["a", "b", "c", "d"]).prop_map(Str::from),
        1 => Just(Str::from("")),
        1 => Just(Str::from("abcd")),
        1 => Just(Str::from("seventeen_bytes_k")),
        1 => Just(Str::from(long)),
        1 => Just(Str::from("k!")),
        1 => Just(Str::from("kéé")),
        1 => Just(Str::from("k\\")),
    ]
    .boxed()
}

/// Values: short ones of every size around the tiny limits (4 bytes per
/// value, 8 per room, 12 per engine), multi-byte ones (so `Bytes` and
/// `Chars` differ), two that a JSON reply must escape (a quote; a newline
/// and a control character), and rare long ones that cross the built-ins' limits
/// (ZEGO 1024 B, Tencent 2048 B, Agora 4086 chars, Easemob 4096 chars).
fn value() -> BoxedStrategy<Str> {
    prop_oneof![
        3 => Just(Str::from("")),
        10 => select(vec!["x", "xy", "xyz", "wxyz", "é", "éé", "x\"", "\n\u{1f}"]).prop_map(Str::from),
        2 => select(vec!["vwxyz", "ééé"]).prop_map(Str::from),
        1 => select(vec![1000usize, 1030, 2049, 4087, 4097]).prop_map(|n| Str::from("v".repeat(n))),
        1 => select(vec![600usize, 1030, 4090]).prop_map(|n| Str::from("é".repeat(n))),
    ]
    .boxed()
}

/// Rooms, skewed so that most commands meet in `r0` and `r1`.
fn room() -> BoxedStrategy<Str> {
    prop_oneof![
        12 => Just(Str::from(ROOMS[0])),
        6 => Just(Str::from(ROOMS[1])),
        3 => Just(Str::from(ROOMS[2])),
        1 => Just(Str::from("")),
    ]
    .boxed()
}

fn user() -> BoxedStrategy<Str> {
    select(USERS.to_vec()).prop_map(Str::from).boxed()
}

/// A user for join and create: rarely the empty id.
fn user_or_empty() -> BoxedStrategy<Str> {
    prop_oneof![
        30 => user(),
        1 => Just(Str::from("")),
    ]
    .boxed()
}

fn actor() -> BoxedStrategy<Actor> {
    prop_oneof![
        6 => user().prop_map(Actor::User),
        1 => Just(Actor::Admin),
    ]
    .boxed()
}

fn expect() -> BoxedStrategy<Option<Expect>> {
    prop_oneof![
        8 => Just(None),
        1 => Just(Some(Expect::Absent)),
        // Revisions are room sequence numbers: small ones early in a
        // sequence, larger ones later.
        1 => (0u64..8).prop_map(|n| Some(Expect::Revision(n))),
        1 => (0u64..64).prop_map(|n| Some(Expect::Revision(n))),
        1 => Just(Some(Expect::Present)),
    ]
    .boxed()
}

/// TTLs: mostly none; 0 (invalid), one shorter than a clock step, around
/// the tiny profiles' grace periods, and one near the end of time.
fn ttl() -> BoxedStrategy<Option<u64>> {
    prop_oneof![
        8 => Just(None),
        3 => select(vec![1u64, 300, 500, 1000, 2500]).prop_map(Some),
        1 => Just(Some(0)),
        1 => Just(Some(u64::MAX)),
    ]
    .boxed()
}

fn op() -> BoxedStrategy<Op> {
    prop_oneof![
        3 => (key(), value(), prop::option::of(any::<bool>()), expect(), ttl()).prop_map(
            |(key, value, auto_delete, expect, ttl)| Op::Set { key, value, auto_delete, expect, ttl }
        ),
        1 => (key(), expect()).prop_map(|(key, expect)| Op::Delete { key, expect }),
    ]
    .boxed()
}

fn policy() -> BoxedStrategy<Option<BatchPolicy>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(BatchPolicy::Atomic)),
        1 => Just(Some(BatchPolicy::BestEffort)),
        1 => Just(Some(BatchPolicy::StopOnError)),
    ]
    .boxed()
}

fn write(max_ops: usize) -> BoxedStrategy<Write> {
    (
        (
            room(),
            actor(),
            batch(op(), max_ops, 24),
            prop::bool::weighted(0.2),
            prop::bool::weighted(0.2),
            policy(),
        ),
        prop::option::weighted(0.15, (lock_name(), 0u64..4)),
        prop::option::weighted(0.15, 0u64..24),
    )
        .prop_map(
            |((room, operator, ops, force, update_owner, policy), lock, major_revision)| Write {
                room,
                operator,
                ops,
                force,
                update_owner,
                policy,
                lock,
                major_revision,
            },
        )
        .boxed()
}

/// Lock names: two valid ones (weighted up), then the empty name, one too
/// long for the tiny profiles (4 bytes), one too long for Agora (65), and
/// one outside ASCII.
fn lock_name() -> BoxedStrategy<Str> {
    prop_oneof![
        20 => select(vec!["L", "M", "N"]).prop_map(Str::from),
        1 => Just(Str::from("")),
        1 => Just(Str::from("lock")),
        1 => Just(Str::from("l".repeat(65))),
        1 => Just(Str::from("lé")),
    ]
    .boxed()
}

/// Lock commands: create (TTLs around the tiny and Agora ranges), acquire
/// (with and without waiting), release, revoke, remove, read.
fn lock_command() -> BoxedStrategy<Command> {
    let ttl = select(vec![0u64, 200, 400, 1_000, 5_000, 400_000, u64::MAX]);
    prop_oneof![
        6 => (room(), lock_name(), user(), any::<bool>()).prop_map(|(room, name, user, retry)| {
            Command::AcquireLock { room, name, user, retry }
        }),
        3 => (room(), lock_name(), ttl)
            .prop_map(|(room, name, ttl_ms)| Command::SetLock { room, name, ttl_ms }),
        3 => (room(), lock_name(), user())
            .prop_map(|(room, name, user)| Command::ReleaseLock { room, name, user }),
        2 => (room(), lock_name(), user(), actor()).prop_map(|(room, name, owner, operator)| {
            Command::RevokeLock { room, name, owner, operator }
        }),
        1 => (room(), lock_name()).prop_map(|(room, name)| Command::RemoveLock { room, name }),
        1 => room().prop_map(|room| Command::GetLocks { room }),
    ]
    .boxed()
}

fn ext() -> BoxedStrategy<Option<Str>> {
    prop_oneof![
        6 => Just(None),
        2 => select(vec!["", "e", "éxt", "ext!"]).prop_map(|s| Some(Str::from(s))),
        1 => Just(Some(Str::from("e".repeat(2049)))),
    ]
    .boxed()
}

fn notify() -> BoxedStrategy<Notify> {
    (
        prop::bool::weighted(0.85),
        ext(),
        prop_oneof![
            4 => Just(None),
            1 => Just(Some(HighPolicy::Downgrade)),
            1 => Just(Some(HighPolicy::Reject)),
        ],
    )
        .prop_map(|(notify, ext, high)| Notify { notify, ext, high })
        .boxed()
}

/// A batch of `item`s: mostly 1 to `max` (at most 4), sometimes empty or
/// one over `max` (`weight` against 1 each). Built from whole vectors, not
/// with `prop_flat_map`, so that building and shrinking stay cheap.
fn batch<T: std::fmt::Debug + Clone + 'static>(
    item: BoxedStrategy<T>,
    max: usize,
    weight: u32,
) -> BoxedStrategy<Vec<T>> {
    prop_oneof![
        1 => Just(Vec::new()),
        weight => vec(item.clone(), 1..=max.clamp(1, 4)),
        // One item repeated: generating 201 distinct ones is slow and
        // tells nothing more.
        1 => item.prop_map(move |x| vec![x; max + 1]),
    ]
    .boxed()
}

fn new_element() -> BoxedStrategy<NewElement> {
    (
        key(),
        value(),
        prop::option::weighted(0.4, user()),
        prop::option::weighted(0.3, any::<bool>()),
    )
        .prop_map(|(key, value, owner, transient)| NewElement {
            key,
            value,
            owner,
            transient,
        })
        .boxed()
}

/// Counter keys: a few short ones (they collide), the empty key, one over
/// the tiny profiles' 3 bytes, one over Tencent's 128.
fn counter_key() -> BoxedStrategy<Str> {
    prop_oneof![
        20 => select(vec!["a", "b", "c"]).prop_map(Str::from),
        1 => Just(Str::from("")),
        1 => Just(Str::from("abcd")),
        1 => Just(Str::from("k".repeat(129))),
    ]
    .boxed()
}

/// Counter ops: small steps (so bounds bite), and the edges of `i64`.
fn counter_op() -> BoxedStrategy<CounterOp> {
    prop_oneof![
        4 => (0u64..4).prop_map(CounterOp::Increase),
        4 => (0u64..4).prop_map(CounterOp::Decrease),
        2 => (-3i64..4).prop_map(CounterOp::Set),
        1 => select(vec![i64::MIN, i64::MAX, i64::MAX - 1]).prop_map(CounterOp::Set),
        1 => select(vec![u64::MAX, i64::MAX as u64, 1u64 << 63]).prop_map(CounterOp::Increase),
        1 => select(vec![u64::MAX, i64::MAX as u64, 1u64 << 63]).prop_map(CounterOp::Decrease),
    ]
    .boxed()
}

fn bound() -> BoxedStrategy<Option<i64>> {
    prop_oneof![
        4 => Just(None),
        2 => (-2i64..3).prop_map(Some),
    ]
    .boxed()
}

/// One command, sized for `profile`.
pub fn command(profile: &Profile) -> BoxedStrategy<Command> {
    let max_ops = profile.limits.max_ops_per_write as usize;
    let q = profile.limits.queue;
    let capacity = prop_oneof![
        1 => Just(0u32),
        4 => 1u32..=4,
        1 => Just(q.default_capacity),
        1 => Just(q.max_capacity),
        1 => Just(q.max_capacity + 1),
    ];
    // Nested groups of few arms: a union prepares a (lazy) tree for every
    // arm before the one it picks, which is slow with many arms. Within a
    // group the commonest come first.
    let membership = prop_oneof![
        10 => (room(), user_or_empty()).prop_map(|(room, user)| Command::Join { room, user }),
        6 => (room(), user_or_empty())
            .prop_map(|(room, creator)| Command::CreateRoom { room, creator }),
        4 => (room(), user()).prop_map(|(room, user)| Command::Disconnect { room, user }),
        3 => (room(), user()).prop_map(|(room, user)| Command::Leave { room, user }),
        2 => (room(), user(), select(vec![Role::Member, Role::Admin, Role::Admin, Role::Creator]))
            .prop_map(|(room, user, role)| Command::SetRole { room, user, role }),
        2 => Just(Command::Tick),
        1 => (room(), user()).prop_map(|(room, user)| Command::Exit { room, user }),
        1 => room().prop_map(|room| Command::DestroyRoom { room }),
    ];
    let queue = prop_oneof![
        7 => (room(), actor(), key(), value(), prop::bool::weighted(0.4), notify()).prop_map(
            |(room, operator, key, value, transient, notify)| Command::QueueOffer {
                room, operator, key, value, transient, notify,
            }
        ),
        3 => (
            room(),
            actor(),
            batch(new_element(), q.max_batch_offer as usize, 12),
            prop::bool::weighted(0.4),
            notify(),
        )
            .prop_map(|(room, operator, elements, transient, notify)| Command::QueueBatchOffer {
                room, operator, elements, transient, notify,
            }),
        3 => (room(), actor(), prop::option::weighted(0.5, key()), notify())
            .prop_map(|(room, operator, key, notify)| Command::QueuePoll {
                room, operator, key, notify,
            }),
        2 => (
            room(),
            prop_oneof![
                2 => Just(Actor::Admin),
                3 => select(vec!["u0", "u1"]).prop_map(Actor::user),
                2 => actor(),
            ],
            batch((key(), value()).boxed(), q.max_batch_update as usize, 12),
            notify(),
        )
            .prop_map(|(room, operator, elements, notify)| Command::QueueBatchUpdate {
                room, operator, elements, notify,
            }),
        2 => (room(), actor(), capacity)
            .prop_map(|(room, operator, capacity)| Command::QueueInit { room, operator, capacity }),
        1 => (room(), actor()).prop_map(|(room, operator)| Command::QueueDrop { room, operator }),
        1 => room().prop_map(|room| Command::QueueList { room }),
        1 => (room(), batch(key(), q.max_multi_get as usize, 12))
            .prop_map(|(room, keys)| Command::QueueMultiGet { room, keys }),
    ];
    let counters = prop_oneof![
        6 => (room(), actor(), counter_key(), counter_op(), bound(), bound()).prop_map(
            |(room, operator, key, op, min, max)| Command::Counter {
                room, operator, key, op, min, max,
            }
        ),
        1 => (room(), actor(), prop::option::weighted(0.7, vec(counter_key(), 0..3)))
            .prop_map(|(room, operator, keys)| Command::CounterDelete { room, operator, keys }),
        2 => (room(), prop::option::weighted(0.5, vec(counter_key(), 0..3)))
            .prop_map(|(room, keys)| Command::CounterRead { room, keys }),
    ];
    prop_oneof![
        29 => membership,
        22 => write(max_ops).prop_map(Command::Write),
        12 => lock_command(),
        20 => queue,
        6 => counters,
        3 => (room(), prop_oneof![3 => 0u64..12, 1 => 0u64..200])
            .prop_map(|(room, seq)| Command::Since { room, seq }),
        3 => (room(), prop::option::weighted(0.5, vec(key(), 0..4)))
            .prop_map(|(room, keys)| Command::Read { room, keys }),
    ]
    .boxed()
}

/// How the clock moves before a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Forward by this many ms (0 repeats the time).
    Forward(u64),
    /// Backward by this many ms.
    Back(u64),
}

fn clock(grace: u64) -> BoxedStrategy<Clock> {
    prop_oneof![
        12 => (0u64..1500).prop_map(Clock::Forward),
        3 => Just(Clock::Forward(0)),
        2 => select(vec![1u64, 999, 1000, 1001]).prop_map(Clock::Forward),
        1 => (grace..grace.saturating_mul(2).saturating_add(2)).prop_map(Clock::Forward),
        1 => (1u64..3000).prop_map(Clock::Back),
        // Weeks to months: past the 49.7-day range of an attribute's
        // stored time (core/src/stamp.rs), so stamps rebase and go wide.
        1 => (1u64 << 31..1u64 << 33).prop_map(Clock::Forward),
    ]
    .boxed()
}

/// The clock the sequences start at (far from zero, so going back is real).
pub const START: Millis = Millis(1_000_000);

/// Commands every sequence starts with, at [`START`]: rooms `r0` (by
/// `u0`) and `r1` (by `u1`) exist, `u0` and `u1` are in `r0`, `u1` and `u2`
/// in `r1`. Without them most of a short sequence would hit missing rooms.
#[must_use]
pub fn setup() -> Vec<Command> {
    let create = |room: &str, creator: &str| Command::CreateRoom {
        room: room.into(),
        creator: creator.into(),
    };
    let join = |room: &str, user: &str| Command::Join {
        room: room.into(),
        user: user.into(),
    };
    vec![
        create("r0", "u0"),
        create("r1", "u1"),
        join("r0", "u0"),
        join("r0", "u1"),
        join("r1", "u1"),
        join("r1", "u2"),
    ]
}

/// Turns clock moves into absolute times, after [`setup`].
#[must_use]
pub fn timeline(steps: Vec<(Clock, Command)>) -> Vec<(Millis, Command)> {
    let mut out: Vec<(Millis, Command)> = setup().into_iter().map(|c| (START, c)).collect();
    let mut t = START.0;
    out.extend(steps.into_iter().map(|(c, cmd)| {
        t = match c {
            Clock::Forward(d) => t + d,
            Clock::Back(d) => t.saturating_sub(d),
        };
        (Millis(t), cmd)
    }));
    out
}

/// Sequences of `1..=max_len` `(clock move, command)` pairs for `profile`.
/// Map them with [`timeline`]; shrinking works on the moves.
pub fn steps(profile: &Profile, max_len: usize) -> BoxedStrategy<Vec<(Clock, Command)>> {
    vec(
        (clock(profile.limits.disconnect_grace_ms), command(profile)),
        1..=max_len,
    )
    .boxed()
}

/// The tiny base profile: every limit within reach of a few commands.
#[must_use]
pub fn tiny() -> Profile {
    Profile {
        vendor: Vendor::Custom,
        limits: Limits {
            max_keys_per_room: Some(3),
            max_ops_per_write: 3,
            locks: LockLimits {
                max_per_room: 2,
                max_name_len: 3,
                // Around the grace of 500 ms: a lock outlives a dropped
                // holder for less and for more than its grace.
                min_ttl_ms: 300,
                max_ttl_ms: 1_000,
            },
            max_key_len: 3,
            key_unit: Unit::Chars,
            max_value_len: 4,
            value_unit: Unit::Bytes,
            key_charset: Charset::Restricted,
            max_room_value_bytes: Some(8),
            max_engine_value_bytes: Some(12),
            request_rate: Some(Rate { per_second: 3 }),
            notification_flow: Some(Flow {
                normal_per_second: 2,
                high_per_second: 1,
            }),
            disconnect_grace_ms: 500,
            queue: QueueLimits {
                default_capacity: 3,
                max_capacity: 5,
                max_batch_offer: 2,
                max_batch_update: 2,
                max_multi_get: 2,
                max_key_len: 3,
                key_unit: Unit::Chars,
                max_value_len: 4,
                value_unit: Unit::Bytes,
                max_ext_chars: 3,
            },
            max_counters_per_room: Some(2),
            max_counter_key_len: 3,
            history_events: 4,
            history_bytes: 256,
        },
        rules: Rules {
            writer_must_be_member: true,
            default_auto_delete: true,
            owner_on_overwrite: OwnerRule::OperatorWhenForced,
            set_policy: PolicyRule::PerRequest(BatchPolicy::StopOnError),
            delete_policy: PolicyRule::PerRequest(BatchPolicy::BestEffort),
            reject_if_nothing_deleted: false,
        },
        codes: roomstate::VendorCodes::NONE,
    }
}

/// Tiny variant A: policy per request (default `StopOnError`), owner
/// taken on forced writes, writer must be a member, auto-delete by default.
#[must_use]
pub fn tiny_per_request() -> Profile {
    tiny()
}

/// Tiny variant B: everything `Atomic` and fixed, owner kept, Tencent's
/// "nothing deleted" rejection; keys in bytes, values in chars, any charset.
#[must_use]
pub fn tiny_atomic() -> Profile {
    let mut p = tiny();
    p.limits.key_unit = Unit::Bytes;
    p.limits.value_unit = Unit::Chars;
    p.limits.key_charset = Charset::Any;
    p.limits.queue.key_unit = Unit::Bytes;
    p.limits.queue.value_unit = Unit::Chars;
    p.rules = Rules {
        writer_must_be_member: false,
        default_auto_delete: false,
        owner_on_overwrite: OwnerRule::Keep,
        set_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
        delete_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
        reject_if_nothing_deleted: true,
    };
    p
}

/// Tiny variant C: fixed `BestEffort`, the operator always takes the key
/// (NetEase), "nothing deleted" rejected, a grace of 0 (a disconnect is a
/// leave), no request rate, no key count limit, a high budget of 0.
#[must_use]
pub fn tiny_best_effort() -> Profile {
    let mut p = tiny();
    p.limits.max_keys_per_room = None;
    p.limits.request_rate = None;
    p.limits.disconnect_grace_ms = 0;
    p.limits.notification_flow = Some(Flow {
        normal_per_second: 3,
        high_per_second: 0,
    });
    p.rules = Rules {
        writer_must_be_member: false,
        default_auto_delete: true,
        owner_on_overwrite: OwnerRule::Operator,
        set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
        delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
        reject_if_nothing_deleted: true,
    };
    p
}

/// Tiny variant D: sets per request (default `Atomic`), deletes fixed
/// `StopOnError`, owner kept, no flow, a slow bucket (1/s), no engine total.
#[must_use]
pub fn tiny_mixed() -> Profile {
    let mut p = tiny();
    p.limits.request_rate = Some(Rate { per_second: 1 });
    p.limits.notification_flow = None;
    p.limits.max_engine_value_bytes = None;
    p.limits.disconnect_grace_ms = 1200;
    p.rules = Rules {
        writer_must_be_member: true,
        default_auto_delete: false,
        owner_on_overwrite: OwnerRule::Keep,
        set_policy: PolicyRule::PerRequest(BatchPolicy::Atomic),
        delete_policy: PolicyRule::Fixed(BatchPolicy::StopOnError),
        reject_if_nothing_deleted: false,
    };
    p
}

/// Every profile the differential test runs, with a name.
#[must_use]
pub fn profiles() -> Vec<(&'static str, Profile)> {
    let [tencent, easemob, agora, netease, zego] = Profile::builtins();
    vec![
        ("tencent", tencent),
        ("easemob", easemob),
        ("agora_chat", agora),
        ("netease", netease),
        ("zego", zego),
        ("agora_rtm", Profile::agora_rtm()),
        ("tiny_per_request", tiny_per_request()),
        ("tiny_atomic", tiny_atomic()),
        ("tiny_best_effort", tiny_best_effort()),
        ("tiny_mixed", tiny_mixed()),
    ]
}
