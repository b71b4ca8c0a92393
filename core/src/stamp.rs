//! An attribute's revision and change time, held in 8 bytes.
//!
//! Every attribute carries a revision (the room's sequence number of the
//! change that wrote it) and the time of that change, both `u64` on the
//! API. Held as two `u64` they were 16 of the 24 bytes of an attribute's
//! record. Here they are two `u32` ([`AttrX`], 8 bytes):
//! - the revision as it is, when it is below [`WIDE`] (a room passes
//!   4,294,967,294 events only under a restored sequence number near it);
//! - the time as milliseconds after the store's time base, a whole second
//!   (`Store::stamp_base`, in seconds, which fills the store's padding):
//!   about 49.7 days of range.
//!
//! What does not fit is kept exactly, never rounded: the record's revision
//! is then [`WIDE`], and the room's rare parts hold the exact pair by key
//! (`Rare::wide`). So every revision and time the API accepts, up to
//! `u64::MAX`, reads back as written.
//!
//! The base moves (a *rebase*, which re-encodes every record of the room)
//! when a write's time falls outside the range: to the oldest time held if
//! the room's times all fit in one range, else to 2^31 ms (about 24.8
//! days) before the new time, so that about 24.8 days of later writes fit
//! too; what is older than that is kept wide. A write rebases only when its
//! time is past the range. The engine's clock never goes back, so a
//! rebase that keeps the times of a 49.7-day span moves the base to the
//! oldest of them, and one that cannot moves it to 24.8 days before the
//! new time: at most about two rebases per 24.8 days of the input's
//! clock, not of an attacker's snapshot (a time before the base, which the
//! clock rules out, would be kept wide; so, past about 2106, are the times
//! a base capped at `u32::MAX` seconds cannot reach, with no rebase). A restore never
//! rebases entry by entry: it places each room's base once, after the
//! room's last attribute ([`Room::normalize_stamps`]).

use crate::room::Room;
use crate::text::Str;
use crate::time::Millis;

/// The revision of a record whose stamp is kept wide.
pub(crate) const WIDE: u32 = u32::MAX;

/// Half the range: how far before a new time a forced rebase puts the base.
const HALF: u64 = 1 << 31;

/// An attribute record's stamp as held: see the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttrX {
    rev: u32,
    at: u32,
}

impl AttrX {
    pub(crate) fn is_wide(self) -> bool {
        self.rev == WIDE
    }

    /// The stamp of a record kept wide.
    const WIDE: AttrX = AttrX { rev: WIDE, at: 0 };
}

/// An attribute's exact revision and change time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) revision: u64,
    pub(crate) at: Millis,
}

/// Milliseconds of a base in seconds.
fn base_ms(secs: u32) -> u64 {
    u64::from(secs) * 1000
}

/// `stamp` narrowed against a base of `secs` seconds, if it fits.
fn narrow(stamp: Stamp, secs: u32) -> Option<AttrX> {
    let rev = u32::try_from(stamp.revision).ok().filter(|&r| r != WIDE)?;
    let at = u32::try_from(stamp.at.0.checked_sub(base_ms(secs))?).ok()?;
    Some(AttrX { rev, at })
}

/// The base (in seconds) for times from `oldest` to `newest` where a new
/// time `now` must fit: the oldest, if the whole span fits in one range,
/// else half a range before `now` (or the oldest, if that is later).
fn choose_base(oldest: u64, newest: u64, now: u64) -> u32 {
    let oldest = oldest.min(now);
    let newest = newest.max(now);
    let floor = |ms: u64| u32::try_from(ms / 1000).unwrap_or(u32::MAX);
    let all = floor(oldest);
    if newest - base_ms(all) <= u64::from(u32::MAX) {
        return all;
    }
    floor(oldest.max(now.saturating_sub(HALF)))
}

