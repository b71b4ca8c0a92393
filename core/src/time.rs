//! Time as an input: the engine never reads a clock.

/// A point in time in milliseconds, on whatever epoch the caller uses.
///
/// Every command is applied at a caller-supplied `Millis`. The engine keeps
/// the latest value it has seen and treats an earlier one as that latest
/// value, so time never runs backwards inside the engine (a clock step on
/// the server cannot resurrect an expired grace period or refill a rate
/// bucket twice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Millis(pub u64);

impl Millis {
    /// Zero, the start of the caller's epoch.
    pub const ZERO: Millis = Millis(0);

    /// `self + ms`, saturating at `u64::MAX` instead of overflowing.
    #[must_use]
    pub const fn saturating_add(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    #[must_use]
    pub const fn since(self, earlier: Millis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
