//! The sizes of the hot public types, pinned (the storage's own records
//! are pinned in `core/src/room.rs`) (house style: limits in one place,
//! `size_of` tested). A change here is a deliberate layout decision: update
//! the number and say why in the commit.

use std::mem::size_of;

use roomstate::{
    Actor, AttrRef, Attribute, Change, Command, ElemRef, Event, Outcome, QueueElement, Str,
};

#[test]
fn hot_types_keep_their_sizes() {
    let sizes = [
        ("Str", size_of::<Str>()),
        ("Actor", size_of::<Actor>()),
        ("Attribute", size_of::<Attribute>()),
        ("QueueElement", size_of::<QueueElement>()),
        ("Change", size_of::<Change>()),
        ("Event", size_of::<Event>()),
        ("Command", size_of::<Command>()),
        ("Outcome", size_of::<Outcome>()),
        ("AttrRef", size_of::<AttrRef>()),
        ("ElemRef", size_of::<ElemRef>()),
    ];
    println!("{sizes:?}");
    assert_eq!(
        sizes,
        [
            ("Str", 24),
            ("Actor", 24),
            ("Attribute", 96),
            ("QueueElement", 80),
            ("Change", 80),
            ("Event", 120),
            ("Command", 136),
            ("Outcome", 80),
            ("AttrRef", 72),
            ("ElemRef", 56),
        ]
    );
}
