//! Bounded memory (issue 4): after 1,000,000 random commands under small
//! limits, the engine's live heap stays below a bound computed from the
//! profile's limits. Nothing may grow with the number of commands: not
//! tombstones, not timers, not event buffers, not user records.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use roomstate::{Attribute, Engine, Event, Millis, Profile, QueueElement, Str};
use roomstate_tests::sim::{Rng, Scenario};

/// Live heap bytes of this test binary.
struct Live;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed).max(0) as usize
}

/// Small limits: 4 rooms, 6 users, 3 keys of ≤3 chars per room, values of
/// ≤8 bytes, a queue of ≤4 elements of the same sizes.
fn profile() -> Profile {
    let mut p = roomstate_tests::gen::tiny();
    p.limits.max_keys_per_room = Some(3);
    p.limits.max_key_len = 3;
    p.limits.max_value_len = 8;
    p.limits.value_unit = roomstate::Unit::Bytes;
    p.limits.max_room_value_bytes = Some(24);
    p.limits.queue.default_capacity = 4;
    p.limits.queue.max_capacity = 4;
    p.limits.queue.max_key_len = 3;
    p.limits.queue.max_value_len = 8;
    p.limits.queue.value_unit = roomstate::Unit::Bytes;
    p.limits.queue.max_ext_chars = 8;
    p.limits.request_rate = None;
    p
}

#[test]
fn live_heap_stays_within_the_bound_from_the_limits_over_a_million_commands() {
    let p = profile();
    let mut scenario = Scenario::from_seed(7);
    scenario.profile = p;
    scenario.rooms = ["r0", "r1", "r2", "r3"].map(Str::from).to_vec();
    scenario.users = ["u0", "u1", "u2", "u3", "u4", "u5"].map(Str::from).to_vec();
    scenario.keys = ["a", "b", "c", "d", "é", "abcd", ""]
        .map(Str::from)
        .to_vec();
    scenario.values = ["", "v", "12345678", "123456789", "éé"]
        .map(Str::from)
        .to_vec();
    scenario.jump_percent = 3;
    scenario.back_percent = 2;
    // Every kind on, so every structure is exercised.
    scenario.weights = [3, 1, 8, 3, 2, 1, 1, 24, 2, 1, 1, 8, 3, 2, 1, 3, 1, 1];

    // THE BOUND. Per stored attribute or element: its slot (the public
    // struct plus an 8-byte index field), its key and value allocations
    // (Arc headers of 16 bytes + the longest key and value, in bytes: 3
    // chars of up to 4 bytes, 8 bytes), its hash-table entry (4 bytes +
    // control byte, at most doubled by growth) and its owner-index entry
    // (a 16-byte Str). Slots of a map are at most 2 × live + 32 (tombstones
    // are compacted once they outnumber live entries and exceed 32), each
    // table at most twice its entries. Per user record 256 bytes, per room
    // 2 KiB of fixed structure, and 64 KiB for the engine, its timers and
    // its event buffer.
    let rooms = scenario.rooms.len();
    let users = scenario.users.len();
    let keys = p.limits.max_keys_per_room.unwrap_or(0) as usize;
    let elems = p.limits.queue.max_capacity as usize;
    let payload = (16 + 12) + (16 + 8);
    let per_attr = std::mem::size_of::<Attribute>() + 8 + payload + 2 * 5 + 16;
    let per_elem = std::mem::size_of::<QueueElement>() + 8 + payload + 2 * 5 + 16;
    let per_room = 2048 + (2 * keys + 32) * per_attr + (2 * elems + 32) * per_elem + users * 256;
    let bound = 64 * 1024 + rooms * per_room;

    let baseline = live();
    let mut engine = Engine::new(p);
    let mut events: Vec<Event> = Vec::with_capacity(64);
    let mut r = Rng::new(99);
    let mut now = 0;
    let mut peak = 0usize;
    let (mut accepted, mut changes, mut stored_peak) = (0u64, 0u64, 0usize);
    for step in 0..1_000_000u32 {
        now = scenario.advance(&mut r, now);
        let command = scenario.command(&mut r);
        let outcome = engine.handle(Millis(now), command);
        accepted += u64::from(outcome.is_ok());
        drop(outcome);
        engine.drain_events(&mut events);
        changes += events.iter().map(|e| e.changes.len() as u64).sum::<u64>();
        events.clear();
        stored_peak = stored_peak.max(
            scenario
                .rooms
                .iter()
                .filter_map(|id| engine.room(id))
                .map(|room| room.attribute_count() + room.queue_len())
                .sum(),
        );
        if step % 1024 == 0 {
            peak = peak.max(live().saturating_sub(baseline));
        }
        if step % 100_000 == 0 {
            engine.check_invariants().unwrap();
        }
    }
    let end = live().saturating_sub(baseline);
    peak = peak.max(end);
    println!(
        "bounded memory: peak {peak} B, end {end} B, bound {bound} B; {accepted} commands accepted, {changes} changes, at most {stored_peak} attributes + elements stored at once"
    );
    // The workload must really fill the rooms, or the bound proves nothing.
    assert!(
        accepted > 300_000 && changes > 150_000,
        "{accepted} accepted, {changes} changes"
    );
    assert!(
        stored_peak >= rooms * keys,
        "rooms never filled: {stored_peak}"
    );
    assert!(
        peak <= bound,
        "peak live heap {peak} B exceeds the bound {bound} B"
    );
    assert!(
        engine.room_count() > 0,
        "the workload must leave rooms to measure"
    );
}
