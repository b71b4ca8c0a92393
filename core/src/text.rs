//! `Str`: the cheaply clonable string used for ids, keys and values.

use alloc::string::String;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;

/// Longest string stored inline, in bytes.
pub(crate) const INLINE: usize = 22;

/// An immutable UTF-8 string that is cheap to clone.
///
/// Room ids, user ids, keys and values are `Str`. Strings of up to 22 bytes
/// (ids and most keys) are stored inline: a clone is a 24-byte copy, with
/// no allocation and no atomic. Longer ones (most values) are shared by
/// reference count: a value moves into the engine once and is then shared,
/// not copied, by the stored attribute and the event that announces it.
/// Equality, order and hashing are those of the text, whichever way it is
/// stored.
#[derive(Clone)]
pub struct Str(Repr);

#[derive(Clone)]
enum Repr {
    Inline(heapless::String<INLINE, u8>),
    Shared(Arc<str>),
}

impl Str {
    /// The text, if it lives on the heap (a prefetch hint's target; an
    /// inline string lives wherever the `Str` does).
    pub(crate) fn shared(&self) -> Option<&str> {
        match &self.0 {
            Repr::Inline(_) => None,
            Repr::Shared(s) => Some(s),
        }
    }

    /// The empty string.
    pub(crate) const EMPTY: Str = Str(Repr::Inline(heapless::String::new()));

    /// The string's contents.
    #[must_use]
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline(s) => s.as_str(),
            Repr::Shared(s) => s,
        }
    }

    /// Length in UTF-8 bytes.
    #[must_use]
    pub fn byte_len(&self) -> usize {
        self.as_str().len()
    }

    /// Length in Unicode scalar values ("characters" in the vendors' docs).
    #[must_use]
    pub fn char_len(&self) -> usize {
        self.as_str().chars().count()
    }

    fn new(s: &str) -> Str {
        match heapless::String::try_from(s) {
            Ok(inline) => Str(Repr::Inline(inline)),
            Err(_) => Str(Repr::Shared(Arc::from(s))),
        }
    }
}

