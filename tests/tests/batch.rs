//! `Engine::handle_batch` against `Engine::handle`: the same commands at
//! the same time give the same outcomes, the same events command by
//! command, the same deadlines and the same state (snapshot bytes),
//! whatever the batch boundaries.
//!
//! `handle` itself is checked against the reference model by the
//! differential tests and the simulator, so equality with it is the whole
//! contract. The streams are those tests' streams: every profile's
//! proptest commands, and simulator scenarios (random profiles, many
//! rooms, cold and hot), cut into batches of random sizes that all run
//! at one time.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner};
use roomstate::{Actor, Command, Engine, Event, Millis, Op, Outcome, Profile, Write};
use roomstate_tests::gen;
use roomstate_tests::sim::{Rng, Scenario};

/// One command's outcome and the events drained right after it.
type Trace = Vec<(Outcome, Vec<Event>)>;

/// `batches` through `handle`, one command at a time.
fn one_by_one(engine: &mut Engine, batches: &[(Millis, Vec<Command>)]) -> Trace {
    let mut trace = Vec::new();
    for (now, commands) in batches {
        for c in commands {
            let outcome = engine.handle(*now, c.clone());
            let mut events = Vec::new();
            engine.drain_events(&mut events);
            trace.push((outcome, events));
        }
    }
    trace
}

/// `batches` through `handle_batch`, draining in its callback.
fn batched(engine: &mut Engine, batches: &[(Millis, Vec<Command>)]) -> Trace {
    let mut trace = Vec::new();
    for (now, commands) in batches {
        engine.handle_batch(*now, &mut commands.clone(), |engine, outcome| {
            let mut events = Vec::new();
            engine.drain_events(&mut events);
            trace.push((outcome, events));
        });
    }
    trace
}

/// Runs both and returns where they part, if they do.
fn compare(profile: Profile, batches: &[(Millis, Vec<Command>)]) -> Result<(), String> {
    let (mut a, mut b) = (Engine::new(profile), Engine::new(profile));
    let (ta, tb) = (one_by_one(&mut a, batches), batched(&mut b, batches));
    let n: usize = batches.iter().map(|(_, c)| c.len()).sum();
    if ta.len() != n || tb.len() != n {
        return Err(format!(
            "{n} commands, {} and {} outcomes",
            ta.len(),
            tb.len()
        ));
    }
    if let Some(i) = (0..n).find(|&i| ta[i] != tb[i]) {
        return Err(format!(
            "command {i}: one by one {:?}, batched {:?}",
            ta[i], tb[i]
        ));
    }
    if a.poll_timeout() != b.poll_timeout() {
        return Err("deadlines differ".into());
    }
    if a.snapshot() != b.snapshot() {
        return Err("states differ".into());
    }
    b.check_invariants().map_err(|v| format!("{v:?}"))
}

/// Cuts a timeline into batches of 1 to 9 commands (sizes from `cuts`),
/// each at its first command's time.
fn cut(timeline: Vec<(Millis, Command)>, cuts: &[usize]) -> Vec<(Millis, Vec<Command>)> {
    let mut out: Vec<(Millis, Vec<Command>)> = Vec::new();
    let mut sizes = cuts.iter().cycle();
    let mut left = 0;
    for (now, c) in timeline {
        match out.last_mut() {
            Some((_, batch)) if left > 0 => batch.push(c),
            _ => {
                left = sizes.next().copied().unwrap_or(1);
                out.push((now, vec![c]));
            }
        }
        left -= 1;
    }
    out
}

#[test]
fn batches_of_every_profiles_commands_equal_one_by_one() {
    for (name, profile) in gen::profiles() {
        let config = Config {
            cases: 64,
            failure_persistence: None,
            rng_algorithm: RngAlgorithm::XorShift,
            ..Config::default()
        };
        let strategy = (
            gen::steps(&profile, 120),
            proptest::collection::vec(1usize..=9, 1..8),
        );
        let result = TestRunner::new(config).run(&strategy, |(steps, cuts)| {
            let batches = cut(gen::timeline(steps), &cuts);
            compare(profile, &batches).map_err(|m| TestCaseError::fail(format!("[{name}] {m}")))
        });
        if let Err(e) = result {
            panic!("{e}");
        }
    }
}

