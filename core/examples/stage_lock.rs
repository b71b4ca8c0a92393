//! The stage lock, on Agora Signaling semantics plus fencing tokens:
//! hosts pass the lock that says who may write the stage's metadata; a
//! host drops off and gets back inside the lock's TTL and keeps it;
//! another drops for good and loses it to the next host in line; and a
//! write fenced with a stale token is refused.
//!
//! Run with `cargo run -p roomstate --example stage_lock`. It exits
//! non-zero if the engine does not behave as told.

use roomstate::{
    Acquisition, Actor, Change, Command, Engine, Event, Millis, Op, Outcome, Profile, Rejection,
    Success, Write,
};

struct Driver {
    engine: Engine,
    events: Vec<Event>,
    failures: u32,
}

impl Driver {
    /// Applies `command` at `now`, prints what happened, and counts a
    /// failure when the outcome is not what the story expects.
    fn run(&mut self, now: u64, what: &str, command: Command, expect_ok: bool) -> Outcome {
        println!("\n[{now:>7} ms] {what}");
        let outcome = self.engine.handle(Millis(now), command);
        match &outcome {
            Ok(Success::Acquired(Acquisition::Granted { token })) => {
                println!("  -> granted, fencing token {token}")
            }
            Ok(Success::Acquired(Acquisition::Waiting { position })) => {
                println!("  -> waiting, place {position} in line")
            }
            Ok(_) => println!("  -> ok"),
            Err(r) => println!(
                "  -> REJECTED: {r:?} (Agora code {:?}); nothing changed",
                self.engine.profile().code(r.class())
            ),
        }
        if outcome.is_ok() != expect_ok {
            println!("  !! unexpected outcome");
            self.failures += 1;
        }
        self.engine.drain_events(&mut self.events);
        for e in self.events.drain(..) {
            let changes: Vec<String> = e
                .changes
                .iter()
                .map(|c| match c {
                    Change::LockAcquired {
                        name,
                        holder,
                        token,
                    } => format!("{holder} holds {name} (token {token})"),
                    Change::LockReleased { name, holder } => format!("{holder} released {name}"),
                    Change::LockExpired { name, holder } => {
                        format!("{holder}'s hold on {name} expired")
                    }
                    Change::AttributeSet { key, value, .. } => format!("{key} = {value}"),
                    other => format!("{other:?}"),
                })
                .collect();
            println!(
                "  event seq={} cause={:?}: {}",
                e.seq,
                e.cause,
                changes.join(", ")
            );
        }
        outcome
    }

    fn holder(&self) -> Option<String> {
        let room = self.engine.room("show")?;
        room.lock("stage")?.holder.map(String::from)
    }

    fn expect_holder(&mut self, who: Option<&str>) {
        let now = self.holder();
        println!("  stage lock held by {now:?}");
        if now.as_deref() != who {
            println!("  !! expected {who:?}");
            self.failures += 1;
        }
    }
}

fn acquire(user: &str) -> Command {
    Command::AcquireLock {
        room: "show".into(),
        name: "stage".into(),
        user: user.into(),
        retry: true,
    }
}

fn write_stage(user: &str, scene: &str, token: u64) -> Command {
    Command::Write(
        Write::new("show", Actor::user(user))
            .op(Op::set("scene", scene))
            .lock("stage", token)
            .forced(),
    )
}

fn main() {
    let mut d = Driver {
        engine: Engine::new(Profile::agora_rtm()),
        events: Vec::new(),
        failures: 0,
    };
    let room = || "show".into();
    let _ = d.run(
        0,
        "producer opens the show",
        Command::CreateRoom {
            room: room(),
            creator: "producer".into(),
        },
        true,
    );
    for (i, who) in ["ann", "bo", "cy"].into_iter().enumerate() {
        let _ = d.run(
            100 + i as u64 * 100,
            &format!("host {who} joins"),
            Command::Join {
                room: room(),
                user: who.into(),
            },
            true,
        );
    }
    let _ = d.run(
        1_000,
        "the stage lock, 20 s TTL",
        Command::SetLock {
            room: room(),
            name: "stage".into(),
            ttl_ms: 20_000,
        },
        true,
    );

    // Hosts line up; ann gets the stage first.
    let _ = d.run(1_100, "ann takes the stage", acquire("ann"), true);
    let _ = d.run(1_200, "bo lines up", acquire("bo"), true);
    let _ = d.run(1_300, "cy lines up", acquire("cy"), true);
    let _ = d.run(
        2_000,
        "ann sets the scene",
        write_stage("ann", "intro", 1),
        true,
    );
    let _ = d.run(
        3_000,
        "ann passes the stage",
        Command::ReleaseLock {
            room: room(),
            name: "stage".into(),
            user: "ann".into(),
        },
        true,
    );
    d.expect_holder(Some("bo"));

    // bo drops off and gets back inside the TTL: the stage stays his.
    let _ = d.run(
        4_000,
        "bo's connection drops",
        Command::Disconnect {
            room: room(),
            user: "bo".into(),
        },
        true,
    );
    if let Some(at) = d.engine.poll_timeout() {
        println!("  engine asks to be woken at {} ms", at.0);
    }
    let _ = d.run(
        15_000,
        "bo reconnects 11 s later",
        Command::Join {
            room: room(),
            user: "bo".into(),
        },
        true,
    );
    d.expect_holder(Some("bo"));
    let _ = d.run(
        16_000,
        "bo sets the scene",
        write_stage("bo", "duet", 2),
        true,
    );

    // ann lines up again behind cy; bo drops for good.
    let _ = d.run(17_000, "ann lines up again", acquire("ann"), true);
    let _ = d.run(
        18_000,
        "bo's connection drops again",
        Command::Disconnect {
            room: room(),
            user: "bo".into(),
        },
        true,
    );
    let deadline = d.engine.poll_timeout().map_or(0, |t| t.0);
    let _ = d.run(
        deadline,
        "tick at the deadline: bo's hold expires, cy is next",
        Command::Tick,
        true,
    );
    d.expect_holder(Some("cy"));

    // bo comes back inside his grace period, still holding token 2: the
    // write he started before the drop must not land.
    let _ = d.run(
        deadline + 1_000,
        "bo reconnects",
        Command::Join {
            room: room(),
            user: "bo".into(),
        },
        true,
    );
    let stale = d.run(
        deadline + 1_100,
        "bo finishes his write with the stale token 2",
        write_stage("bo", "bo's encore", 2),
        false,
    );
    if stale != Err(Rejection::WriteLockNotHeld) {
        d.failures += 1;
    }
    let _ = d.run(
        deadline + 1_200,
        "cy writes with the current token 3",
        write_stage("cy", "finale", 3),
        true,
    );

    let scene = d
        .engine
        .room("show")
        .and_then(|r| r.attribute("scene").map(|a| a.value.to_owned()));
    println!("\nscene: {scene:?}");
    if scene.as_deref() != Some("finale") {
        d.failures += 1;
    }
    if let Err(v) = d.engine.check_invariants() {
        println!("invariant broken: {v:?}");
        d.failures += 1;
    }
    if d.failures > 0 {
        println!("\n{} unexpected outcomes", d.failures);
        std::process::exit(1);
    }
    println!("\nall as told; invariants hold");
}
