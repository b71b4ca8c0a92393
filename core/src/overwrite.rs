//! One of the engine's two uses of `unsafe` (issue 9; the other is
//! [`crate::prefetch`]): writing text over text of the same length inside
//! a `String`.
//!
//! A room keeps its keys and values in one `String` arena, so that a read
//! hands out `&arena[a..b]` with two char-boundary checks and no UTF-8
//! validation. Safe Rust can overwrite bytes inside a `String` only by a
//! same-length `replace_range` (a loop of about 11 instructions a byte)
//! or by a drain and an insert (two moves of all the text after the
//! range). Measured with callgrind (`profile write-hot`, history off),
//! the safe route cost about 360 instructions of a 2,668-instruction
//! overwrite of a 64-byte value in a 20-key room; this copy costs a
//! `memcpy`.
//!
//! Invariant that keeps the `String` valid UTF-8: the range replaced lies
//! inside the string, starts and ends on char boundaries (so it holds a
//! whole number of chars, and the text before and after it is valid UTF-8
//! on its own), and the text written is a `&str` of exactly the range's
//! length. Valid UTF-8 + valid UTF-8 + valid UTF-8 is valid UTF-8. Every
//! condition is checked here, at run time, before the write: a caller
//! cannot break it, only be refused.
#![allow(unsafe_code)]

use alloc::string::String;
use core::ops::Range;

/// Writes `with` over `range` of `text`. Returns `false`, and writes
/// nothing, unless `range` lies in `text` with both ends on char
/// boundaries and `with` is exactly as long.
#[inline]
pub(crate) fn overwrite(text: &mut String, range: Range<usize>, with: &str) -> bool {
    if range.start > range.end
        || range.end - range.start != with.len()
        || !text.is_char_boundary(range.start)
        || !text.is_char_boundary(range.end)
    {
        return false;
    }
    // SAFETY: see the module's invariant, checked just above:
    // `is_char_boundary` is false past the end, so the range lies inside
    // the text and holds whole chars, and `with` is valid UTF-8 of the
    // same length. The copy cannot panic (the lengths agree), so no
    // half-written text is ever observable.
    let bytes = unsafe { text.as_mut_vec() };
    match bytes.get_mut(range) {
        Some(dst) => {
            dst.copy_from_slice(with.as_bytes());
            true
        }
        None => false,
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::overwrite;
    use alloc::string::String;

    /// Every range of a text of one-, two-, three- and four-byte chars,
    /// written over with every text of the same length from a set that
    /// mixes widths: a write happens exactly when the range holds whole
    /// chars, the result is always valid UTF-8, and it equals the
    /// safe-Rust splice.
    #[test]
    fn a_write_keeps_the_text_valid_and_equals_a_splice() {
        let base = "aé€😀b\u{7f}\u{80}z";
        let withs = [
            "", "x", "é", "xy", "€", "xé", "éx", "xyz", "😀", "€x", "xyzw", "éé", "𝄞é",
        ];
        let mut writes = 0;
        for start in 0..=base.len() + 1 {
            for end in 0..=base.len() + 1 {
                for with in withs {
                    let mut text = String::from(base);
                    let whole =
                        start <= end && base.is_char_boundary(start) && base.is_char_boundary(end);
                    let expected = (whole && end - start == with.len()).then(|| {
                        let mut s = String::from(base);
                        s.replace_range(start..end, with);
                        s
                    });
                    let wrote = overwrite(&mut text, start..end, with);
                    assert!(core::str::from_utf8(text.as_bytes()).is_ok());
                    assert_eq!(wrote, expected.is_some(), "{start}..{end} {with:?}");
                    assert_eq!(text, expected.unwrap_or_else(|| String::from(base)));
                    writes += usize::from(wrote);
                }
            }
        }
        assert!(
            writes > 40,
            "the writes that happen are checked too: {writes}"
        );
    }
}
