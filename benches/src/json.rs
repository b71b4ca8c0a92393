//! The reply a server sends for "read every attribute of a room", written
//! as JSON into a caller's reused buffer. Engine and baseline use this same
//! writer, so the read benchmarks compare how each side gets at its data,
//! not two serializers.
//!
//! One thing differs by what each side knows: a string needs escaping
//! only if it holds `"`, `\` or a control character. The baseline's map
//! does not know, so the writer scans each key, value and owner id. The
//! engine knows: it finds out once, when it stores the text, and each
//! borrowed attribute says so ([`roomstate::AttrRef::plain`]); the writer
//! then copies the strings without a scan. Everything else the writer
//! does is the same code for both.
//!
//! ```text
//! {"attributes":[{"key":"k","value":"v","owner":"u1","revision":7},...],"seq":7}
//! ```
//!
//! The sequence number comes last so that a reader can visit the room once
//! and learn it at the end.

/// Writes one read-all reply into `out` (cleared first by the caller if it
/// reuses the buffer): open with [`Reply::begin`], one [`Reply::attr`] per
/// attribute, close with [`Reply::end`] and the room's sequence number.
#[derive(Debug)]
pub struct Reply<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Reply<'a> {
    /// Opens the reply.
    pub fn begin(out: &'a mut Vec<u8>) -> Reply<'a> {
        out.extend_from_slice(b"{\"attributes\":[");
        Reply { out, first: true }
    }

    /// Appends one attribute, scanning each string for what needs an
    /// escape.
    pub fn attr(&mut self, key: &str, value: &str, owner: &str, revision: u64) {
        self.attr_with::<true>(key, value, owner, revision);
    }

    /// Appends one attribute whose key, value and owner the caller knows
    /// need no escape (the engine's `AttrRef::plain`): the same bytes as
    /// [`Reply::attr`], written without the scans.
    pub fn attr_plain(&mut self, key: &str, value: &str, owner: &str, revision: u64) {
        self.attr_with::<false>(key, value, owner, revision);
    }

    /// One code for both: `SCAN` only decides whether the strings are
    /// scanned, so the baseline's path compiles as it did before there
    /// was a choice.
    fn attr_with<const SCAN: bool>(&mut self, key: &str, value: &str, owner: &str, revision: u64) {
        let out = &mut *self.out;
        if !self.first {
            out.push(b',');
        }
        self.first = false;
        out.extend_from_slice(b"{\"key\":");
        push_str::<SCAN>(out, key);
        out.extend_from_slice(b",\"value\":");
        push_str::<SCAN>(out, value);
        out.extend_from_slice(b",\"owner\":");
        push_str::<SCAN>(out, owner);
        out.extend_from_slice(b",\"revision\":");
        push_u64(out, revision);
        out.push(b'}');
    }

    /// Closes the reply with the room's sequence number.
    pub fn end(self, seq: u64) {
        self.out.extend_from_slice(b"],\"seq\":");
        push_u64(self.out, seq);
        self.out.push(b'}');
    }
}

/// A decimal number, without allocating.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Whether any byte needs an escape. No early exit, so the compiler can
/// vectorize it: keys and values are short and almost never need one.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |acc, &b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// A JSON string literal: quotes, and escapes for `"`, `\` and control
/// characters. Runs of plain bytes are copied in one go. Without `SCAN`
/// the caller knows there is nothing to escape.
fn push_str<const SCAN: bool>(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    if !SCAN || !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::Reply;

    #[test]
    fn a_reply_is_valid_json_with_every_field_and_escape() {
        let mut out = Vec::new();
        let mut r = Reply::begin(&mut out);
        r.attr("k\"1", "line\nbreak\\ \u{1} é", "u1", 0);
        r.attr_plain("k2", "", "admin", 42);
        r.end(18_446_744_073_709_551_615);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["seq"].as_u64(), Some(u64::MAX));
        let a = v["attributes"].as_array().unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0]["key"], "k\"1");
        assert_eq!(a[0]["value"], "line\nbreak\\ \u{1} é");
        assert_eq!(a[0]["owner"], "u1");
        assert_eq!(a[0]["revision"], 0);
        assert_eq!(a[1]["value"], "");
        assert_eq!(a[1]["revision"], 42);
    }

    /// Each character that needs an escape gets its own, found alone in
    /// a string (the scan for one is a fold over every byte), and a string
    /// without one, non-ASCII included, is copied as it is.
    #[test]
    fn each_escape_is_found_alone_and_written_exactly() {
        let cases: [(&str, &str); 9] = [
            ("a\"b", r#""a\"b""#),
            ("a\\b", r#""a\\b""#),
            ("a\nb", r#""a\nb""#),
            ("a\rb", r#""a\rb""#),
            ("a\tb", r#""a\tb""#),
            ("a\u{0}b", r#""a\u0000b""#),
            ("a\u{1f}b", r#""a\u001fb""#),
            (" ~\u{7f}é😀", "\" ~\u{7f}é😀\""),
            ("", r#""""#),
        ];
        for (text, json) in cases {
            let plain = !json.contains('\\');
            assert_eq!(super::needs_escape(text.as_bytes()), !plain, "{text:?}");
            let mut out = Vec::new();
            super::push_str::<true>(&mut out, text);
            assert_eq!(String::from_utf8(out).unwrap(), json, "{text:?}");
            // Told that it is plain, the writer copies the text without a
            // scan: the same bytes where that is true, the raw text where
            // the caller was wrong (which the engine never is: its
            // invariant checks recompute every flag).
            let mut out = Vec::new();
            super::push_str::<false>(&mut out, text);
            let raw = format!("\"{text}\"");
            let want = if plain { json } else { raw.as_str() };
            assert_eq!(String::from_utf8(out).unwrap(), want, "{text:?}");
        }
    }

    /// A string with more than one character to escape, of one kind or
    /// of several, is found to need escapes (the scan's fold must not
    /// cancel out) and gets every escape.
    #[test]
    fn repeated_escapes_are_all_found_and_written() {
        let cases: [(&str, &str); 5] = [
            ("\"a\"", r#""\"a\"""#),
            ("\u{1}\u{2}", r#""\u0001\u0002""#),
            ("a\n\nb", r#""a\n\nb""#),
            ("\\\\", r#""\\\\""#),
            ("\"\\\n\"", r#""\"\\\n\"""#),
        ];
        for (text, json) in cases {
            assert!(super::needs_escape(text.as_bytes()), "{text:?}");
            let mut out = Vec::new();
            super::push_str::<true>(&mut out, text);
            assert_eq!(String::from_utf8(out).unwrap(), json, "{text:?}");
        }
    }

    #[test]
    fn an_empty_room_is_an_empty_list() {
        let mut out = Vec::new();
        Reply::begin(&mut out).end(3);
        assert_eq!(out, br#"{"attributes":[],"seq":3}"#);
    }
}