impl Room {
    /// The exact stamp of the attribute `key` whose record holds `x`.
    #[inline(always)]
    pub(crate) fn stamp_of(&self, key: &str, x: AttrX) -> Stamp {
        if x.is_wide() {
            return self.wide_stamp(key);
        }
        Stamp {
            revision: u64::from(x.rev),
            at: Millis(base_ms(self.attrs.stamp_base) + u64::from(x.at)),
        }
    }

    /// The exact stamp of the wide attribute `key`.
    #[cold]
    #[inline(never)]
    fn wide_stamp(&self, key: &str) -> Stamp {
        let (revision, at) = self.wide().get(key).copied().unwrap_or_default();
        Stamp { revision, at }
    }

    /// The revision of the attribute `key` whose record holds `x`.
    #[inline(always)]
    pub(crate) fn revision_of(&self, key: &str, x: AttrX) -> u64 {
        if x.is_wide() {
            self.wide_stamp(key).revision
        } else {
            u64::from(x.rev)
        }
    }

    /// The record stamp for writing `stamp` to the attribute `key` (new or
    /// not): narrow if it fits, after a rebase if `rebase` allows one and
    /// the time is past the range, else wide (kept by key). Any wide pair
    /// the key had is dropped when the new stamp is narrow.
    #[inline]
    pub(crate) fn stamp(&mut self, key: &str, stamp: Stamp, rebase: bool) -> AttrX {
        match narrow(stamp, self.attrs.stamp_base) {
            Some(x) if self.rare.is_none() => x,
            _ => self.stamp_slow(key, stamp, rebase),
        }
    }

    /// [`Room::stamp`] where the stamp does not fit, or a wide pair may
    /// have to go.
    #[cold]
    fn stamp_slow(&mut self, key: &str, stamp: Stamp, rebase: bool) -> AttrX {
        if let Some(x) = narrow(stamp, self.attrs.stamp_base) {
            self.forget_wide(key);
            return x;
        }
        let past = stamp.at.0 > base_ms(self.attrs.stamp_base) + u64::from(u32::MAX);
        // A base at the last second a u32 holds cannot move on (times
        // after about 2106): without this, every later write would walk
        // the room for nothing (review4).
        let movable = self.attrs.stamp_base != u32::MAX;
        if (past && rebase && movable) || self.attrs.len() == 0 {
            self.rebase(stamp.at.0);
            if let Some(x) = narrow(stamp, self.attrs.stamp_base) {
                self.forget_wide(key);
                return x;
            }
        }
        self.rare_mut()
            .wide
            .insert(Str::from(key), (stamp.revision, stamp.at));
        AttrX::WIDE
    }

    /// Drops the wide pair of `key`, if it has one (its record was deleted,
    /// or now holds a narrow stamp).
    pub(crate) fn forget_wide(&mut self, key: &str) {
        if let Some(rare) = self.rare.as_deref_mut() {
            if rare.wide.remove(key).is_some() {
                self.tidy_rare();
            }
        }
    }

    /// Drops the wide pair of the attribute at `pos`, if its record is wide
    /// (called before the record is removed).
    #[inline]
    pub(crate) fn forget_wide_at(&mut self, pos: u32) {
        if self.rare.is_none() || !self.attrs.meta(pos).is_some_and(|m| m.x.is_wide()) {
            return;
        }
        if let Some(rare) = self.rare.as_deref_mut() {
            rare.wide.remove(self.attrs.key(pos));
        }
        self.tidy_rare();
    }

