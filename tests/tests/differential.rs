//! Differential test: the engine against the naive reference model
//! (`roomstate_tests::model`), command by command, for every profile.
//!
//! After every step: equal outcomes, equal events, engine invariants hold,
//! each room's event sequence numbers go up by exactly one (more only across
//! a `notify: false` queue change), `poll_timeout` equals the model's next
//! deadline, and every room looks the same through `Engine::room`.
//!
//! `PROPTEST_CASES` sets the number of cases per profile (default 256),
//! `PROPTEST_RNG_SEED` fixes the seed. A failure prints the step, the
//! command, both outcomes and event lists, and the whole (shrunk) sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRunner};
use roomstate::{Change, Command, Engine, Event, Millis, Profile, Str};
use roomstate_tests::gen::{self, ROOMS, USERS};
use roomstate_tests::model::Model;

/// Longest sequence of commands in one case.
const MAX_STEPS: usize = 200;

/// `Debug` of `v`, with runs of one character longer than 8 collapsed
/// (values of thousands of characters would drown the report).
fn short(v: &impl Debug) -> String {
    let s = format!("{v:?}");
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut j = i;
        while j < chars.len() && chars[j] == c {
            j += 1;
        }
        if j - i > 8 {
            out.push_str(&format!("{c}×{}", j - i));
        } else {
            out.extend(&chars[i..j]);
        }
        i = j;
    }
    out
}

/// Whether `cmd` is a queue command with `notify: false` (it may advance a
/// room's sequence number without an event).
fn silent(cmd: &Command) -> bool {
    match cmd {
        Command::QueueOffer { notify, .. }
        | Command::QueueBatchOffer { notify, .. }
        | Command::QueueBatchUpdate { notify, .. }
        | Command::QueuePoll { notify, .. } => !notify.notify,
        _ => false,
    }
}

/// Per-room sequence tracking over the engine's events.
#[derive(Default)]
struct Seqs {
    last: BTreeMap<Str, u64>,
    gap_ok: BTreeSet<Str>,
}

impl Seqs {
    fn check(&mut self, cmd: &Command, events: &[Event]) -> Result<(), String> {
        for e in events {
            let created = matches!(e.changes.first(), Some(Change::RoomCreated { .. }));
            if created {
                if self.last.contains_key(&e.room) {
                    return Err(format!("room {} created twice without a destroy", e.room));
                }
                if e.seq != 1 {
                    return Err(format!("creation of {} has seq {}", e.room, e.seq));
                }
            } else {
                let Some(&last) = self.last.get(&e.room) else {
                    return Err(format!("event in unknown room {}: seq {}", e.room, e.seq));
                };
                let ok = if self.gap_ok.contains(&e.room) {
                    e.seq > last
                } else {
                    e.seq == last + 1
                };
                if !ok {
                    return Err(format!(
                        "room {}: seq {} after {last} (gap allowed: {})",
                        e.room,
                        e.seq,
                        self.gap_ok.contains(&e.room)
                    ));
                }
            }
            self.gap_ok.remove(&e.room);
            if matches!(e.changes.first(), Some(Change::RoomDestroyed)) {
                self.last.remove(&e.room);
            } else {
                self.last.insert(e.room.clone(), e.seq);
            }
        }
        // A silent change emits nothing itself: the events above are
        // expiries that happened before it.
        if silent(cmd) {
            if let Some(room) = room_of(cmd) {
                self.gap_ok.insert(room.clone());
            }
        }
        Ok(())
    }
}

fn room_of(cmd: &Command) -> Option<&Str> {
    match cmd {
        Command::QueueOffer { room, .. }
        | Command::QueueBatchOffer { room, .. }
        | Command::QueueBatchUpdate { room, .. }
        | Command::QueuePoll { room, .. } => Some(room),
        _ => None,
    }
}

