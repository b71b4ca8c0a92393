//! The bodies of the fuzz targets, as library functions: the cargo-fuzz
//! targets in `fuzz/` call them on nightly, and `tests/fuzz_corpus.rs`
//! replays every committed corpus and regression file through them on
//! stable, so a crash once found stays fixed without nightly.
//!
//! Each function panics on a finding (a disagreement with the model, a
//! broken invariant, a non-canonical snapshot) and returns quietly when the
//! input runs out.

use arbitrary::{Arbitrary, Unstructured};
use roomstate::{Command, Engine, Event, Millis, Outcome, Profile, Rejection};

use crate::gen;
use crate::model::Model;

/// Most steps one input may drive, so one input stays fast.
const MAX_STEPS: usize = 400;

/// How time moves before a step.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Clock {
    /// Forward by a few milliseconds (often 0: the same instant).
    Forward(u8),
    /// Forward by up to about a minute (past grace periods and windows).
    Jump(u16),
    /// Backwards: the engine must treat it as the latest `now`.
    Back(u16),
}

/// One step of a fuzzed sequence.
#[derive(Arbitrary, Debug, Clone)]
pub struct Step {
    /// Time before the command.
    pub clock: Clock,
    /// The command.
    pub command: Command,
}

/// The next step, `None` once the input is used up (`arbitrary` would go
/// on producing zeros, and every input would run `MAX_STEPS` steps).
fn next_step(u: &mut Unstructured<'_>) -> Option<Step> {
    if u.is_empty() {
        return None;
    }
    Step::arbitrary(u).ok()
}

fn advance(now: u64, clock: Clock) -> u64 {
    match clock {
        Clock::Forward(ms) => now + u64::from(ms),
        Clock::Jump(ms) => now + u64::from(ms) * 2,
        Clock::Back(ms) => now.saturating_sub(u64::from(ms)),
    }
}

/// A profile chosen by the input: a named one (built-ins and the tiny test
/// profiles), or, for the last choice, an arbitrary one.
pub fn profile(u: &mut Unstructured<'_>) -> arbitrary::Result<Profile> {
    let named = gen::profiles();
    let pick = usize::from(u8::arbitrary(u)?) % (named.len() + 1);
    match named.get(pick) {
        Some((_, p)) => Ok(*p),
        None => Profile::arbitrary(u),
    }
}

/// Applies one command to engine and model, checks that outcomes, events,
/// timers and invariants agree, and returns the engine's outcome and events.
pub fn lockstep(
    engine: &mut Engine,
    model: &mut Model,
    now: u64,
    command: Command,
    step: usize,
) -> (Outcome, Vec<Event>) {
    let a = engine.handle(Millis(now), command.clone());
    check(engine, model, now, a, &command, step)
}

/// Applies `commands`, all at `now`, to the engine in one
/// `Engine::handle_batch` and to the model one by one, and checks each
/// command as [`lockstep`] does, right after the engine handled it.
pub fn lockstep_batch(
    engine: &mut Engine,
    model: &mut Model,
    now: u64,
    mut commands: Vec<Command>,
    first_step: usize,
) {
    let copies = commands.clone();
    let mut checked = 0;
    engine.handle_batch(Millis(now), &mut commands, |engine, a| {
        let command = copies.get(checked).expect("one outcome per command");
        let _ = check(engine, model, now, a, command, first_step + checked);
        checked += 1;
    });
    assert_eq!(checked, copies.len(), "one outcome per command of a batch");
}

/// The engine has handled `command` with outcome `a`: applies it to the
/// model and checks outcomes, events, timers and invariants.
fn check(
    engine: &mut Engine,
    model: &mut Model,
    now: u64,
    a: Outcome,
    command: &Command,
    step: usize,
) -> (Outcome, Vec<Event>) {
    // Formatting the trace costs more than the step: only on a finding.
    let trace = |c: &Command| format!("step {step} at {now} ms: {c:?}");
    let b = model.handle(Millis(now), command.clone());
    if a != b {
        panic!(
            "outcome differs, {}\n engine: {a:?}\n  model: {b:?}",
            trace(command)
        );
    }
    let (mut ea, mut eb): (Vec<Event>, Vec<Event>) = (Vec::new(), Vec::new());
    engine.drain_events(&mut ea);
    model.drain_events(&mut eb);
    if ea != eb {
        panic!(
            "events differ, {}\n engine: {ea:?}\n  model: {eb:?}",
            trace(command)
        );
    }
    let (ta, tb) = (engine.poll_timeout(), model.next_deadline());
    if ta != tb {
        panic!(
            "next deadline differs, {}: engine {ta:?}, model {tb:?}",
            trace(command)
        );
    }
    if let Err(v) = engine.check_invariants() {
        panic!("invariant broken: {v:?}, {}", trace(command));
    }
    (a, ea)
}

