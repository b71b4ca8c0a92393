//! A mic queue on NetEase semantics: audience members line up for the
//! mic, the host takes the head of the line, a requester's connection
//! drops and their place goes when the grace period runs out, and
//! notification budgets mark each event's delivery class.
//!
//! Run with `cargo run -p roomstate --example mic_queue`.

use roomstate::{
    Actor, Change, Command, Engine, Event, HighPolicy, Millis, Notify, Outcome, Profile, Success,
};

struct Driver {
    engine: Engine,
    events: Vec<Event>,
}

impl Driver {
    fn run(&mut self, now: u64, what: &str, command: Command) -> Outcome {
        println!("\n[{now:>6} ms] {what}");
        let outcome = self.engine.handle(Millis(now), command);
        match &outcome {
            Ok(Success::Polled(e)) => {
                println!("  -> took {} (value {:?})", e.key, e.value.as_str())
            }
            Ok(Success::Elements(l)) => {
                let line: Vec<&str> = l.elements.iter().map(|e| e.key.as_str()).collect();
                println!("  -> line at seq {}: {line:?}", l.seq);
            }
            Ok(_) => println!("  -> ok"),
            Err(r) => println!(
                "  -> REJECTED: {r:?} (NetEase code {:?}); nothing changed",
                self.engine.profile().code(r.class())
            ),
        }
        self.engine.drain_events(&mut self.events);
        for e in self.events.drain(..) {
            let changes: Vec<String> = e
                .changes
                .iter()
                .map(|c| match c {
                    Change::QueueSet { key, transient, .. } => {
                        format!(
                            "queued {key}{}",
                            if *transient { " (transient)" } else { "" }
                        )
                    }
                    Change::QueueRemoved { key } => format!("removed {key}"),
                    other => format!("{other:?}"),
                })
                .collect();
            println!(
                "  event seq={} cause={:?} delivery={:?}: {}",
                e.seq,
                e.cause,
                e.delivery,
                changes.join(", ")
            );
        }
        outcome
    }
}

fn offer(user: &str, transient: bool) -> Command {
    Command::QueueOffer {
        room: "stage".into(),
        operator: Actor::user(user),
        key: format!("mic.{user}").into(),
        value: format!("{{\"user\":\"{user}\"}}").into(),
        transient,
        notify: Notify::default(),
    }
}

fn main() {
    let mut d = Driver {
        engine: Engine::new(Profile::netease()),
        events: Vec::new(),
    };
    let grace = d.engine.profile().limits.disconnect_grace_ms;
    let room = || "stage".into();
    let _ = d.run(
        0,
        "host opens the stage",
        Command::CreateRoom {
            room: room(),
            creator: "host".into(),
        },
    );
    for (i, who) in ["host", "ann", "bo", "cy"].into_iter().enumerate() {
        let _ = d.run(
            10 + i as u64,
            &format!("{who} joins"),
            Command::Join {
                room: room(),
                user: who.into(),
            },
        );
    }
    let _ = d.run(
        20,
        "zed (not in the room) asks for a transient place",
        offer("zed", true),
    );
    let _ = d.run(30, "ann lines up (transient)", offer("ann", true));
    let _ = d.run(31, "bo lines up (transient)", offer("bo", true));
    let _ = d.run(32, "cy lines up (transient)", offer("cy", true));
    let _ = d.run(40, "the line", Command::QueueList { room: room() });
    let _ = d.run(
        50,
        "host takes the head of the line, high priority",
        Command::QueuePoll {
            room: room(),
            operator: Actor::user("host"),
            key: None,
            notify: Notify {
                high: Some(HighPolicy::Downgrade),
                ..Notify::default()
            },
        },
    );
    let _ = d.run(
        60,
        "bo's connection drops (no leave)",
        Command::Disconnect {
            room: room(),
            user: "bo".into(),
        },
    );
    if let Some(at) = d.engine.poll_timeout() {
        println!("\nengine asks to be woken at {} ms", at.0);
    }
    let _ = d.run(
        60 + grace - 1,
        "1 ms before the deadline: bo still holds a place",
        Command::QueueList { room: room() },
    );
    let deadline = d.engine.poll_timeout().map_or(0, |t| t.0);
    let _ = d.run(
        deadline,
        "tick at the deadline: bo exits, the place goes",
        Command::Tick,
    );
    let _ = d.run(
        deadline + 1,
        "the line",
        Command::QueueList { room: room() },
    );

    // NetEase flow control: 20 normal notifications per second per room.
    println!("\n-- 22 quick updates within one second (budget: 20 normal) --");
    let mut classes = Vec::new();
    for i in 0..22 {
        let _ = d.engine.handle(
            Millis(deadline + 2_000 + i),
            Command::QueueOffer {
                room: room(),
                operator: Actor::user("host"),
                key: "mic.cy".into(),
                value: format!("{{\"volume\":{i}}}").into(),
                transient: false,
                notify: Notify::default(),
            },
        );
        d.engine.drain_events(&mut d.events);
        classes.extend(d.events.drain(..).map(|e| e.delivery));
    }
    println!("delivery classes: {classes:?}");
    match d.engine.check_invariants() {
        Ok(()) => println!("\ninvariants hold"),
        Err(v) => {
            println!("\ninvariant broken: {v:?}");
            std::process::exit(1);
        }
    }
}
