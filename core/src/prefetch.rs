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
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    // SAFETY: a prefetch is defined for any address (module notes), and
    // the `cfg` guarantees the SSE feature the intrinsic is declared with.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = p;
}

/// Starts loading the lines of the first `len` bytes from `p`, but no
/// more than `most` bytes' worth.
#[inline]
pub(crate) fn span<T>(p: *const T, len: usize, most: usize) {
    let p = p.cast::<u8>();
    for i in 0..lines(len, most) {
        line(p.wrapping_add(i * LINE));
    }
}

/// The lines [`span`] prefetches: those of `len.min(most)` bytes.
fn lines(len: usize, most: usize) -> usize {
    len.min(most).div_ceil(LINE)
}

#[cfg(test)]
mod tests {
    use super::{line, lines, span, LINE};
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
    fn a_span_is_a_hint_per_line_up_to_most() {
        assert_eq!(lines(0, 128), 0);
        assert_eq!(lines(1, 128), 1);
        assert_eq!(lines(64, 128), 1);
        assert_eq!(lines(65, 128), 2);
        assert_eq!(lines(1000, 128), 2);
        assert_eq!(lines(1000, 129), 3);
        assert_eq!(lines(216, 216), 4);
        assert_eq!(lines(usize::MAX, usize::MAX), usize::MAX / LINE + 1);
    }
}
