//! Prefetch hints: the other of the engine's two uses of `unsafe` (issue
//! 9; the first is [`crate::overwrite`]), for [`Engine::handle_batch`].
//!
//! [`Engine::handle_batch`]: crate::Engine::handle_batch
//!
//! A prefetch asks the processor to start loading a cache line that the
//! program will read soon. It is a hint: it reads nothing the program can
//! observe, writes nothing, never faults, and is defined for every
//! address, valid or not (Intel SDM, `PREFETCHh`: "a prefetch instruction
//! is considered a hint ... does not affect program behavior"). The only
//! reason it needs `unsafe` in Rust is that `_mm_prefetch` is declared
//! with `#[target_feature(enable = "sse")]`, and SSE is part of every
//! x86-64 target (the `cfg` below requires it). So the invariant is
//! nothing the caller supplies: any pointer, dangling or null, is fine.
//! On other targets the hints compile to nothing.
#![allow(unsafe_code)]

/// Bytes per cache line.
pub(crate) const LINE: usize = 64;

/// Starts loading the cache line that holds `p`, into every level.
#[inline(always)]
pub(crate) fn line<T>(p: *const T) {
    #[cfg(test)]
    log::push(p.addr() - p.addr() % LINE);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: a prefetch is defined for any address (module notes), and
    // the `cfg` guarantees the SSE feature the intrinsic is declared with.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

/// Starts loading the lines that hold the first `len` bytes from `p`, but
/// no more than `most` bytes' worth.
#[inline]
pub(crate) fn span<T>(p: *const T, len: usize, most: usize) {
    let p = p.cast::<u8>();
    let skew = p.addr() % LINE;
    let first = p.wrapping_sub(skew);
    for i in 0..lines(skew, len.min(most)) {
        line(first.wrapping_add(i.wrapping_mul(LINE)));
    }
}

/// The lines that hold `len` bytes from `skew` bytes into a line.
fn lines(skew: usize, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        skew.saturating_add(len).div_ceil(LINE)
    }
}

/// The lines hinted (each line's first address), in the crate's own
/// tests: a hint changes no result, so these are how a test sees which
/// lines a hint asks for.
#[cfg(test)]
pub(crate) mod log {
    use std::cell::RefCell;
    use std::vec::Vec;

    std::thread_local! {
        static LINES: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn push(address: usize) {
        LINES.with(|l| l.borrow_mut().push(address));
    }

    /// The addresses hinted on this thread since the last call.
    pub(crate) fn take() -> Vec<usize> {
        LINES.with(|l| core::mem::take(&mut *l.borrow_mut()))
    }

    /// The line addresses a hint of `len` bytes from `at` asks for.
    pub(crate) fn covering(at: usize, len: usize) -> Vec<usize> {
        let first = at - at % super::LINE;
        (0..super::lines(at % super::LINE, len))
            .map(|i| first + i * super::LINE)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{line, lines, log, span, LINE};
    use alloc::boxed::Box;

    /// The invariant: any address at all may be prefetched. Each of these
    /// would fault if a hint were a load.
    #[test]
    fn any_address_is_a_valid_hint() {
        line(core::ptr::null::<u8>());
        line(usize::MAX as *const u8);
        let gone: *const u64 = &*Box::new(7u64);
        line(gone);
        span(core::ptr::null::<u8>(), usize::MAX, 64 * LINE);
        span((usize::MAX - 100) as *const u8, 1 << 20, 1 << 20);
    }

    #[test]
    fn a_span_hints_every_line_its_bytes_touch() {
        assert_eq!(lines(0, 0), 0);
        assert_eq!(lines(63, 0), 0);
        assert_eq!(lines(0, 1), 1);
        assert_eq!(lines(63, 1), 1);
        assert_eq!(lines(0, 64), 1);
        assert_eq!(lines(1, 64), 2);
        assert_eq!(lines(0, 65), 2);
        assert_eq!(lines(40, 216), 4);
        assert_eq!(lines(41, 216), 5);
        // From the line's start; `most` caps the bytes, not the lines.
        log::take();
        span(100 as *const u8, 1_000, 60);
        assert_eq!(log::take(), [64, 128]);
        span(128 as *const u8, 64, 64);
        assert_eq!(log::take(), [128]);
        span(128 as *const u8, 0, 64);
        assert!(log::take().is_empty());
    }
}
