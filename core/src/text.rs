//! `Str`: the cheaply clonable string used for ids, keys and values.

use alloc::string::String;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;

/// An immutable, reference-counted UTF-8 string.
///
/// Room ids, user ids, keys and values are `Str`: a value moves into the
/// engine once and is then shared, not copied, by the stored attribute, the
/// event that announces it and any owner index that names it. Cloning is a
/// reference-count increment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Str(Arc<str>);

impl Str {
    /// The string's contents.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in UTF-8 bytes.
    #[must_use]
    pub fn byte_len(&self) -> usize {
        self.0.len()
    }

    /// Length in Unicode scalar values ("characters" in the vendors' docs).
    #[must_use]
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }
}

impl Deref for Str {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Str {
    fn from(s: &str) -> Str {
        Str(Arc::from(s))
    }
}

impl From<String> for Str {
    fn from(s: String) -> Str {
        Str(Arc::from(s))
    }
}

impl From<&String> for Str {
    fn from(s: &String) -> Str {
        Str(Arc::from(s.as_str()))
    }
}

impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Str {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
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
