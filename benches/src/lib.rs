//! Benchmarks support: the naive baseline and shared workloads.
//!
//! - [`naive`]: the baseline the engine is measured against;
//! - [`workload`]: deterministic fixtures and the mixed command sequence,
//!   replayed on both.
//!
//! The criterion benchmarks are in `benches/engine.rs`; `alloc_report`
//! counts allocations and heap bytes; `ratios` prints the engine ÷ naive
//! table from criterion's estimates.

pub mod naive;
pub mod workload;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use roomstate::{Engine, Event};

    use crate::naive::{Naive, NaiveEvent};
    use crate::workload::{run_engine, run_naive, ExitFixture, Grid, Mixed, QueueFixture, NOW};

    type RoomState = (
        u64,
        BTreeMap<String, (String, String)>,
        Vec<String>,
        Vec<(String, String)>,
    );

    fn engine_state(engine: &Engine, rooms: &[String]) -> Vec<RoomState> {
        rooms
            .iter()
            .map(|id| {
                let v = engine.room(id).unwrap();
                let attrs = v
                    .attributes()
                    .map(|a| {
                        let Some(owner) = a.owner else {
                            panic!("admin owner")
                        };
                        (a.key.to_string(), (owner.to_string(), a.value.to_string()))
                    })
                    .collect();
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
                    .map(|(k, v)| (k.clone(), v.clone()))
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
        let ok_e = run_engine(&mut engine, mixed.engine_commands(), &mut ee);
        let ok_n = run_naive(&mut naive, mixed.naive_commands(), &mut ne);
        assert_eq!(ok_e, ok_n);
        assert_eq!(
            engine_state(&engine, &mixed.rooms),
            naive_state(&naive, &mixed.rooms)
        );
        engine.check_invariants().unwrap();
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
}
