//! A live room, start to finish: a host opens a room, guests join, two
//! guests race for a seat, the host sets room metadata, a guest's overwrite
//! is refused unless forced, and a guest's auto-delete keys vanish when it
//! leaves.
//!
//! Run with `cargo run -p roomstate --example live_room`.

use roomstate::{
    Actor, Change, Command, Engine, Event, Expect, Millis, Op, Outcome, Profile, Success, Write,
};

/// Applies one command, printing it, its outcome and the events it caused.
struct Driver {
    engine: Engine,
    events: Vec<Event>,
    now: Millis,
}

impl Driver {
    fn run(&mut self, what: &str, command: Command) -> Outcome {
        self.now = self.now.saturating_add(250);
        println!("\n[{:>5} ms] {what}", self.now.0);
        let outcome = self.engine.handle(self.now, command);
        match &outcome {
            Ok(Success::Written(r)) if r.failed.is_empty() => {
                println!("  -> ok: {} op(s) applied, room seq {}", r.applied, r.seq)
            }
            Ok(Success::Written(r)) => {
                println!(
                    "  -> partly: {} op(s) applied, room seq {}",
                    r.applied, r.seq
                );
                for f in &r.failed {
                    println!("     op #{} on {:?} failed: {:?}", f.index, f.key, f.error);
                }
            }
            Ok(Success::Read(r)) => {
                println!("  -> {} attribute(s) at seq {}:", r.attributes.len(), r.seq);
                for a in &r.attributes {
                    println!(
                        "     {:<13} = {:<22} owner {:<6} auto-delete {:<5} rev {}",
                        a.key.as_str(),
                        format!("{:?}", a.value.as_str()),
                        owner(&a.owner),
                        a.auto_delete,
                        a.revision
                    );
                }
            }
            Ok(_) => println!("  -> ok"),
            Err(rejection) => {
                let code = self.engine.profile().code(rejection.class());
                println!("  -> REJECTED: {rejection:?} (vendor code {code:?}); nothing changed");
            }
        }
        self.engine.drain_events(&mut self.events);
        for e in self.events.drain(..) {
            println!(
                "  event room={} seq={} cause={:?} by {} delivery={:?}",
                e.room,
                e.seq,
                e.cause,
                owner(&e.operator),
                e.delivery
            );
            for c in &e.changes {
                println!("     {}", change(c));
            }
        }
        outcome
    }
}

fn owner(a: &Actor) -> String {
    match a {
        Actor::Admin => "admin".to_string(),
        Actor::User(u) => u.to_string(),
    }
}

fn change(c: &Change) -> String {
    match c {
        Change::AttributeSet {
            key,
            value,
            owner: o,
            auto_delete,
        } => format!(
            "set {key} = {:?} (owner {}, auto-delete {auto_delete})",
            value.as_str(),
            owner(o)
        ),
        Change::AttributeDeleted { key } => format!("deleted {key}"),
        other => format!("{other:?}"),
    }
}

fn main() {
    // Easemob semantics: writers must be in the room, keys auto-delete by
    // default, a forced write makes the writer the owner.
    let mut d = Driver {
        engine: Engine::new(Profile::easemob()),
        events: Vec::new(),
        now: Millis(0),
    };
    let room = "live-1";
    fn user(id: &str) -> Actor {
        Actor::user(id)
    }

    let _ = d.run(
        "host opens the room",
        Command::CreateRoom {
            room: room.into(),
            creator: "host".into(),
        },
    );
    for who in ["host", "alice", "bob"] {
        let _ = d.run(
            &format!("{who} joins"),
            Command::Join {
                room: room.into(),
                user: who.into(),
            },
        );
    }

    // Two guests grab the same free seat; `Absent` makes it a compare-and-set.
    let grab = |who: &str| {
        Command::Write(
            Write::new(room, user(who)).op(Op::set("seat.1", who).expect(Expect::Absent)),
        )
    };
    let _ = d.run("alice grabs seat.1 (expects it free)", grab("alice"));
    let _ = d.run("bob grabs seat.1 (expects it free)", grab("bob"));

    // Room metadata the host keeps after leaving: auto-delete off.
    let _ = d.run(
        "host sets the room's title and topic",
        Command::Write(
            Write::new(room, user("host"))
                .op(Op::set("title", "Friday quiz").auto_delete(false))
                .op(Op::set("topic", "music").auto_delete(false)),
        ),
    );
    let _ = d.run(
        "bob overwrites the host's title (not forced)",
        Command::Write(Write::new(room, user("bob")).op(Op::set("title", "bob was here"))),
    );
    let _ = d.run(
        "bob overwrites the host's title (forced)",
        Command::Write(
            Write::new(room, user("bob"))
                .op(Op::set("title", "Bob's quiz").auto_delete(false))
                .forced(),
        ),
    );
    let _ = d.run(
        "alice sets her status (auto-delete by default)",
        Command::Write(Write::new(room, user("alice")).op(Op::set("status.alice", "singing"))),
    );
    let _ = d.run(
        "everyone reads the room",
        Command::Read {
            room: room.into(),
            keys: None,
        },
    );
    let _ = d.run(
        "alice leaves: her seat and status go in one event",
        Command::Leave {
            room: room.into(),
            user: "alice".into(),
        },
    );
    let _ = d.run(
        "the room after alice left",
        Command::Read {
            room: room.into(),
            keys: None,
        },
    );
    match d.engine.check_invariants() {
        Ok(()) => println!("\ninvariants hold"),
        Err(v) => {
            println!("\ninvariant broken: {v:?}");
            std::process::exit(1);
        }
    }
}
