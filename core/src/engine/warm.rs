//! Handling commands in batches, with the memory they need loaded ahead.
//!
//! A command in a room that has not been touched for a while waits on
//! memory, one trip after another: the room, then its user records, its
//! attribute tags and records, the key's text and the history's end, each
//! address read from the one before. With 100,000 rooms a cold write
//! spends most of its time in these trips (issue 9, round 19: about 1.5
//! µs a cold write, against 0.25 µs a hot one, history off).
//!
//! [`Engine::handle_batch`] handles a batch one command at a time, exactly
//! as [`Engine::handle`] would, but before it handles one it issues
//! prefetch hints for the next three, a stage deeper for each step
//! closer:
//! - [`Engine::hint_room`], three commands ahead: the lines of the room
//!   that the id's hash finds in the table, and the write's first op;
//! - [`Engine::hint_parts`], two ahead: that room's user records, tags,
//!   records and history counts, and the write's key and value text;
//! - [`Engine::hint_key`], one ahead: the text of the record whose tag
//!   matches each key, where the history's next event goes, and for an
//!   exit the attributes' text (which the exit's removals move).
//!
//! Each stage reads only what the one before has started loading, so the
//! trips of several commands overlap instead of following each other.
//! The room is found by its hash alone ([`crate::room::Rooms::guess`]),
//! without comparing ids, so that no stage waits on a room's id.
//!
//! A hint is only a hint ([`crate::prefetch`]): it changes nothing, and a
//! wrong or stale one (another room with the same hash tag, a room
//! destroyed or a key moved by the commands between) costs wasted loads,
//! never a different result. Outcomes and events are those of
//! [`Engine::handle`] called on each command in turn; the tests in
//! `tests/tests/batch.rs` compare the two on random streams.
//!
//! The hints cost about 530 instructions a write (callgrind, `profile
//! write-hot`, history off: 2,864 against 2,331), paid where the rooms
//! are hot too. The README's performance section gives the times.

use alloc::vec::Vec;

use crate::command::{Command, Op};
use crate::engine::Engine;
use crate::outcome::Outcome;
use crate::prefetch::{line, span, LINE};
use crate::text::Str;
use crate::time::Millis;

/// How many commands ahead the first hint goes: [`Engine::hint_room`]
/// three ahead, [`Engine::hint_parts`] two, [`Engine::hint_key`] one.
const AHEAD: usize = 3;

/// Ops of a write whose text is hinted (a longer write's others are not).
const OPS: usize = 4;

impl Engine {
    /// Handles the `commands` in order, each exactly as [`Engine::handle`]
    /// would at `now`, and calls `done` with each one's outcome before the
    /// next is handled. `done` gets the engine, so that it can drain the
    /// events of that command (they are queued as by `handle`), or handle
    /// a command of its own, which then runs before the rest of the batch.
    /// `commands` is left empty, its capacity kept for the next batch: a
    /// batch allocates nothing of its own.
    ///
    /// The difference is speed where rooms are cold (a server with many
    /// rooms, each touched now and then): while one command is handled,
    /// the memory the next three need is already on its way (see the
    /// module's notes).
    ///
    /// ```
    /// use roomstate::{Actor, Command, Engine, Millis, Op, Profile, Write};
    ///
    /// let mut engine = Engine::new(Profile::easemob());
    /// let mut batch = vec![
    ///     Command::CreateRoom { room: "r".into(), creator: "alice".into() },
    ///     Command::Join { room: "r".into(), user: "alice".into() },
    ///     Command::Write(Write::new("r", Actor::user("alice")).op(Op::set("topic", "music"))),
    /// ];
    /// let (mut outcomes, mut events) = (Vec::new(), Vec::new());
    /// engine.handle_batch(Millis(0), &mut batch, |engine, outcome| {
    ///     outcomes.push(outcome);
    ///     engine.drain_events(&mut events);
    /// });
    /// assert!(batch.is_empty());
    /// assert!(outcomes.iter().all(Result::is_ok));
    /// assert_eq!(events.len(), 3);
    /// assert_eq!(engine.room("r").unwrap().attribute("topic").unwrap().value, "music");
    /// ```
    pub fn handle_batch<F>(&mut self, now: Millis, commands: &mut Vec<Command>, mut done: F)
    where
        F: FnMut(&mut Engine, Outcome),
    {
        // The room hash of the command at position `i`, at `i % (AHEAD + 1)`
        // (`None`: a command without a room).
        let mut hashes = [None; AHEAD + 1];
        let mut drain = commands.drain(..);
        for (i, c) in drain.as_slice().iter().take(AHEAD).enumerate() {
            if let Some(h) = hashes.get_mut(i) {
                *h = self.hint_room(c);
            }
        }
        let mut i = 0;
        while let Some(command) = drain.next() {
            let ahead = drain.as_slice();
            let slot = |k: usize| (i + k) % (AHEAD + 1);
            if let (Some(c), Some(h)) = (ahead.get(AHEAD - 1), hashes.get_mut(slot(AHEAD))) {
                *h = self.hint_room(c);
            }
            if let (Some(c), Some(&Some(h))) = (ahead.get(1), hashes.get(slot(2))) {
                self.hint_parts(c, h);
            }
            if let (Some(c), Some(&Some(h))) = (ahead.first(), hashes.get(slot(1))) {
                self.hint_key(c, h);
            }
            let outcome = self.handle(now, command);
            done(self, outcome);
            i += 1;
        }
    }