#[test]
fn batches_of_simulated_streams_equal_one_by_one() {
    for seed in 0..40 {
        let scenario = Scenario::from_seed(seed);
        let mut r = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
        let mut now = 0;
        let timeline: Vec<(Millis, Command)> = (0..2_000)
            .map(|_| {
                now = scenario.advance(&mut r, now);
                (Millis(now), scenario.command(&mut r))
            })
            .collect();
        let cuts: Vec<usize> = (0..16).map(|_| 1 + r.below(12) as usize).collect();
        if let Err(m) = compare(scenario.profile, &cut(timeline, &cuts)) {
            panic!("seed {seed}: {m}");
        }
    }
}

/// Many rooms, the case the hints are for: 2,000 rooms of 8 members and
/// 20 attributes, then writes, deletes, exits and reads of rooms in a
/// random order, in batches of 64 (the window is four).
#[test]
fn batches_over_many_rooms_equal_one_by_one() {
    let mut r = Rng::new(9);
    let user = |room: u64, u: u64| format!("u{room}-{u}");
    let mut setup = Vec::new();
    for room in 0..2_000u64 {
        let id = format!("room{room}");
        setup.push(Command::CreateRoom {
            room: id.as_str().into(),
            creator: user(room, 0).as_str().into(),
        });
        for u in 0..8 {
            setup.push(Command::Join {
                room: id.as_str().into(),
                user: user(room, u).as_str().into(),
            });
        }
        for k in 0..20 {
            let w = Write::new(id.as_str(), Actor::user(user(room, k % 8).as_str()))
                .op(Op::set(format!("key{k}").as_str(), "x".repeat(64).as_str()));
            setup.push(Command::Write(w));
        }
    }
    let mut stream = Vec::new();
    for v in 0..20_000u64 {
        let room = r.below(2_000);
        let id = format!("room{room}");
        let k = r.below(24);
        let owner = user(room, k % 8);
        let c =
            match r.below(10) {
                0 => Command::Exit {
                    room: id.as_str().into(),
                    user: user(room, r.below(8)).as_str().into(),
                },
                1 => Command::Write(
                    Write::new(id.as_str(), Actor::user(owner.as_str()))
                        .op(Op::delete(format!("key{k}").as_str())),
                ),
                2 => Command::Join {
                    room: id.as_str().into(),
                    user: user(room, r.below(8)).as_str().into(),
                },
                _ => Command::Write(Write::new(id.as_str(), Actor::user(owner.as_str())).op(
                    Op::set(format!("key{k}").as_str(), format!("{v:064}").as_str()),
                )),
            };
        stream.push(c);
    }
    let mut batches = vec![(Millis(1), setup)];
    batches.extend(stream.chunks(64).map(|c| (Millis(2), c.to_vec())));
    compare(Profile::easemob(), &batches).unwrap();
}

/// `done` gets the engine: a command it handles runs right after the one
/// it was called for, before the rest of the batch.
#[test]
fn a_command_handled_in_done_runs_between_the_batchs() {
    let mut e = Engine::new(Profile::easemob());
    let room = |s: &str| Command::CreateRoom {
        room: s.into(),
        creator: "alice".into(),
    };
    let (mut ok, mut order) = (Vec::new(), Vec::new());
    let mut first = true;
    e.handle_batch(Millis(0), &mut vec![room("a"), room("b")], |e, outcome| {
        ok.push(outcome.is_ok());
        if std::mem::take(&mut first) {
            // "b" is not created yet: this one is, and the batch's fails.
            assert!(e.handle(Millis(0), room("b")).is_ok());
        }
        let mut events = Vec::new();
        e.drain_events(&mut events);
        order.extend(events.iter().map(|ev| ev.room.to_string()));
    });
    assert_eq!(ok, [true, false]);
    assert_eq!(order, ["a", "b"]);
}

proptest! {
    /// An empty batch does nothing and calls nothing.
    #[test]
    fn an_empty_batch_changes_nothing(now in 0u64..1_000) {
        let mut e = Engine::new(Profile::easemob());
        let before = e.snapshot();
        let mut calls = 0;
        e.handle_batch(Millis(now), &mut Vec::new(), |_, _| calls += 1);
        prop_assert_eq!(calls, 0);
        prop_assert_eq!(e.snapshot(), before);
    }
}
