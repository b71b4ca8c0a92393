//! Review of the storage redesign (issue 9): overwrites that fit write in
//! place. A shorter value is written over the old one's bytes, the rest
//! of which becomes arena garbage; the key and the neighbours' records are
//! untouched. (Mutants of this path in `Store::set_value` survived the
//! directed tests, which only ever grew values.)

use roomstate::{Actor, Command, Engine, Millis, Op, Profile, Success, Write};

const NOW: Millis = Millis(1_000);

fn set(e: &mut Engine, key: &str, value: &str) {
    let w = Write::new("r", Actor::Admin).op(Op::set(key, value));
    let out = e.handle(NOW, Command::Write(w));
    assert!(
        matches!(&out, Ok(Success::Written(r)) if r.failed.is_empty()),
        "{out:?}"
    );
}

fn check(e: &Engine, want: &[(&str, &str)]) {
    let view = e.room("r").unwrap();
    let got: Vec<(&str, &str)> = view.attributes().map(|a| (a.key, a.value)).collect();
    assert_eq!(got, want);
    let bytes: usize = want.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(view.value_bytes(), bytes as u64);
    e.check_invariants().unwrap();
}

#[test]
fn review_shorter_and_equal_values_overwrite_in_place_and_keep_the_neighbours() {
    let mut e = Engine::new(Profile::netease());
    e.handle(
        NOW,
        Command::CreateRoom {
            room: "r".into(),
            creator: "host".into(),
        },
    )
    .unwrap();
    set(&mut e, "first", "aaaaaaaaaa");
    set(&mut e, "mid", "0123456789");
    set(&mut e, "last", "zzzzzzzzzz");
    check(
        &e,
        &[
            ("first", "aaaaaaaaaa"),
            ("mid", "0123456789"),
            ("last", "zzzzzzzzzz"),
        ],
    );
    // Shrink step by step, then the same length again, then empty.
    for v in ["01234", "abc", "xyz", "q", ""] {
        set(&mut e, "mid", v);
        check(
            &e,
            &[("first", "aaaaaaaaaa"), ("mid", v), ("last", "zzzzzzzzzz")],
        );
    }
    // Grow again (the record moves), then shrink the moved one.
    for v in ["a value longer than ten", "short", "sh"] {
        set(&mut e, "mid", v);
        check(
            &e,
            &[("first", "aaaaaaaaaa"), ("mid", v), ("last", "zzzzzzzzzz")],
        );
    }
    // Enough shrinking overwrites to make the garbage worth a rebuild.
    for i in 0..200 {
        let long = "L".repeat(40);
        set(&mut e, "first", &long);
        set(&mut e, "first", &long[..i % 40]);
        check(
            &e,
            &[
                ("first", &long[..i % 40]),
                ("mid", "sh"),
                ("last", "zzzzzzzzzz"),
            ],
        );
    }
}