    /// The first hint: the lines of the room that `command`'s room id
    /// hashes to, and the write's first op. Returns the id's hash (`None`
    /// for a command without a room, which gets no hints).
    fn hint_room(&self, command: &Command) -> Option<u64> {
        let hash = self.rooms.hash(command.room()?);
        if let Some(room) = self.rooms.guess(hash) {
            room.warm();
        }
        if let Some(op) = ops(command).first() {
            line(op);
        }
        Some(hash)
    }

    /// The second hint: the room's user records, tags, records and
    /// history counts, and the write's key and value text.
    fn hint_parts(&self, command: &Command, hash: u64) {
        if let Some(room) = self.rooms.guess(hash) {
            room.warm_parts();
        }
        for op in ops(command).iter().take(OPS) {
            let (key, value) = match op {
                Op::Set { key, value, .. } => (key, Some(value)),
                Op::Delete { key, .. } => (key, None),
            };
            if let Some(key) = key.shared() {
                span(key.as_ptr(), key.len(), LINE);
            }
            if let Some(value) = value.and_then(Str::shared) {
                span(value.as_ptr(), value.len(), 2 * LINE);
            }
        }
    }

    /// The last hint: the text of each key's record, where the history's
    /// next event goes, and an exit's text.
    fn hint_key(&self, command: &Command, hash: u64) {
        if let Some(room) = self.rooms.guess(hash) {
            for op in ops(command).iter().take(OPS) {
                room.warm_key(op.key());
            }
            room.warm_end();
            if matches!(command, Command::Exit { .. } | Command::Leave { .. }) {
                room.warm_text();
            }
        }
    }
}