/// Compares every room (and the engine's totals) through `Engine::room`.
fn compare_state(engine: &Engine, model: &Model) -> Result<(), String> {
    let mut ids: BTreeSet<Str> = ROOMS.iter().map(|r| Str::from(*r)).collect();
    ids.extend(model.room_ids());
    let mut total = 0u64;
    for id in &ids {
        let (e, m) = match (engine.room(id), model.room(id)) {
            (None, None) => continue,
            (Some(_), None) => return Err(format!("room {id} exists in the engine only")),
            (None, Some(_)) => return Err(format!("room {id} exists in the model only")),
            (Some(e), Some(m)) => (e, m),
        };
        total += m.value_bytes();
        let diff = |what: &str, ev: String, mv: String| {
            format!("room {id}: {what} differ\n  engine: {ev}\n  model:  {mv}")
        };
        if e.seq() != m.seq {
            return Err(diff("seq", e.seq().to_string(), m.seq.to_string()));
        }
        if *e.creator() != m.creator {
            return Err(diff("creator", short(e.creator()), short(&m.creator)));
        }
        let e_attrs: Vec<_> = e.attributes().map(|a| a.to_attribute()).collect();
        if e_attrs != m.attributes {
            return Err(diff("attributes", short(&e_attrs), short(&m.attributes)));
        }
        // The engine's `plain` flags, against a scan of the text (the
        // text itself was compared with the model's just above).
        let plain = |key: &str, value: &str, owner: Option<&str>| {
            let needs = |s: &str| s.chars().any(|c| c < ' ' || c == '"' || c == '\\');
            !(needs(key) || needs(value) || owner.is_some_and(needs))
        };
        for a in e.attributes() {
            if a.plain != plain(a.key, a.value, a.owner) {
                return Err(format!(
                    "room {id}: attribute {a:?} has the wrong plain flag"
                ));
            }
        }
        for q in e.queue() {
            if q.plain != plain(q.key, q.value, q.owner) {
                return Err(format!(
                    "room {id}: queue element {q:?} has the wrong plain flag"
                ));
            }
        }
        let e_exp: Vec<_> = e
            .attributes()
            .filter_map(|a| e.expires_at(a.key).map(|t| (Str::from(a.key), t)))
            .collect();
        let mut m_exp: Vec<_> = m.expiry.iter().map(|(k, t)| (k.clone(), *t)).collect();
        m_exp.sort_by_key(|(k, _)| m.attributes.iter().position(|a| a.key == *k));
        if e_exp != m_exp {
            return Err(diff("TTL deadlines", short(&e_exp), short(&m_exp)));
        }
        if e.value_bytes() != m.value_bytes() {
            return Err(diff(
                "value bytes",
                e.value_bytes().to_string(),
                m.value_bytes().to_string(),
            ));
        }
        let e_members: Vec<(Str, u32)> = e
            .members()
            .into_iter()
            .map(|u| (u.clone(), e.connections(u)))
            .collect();
        let m_members: Vec<(Str, u32)> = m
            .members
            .iter()
            .filter(|(_, c)| c.live + c.dropped > 0)
            .map(|(u, c)| (u.clone(), c.live + c.dropped))
            .collect();
        if e_members != m_members {
            return Err(diff("members", short(&e_members), short(&m_members)));
        }
        for u in USERS {
            if e.role(u) != m.role(u) {
                return Err(diff(
                    &format!("role of {u}"),
                    short(&e.role(u)),
                    short(&m.role(u)),
                ));
            }
        }
        let e_counters: Vec<(Str, i64)> = e.counters().map(|(k, v)| (Str::from(k), v)).collect();
        let m_counters: Vec<(Str, i64)> = m.counters.iter().map(|(k, v)| (k.clone(), *v)).collect();
        if e_counters != m_counters {
            return Err(diff("counters", short(&e_counters), short(&m_counters)));
        }
        let m_cap = m.queue.as_ref().map(|q| q.capacity);
        if e.queue_capacity() != m_cap {
            return Err(diff(
                "queue capacity",
                short(&e.queue_capacity()),
                short(&m_cap),
            ));
        }
        let e_queue: Vec<_> = e.queue().map(|e| e.to_element()).collect();
        let m_queue = m.queue.as_ref().map_or(Vec::new(), |q| q.elements.clone());
        if e_queue != m_queue {
            return Err(diff("queue", short(&e_queue), short(&m_queue)));
        }
    }
    if engine.value_bytes() != total {
        return Err(format!(
            "engine value bytes: engine {} model {total}",
            engine.value_bytes()
        ));
    }
    Ok(())
}

