//! Review 3 (issue 9): numbers at their extremes through the paths the
//! issue changed (one-op writes, TTL and grace deadlines in the rare box,
//! the flow window's sentinel start, the history encoder's varints,
//! counters) must give typed errors or results, never a panic, and keep
//! the invariants. Meant to run in a debug build too (overflow checks):
//! `cargo test -p roomstate-tests --test review3_extremes`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use roomstate::{Actor, Command, CounterOp, Engine, Millis, Notify, Op, Profile, Write};

const BIG: [u64; 8] = [
    0,
    1,
    0x7F,
    0x80,
    u32::MAX as u64,
    i64::MAX as u64,
    u64::MAX - 1,
    u64::MAX,
];

fn commands(x: &mut u64) -> Vec<Command> {
    let mut rnd = |n: u64| {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x % n
    };
    let mut out = Vec::new();
    let r = || "r".into();
    for _ in 0..40 {
        let big = BIG[rnd(8) as usize];
        let user = ["host", "u", "v"][rnd(3) as usize];
        let c = match rnd(12) {
            0 => Command::Join {
                room: r(),
                user: user.into(),
            },
            1 => Command::Disconnect {
                room: r(),
                user: user.into(),
            },
            2 => Command::Leave {
                room: r(),
                user: user.into(),
            },
            3 => Command::Write(
                Write::new("r", Actor::user(user)).op(Op::set(["k", "l"][rnd(2) as usize], "v")
                    .ttl(big)
                    .auto_delete(true)),
            ),
            4 => Command::Write(
                Write::new("r", Actor::Admin)
                    .op(Op::delete("k"))
                    .major_revision(big),
            ),
            5 => Command::SetLock {
                room: r(),
                name: "L".into(),
                ttl_ms: big,
            },
            6 => Command::AcquireLock {
                room: r(),
                name: "L".into(),
                user: user.into(),
                retry: true,
            },
            7 => Command::Counter {
                room: r(),
                operator: Actor::Admin,
                key: "c".into(),
                op: match rnd(3) {
                    0 => CounterOp::Set(big as i64),
                    1 => CounterOp::Increase(big),
                    _ => CounterOp::Decrease(big),
                },
                min: [None, Some(i64::MIN), Some(0)][rnd(3) as usize],
                max: [None, Some(i64::MAX), Some(0)][rnd(3) as usize],
            },
            8 => Command::Since {
                room: r(),
                seq: big,
            },
            9 => Command::QueueOffer {
                room: r(),
                operator: Actor::user(user),
                key: "q".into(),
                value: "v".into(),
                transient: true,
                notify: Notify::default(),
            },
            10 => Command::QueueInit {
                room: r(),
                operator: Actor::Admin,
                capacity: big as u32,
            },
            _ => Command::Tick,
        };
        out.push(c);
    }
    out
}

#[test]
fn review3_extreme_numbers_never_panic() {
    let profiles = [
        Profile::tencent(),
        Profile::netease(),
        Profile::agora_rtm(),
        Profile::zego(),
        Profile::easemob(),
    ];
    for (pi, p) in profiles.into_iter().enumerate() {
        for seed in 1..60u64 {
            let mut x = seed * 31 + pi as u64;
            let mut e = Engine::new(p);
            let _ = e.handle(Millis(0), Command::create_room("r", "host"));
            let times = [
                0,
                1,
                1_000,
                u64::MAX / 2,
                u64::MAX - 1_000,
                u64::MAX - 1,
                u64::MAX,
            ];
            let mut now = 0u64;
            for c in commands(&mut x) {
                let shown = format!("{c:?}");
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                now = now.max(times[(x % 7) as usize].min(now.saturating_add(x % 3_000)));
                if x % 50 == 0 {
                    now = times[(x % 7) as usize].max(now);
                }
                let r = catch_unwind(AssertUnwindSafe(|| {
                    let _ = e.handle(Millis(now), c);
                    let mut evs = Vec::new();
                    e.drain_events(&mut evs);
                    e.snapshot()
                }));
                let bytes =
                    r.unwrap_or_else(|_| panic!("profile {pi} seed {seed} at {now}: {shown}"));
                e.check_invariants().unwrap_or_else(|v| {
                    panic!("profile {pi} seed {seed} at {now}: {shown}: {v:?}")
                });
                let back = Engine::restore(&bytes);
                if let Err(err) = back {
                    panic!("profile {pi} seed {seed} at {now}: {shown}: restore: {err:?}");
                }
            }
        }
    }
}