/// A write's ops; none for any other command.
fn ops(command: &Command) -> &[Op] {
    match command {
        Command::Write(w) => &w.ops,
        _ => &[],
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;

    use crate::command::{Actor, Command, Op, Write};
    use crate::engine::Engine;
    use crate::prefetch::{log, LINE};
    use crate::profile::Profile;
    use crate::time::Millis;

    /// Rooms `r0`..`r5`, each of 8 members and 20 attributes (64-byte
    /// values, so that a value is text on the heap), in an engine whose
    /// room hasher gives each room's hash that room. A hint finds a room
    /// by its hash alone, so under a hasher that gives two of the six
    /// rooms one control byte it may rightly warm the other (about one
    /// seed in twenty, and CI's runs draw a new seed each time). The
    /// hasher is seeded afresh with each engine, so a few tries find one.
    fn rooms() -> Engine {
        (0..64)
            .map(|_| six_rooms())
            .find(|e| {
                (0..6).all(|r| {
                    let id = format!("r{r}");
                    let found = e.rooms.guess(e.rooms.hash(&id));
                    found.is_some_and(|f| core::ptr::eq(f, e.rooms.get(&id).unwrap()))
                })
            })
            .unwrap()
    }

    fn six_rooms() -> Engine {
        let mut profile = Profile::easemob();
        profile.limits.request_rate = None;
        let mut e = Engine::new(profile);
        for r in 0..6 {
            let room = format!("r{r}");
            assert!(e.handle(Millis(1), create(&room)).is_ok());
            for u in 0..8 {
                assert!(e.handle(Millis(1), join(&room, u)).is_ok());
            }
            for k in 0..20 {
                assert!(e
                    .handle(Millis(1), write(&room, k, &"v".repeat(64)))
                    .is_ok());
            }
        }
        e.drain_events(&mut Vec::new());
        e
    }

    fn create(room: &str) -> Command {
        Command::CreateRoom {
            room: room.into(),
            creator: "u0".into(),
        }
    }

    fn join(room: &str, u: usize) -> Command {
        Command::Join {
            room: room.into(),
            user: format!("u{u}").as_str().into(),
        }
    }

    /// Key `k` of `room`, written by its owner `u{k % 8}`.
    fn write(room: &str, k: usize, value: &str) -> Command {
        let w = Write::new(room, Actor::user(format!("u{}", k % 8).as_str()));
        Command::Write(w.op(Op::set(format!("key{k:02}").as_str(), value)))
    }

    /// What each stage asks for, seen in `room`'s memory: its own lines,
    /// a user record, and its attributes' text.
    struct Seen {
        room_lines: bool,
        users: bool,
        text: bool,
    }

    fn seen(e: &Engine, id: &str, hinted: &[usize]) -> Seen {
        let room = e.rooms.get(id).unwrap();
        let at = core::ptr::from_ref(room).addr();
        // User 3's record and lines inside the text, not their first or
        // last lines, which another allocation next to them may share.
        let user = core::ptr::from_ref(room.users.get(3).unwrap()).addr();
        let text = room.attrs.arena_range();
        Seen {
            room_lines: log::covering(at, size_of::<crate::room::Room>())
                .iter()
                .all(|a| hinted.contains(a)),
            users: hinted.contains(&(user - user % LINE)),
            text: hinted
                .iter()
                .any(|&a| a >= text.start + LINE && a + 2 * LINE <= text.end),
        }
    }

    /// Each stage hints what it is for, at the addresses the command will
    /// read: the room's lines and the op list; the user records and the
    /// value's text; the text of the key's record.
    #[test]
    fn each_stage_hints_the_memory_its_command_reads() {
        let e = rooms();
        // A write whose 120-byte value does not start a line, so that it
        // spans three (from a line's start, 66 bytes would name as many
        // lines as 128), and shares none with the room's parts, which the
        // same stage hints (the value may sit in a hole next to them). The
        // commands passed over are kept, so that each try gets a new
        // address.
        e.rooms.get("r3").unwrap().warm_parts();
        let parts = log::take();
        let apart = |text: usize| {
            let lines = log::covering(text, 120);
            lines.len() == 3 && lines.iter().all(|a| !parts.contains(a))
        };
        let text_of = |c: &Command| match c {
            Command::Write(w) => match &w.ops[0] {
                Op::Set { value, .. } => value.as_str().as_ptr().addr(),
                Op::Delete { .. } => unreachable!(),
            },
            _ => unreachable!(),
        };
        let mut passed_over = Vec::new();
        let mut c = write("r3", 7, &"w".repeat(120));
        while !apart(text_of(&c)) && passed_over.len() < 64 {
            passed_over.push(core::mem::replace(&mut c, write("r3", 7, &"w".repeat(120))));
        }
        let text = text_of(&c);
        assert!(
            apart(text),
            "a value off a line's start, apart from the room"
        );
        let Command::Write(w) = &c else {
            unreachable!()
        };
        let ops = w.ops.as_ptr().addr();
        log::take();

        let hash = e.hint_room(&c).unwrap();
        let hinted = log::take();
        let s = seen(&e, "r3", &hinted);
        assert!(s.room_lines && !s.users && !s.text);
        assert!(hinted.contains(&(ops - ops % LINE)));

        e.hint_parts(&c, hash);
        let hinted = log::take();
        let s = seen(&e, "r3", &hinted);
        assert!(!s.room_lines && s.users && !s.text);
        assert!(log::covering(text, 120).iter().all(|a| hinted.contains(a)));

        e.hint_key(&c, hash);
        let hinted = log::take();
        let s = seen(&e, "r3", &hinted);
        assert!(!s.room_lines && !s.users && s.text);
        // The text hinted is key07's record, not just any.
        let room = e.rooms.get("r3").unwrap();
        room.attrs.warm_entry(room.hash("key07"));
        let entry = log::take();
        assert!(!entry.is_empty() && entry.iter().all(|a| hinted.contains(a)));
        // And where the history's next event goes.
        room.history.warm_end();
        let end = log::take();
        assert!(!end.is_empty() && end.iter().all(|a| hinted.contains(a)));

        // An exit's last stage asks for the text its removals move.
        let leave = Command::Leave {
            room: "r3".into(),
            user: "u2".into(),
        };
        let hash = e.hint_room(&leave).unwrap();
        log::take();
        e.hint_key(&leave, hash);
        assert!(seen(&e, "r3", &log::take()).text);

        // A command without a room gets none.
        assert_eq!(e.hint_room(&Command::Tick), None);
        assert!(log::take().is_empty());
    }

    /// In a batch, the command three ahead gets the room's lines, two
    /// ahead the parts, one ahead the key's text, so each command from the
    /// fourth on has had all three before it is handled; the first ones
    /// get what the batch's start allows.
    #[test]
    fn a_batch_hints_each_command_at_every_stage_before_it_runs() {
        let mut e = rooms();
        let ids: Vec<String> = (0..6).map(|r| format!("r{r}")).collect();
        let mut batch: Vec<Command> = ids.iter().map(|r| write(r, 3, "x")).collect();
        log::take();
        let mut hinted_before = Vec::new();
        e.handle_batch(Millis(2), &mut batch, |_, outcome| {
            assert!(outcome.is_ok());
            hinted_before.push(log::take());
        });
        assert_eq!(hinted_before.len(), 6, "each command handled once");
        // `hinted_before[k]`: what was hinted before command k ran and
        // after command k - 1 did, which is the loop's hints for the
        // commands after k (and for k = 0, the batch's first hints too).
        // Each names exactly the rooms it is for, each at its stage.
        for (k, hinted) in hinted_before.iter().enumerate() {
            for (j, id) in ids.iter().enumerate() {
                let s = seen(&e, id, hinted);
                let want = (j == k + 3 || (k == 0 && j < 3), j == k + 2, j == k + 1);
                assert_eq!(
                    (s.room_lines, s.users, s.text),
                    want,
                    "room {j} before command {k}"
                );
            }
        }
    }
}
