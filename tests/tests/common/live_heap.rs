//! Live heap bytes, counted per thread by a global allocator: the tests
//! that include this module (`#[path]`, it installs the allocator) switch
//! counting on around what they measure with [`ON`] and read [`LIVE`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Counting is on for this thread.
    pub static ON: Cell<bool> = const { Cell::new(false) };
    /// Bytes allocated minus bytes freed while counting was on.
    pub static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn note(d: i64) {
    if ON.try_with(Cell::get).unwrap_or(false) {
        let _ = LIVE.try_with(|c| c.set(c.get() + d));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size() as i64);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(-(layout.size() as i64));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        note(new as i64 - layout.size() as i64);
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;