    /// Places the base for the times held and `now` (see [`choose_base`])
    /// and re-encodes every record against it: a narrow stamp that no
    /// longer fits goes wide, a wide one that now fits goes narrow.
    fn rebase(&mut self, now: u64) {
        #[cfg(test)]
        tests::REBASES.with(|n| n.set(n.get() + 1));
        let (mut oldest, mut newest) = (now, now);
        for pos in self.attrs.positions() {
            if let Some(m) = self.attrs.meta(pos) {
                let at = self.stamp_of(self.attrs.key(pos), m.x).at.0;
                oldest = oldest.min(at);
                newest = newest.max(at);
            }
        }
        let old = self.attrs.stamp_base;
        let new = choose_base(oldest, newest, now);
        if new == old {
            return;
        }
        self.attrs.stamp_base = new;
        // By slot, not through a list of positions: a rebase allocates
        // nothing beyond the wide pairs it makes.
        for pos in self.attrs.slots() {
            let Some(x) = self.attrs.meta(pos).map(|m| m.x) else {
                continue;
            };
            let exact = if x.is_wide() {
                self.stamp_of(self.attrs.key(pos), x)
            } else {
                Stamp {
                    revision: u64::from(x.rev),
                    at: Millis(base_ms(old) + u64::from(x.at)),
                }
            };
            // Only a record that changes width touches the pairs (a wide one
            // that stays wide keeps its pair as it is).
            let held = match (narrow(exact, new), x.is_wide()) {
                (Some(n), false) => n,
                (Some(n), true) => {
                    if let Some(rare) = self.rare.as_deref_mut() {
                        rare.wide.remove(self.attrs.key(pos));
                    }
                    n
                }
                (None, true) => AttrX::WIDE,
                (None, false) => {
                    let key = Str::from(self.attrs.key(pos));
                    self.rare_mut().wide.insert(key, (exact.revision, exact.at));
                    AttrX::WIDE
                }
            };
            if let Some(m) = self.attrs.meta_mut(pos) {
                m.x = held;
            }
        }
        self.tidy_rare();
    }

    /// Places a restored room's base once all its attributes are in: the
    /// restore stores each as it comes (wide where it does not fit the
    /// base the first one set) and this settles them in one pass.
    #[cfg(feature = "serde")]
    pub(crate) fn normalize_stamps(&mut self) {
        if self.wide().is_empty() {
            return;
        }
        let newest = self
            .attrs
            .positions()
            .filter_map(|p| self.attrs.meta(p).map(|m| (p, m.x)))
            .map(|(p, x)| self.stamp_of(self.attrs.key(p), x).at.0)
            .max()
            .unwrap_or(0);
        self.rebase(newest);
    }

    /// Wide pairs by key.
    fn wide(&self) -> &alloc::collections::BTreeMap<Str, (u64, Millis)> {
        &self.rare().wide
    }