impl Default for Str {
    /// The empty string (inline).
    fn default() -> Str {
        Str(Repr::Inline(heapless::String::new()))
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Str) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Str {}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Str) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Str) -> core::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl core::hash::Hash for Str {
    /// Hashes like the `str` it holds, so maps keyed by `Str` can be
    /// searched with a `&str`.
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Deref for Str {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Str {
    #[inline]
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    #[inline]
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Str {
        Str::new(s)
    }
}

impl From<String> for Str {
    /// Short strings move inline; long ones become shared without copying
    /// twice (`Arc<str>` from a `String` copies once).
    fn from(s: String) -> Str {
        if s.len() <= INLINE {
            Str::new(&s)
        } else {
            Str(Repr::Shared(Arc::from(s)))
        }
    }
}

impl From<&String> for Str {
    fn from(s: &String) -> Str {
        Str::new(s)
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Str {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Str {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Str, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Str;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str::from(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// Names a fuzzer's strings are mostly drawn from: few enough that rooms,
/// users and keys collide all the time, with the awkward cases (empty,
/// multi-byte, outside the restricted charset, 17 bytes) among them.
#[cfg(feature = "arbitrary")]
const FUZZ_NAMES: [&str; 16] = [
    "r0",
    "r1",
    "u0",
    "u1",
    "u2",
    "host",
    "k0",
    "k1",
    "seat.1",
    "seat.2",
    "",
    "ké",
    "k!",
    "title",
    "0123456789abcdefg",
    "v",
];

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Str {
    /// Seven times in eight a name from a small fixed alphabet (so that
    /// ids and keys collide), else an arbitrary string.
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Str> {
        let pick: u8 = u.arbitrary()?;
        match FUZZ_NAMES.get(usize::from(pick % 16)) {
            Some(name) if pick < 224 => Ok(Str::from(*name)),
            _ => Ok(Str::from(<&str>::arbitrary(u)?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Repr, Str, INLINE};
    use alloc::string::String;

    /// Up to 22 bytes a string is inline (a clone copies 24 bytes, no
    /// count to touch), past that shared, whether it came as a `&str` or
    /// a `String`.
    #[test]
    fn short_strings_are_inline_however_they_come() {
        let at = "é".repeat(INLINE / 2); // exactly 22 bytes
        let over = "x".repeat(INLINE + 1);
        for (s, inline) in [
            (Str::from(at.as_str()), true),
            (Str::from(String::from(at.as_str())), true),
            (Str::from(&String::from(at.as_str())), true),
            (Str::from(""), true),
            (Str::from(String::new()), true),
            (Str::from(over.as_str()), false),
            (Str::from(String::from(over.as_str())), false),
        ] {
            assert_eq!(matches!(s.0, Repr::Inline(_)), inline, "{s:?}");
        }
    }

    /// Byte and char lengths, inline and shared, one-byte and wide text.
    #[test]
    fn lengths_count_bytes_and_chars() {
        let long = "中".repeat(INLINE); // 66 bytes: shared
        for (s, bytes, chars) in [
            (Str::from(""), 0, 0),
            (Str::from("k1"), 2, 2),
            (Str::from("ké"), 3, 2),
            (Str::from("😀"), 4, 1),
            (Str::from(long.as_str()), 3 * INLINE, INLINE),
            (Str::from(String::from(long.as_str())), 3 * INLINE, INLINE),
        ] {
            assert_eq!((s.byte_len(), s.char_len()), (bytes, chars), "{s:?}");
        }
    }

    /// A `Str` is its text, inline or shared and however it came: it
    /// reads, prints, compares and hashes as that `str`, so a map keyed by
    /// `Str` can be searched with a `&str`.
    #[test]
    fn a_str_reads_prints_compares_and_hashes_as_its_text() {
        use core::hash::BuildHasher;
        let hasher = hashbrown::DefaultHashBuilder::default();
        let long = "x".repeat(INLINE + 1);
        for text in ["", "k1", "ké", long.as_str()] {
            let owned = String::from(text);
            for s in [Str::from(text), Str::from(owned.clone()), Str::from(&owned)] {
                assert_eq!(s.as_str(), text);
                assert_eq!(AsRef::<str>::as_ref(&s), text);
                assert_eq!(&*s, text);
                assert_eq!(alloc::format!("{s}"), text);
                assert_eq!(alloc::format!("{s:?}"), alloc::format!("{text:?}"));
                assert!(s == *text && s == text, "{s:?}");
                assert!(s != *"other" && s != "other", "{s:?}");
                assert_eq!(hasher.hash_one(&s), hasher.hash_one(text), "{s:?}");
            }
        }
    }

    /// A `Str` reads from a string, and refuses anything else with an error
    /// that says what it wanted (a server decoding a request shows it).
    #[cfg(feature = "serde")]
    #[test]
    fn a_str_deserializes_from_text_and_says_what_it_expects() {
        use alloc::string::ToString;
        use serde::de::value::Error;
        use serde::de::{Deserialize, IntoDeserializer};
        let s = Str::deserialize(IntoDeserializer::<Error>::into_deserializer("seat.1"));
        assert_eq!(s, Ok(Str::from("seat.1")));
        let e = Str::deserialize(IntoDeserializer::<Error>::into_deserializer(5u32));
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err(String::from("invalid type: integer `5`, expected a string"))
        );
    }

    /// A fuzzed `Str` is the known name `pick % 16` when its first byte
    /// `pick` is below 224 (seven times in eight), so that rooms, users and
    /// keys collide; else it is whatever string the rest of the input makes.
    #[cfg(feature = "arbitrary")]
    #[test]
    fn a_fuzzed_str_is_a_known_name_seven_times_in_eight() {
        use super::FUZZ_NAMES;
        use arbitrary::{Arbitrary, Unstructured};
        let rest = [b'z'; 8];
        let free = <&str>::arbitrary(&mut Unstructured::new(&rest)).ok();
        let free = free.filter(|f| !f.is_empty() && !FUZZ_NAMES.contains(f));
        assert!(free.is_some(), "the rest makes a string of its own");
        for pick in 0..=u8::MAX {
            let mut input = alloc::vec![pick];
            input.extend_from_slice(&rest);
            let s = Str::arbitrary(&mut Unstructured::new(&input)).ok();
            let name = FUZZ_NAMES.get(usize::from(pick % 16)).copied();
            let want = if pick < 224 { name } else { free };
            assert_eq!(s.as_deref(), want, "pick {pick}");
        }
    }
}
