//! Benchmarks support: the naive baseline and shared workloads.
//!
//! - [`naive`]: the baseline the engine is measured against;
//! - [`workload`]: deterministic fixtures and the mixed command sequence,
//!   replayed on both, and each side's read path;
//! - [`cold`]: the cold regime, many full rooms and long streams of
//!   pre-built commands;
//! - [`json`]: the read-all reply both sides write.
//!
//! The criterion benchmarks are in `benches/engine.rs`; `alloc_report`
//! counts allocations and heap bytes; `ratios` prints the engine ÷ naive
//! table from criterion's estimates.

pub mod cold;
pub mod json;
pub mod naive;
pub mod workload;

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use roomstate::{Command, Engine, Event};

    use crate::naive::{Naive, NaiveEvent};
    use crate::workload::{
        engine_read_json, engine_visit_attributes, naive_read_json, run_engine, run_naive,
        ExitFixture, Grid, Mixed, QueueFixture, NOW,
    };

    /// Sequence number; key -> (owner, value, revision); members; queue.
    type RoomState = (
        u64,
        BTreeMap<String, (String, String, u64)>,
        Vec<String>,
        Vec<(String, String)>,
    );

    fn engine_state(engine: &Engine, rooms: &[String]) -> Vec<RoomState> {
        rooms
            .iter()
            .map(|id| {
                let v = engine.room(id).unwrap();
                let mut attrs = BTreeMap::new();
                let seq = engine_visit_attributes(engine, id, |k, v, o, r| {
                    assert_ne!(o, crate::workload::ADMIN);
                    attrs.insert(k.to_string(), (o.to_string(), v.to_string(), r));
                });
                assert_eq!(seq, Some(v.seq()));
                let members = v.members().into_iter().map(|u| u.to_string()).collect();
                let queue = v
                    .queue()
                    .map(|e| (e.key.to_string(), e.value.to_string()))
                    .collect();
                (v.seq(), attrs, members, queue)
            })
            .collect()
    }

    fn naive_state(naive: &Naive, rooms: &[String]) -> Vec<RoomState> {
        rooms
            .iter()
            .map(|id| {
                let r = &naive.rooms[id];
                let attrs = r
                    .attrs
                    .iter()
                    .map(|(k, a)| (k.clone(), (a.owner.clone(), a.value.clone(), a.revision)))
                    .collect();
                let mut members: Vec<String> = r.members.keys().cloned().collect();
                members.sort();
                let queue = r.queue.iter().flatten().cloned().collect();
                (r.seq, attrs, members, queue)
            })
            .collect()
    }

    #[test]
    fn mixed_workload_leaves_engine_and_baseline_in_the_same_state() {
        let mixed = Mixed::generate(7, 50, 5_000);
        let mut engine = mixed.engine();
        let mut naive = mixed.naive();
        assert_eq!(
            engine_state(&engine, &mixed.rooms),
            naive_state(&naive, &mixed.rooms)
        );
        let (mut ee, mut ne) = (Vec::<Event>::new(), Vec::<NaiveEvent>::new());
        let (mut je, mut jn) = (Vec::new(), Vec::new());
        let ok_e = run_engine(&mut engine, mixed.engine_inputs(), &mut ee, &mut je);
        let ok_n = run_naive(&mut naive, mixed.naive_inputs(), &mut ne, &mut jn);
        assert_eq!(ok_e, ok_n);
        assert!(!je.is_empty(), "the workload reads");
        assert_eq!(
            engine_state(&engine, &mixed.rooms),
            naive_state(&naive, &mixed.rooms)
        );
        engine.check_invariants().unwrap();
        for id in &mixed.rooms {
            assert_eq!(
                reply(|o| engine_read_json(&engine, id, o)),
                reply(|o| naive_read_json(&naive, id, o))
            );
        }
        // The command path counts the same successes as the view path.
        let (mut engine, mut naive) = (mixed.engine(), mixed.naive());
        let inputs = mixed
            .engine_commands()
            .into_iter()
            .map(crate::workload::EngineInput::Command)
            .collect();
        let ok_c = run_engine(&mut engine, inputs, &mut ee, &mut je);
        assert_eq!(ok_c, ok_n);
        let inputs = mixed
            .naive_commands()
            .into_iter()
            .map(crate::workload::NaiveInput::Command)
            .collect();
        assert_eq!(run_naive(&mut naive, inputs, &mut ne, &mut jn), ok_n);
    }

    /// Command by command, both sides announce the same events: as many,
    /// for the same rooms, with the same sequence numbers and as many
    /// changes. A side announcing more (an empty event for a write that
    /// changed nothing) or fewer would be timed doing other work.
    #[test]
    fn mixed_workload_announces_the_same_events_on_both_sides() {
        let mixed = Mixed::generate(11, 40, 4_000);
        let (mut engine, mut naive) = (mixed.engine(), mixed.naive());
        let (mut ee, mut ne) = (Vec::<Event>::new(), Vec::<NaiveEvent>::new());
        let (mut events, mut failed_writes) = (0, 0);
        let commands = mixed.engine_commands().into_iter();
        for (c, n) in commands.zip(mixed.naive_commands()) {
            // The generator's model of who is present holds: every join
            // and leave is taken.
            let membership = matches!(c, Command::Join { .. } | Command::Leave { .. });
            let outcome = engine.handle(NOW, c);
            let naive_outcome = naive.handle(n);
            assert_eq!(outcome.is_ok(), naive_outcome.is_ok());
            assert!(!membership || outcome.is_ok(), "{outcome:?}");
            if let Ok(crate::naive::NaiveSuccess::Written { applied: 0, .. }) = naive_outcome {
                failed_writes += 1;
            }
            engine.drain_events(&mut ee);
            naive.drain_events(&mut ne);
            let shape = |room: &str, seq: u64, changes: usize| (room.to_string(), seq, changes);
            let engine_shapes: Vec<_> = ee
                .iter()
                .map(|e| shape(&e.room, e.seq, e.changes.len()))
                .collect();
            let naive_shapes: Vec<_> = ne
                .iter()
                .map(|e| shape(&e.room, e.seq, e.changes.len()))
                .collect();
            assert_eq!(engine_shapes, naive_shapes);
            events += ee.len();
            ee.clear();
            ne.clear();
        }
        assert!(events > 1_000, "{events} events");
        assert!(
            failed_writes > 0,
            "the workload has writes that change nothing"
        );
    }

    /// A read-all reply parsed back: `(seq, key -> (value, owner, revision))`.
    type Parsed = (u64, BTreeMap<String, (String, String, u64)>);

    fn reply(write: impl FnOnce(&mut Vec<u8>) -> bool) -> Option<Parsed> {
        let mut out = b"stale".to_vec();
        out.clear();
        if !write(&mut out) {
            assert!(out.is_empty());
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let attrs = v["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["key"].as_str().unwrap().to_string(),
                    (
                        a["value"].as_str().unwrap().to_string(),
                        a["owner"].as_str().unwrap().to_string(),
                        a["revision"].as_u64().unwrap(),
                    ),
                )
            })
            .collect();
        Some((v["seq"].as_u64().unwrap(), attrs))
    }

    /// Where a key, a value or an owner id needs an escape, the engine's
    /// reply takes the scanning path for that attribute and copies the
    /// others without a scan: valid JSON with the baseline's attributes
    /// (its map lists them in another order), escaped the same way.
    #[test]
    fn text_that_needs_escapes_is_escaped_on_both_sides() {
        let mut grid = Grid::new(2, 20);
        grid.keys[3] = "key \"3\"".to_string();
        for v in grid.values.iter_mut().step_by(5) {
            v.push('\n');
        }
        let u = grid.user(0, 2);
        grid.users[u] = "user\\2".to_string();
        let (engine, naive) = (grid.engine(), grid.naive());
        for id in &grid.rooms {
            let e = reply(|o| engine_read_json(&engine, id, o)).unwrap();
            assert_eq!(e.1.len(), 20);
            assert_eq!(Some(e), reply(|o| naive_read_json(&naive, id, o)), "{id}");
            let plain = engine.room(id).unwrap().attributes().filter(|a| a.plain);
            let plain = plain.count();
            assert!(
                (1..20).contains(&plain),
                "both kinds in {id}: {plain} plain"
            );
        }
        let text = |read: &dyn Fn(&mut Vec<u8>) -> bool| {
            let mut out = Vec::new();
            assert!(read(&mut out));
            String::from_utf8(out).unwrap()
        };
        let room = &grid.rooms[0];
        let e = text(&|o| engine_read_json(&engine, room, o));
        let n = text(&|o| naive_read_json(&naive, room, o));
        for part in [
            r#""key":"key \"3\"""#,
            r#""owner":"user\\2""#,
            r#"\n","owner""#,
        ] {
            assert!(e.contains(part) && n.contains(part), "{part}: {e}");
        }
        assert_eq!(e.matches("\\n").count(), n.matches("\\n").count());
    }

    #[test]
    fn both_read_paths_write_the_same_reply_of_every_attribute() {
        let grid = Grid::new(3, 20);
        let mut engine = grid.engine();
        let mut naive = grid.naive();
        engine.handle(NOW, grid.engine_overwrite(1, 5, 9)).unwrap();
        naive.handle(grid.naive_overwrite(1, 5, 9)).unwrap();
        for id in &grid.rooms {
            let e = reply(|o| engine_read_json(&engine, id, o)).unwrap();
            assert_eq!(e.1.len(), 20);
            assert_eq!(Some(e), reply(|o| naive_read_json(&naive, id, o)));
        }
        let e = reply(|o| engine_read_json(&engine, &grid.rooms[1], o)).unwrap();
        let (value, owner, revision) = &e.1[&grid.keys[5]];
        assert_eq!(value, &grid.values[9]);
        assert_eq!(owner, &grid.users[grid.owner(1, 5)]);
        assert_eq!(*revision, e.0, "the overwrite was the room's last change");
        assert_eq!(reply(|o| engine_read_json(&engine, "nope", o)), None);
        assert_eq!(reply(|o| naive_read_json(&naive, "nope", o)), None);
    }

    #[test]
    fn mixed_workload_has_the_issue_mix() {
        let mixed = Mixed::standard();
        assert_eq!(mixed.steps.len(), 10_000);
        let count =
            |f: fn(&crate::workload::Step) -> bool| mixed.steps.iter().filter(|s| f(s)).count();
        use crate::workload::Step as S;
        let writes = count(|s| matches!(s, S::Write { .. }));
        let reads = count(|s| matches!(s, S::Read { .. }));
        let members = count(|s| matches!(s, S::Join { .. } | S::Leave { .. }));
        let queue = count(|s| matches!(s, S::Offer { .. } | S::Poll { .. }));
        assert!((6_700..7_300).contains(&writes), "{writes}");
        assert!((1_300..1_700).contains(&reads), "{reads}");
        assert!((350..650).contains(&members), "{members}");
        assert!((800..1_200).contains(&queue), "{queue}");

        // Writes of 1–3 ops, one in ten a delete; a leave for one member
        // step in four (half of those whose user is present); polls among
        // the queue steps, offers mostly of new keys.
        let ops: Vec<&(usize, Option<usize>)> = mixed
            .steps
            .iter()
            .flat_map(|s| match s {
                S::Write { ops, .. } => ops.iter().collect(),
                _ => Vec::new(),
            })
            .collect();
        assert!((writes * 19 / 10..writes * 21 / 10).contains(&ops.len()));
        let deletes = ops.iter().filter(|(_, v)| v.is_none()).count();
        assert!((ops.len() * 85 / 1000..ops.len() * 115 / 1000).contains(&deletes));
        let leaves = count(|s| matches!(s, S::Leave { .. }));
        assert!(
            (members * 15 / 100..members * 35 / 100).contains(&leaves),
            "{leaves}"
        );
        let polls = count(|s| matches!(s, S::Poll { .. }));
        assert!((queue / 10..queue / 2).contains(&polls), "{polls}");
        let offered: BTreeSet<(usize, usize)> = mixed
            .steps
            .iter()
            .filter_map(|s| match *s {
                S::Offer { room, key, .. } => Some((room, key)),
                _ => None,
            })
            .collect();
        assert!(offered.len() > (queue - polls) * 3 / 4, "{}", offered.len());
        // The standard workload itself, exactly, for its seed: the README's
        // mixed figures were measured on it, so a change to the generator
        // shows here (then update these numbers and measure again).
        assert_eq!(
            (writes, reads, members, queue, ops.len()),
            (6_956, 1_552, 491, 1_001, 13_966)
        );
        assert_eq!(
            (deletes, leaves, polls, offered.len()),
            (1_400, 128, 137, 827)
        );
        // The set-up gives each room's ten keys to its four members in
        // turn.
        let setup_writes: Vec<(usize, usize)> = mixed
            .setup
            .iter()
            .filter_map(|s| match s {
                S::Write { user, ops, .. } => Some((*user, ops.first()?.0)),
                _ => None,
            })
            .collect();
        assert_eq!(setup_writes.len(), 10_000);
        assert!(setup_writes.iter().all(|&(user, key)| user == key % 4));

        // Each room's commands name its own users only.
        let mut rooms_of = BTreeMap::<String, BTreeSet<String>>::new();
        for c in mixed.naive_commands() {
            use crate::naive::NaiveCmd as C;
            let (room, user) = match c {
                C::Join { room, user } | C::Leave { room, user } => (room, user),
                C::Write { room, operator, .. }
                | C::QueueOffer { room, operator, .. }
                | C::QueuePoll { room, operator, .. } => (room, operator),
                _ => continue,
            };
            rooms_of.entry(user).or_default().insert(room);
        }
        assert!(rooms_of.len() > 5_000, "{}", rooms_of.len());
        assert!(rooms_of.values().all(|r| r.len() == 1));

        // Queue keys: one per room and element, as long as attribute keys.
        let keys: BTreeSet<String> = (0..1_000)
            .flat_map(|r| (0..50).map(move |n| Mixed::queue_key(r, n)))
            .collect();
        assert_eq!(keys.len(), 50_000);
        assert!(keys
            .iter()
            .all(|k| k.len() == crate::workload::key(0).len()));

        // Reads are served by each side's read path, at the same places.
        let engine = mixed.engine_inputs().into_iter();
        for (e, n) in engine.zip(mixed.naive_inputs()) {
            use crate::workload::{EngineInput, NaiveInput};
            let is_read = matches!(e, EngineInput::Read(_));
            assert_eq!(is_read, matches!(n, NaiveInput::Read(_)));
        }
    }

    /// The exit fixture is what its docs say: each room's leaver is a user
    /// of its own and, once armed, owns key 0 alone; the other keys are
    /// spread over the room's seven other users.
    #[test]
    fn the_exit_fixture_leaves_one_key_to_each_rooms_own_leaver() {
        let fx = ExitFixture::new(5, 24);
        assert_eq!(fx.rooms(), 5);
        let mut engine = fx.engine();
        let mut leavers = BTreeSet::new();
        for r in 0..fx.rooms() {
            let room = &fx.grid.rooms[r];
            let leaver = fx.grid.users[fx.leaver(r)].clone();
            assert!(leavers.insert(leaver.clone()), "{leaver} leaves twice");
            let users: BTreeSet<String> = (0..8)
                .map(|i| fx.grid.users[fx.grid.user(r, i)].clone())
                .collect();
            assert!(users.contains(&leaver));
            fx.engine_arm(&mut engine, r, &mut Vec::new());
            let mut owners = BTreeMap::<String, usize>::new();
            engine_visit_attributes(&engine, room, |_, _, o, _| {
                *owners.entry(o.to_string()).or_default() += 1;
            });
            assert_eq!(owners.remove(&leaver), Some(1), "{room}");
            assert_eq!(owners.len(), 7, "{owners:?}");
            assert!(owners.keys().all(|o| users.contains(o)));
        }
    }

    /// The benchmark profile lets every fixture in at the largest size a
    /// benchmark builds it (ZEGO's own 5,120 value bytes per room would
    /// refuse the 100- and 1,000-key rooms of `scaling/*`; its default
    /// queue capacity is the queue benchmark's 1,000), and keeps the
    /// default history unless the run turns it off.
    #[test]
    fn the_bench_profile_takes_every_fixture_at_its_benchmark_size() {
        let grid = Grid::new(2, 1_000);
        let engine = grid.engine();
        for room in &grid.rooms {
            assert_eq!(engine.room(room).unwrap().attribute_count(), 1_000);
        }
        let fx = ExitFixture::new(2, 1_000);
        let mut engine = fx.engine();
        fx.engine_arm(&mut engine, 1, &mut Vec::new());
        assert_eq!(
            engine.room(&fx.grid.rooms[1]).unwrap().attribute_count(),
            1_000
        );
        let q = QueueFixture::new(1_000);
        assert_eq!(q.engine().room(&q.room).unwrap().queue_len(), 1_000);
        let var = std::env::var("ROOMSTATE_BENCH_HISTORY").ok();
        let wanted = crate::workload::history_wanted(var.as_deref());
        let events = crate::workload::bench_profile().limits.history_events;
        assert_eq!(events > 0, wanted, "history_events {events}");
    }

    /// The benchmark profile opens what ZEGO's own limits would close
    /// (the baseline has none), so that no fixture's size and no request
    /// meets a limit: a writer outside the room sets a 128-byte key to a
    /// 4,096-byte value (ZEGO: 16 and 1,024), and a queue takes more than
    /// NetEase's default capacity of 1,000. Its batches are the baseline's
    /// best effort, for sets and for deletes, whatever a request asks
    /// (ZEGO lets a request choose).
    #[test]
    fn the_bench_profile_opens_every_limit_and_fixes_best_effort() {
        use roomstate::{Actor, BatchPolicy, Op, Rejection, Success, Write};

        let mut engine = Engine::new(crate::workload::bench_profile());
        engine
            .handle(NOW, Command::create_room("r", "creator"))
            .unwrap();
        let key = "k".repeat(128);
        let write =
            Write::new("r", Actor::user("stranger")).op(Op::set(key.as_str(), "v".repeat(4_096)));
        engine.handle(NOW, Command::Write(write)).unwrap();
        assert_eq!(
            engine
                .room("r")
                .unwrap()
                .attribute(&key)
                .unwrap()
                .value
                .len(),
            4_096
        );

        // The batches are best effort, fixed: one failing op (a key past
        // 128 bytes; a key that is not there) leaves the other applied,
        // and a request may not ask for another policy.
        let set = Write::new("r", Actor::user("stranger"))
            .op(Op::set("a", "1"))
            .op(Op::set("k".repeat(129), "2"));
        let done = engine.handle(NOW, Command::Write(set.clone()));
        assert!(matches!(done, Ok(Success::Written(_))), "{done:?}");
        assert!(engine.room("r").unwrap().attribute("a").is_some());
        let delete = Write::new("r", Actor::user("stranger"))
            .op(Op::delete("missing"))
            .op(Op::delete("a"));
        for asks in [set, delete.clone()] {
            let done = engine.handle(NOW, Command::Write(asks.policy(BatchPolicy::Atomic)));
            assert_eq!(done.unwrap_err(), Rejection::PolicyNotAllowed);
        }
        let done = engine.handle(NOW, Command::Write(delete));
        assert!(matches!(done, Ok(Success::Written(_))), "{done:?}");
        assert!(engine.room("r").unwrap().attribute("a").is_none());

        let q = QueueFixture::new(1_001);
        assert_eq!(q.engine().room(&q.room).unwrap().queue_len(), 1_001);
    }

    /// `ROOMSTATE_BENCH_HISTORY=off` turns the engine's history off; any
    /// other value, or none, keeps the profile's default.
    #[test]
    fn only_off_turns_the_bench_history_off() {
        use crate::workload::history_wanted;
        assert!(!history_wanted(Some("off")));
        assert!(history_wanted(None));
        assert!(history_wanted(Some("on")));
        assert!(history_wanted(Some("")));
    }

    /// The benchmarks' random numbers are SplitMix64's (its published
    /// first outputs for seed 0).
    #[test]
    fn the_generator_is_splitmix64() {
        let mut rng = crate::workload::Rng::new(0);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            [
                0xE220_A839_7B1D_CDAF,
                0x6E78_9E6A_A1B9_65F4,
                0x06C4_5D18_8009_454F
            ]
        );
        let mut rng = crate::workload::Rng::new(1);
        let hits = (0..10_000).filter(|_| rng.percent(30)).count();
        assert!((2_800..3_200).contains(&hits), "{hits}");
        assert!((0..10_000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn overwrites_exits_and_queue_steps_do_what_the_benchmarks_say() {
        let grid = Grid::new(4, 20);
        let mut engine = grid.engine();
        let mut naive = grid.naive();
        assert_eq!(
            engine_state(&engine, &grid.rooms),
            naive_state(&naive, &grid.rooms)
        );
        for (i, (r, k)) in [(0, 3), (3, 19), (2, 0)].into_iter().enumerate() {
            engine.handle(NOW, grid.engine_overwrite(r, k, i)).unwrap();
            naive.handle(grid.naive_overwrite(r, k, i)).unwrap();
        }
        assert_eq!(
            engine_state(&engine, &grid.rooms),
            naive_state(&naive, &grid.rooms)
        );

        let fx = ExitFixture::new(3, 10);
        let (mut engine, mut naive) = (fx.engine(), fx.naive());
        let (mut ee, mut ne) = (Vec::new(), Vec::new());
        for round in 0..40 {
            for r in 0..fx.rooms() {
                fx.engine_arm(&mut engine, r, &mut ee);
                fx.naive_arm(&mut naive, r, &mut ne);
                assert_eq!(
                    engine.room(&fx.grid.rooms[r]).unwrap().attribute_count(),
                    10
                );
                engine.handle(NOW, fx.engine_exit(r)).unwrap();
                naive.handle(fx.naive_exit(r)).unwrap();
                engine.drain_events(&mut ee);
                naive.drain_events(&mut ne);
                assert_eq!(ee.len(), 1, "round {round}");
                assert_eq!(ee[0].changes.len(), 2, "exited + one key deleted");
                assert_eq!(ne[0].changes.len(), 2);
                ee.clear();
                ne.clear();
            }
        }
        assert_eq!(
            engine_state(&engine, &fx.grid.rooms),
            naive_state(&naive, &fx.grid.rooms)
        );
        engine.check_invariants().unwrap();

        let q = QueueFixture::new(100);
        let (mut engine, mut naive) = (q.engine(), q.naive());
        for i in 0..300 {
            let (offer, poll) = q.engine_step(i);
            engine.handle(NOW, offer).unwrap();
            engine.handle(NOW, poll).unwrap();
            let (offer, poll) = q.naive_step(i);
            naive.handle(offer).unwrap();
            naive.handle(poll).unwrap();
        }
        let rooms = [q.room.clone()];
        assert_eq!(engine_state(&engine, &rooms), naive_state(&naive, &rooms));
        assert_eq!(engine.room(&q.room).unwrap().queue_len(), 100);
    }

    #[test]
    fn cold_streams_keep_engine_and_baseline_in_the_same_full_rooms() {
        use crate::cold::{
            engine_exit_stream, engine_write_stream, leaver, naive_exit_stream, naive_write_stream,
            ColdRooms, KEYS, MEMBERS,
        };
        let cold = ColdRooms::new(37);
        let (mut engine, mut naive) = (cold.engine(), cold.naive());
        let rooms: Vec<String> = (0..cold.rooms).map(|r| cold.room(r)).collect();
        for (r, id) in rooms.iter().enumerate() {
            let v = engine.room(id).unwrap();
            assert_eq!(v.attribute_count(), KEYS);
            assert_eq!(v.members().len(), MEMBERS);
            assert!(v.is_present(&cold.member(r, 7)));
        }
        // Every room has members of its own.
        let everyone: BTreeSet<String> = (0..cold.rooms)
            .flat_map(|r| (0..MEMBERS).map(move |m| (r, m)))
            .map(|(r, m)| cold.member(r, m))
            .collect();
        assert_eq!(everyone.len(), cold.rooms * MEMBERS);
        assert_eq!(engine_state(&engine, &rooms), naive_state(&naive, &rooms));

        // Easemob: a writer who is not present is refused, on both sides.
        let stranger = crate::naive::NaiveCmd::Write {
            room: cold.room(0),
            operator: "stranger".to_string(),
            ops: vec![crate::naive::NaiveOp::Set {
                key: "k".to_string(),
                value: "v".to_string(),
            }],
        };
        assert_eq!(
            naive.handle(stranger),
            Err(crate::naive::NaiveError::NotInRoom)
        );
        let stranger = roomstate::Write::new(cold.room(0), roomstate::Actor::user("stranger"))
            .op(roomstate::Op::set("k", "v"));
        assert!(engine
            .handle(NOW, roomstate::Command::Write(stranger))
            .is_err());

        // A value per command number, 64 bytes, over the numbers of a
        // stream of millions (the value pool holds 256).
        let numbers = (0..4_000_000).step_by(1_999);
        let unique: BTreeSet<String> = numbers.clone().map(|n| cold.value(n)).collect();
        assert_eq!(unique.len(), numbers.len());
        assert!(unique.iter().all(|v| v.len() == 64));

        // Whole passes, each room once per pass, every value distinct.
        let picks = cold.write_picks(5, 100);
        assert_eq!(picks.len(), 3 * 37);
        for pass in picks.chunks(37) {
            let mut seen: Vec<u32> = pass.iter().map(|&(r, _)| r).collect();
            seen.sort_unstable();
            assert_eq!(seen, (0..37).collect::<Vec<u32>>());
        }
        let (mut es, mut ns) = (
            engine_write_stream(&cold, 5, 100),
            naive_write_stream(&cold, 5, 100),
        );
        assert_eq!(es.left(), 111);
        let (mut ee, mut ne) = (Vec::new(), Vec::new());
        let mut values = std::collections::BTreeSet::new();
        for _ in 0..3 {
            assert_eq!(es.left_in_pass(), 37);
            while let (Some(e), Some(n)) = (es.take(), ns.take()) {
                if let crate::naive::NaiveCmd::Write { ops, .. } = &n {
                    if let crate::naive::NaiveOp::Set { value, .. } = &ops[0] {
                        assert!(values.insert(value.clone()), "values are distinct");
                    }
                }
                engine.handle(NOW, e).unwrap();
                assert!(naive.handle(n).is_ok());
                engine.drain_events(&mut ee);
                naive.drain_events(&mut ne);
                assert_eq!((ee.len(), ne.len()), (1, 1), "the owner's write applies");
                ee.clear();
                ne.clear();
            }
            es.next_pass();
            ns.next_pass();
        }
        assert_eq!(es.left(), 0);
        assert_eq!(engine_state(&engine, &rooms), naive_state(&naive, &rooms));

        // Exits: each pass one member of every room goes with its keys, and
        // comes back between passes.
        let (mut es, mut ns) = (
            engine_exit_stream(&cold, 6, 80),
            naive_exit_stream(&cold, 6, 80),
        );
        for pass in 0..3 {
            while let (Some(e), Some(n)) = (es.take(), ns.take()) {
                engine.handle(NOW, e).unwrap();
                assert!(naive.handle(n).is_ok());
                engine.drain_events(&mut ee);
                naive.drain_events(&mut ne);
                let keys = (leaver(pass)..KEYS).step_by(MEMBERS).count();
                assert_eq!(ee[0].changes.len(), 1 + keys, "exited + its keys");
                assert_eq!(ne[0].changes.len(), 1 + keys);
                ee.clear();
                ne.clear();
            }
            assert_eq!(
                engine.room(&rooms[3]).unwrap().attribute_count(),
                KEYS - (leaver(pass)..KEYS).step_by(MEMBERS).count()
            );
            assert_eq!(engine_state(&engine, &rooms), naive_state(&naive, &rooms));
            for r in 0..cold.rooms {
                cold.engine_arm(&mut engine, r, leaver(pass), &mut ee);
                cold.naive_arm(&mut naive, r, leaver(pass), &mut ne);
            }
            es.next_pass();
            ns.next_pass();
            for id in &rooms {
                let v = engine.room(id).unwrap();
                assert_eq!((v.attribute_count(), v.members().len()), (KEYS, MEMBERS));
            }
        }
        assert_eq!(engine_state(&engine, &rooms), naive_state(&naive, &rooms));
        engine.check_invariants().unwrap();
    }
}