/// Runs `steps` on a fresh engine and model; `Err` describes the first step
/// where they part.
fn run(profile: Profile, steps: &[(Millis, Command)]) -> Result<(), String> {
    let mut engine = Engine::new(profile);
    let mut model = Model::new(profile);
    let mut seqs = Seqs::default();
    for (i, (now, cmd)) in steps.iter().enumerate() {
        let e_out = engine.handle(*now, cmd.clone());
        let m_out = model.handle(*now, cmd.clone());
        let mut e_events = Vec::new();
        engine.drain_events(&mut e_events);
        let mut m_events = Vec::new();
        model.drain_events(&mut m_events);

        let mut problems = Vec::new();
        if e_out != m_out {
            problems.push("outcomes differ".to_string());
        }
        if e_events != m_events {
            problems.push("events differ".to_string());
        }
        if let Err(v) = engine.check_invariants() {
            problems.push(format!("engine invariant violated: {v:?}"));
        }
        if let Err(p) = seqs.check(cmd, &e_events) {
            problems.push(format!("sequence numbers: {p}"));
        }
        if engine.poll_timeout() != model.next_deadline() {
            problems.push(format!(
                "poll_timeout: engine {:?} model {:?}",
                engine.poll_timeout(),
                model.next_deadline()
            ));
        }
        if problems.is_empty() {
            if let Err(p) = compare_state(&engine, &model) {
                problems.push(format!("state: {p}"));
            }
        }
        if !problems.is_empty() {
            let mut msg = String::new();
            msg.push_str(&format!(
                "step {i} of {}: {}\n",
                steps.len(),
                problems.join("; ")
            ));
            msg.push_str(&format!("  now {}: {}\n", now.0, short(cmd)));
            msg.push_str(&format!("  engine outcome: {}\n", short(&e_out)));
            msg.push_str(&format!("  model  outcome: {}\n", short(&m_out)));
            msg.push_str("  engine events:\n");
            for e in &e_events {
                msg.push_str(&format!("    {}\n", short(e)));
            }
            msg.push_str("  model  events:\n");
            for e in &m_events {
                msg.push_str(&format!("    {}\n", short(e)));
            }
            msg.push_str("  sequence up to here:\n");
            for (j, (t, c)) in steps.iter().enumerate().take(i + 1) {
                msg.push_str(&format!("    {j:3} @{}: {}\n", t.0, short(c)));
            }
            return Err(msg);
        }
    }
    Ok(())
}

/// Runs the property for one profile.
fn differential(name: &str) {
    let (_, profile) = gen::profiles()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap();
    let config = Config {
        failure_persistence: None,
        // ChaCha is slow in debug builds, and proptest forks the RNG for
        // every alternative of every union it builds.
        rng_algorithm: RngAlgorithm::XorShift,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&gen::steps(&profile, MAX_STEPS), |steps| {
        let timeline = gen::timeline(steps);
        run(profile, &timeline).map_err(|m| TestCaseError::fail(format!("[{name}] {m}")))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

macro_rules! profiles {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            differential(stringify!($name));
        }
    )*};
}

profiles!(
    tencent,
    easemob,
    agora_chat,
    netease,
    zego,
    agora_rtm,
    tiny_per_request,
    tiny_atomic,
    tiny_best_effort,
    tiny_mixed,
);

/// Every profile `gen::profiles` offers has a test above.
#[test]
fn every_profile_is_tested() {
    let names: Vec<_> = gen::profiles().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "tencent",
            "easemob",
            "agora_chat",
            "netease",
            "zego",
            "agora_rtm",
            "tiny_per_request",
            "tiny_atomic",
            "tiny_best_effort",
            "tiny_mixed",
        ]
    );
}
