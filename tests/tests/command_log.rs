//! A server can keep a command log and replay it (SPEC §2, issue 4):
//! commands, outcomes and events round-trip through postcard, and replaying
//! the decoded log on a fresh engine reaches the same state, byte for byte.

use roomstate::{Command, Engine, Event, Millis, Outcome};
use roomstate_tests::sim::{Rng, Scenario};

#[test]
fn a_postcard_command_log_replays_to_the_same_state() {
    for seed in 0..20 {
        let scenario = Scenario::from_seed(seed);
        let mut r = Rng::new(seed);
        let mut live = Engine::new(scenario.profile);
        let mut log: Vec<Vec<u8>> = Vec::new();
        let mut seen: Vec<(Outcome, Vec<Event>)> = Vec::new();
        let mut now = 0;
        for _ in 0..2_000 {
            now = scenario.advance(&mut r, now);
            let command = scenario.command(&mut r);
            log.push(postcard::to_allocvec(&(now, &command)).unwrap());
            let outcome = live.handle(Millis(now), command);
            let mut events = Vec::new();
            live.drain_events(&mut events);
            // Outcomes and events survive the trip too.
            let bytes = postcard::to_allocvec(&(&outcome, &events)).unwrap();
            let back: (Outcome, Vec<Event>) = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(back, (outcome.clone(), events.clone()));
            seen.push((outcome, events));
        }
        let mut replayed = Engine::new(scenario.profile);
        for (entry, (outcome, events)) in log.iter().zip(&seen) {
            let (now, command): (u64, Command) = postcard::from_bytes(entry).unwrap();
            assert_eq!(
                &replayed.handle(Millis(now), command),
                outcome,
                "seed {seed}"
            );
            let mut got = Vec::new();
            replayed.drain_events(&mut got);
            assert_eq!(&got, events, "seed {seed}");
        }
        assert_eq!(replayed.snapshot(), live.snapshot(), "seed {seed}");
    }
}
