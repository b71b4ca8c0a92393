//! Per-user state in a room: connections, role, and the owner index.

use alloc::vec::Vec;

use crate::command::Role;
use crate::text::Str;
use crate::time::Millis;

/// One user's record in one room. It exists while the user is present, has a
/// role other than `Member`, or owns auto-delete attributes or transient
/// queue elements; otherwise it is removed.
#[derive(Default, Debug)]
pub(crate) struct UserRec {
    /// Connections that are up.
    pub(crate) live: u32,
    /// Connections that dropped and are inside their grace period.
    pub(crate) dropped: u32,
    /// When the dropped connections expire; `Some` iff `dropped > 0`.
    pub(crate) grace_until: Option<Millis>,
    pub(crate) role: Role,
    /// Owner index: keys of the auto-delete attributes this user owns. Each
    /// such attribute stores its position here (`owned_pos`), so removal is
    /// a `swap_remove` plus one fix-up.
    pub(crate) auto_attrs: Vec<Str>,
    /// Owner index: keys of the transient queue elements this user owns.
    pub(crate) transient: Vec<Str>,
}

impl UserRec {
    pub(crate) fn connections(&self) -> u32 {
        self.live.saturating_add(self.dropped)
    }

    pub(crate) fn is_present(&self) -> bool {
        self.connections() > 0
    }

    /// Nothing left worth keeping.
    pub(crate) fn is_idle(&self) -> bool {
        !self.is_present()
            && self.role == Role::Member
            && self.auto_attrs.is_empty()
            && self.transient.is_empty()
    }
}