/// Target `commands`: a command sequence against engine and model.
pub fn commands(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(profile) = profile(&mut u) else { return };
    let mut engine = Engine::new(profile);
    let mut model = Model::new(profile);
    let mut now = 0;
    let mut step = 0;
    let mut next = next_step(&mut u);
    // A step at the same instant as the one before (`Forward(0)`) joins
    // its batch: the engine handles each run of them with `handle_batch`,
    // which must equal handling them one by one at that instant.
    while let Some(first) = next.take().filter(|_| step < MAX_STEPS) {
        now = advance(now, first.clock);
        let mut batch = vec![first.command];
        next = next_step(&mut u);
        while let Some(s) =
            next.take_if(|s| matches!(s.clock, Clock::Forward(0)) && step + batch.len() < MAX_STEPS)
        {
            batch.push(s.command);
            next = next_step(&mut u);
        }
        let len = batch.len();
        if len > 1 {
            lockstep_batch(&mut engine, &mut model, now, batch, step);
        } else if let Some(one) = batch.pop() {
            let _ = lockstep(&mut engine, &mut model, now, one, step);
        }
        step += len;
    }
}

/// Target `snapshot_decode`: arbitrary bytes into restore. Either an error,
/// or an engine whose invariants hold and whose snapshot is canonical
/// (restoring it gives the same bytes again). The same for a single room.
pub fn snapshot_decode(data: &[u8]) {
    if let Ok(engine) = Engine::restore(data) {
        if let Err(v) = engine.check_invariants() {
            panic!("restored engine breaks an invariant: {v:?}");
        }
        let bytes = engine.snapshot();
        let again = Engine::restore(&bytes).map(|e| e.snapshot());
        assert_eq!(
            again.as_deref(),
            Ok(&bytes[..]),
            "re-encoding is not canonical"
        );
    }
    for profile in Profile::builtins() {
        let mut engine = Engine::new(profile);
        if engine.restore_room(data).is_ok() {
            if let Err(v) = engine.check_invariants() {
                panic!("restored room breaks an invariant: {v:?}");
            }
        }
    }
}

/// Target `roundtrip`: build an engine from commands, snapshot and restore
/// it, then drive original and restored copy in lockstep.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(profile) = profile(&mut u) else { return };
    let Ok(split) = u8::arbitrary(&mut u) else {
        return;
    };
    let mut original = Engine::new(profile);
    let mut sink = Vec::new();
    let mut now = 0;
    for _ in 0..split {
        let Some(s) = next_step(&mut u) else {
            break;
        };
        now = advance(now, s.clock);
        let _ = original.handle(Millis(now), s.command);
    }
    original.drain_events(&mut sink);
    let bytes = original.snapshot();
    let mut copy = match Engine::restore(&bytes) {
        Ok(e) => e,
        Err(e) => panic!("an engine's own snapshot was refused: {e:?}"),
    };
    assert_eq!(
        copy.snapshot(),
        bytes,
        "snapshot → restore → snapshot changed the bytes"
    );
    for step in 0..MAX_STEPS {
        let Some(s) = next_step(&mut u) else {
            break;
        };
        now = advance(now, s.clock);
        let a = original.handle(Millis(now), s.command.clone());
        let b = copy.handle(Millis(now), s.command.clone());
        let (mut ea, mut eb): (Vec<Event>, Vec<Event>) = (Vec::new(), Vec::new());
        original.drain_events(&mut ea);
        copy.drain_events(&mut eb);
        // The catch-up history is not in a snapshot: the restored copy's
        // starts at the restore, so it reaches back no further than the
        // original's. Where the original still answers, the copy may say
        // `HistoryTruncated` (and then the client reads the full state);
        // where both say it, the copy's earliest number is the original's
        // or a later one. Where the copy answers, it answers alike.
        let history_only = matches!(s.command, Command::Since { .. })
            && match (&a, &b) {
                (Ok(_), Err(Rejection::HistoryTruncated { .. })) => true,
                (
                    Err(Rejection::HistoryTruncated { oldest: original }),
                    Err(Rejection::HistoryTruncated { oldest: restored }),
                ) => restored >= original,
                _ => false,
            };
        if (a != b && !history_only) || ea != eb {
            panic!(
                "original and restored differ at step {step} after restore, {now} ms: {:?}\n original: {a:?} {ea:?}\n restored: {b:?} {eb:?}",
                s.command
            );
        }
    }
    assert_eq!(
        original.snapshot(),
        copy.snapshot(),
        "final snapshots differ"
    );
}

/// A `Command` from bytes, for targets and tools that want one.
pub fn command(data: &[u8]) -> Option<Command> {
    Command::arbitrary(&mut Unstructured::new(data)).ok()
}