    /// The invariants: a record is wide iff its key has a wide pair, and
    /// every narrow one reads back as it was written (it cannot not, by
    /// construction: what is checked is the pairing).
    pub(crate) fn stamps_consistent(&self) -> Result<(), &'static str> {
        let mut wide = 0;
        for pos in self.attrs.positions() {
            let Some(m) = self.attrs.meta(pos) else {
                continue;
            };
            if m.x.is_wide() {
                wide += 1;
                if !self.wide().contains_key(self.attrs.key(pos)) {
                    return Err("a wide stamp without its pair");
                }
            }
        }
        if wide != self.wide().len() {
            return Err("a wide pair without its wide record");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests
mod tests {
    use super::*;
    use crate::command::{Actor, Command, Op, Write};
    use crate::engine::Engine;
    use crate::profile::Profile;

    const DAY: u64 = 86_400_000;
    const T0: u64 = 1_764_460_800_000;

    std::thread_local! {
        /// Rebases run on this thread: a probe for what is otherwise
        /// visible only as time (a rebase walks the room).
        pub(super) static REBASES: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    fn rebases() -> u32 {
        REBASES.with(core::cell::Cell::get)
    }

    fn engine() -> Engine {
        let mut p = Profile::easemob();
        p.limits.request_rate = None;
        let mut e = Engine::new(p);
        let create = Command::create_room("r", "u");
        assert!(e.handle(Millis(T0), create).is_ok());
        e
    }

    fn set(e: &mut Engine, t: u64, key: &str) {
        let w = Write::new("r", Actor::Admin).op(Op::set(key, "v"));
        assert!(e.handle(Millis(t), Command::Write(w)).is_ok());
        assert_eq!(e.check_invariants(), Ok(()));
    }

    /// The keys whose stamps are kept wide, and whether the room has its
    /// rare box at all.
    fn wide(e: &Engine) -> (alloc::vec::Vec<&str>, bool) {
        let room = e.rooms.get("r").unwrap();
        let keys = room.wide().keys().map(|k| &**k).collect();
        (keys, room.rare.is_some())
    }

    // What is wide is what must be: times within one range never are (and
    // cost no rare box); a write past the range moves the base and keeps
    // wide only the keys older than half a range before it; a restore
    // places the base for all its keys at once.
    #[test]
    fn only_what_does_not_fit_is_kept_wide() {
        let mut e = engine();
        for (t, k) in [(T0, "a"), (T0 + 30 * DAY, "b"), (T0 + 45 * DAY, "c")] {
            set(&mut e, t, k);
        }
        assert_eq!(wide(&e), (alloc::vec![], false));
        set(&mut e, T0 + 60 * DAY, "d");
        assert_eq!(wide(&e), (alloc::vec!["a", "b"], true));
        set(&mut e, T0 + 61 * DAY, "a");
        assert_eq!(wide(&e), (alloc::vec!["b"], true));
        #[cfg(feature = "serde")]
        {
            // b (day 30) to a (day 61) fits one range: nothing wide.
            let restored = Engine::restore(&e.snapshot()).unwrap();
            assert_eq!(restored.check_invariants(), Ok(()));
            assert_eq!(wide(&restored), (alloc::vec![], false));
        }
        // Deleting the last wide key drops the rare box.
        let w = Write::new("r", Actor::Admin).op(Op::delete("b"));
        assert!(e.handle(Millis(T0 + 62 * DAY), Command::Write(w)).is_ok());
        assert_eq!(e.check_invariants(), Ok(()));
        assert_eq!(wide(&e), (alloc::vec![], false));
    }

    // check_invariants pairs wide records and wide pairs both ways.
    #[test]
    fn an_unpaired_wide_record_or_pair_breaks_the_invariants() {
        let mut e = engine();
        set(&mut e, T0, "a");
        let room = e.rooms.get_mut("r").unwrap();
        room.rare_mut()
            .wide
            .insert(Str::from("ghost"), (1, Millis(T0)));
        assert_eq!(
            e.check_invariants().map_err(|v| v.what),
            Err("a wide pair without its wide record")
        );
        let room = e.rooms.get_mut("r").unwrap();
        room.rare_mut().wide.clear();
        let pos = room.attrs.positions().next().unwrap();
        room.attrs.meta_mut(pos).unwrap().x = AttrX::WIDE;
        assert_eq!(
            e.check_invariants().map_err(|v| v.what),
            Err("a wide stamp without its pair")
        );
    }

    /// Past about 2106 the base sits at the last second a `u32` holds and
    /// cannot move on: a write there keeps its stamp wide without a rebase
    /// (review4 measured 447 µs per overwrite in a 4,096-key room when
    /// each one walked the room for nothing). The same writes in 2025
    /// rebase once, at the first write past the range: the probe counts.
    #[test]
    fn a_base_at_the_end_of_the_u32_seconds_is_never_rebased_again() {
        let late = u64::from(u32::MAX) * 1000 + DAY;
        for (start, at_day_60) in [(T0, 1), (late, 0)] {
            let mut e = engine();
            set(&mut e, start, "a");
            let before = rebases();
            set(&mut e, start + 60 * DAY, "b");
            assert_eq!(rebases() - before, at_day_60, "start {start}");
            let before = rebases();
            for d in 61..64 {
                set(&mut e, start + d * DAY, "b");
            }
            assert_eq!(rebases() - before, 0, "start {start}");
            let view = e.room("r").unwrap();
            let (a, b) = (view.attribute("a").unwrap(), view.attribute("b").unwrap());
            assert_eq!((a.changed_at, a.revision), (Millis(start), 2));
            assert_eq!((b.changed_at, b.revision), (Millis(start + 63 * DAY), 6));
            let base = e.rooms.get("r").unwrap().attrs.stamp_base;
            if start == late {
                assert_eq!((base, wide(&e).0), (u32::MAX, alloc::vec!["b"]));
            } else {
                assert!(u64::from(base) * 1000 > start + 30 * DAY, "moved on");
                assert_eq!(wide(&e).0, alloc::vec!["a"]);
            }
        }
    }

    /// A write rebases only when its time is past the range: at the last
    /// millisecond the base reaches (base + `u32::MAX` ms) the time still
    /// fits, so a stamp that goes wide there (its revision is `WIDE`, after
    /// a restored sequence number near it) goes wide without a rebase; one
    /// millisecond later the same write rebases. (With `>` made `>=` in
    /// `stamp_slow`'s `past`, the first write rebases too.)
    #[test]
    fn a_wide_revision_at_the_last_millisecond_of_the_range_does_not_rebase() {
        // Past the range, the base moves half a range before the write:
        // `a` (at the old base) is kept wide too.
        for (late, expected, kept_wide) in [(0, 0, alloc::vec!["b"]), (1, 1, alloc::vec!["a", "b"])]
        {
            let mut e = engine();
            set(&mut e, T0, "a");
            let base = e.rooms.get("r").unwrap().attrs.stamp_base;
            assert_eq!(base_ms(base), T0);
            // The next write's revision is WIDE: it cannot be narrow.
            e.rooms.get_mut("r").unwrap().seq = u64::from(WIDE) - 1;
            let at = base_ms(base) + u64::from(u32::MAX) + late;
            let before = rebases();
            set(&mut e, at, "b");
            assert_eq!(rebases() - before, expected, "late by {late} ms");
            assert_eq!(wide(&e).0, kept_wide, "late by {late} ms");
            let view = e.room("r").unwrap();
            let (a, b) = (view.attribute("a").unwrap(), view.attribute("b").unwrap());
            assert_eq!((a.changed_at, a.revision), (Millis(T0), 2));
            assert_eq!((b.changed_at, b.revision), (Millis(at), u64::from(WIDE)));
        }
    }

    #[test]
    fn the_base_covers_every_time_when_the_span_fits() {
        assert_eq!(choose_base(5_000, 9_000, 7_000), 5);
        assert_eq!(choose_base(5_999, 5_999, 5_999), 5);
        // A span wider than the range: half a range before the new time.
        let now = 10 * u64::from(u32::MAX);
        assert_eq!(u64::from(choose_base(0, now, now)), (now - HALF) / 1000);
        // Past the seconds a u32 holds: the last one (those times go wide).
        assert_eq!(choose_base(u64::MAX, u64::MAX, u64::MAX), u32::MAX);
    }

    #[test]
    fn narrowing_refuses_what_does_not_fit() {
        let s = |revision, at| Stamp {
            revision,
            at: Millis(at),
        };
        assert_eq!(narrow(s(1, 5_000), 5), Some(AttrX { rev: 1, at: 0 }));
        assert_eq!(narrow(s(1, 4_999), 5), None);
        let last = 5_000 + u64::from(u32::MAX);
        assert_eq!(
            narrow(s(1, last), 5),
            Some(AttrX {
                rev: 1,
                at: u32::MAX
            })
        );
        assert_eq!(narrow(s(1, last + 1), 5), None);
        assert_eq!(narrow(s(u64::from(WIDE), 5_000), 5), None);
        assert_eq!(
            narrow(s(u64::from(WIDE) - 1, 5_000), 5).map(|x| x.rev),
            Some(WIDE - 1)
        );
        assert_eq!(narrow(s(u64::MAX, u64::MAX), u32::MAX), None);
    }
}
