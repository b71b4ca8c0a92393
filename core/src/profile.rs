//! Vendor profiles: every limit and semantic switch, as plain data, in one place.
//!
//! A [`Profile`] is a plain struct with public fields. The five built-ins
//! carry the documented values of each vendor (SPEC §7); a custom profile is
//! a struct literal, usually `Profile { limits: Limits { .. }, ..Profile::zego() }`.

use crate::error::ErrorClass;

/// Which vendor a profile models. Informational: behaviour comes from the
/// limits and rules, never from this tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Vendor {
    /// Tencent Cloud live room engine (room metadata).
    Tencent,
    /// Easemob chatroom custom attributes.
    Easemob,
    /// Agora Chat chatroom custom attributes.
    AgoraChat,
    /// NetEase Yunxin chatroom queue.
    NetEase,
    /// ZEGO ZIM room attributes.
    Zego,
    /// Agora Signaling (RTM 2.x) channel metadata and locks.
    AgoraRtm,
    /// A profile built by the caller.
    Custom,
}

/// The unit a length limit counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Unit {
    /// UTF-8 bytes.
    Bytes,
    /// Unicode scalar values.
    Chars,
}

impl Unit {
    /// The length of `s` in this unit.
    #[must_use]
    pub fn len(self, s: &str) -> usize {
        match self {
            Unit::Bytes => s.len(),
            Unit::Chars => s.chars().count(),
        }
    }

    /// Whether `s` is longer than `max` in this unit: `self.len(s) > max`,
    /// counting characters only where the byte length cannot decide. A
    /// character takes one to four bytes, so at most `max` bytes are at
    /// most `max` characters, and `4 × (max + 1)` bytes or more are more
    /// than `max` characters. A value within its limit in bytes, the common
    /// case, is not scanned, and an oversized one is refused without
    /// being counted.
    #[must_use]
    #[inline]
    pub fn exceeds(self, s: &str, max: usize) -> bool {
        let bytes = s.len();
        if bytes <= max {
            return false;
        }
        match self {
            Unit::Bytes => true,
            Unit::Chars => bytes / 4 > max || s.chars().count() > max,
        }
    }
}

/// Characters a key may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Charset {
    /// Any non-empty string.
    Any,
    /// `A-Z a-z 0-9 _ . -` only (Easemob, Agora Chat).
    Restricted,
    /// Printable ASCII, `!` to `~` (Agora Signaling keys).
    Ascii,
}

impl Charset {
    /// Whether `key` uses only characters of this set.
    #[must_use]
    pub fn allows(self, key: &str) -> bool {
        match self {
            Charset::Any => true,
            Charset::Restricted => key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')),
            Charset::Ascii => key.bytes().all(|b| b.is_ascii_graphic()),
        }
    }
}

/// How a batch of operations is applied (SPEC §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum BatchPolicy {
    /// Any failing op rejects the whole batch; nothing is applied (Tencent).
    Atomic,
    /// Every op stands alone; failures are reported per key (Easemob, Agora,
    /// ZEGO `StopOnError=0`).
    BestEffort,
    /// Ops apply in order until the first failure; what was applied stays and
    /// the rest is reported as not attempted (ZEGO `StopOnError=1`).
    StopOnError,
}

/// Where the batch policy of a write comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum PolicyRule {
    /// Always this policy; a request naming a different one is rejected with
    /// [`Rejection::PolicyNotAllowed`](crate::Rejection::PolicyNotAllowed).
    Fixed(BatchPolicy),
    /// The request may choose; this one applies when it does not.
    PerRequest(BatchPolicy),
}

/// Who owns an attribute after a successful overwrite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum OwnerRule {
    /// The owner stays unless the request sets `update_owner` (Tencent, ZEGO).
    Keep,
    /// The operator becomes the owner when the write is forced (Easemob, Agora).
    OperatorWhenForced,
    /// The operator always becomes the owner (NetEase).
    Operator,
}

/// A token-bucket request rate: `per_second` requests, bursting to the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Rate {
    /// Requests per second, also the bucket's capacity. Zero means every
    /// rate-limited request is refused.
    pub per_second: u32,
}

/// Per-room notification budgets per one-second window (NetEase flow control).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Flow {
    /// Normal-class events per window before they become `Overflow`.
    pub normal_per_second: u32,
    /// High-priority events per window before they are downgraded or refused.
    pub high_per_second: u32,
}

/// Queue limits (NetEase chatroom queue, SPEC §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct QueueLimits {
    /// Capacity of a queue created by a first offer.
    pub default_capacity: u32,
    /// Largest capacity `QueueInit` accepts.
    pub max_capacity: u32,
    /// Elements per batch offer.
    pub max_batch_offer: u32,
    /// Elements per batch update.
    pub max_batch_update: u32,
    /// Keys per multi-get.
    pub max_multi_get: u32,
    /// Longest element key, in `key_unit`.
    pub max_key_len: u32,
    /// Unit of `max_key_len`.
    pub key_unit: Unit,
    /// Longest element value, in `value_unit`.
    pub max_value_len: u32,
    /// Unit of `max_value_len`.
    pub value_unit: Unit,
    /// Longest notification extension string, in chars.
    pub max_ext_chars: u32,
}

/// Lock limits (Agora Signaling locks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LockLimits {
    /// Locks per room.
    pub max_per_room: u32,
    /// Longest lock name, in bytes; a name is non-empty printable ASCII
    /// (`!` to `~`).
    pub max_name_len: u32,
    /// Shortest TTL; a shorter one is raised to it.
    pub min_ttl_ms: u64,
    /// Longest TTL; a longer one is lowered to it.
    pub max_ttl_ms: u64,
}

impl LockLimits {
    /// A TTL clamped into `min_ttl_ms..=max_ttl_ms` (a profile whose
    /// minimum lies above its maximum gets its maximum).
    #[must_use]
    pub fn clamp_ttl(&self, ttl_ms: u64) -> u64 {
        ttl_ms.max(self.min_ttl_ms).min(self.max_ttl_ms)
    }

    /// Whether `name` is a valid lock name.
    #[must_use]
    pub fn name_ok(&self, name: &str) -> bool {
        !name.is_empty()
            && name.len() <= self.max_name_len as usize
            && name.bytes().all(|b| b.is_ascii_graphic())
    }
}

/// Agora Signaling's lock limits: 32 locks per room, names of at most 64
/// ASCII characters, TTL 10–300 s. The other vendors have no locks; their
/// profiles carry the same values for the engine's locks.
pub const AGORA_LOCKS: LockLimits = LockLimits {
    max_per_room: 32,
    max_name_len: 64,
    min_ttl_ms: 10_000,
    max_ttl_ms: 300_000,
};

/// Every numeric limit of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Limits {
    /// Attributes per room; `None` is unlimited.
    pub max_keys_per_room: Option<u32>,
    /// Ops in one write request.
    pub max_ops_per_write: u32,
    /// Lock limits.
    pub locks: LockLimits,
    /// Longest key, in `key_unit`.
    pub max_key_len: u32,
    /// Unit of `max_key_len`.
    pub key_unit: Unit,
    /// Longest value, in `value_unit`.
    pub max_value_len: u32,
    /// Unit of `max_value_len`.
    pub value_unit: Unit,
    /// Characters allowed in keys.
    pub key_charset: Charset,
    /// Sum of value sizes (UTF-8 bytes) in one room; `None` is unlimited.
    pub max_room_value_bytes: Option<u64>,
    /// Sum of value sizes (UTF-8 bytes) over all rooms; `None` is unlimited.
    pub max_engine_value_bytes: Option<u64>,
    /// Application-wide request rate; `None` is unlimited.
    pub request_rate: Option<Rate>,
    /// Per-room notification budgets; `None` means every event is `Normal`.
    pub notification_flow: Option<Flow>,
    /// How long a dropped connection still counts before its user exits.
    pub disconnect_grace_ms: u64,
    /// Queue limits.
    pub queue: QueueLimits,
    /// Counters per room; `None` is unlimited.
    pub max_counters_per_room: Option<u32>,
    /// Longest counter key, in UTF-8 bytes.
    pub max_counter_key_len: u32,
    /// Events each room keeps for catch-up (`Since`); 0 turns history off.
    pub history_events: u32,
    /// Bytes of encoded events each room keeps for catch-up; 0 turns
    /// history off.
    pub history_bytes: u32,
}

/// The semantic switches of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Rules {
    /// A user operator must be in the room to write attributes.
    pub writer_must_be_member: bool,
    /// `auto_delete` of a set op that does not say.
    pub default_auto_delete: bool,
    /// Owner after an overwrite (on top of the request's `update_owner`).
    pub owner_on_overwrite: OwnerRule,
    /// Policy of a batch that contains at least one set.
    pub set_policy: PolicyRule,
    /// Policy of a batch of deletes only.
    pub delete_policy: PolicyRule,
    /// A delete-only batch in which no key could be deleted is rejected with
    /// [`Rejection::NothingDeleted`](crate::Rejection::NothingDeleted) (Tencent 100503).
    pub reject_if_nothing_deleted: bool,
}

/// A vendor's error code. Signed, because Agora's SDK codes are negative
/// (−12008, −14004, ...); the other vendors' codes are positive and
/// small, and fit any integer type their wire format uses.
pub type VendorCode = i64;

/// The code a vendor returns for each class of engine error (SPEC §8).
/// `None` where the vendor documents none. Codes are [`VendorCode`]s
/// (`i64`): Agora Signaling's are negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[allow(missing_docs)] // one field per `ErrorClass` variant, documented there
pub struct VendorCodes {
    pub invalid_parameter: Option<VendorCode>,
    pub room_exists: Option<VendorCode>,
    pub room_not_found: Option<VendorCode>,
    pub no_permission: Option<VendorCode>,
    pub not_in_room: Option<VendorCode>,
    pub too_many_ops: Option<VendorCode>,
    pub key_count: Option<VendorCode>,
    pub value_size: Option<VendorCode>,
    pub total_size: Option<VendorCode>,
    pub nothing_deleted: Option<VendorCode>,
    pub rate_limited: Option<VendorCode>,
    /// `KeyLength`; `None` falls back to `invalid_parameter`.
    pub key_length: Option<VendorCode>,
    /// `Conflict` (a per-key expectation failed).
    pub conflict: Option<VendorCode>,
    /// `RevisionOutdated` (a whole-set expectation failed).
    pub revision_outdated: Option<VendorCode>,
    /// `LockName`; `None` falls back to `invalid_parameter`.
    pub lock_name: Option<VendorCode>,
    pub lock_exists: Option<VendorCode>,
    pub lock_not_found: Option<VendorCode>,
    pub lock_count: Option<VendorCode>,
    pub lock_held: Option<VendorCode>,
    pub lock_not_acquired: Option<VendorCode>,
    pub write_lock_not_held: Option<VendorCode>,
}

impl VendorCodes {
    /// No codes at all.
    pub const NONE: VendorCodes = VendorCodes {
        invalid_parameter: None,
        room_exists: None,
        room_not_found: None,
        no_permission: None,
        not_in_room: None,
        too_many_ops: None,
        key_count: None,
        value_size: None,
        total_size: None,
        nothing_deleted: None,
        rate_limited: None,
        key_length: None,
        conflict: None,
        revision_outdated: None,
        lock_name: None,
        lock_exists: None,
        lock_not_found: None,
        lock_count: None,
        lock_held: None,
        lock_not_acquired: None,
        write_lock_not_held: None,
    };

    /// The vendor's code for an error class, if it documents one.
    #[must_use]
    pub fn code(&self, class: ErrorClass) -> Option<VendorCode> {
        match class {
            ErrorClass::InvalidParameter => self.invalid_parameter,
            ErrorClass::RoomExists => self.room_exists,
            ErrorClass::RoomNotFound => self.room_not_found,
            ErrorClass::NoPermission => self.no_permission,
            ErrorClass::NotInRoom => self.not_in_room,
            ErrorClass::TooManyOps => self.too_many_ops,
            ErrorClass::KeyCount => self.key_count,
            ErrorClass::ValueSize => self.value_size,
            ErrorClass::TotalSize => self.total_size,
            ErrorClass::NothingDeleted => self.nothing_deleted,
            ErrorClass::RateLimited => self.rate_limited,
            ErrorClass::KeyLength => self.key_length.or(self.invalid_parameter),
            ErrorClass::Conflict => self.conflict,
            ErrorClass::RevisionOutdated => self.revision_outdated,
            ErrorClass::LockName => self.lock_name.or(self.invalid_parameter),
            ErrorClass::LockExists => self.lock_exists,
            ErrorClass::LockNotFound => self.lock_not_found,
            ErrorClass::LockCount => self.lock_count,
            ErrorClass::LockHeld => self.lock_held,
            ErrorClass::LockNotAcquired => self.lock_not_acquired,
            ErrorClass::WriteLockNotHeld => self.write_lock_not_held,
            ErrorClass::NotFound => None,
        }
    }
}

/// A vendor profile: limits, semantic rules and error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Profile {
    /// Which vendor this models.
    pub vendor: Vendor,
    /// Numeric limits.
    pub limits: Limits,
    /// Semantic switches.
    pub rules: Rules,
    /// Vendor error codes.
    pub codes: VendorCodes,
}

/// NetEase's queue limits (seed 003); other vendors have no queue API, so
/// their profiles carry the same values for the engine's queue.
const NETEASE_QUEUE: QueueLimits = QueueLimits {
    // Not documented in the seeds; SPEC §7 fixes 1000, configurable by init.
    default_capacity: 1000,
    max_capacity: 100_000,
    max_batch_offer: 20,
    max_batch_update: 200,
    max_multi_get: 100,
    max_key_len: 128,
    key_unit: Unit::Chars,
    max_value_len: 4096,
    value_unit: Unit::Chars,
    max_ext_chars: 2048,
};

/// Tencent's group counters: 20 keys per group. The other vendors have no
/// counters; their profiles carry Tencent's values.
pub const TENCENT_COUNTERS_PER_ROOM: u32 = 20;
/// Tencent's group counters: keys of at most 128 bytes.
pub const TENCENT_COUNTER_KEY_BYTES: u32 = 128;
/// Catch-up history every built-in profile keeps per room, in events (no
/// vendor has catch-up; this is the engine's own default).
pub const DEFAULT_HISTORY_EVENTS: u32 = 256;
/// Catch-up history every built-in profile keeps per room, in bytes of
/// encoded events.
pub const DEFAULT_HISTORY_BYTES: u32 = 64 * 1024;

/// Grace period of every built-in profile. No seed documents one; 30 s is a
/// common reconnect window for mobile clients. Set your own in a custom profile.
pub const DEFAULT_DISCONNECT_GRACE_MS: u64 = 30_000;

/// Easemob and Agora's application-wide attribute total: "10 GB", read
/// literally as 10^10 bytes.
const TEN_GB: u64 = 10_000_000_000;

impl Profile {
    /// Tencent Cloud room metadata (seed 000): 10 keys of ≤50 B, values
    /// ≤2048 B, ≤16384 B per room, atomic sets, 200 requests/s.
    #[must_use]
    pub const fn tencent() -> Profile {
        Profile {
            vendor: Vendor::Tencent,
            limits: Limits {
                max_keys_per_room: Some(10),
                max_ops_per_write: 10,
                locks: AGORA_LOCKS,
                max_key_len: 50,
                key_unit: Unit::Bytes,
                max_value_len: 2048,
                value_unit: Unit::Bytes,
                key_charset: Charset::Any,
                max_room_value_bytes: Some(16384),
                max_engine_value_bytes: None,
                request_rate: Some(Rate { per_second: 200 }),
                notification_flow: None,
                disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
                queue: NETEASE_QUEUE,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: Rules {
                writer_must_be_member: false,
                default_auto_delete: false,
                owner_on_overwrite: OwnerRule::Keep,
                set_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
                delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
                reject_if_nothing_deleted: true,
            },
            codes: VendorCodes {
                invalid_parameter: Some(100_002),
                room_exists: Some(100_003),
                room_not_found: Some(100_002),
                no_permission: Some(100_006),
                not_in_room: Some(100_006),
                // Seed 000: "the number of keys for room metadata exceeds
                // the upper limit of 10" is 100500, in a request as in a room.
                too_many_ops: Some(100_500),
                key_count: Some(100_500),
                value_size: Some(100_501),
                total_size: Some(100_502),
                nothing_deleted: Some(100_503),
                ..VendorCodes::NONE
            },
        }
    }

    /// Easemob chatroom custom attributes (seed 001): 100 keys per room of
    /// ≤128 chars in `A-Za-z0-9_.-`, values ≤4096 chars, 10 per request,
    /// writer must be in the room, auto-delete by default, 100 requests/s.
    #[must_use]
    pub const fn easemob() -> Profile {
        Profile {
            vendor: Vendor::Easemob,
            limits: Limits {
                max_keys_per_room: Some(100),
                max_ops_per_write: 10,
                locks: AGORA_LOCKS,
                max_key_len: 128,
                key_unit: Unit::Chars,
                max_value_len: 4096,
                value_unit: Unit::Chars,
                key_charset: Charset::Restricted,
                max_room_value_bytes: None,
                max_engine_value_bytes: Some(TEN_GB),
                request_rate: Some(Rate { per_second: 100 }),
                notification_flow: None,
                disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
                queue: NETEASE_QUEUE,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: Rules {
                writer_must_be_member: true,
                default_auto_delete: true,
                owner_on_overwrite: OwnerRule::OperatorWhenForced,
                set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
                delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
                reject_if_nothing_deleted: false,
            },
            codes: VendorCodes {
                invalid_parameter: Some(400),
                not_in_room: Some(401),
                too_many_ops: Some(400),
                ..VendorCodes::NONE
            },
        }
    }

    /// Agora Chat chatroom custom attributes (seed 002): as Easemob, but
    /// values are limited to 4086 chars.
    #[must_use]
    pub const fn agora_chat() -> Profile {
        let mut p = Profile::easemob();
        p.vendor = Vendor::AgoraChat;
        p.limits.max_value_len = 4086;
        p
    }

    /// NetEase Yunxin chatroom queue (seed 003): keys ≤128 chars, values
    /// ≤4096 chars, the updater becomes the owner, notification flow
    /// 20/s normal and 10/s high per room.
    ///
    /// NetEase has no attribute API; its attribute limits follow the queue's
    /// (20 ops per write, as a batch offer).
    #[must_use]
    pub const fn netease() -> Profile {
        Profile {
            vendor: Vendor::NetEase,
            limits: Limits {
                max_keys_per_room: None,
                max_ops_per_write: 20,
                locks: AGORA_LOCKS,
                max_key_len: 128,
                key_unit: Unit::Chars,
                max_value_len: 4096,
                value_unit: Unit::Chars,
                key_charset: Charset::Any,
                max_room_value_bytes: None,
                max_engine_value_bytes: None,
                request_rate: None,
                notification_flow: Some(Flow {
                    normal_per_second: 20,
                    high_per_second: 10,
                }),
                disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
                queue: NETEASE_QUEUE,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: Rules {
                writer_must_be_member: false,
                default_auto_delete: false,
                owner_on_overwrite: OwnerRule::Operator,
                set_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
                delete_policy: PolicyRule::Fixed(BatchPolicy::BestEffort),
                reject_if_nothing_deleted: false,
            },
            codes: VendorCodes {
                invalid_parameter: Some(414),
                room_not_found: Some(414),
                no_permission: Some(403),
                not_in_room: Some(302),
                too_many_ops: Some(414),
                key_count: Some(414),
                value_size: Some(414),
                total_size: Some(414),
                rate_limited: Some(416),
                ..VendorCodes::NONE
            },
        }
    }

    /// ZEGO ZIM room attributes (seed 004 and ZEGO's public limits): 20 keys
    /// per room of ≤16 B, values ≤1024 B, ≤5120 B per room, 20 ops per
    /// request, 20 requests/s. The policy is the request's (`StopOnError=1`
    /// is [`BatchPolicy::StopOnError`]); best effort when it names none, as
    /// `StopOnError` defaults to off.
    #[must_use]
    pub const fn zego() -> Profile {
        Profile {
            vendor: Vendor::Zego,
            limits: Limits {
                max_keys_per_room: Some(20),
                max_ops_per_write: 20,
                locks: AGORA_LOCKS,
                max_key_len: 16,
                key_unit: Unit::Bytes,
                max_value_len: 1024,
                value_unit: Unit::Bytes,
                key_charset: Charset::Any,
                max_room_value_bytes: Some(5120),
                max_engine_value_bytes: None,
                request_rate: Some(Rate { per_second: 20 }),
                notification_flow: None,
                disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
                queue: NETEASE_QUEUE,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: Rules {
                writer_must_be_member: false,
                default_auto_delete: false,
                owner_on_overwrite: OwnerRule::Keep,
                set_policy: PolicyRule::PerRequest(BatchPolicy::BestEffort),
                delete_policy: PolicyRule::PerRequest(BatchPolicy::BestEffort),
                reject_if_nothing_deleted: false,
            },
            codes: VendorCodes {
                invalid_parameter: Some(660_000_002),
                too_many_ops: Some(660_000_002),
                rate_limited: Some(660_300_005),
                ..VendorCodes::NONE
            },
        }
    }

    /// The five built-in profiles, in the order of SPEC §7.
    #[must_use]
    pub const fn builtins() -> [Profile; 5] {
        [
            Profile::tencent(),
            Profile::easemob(),
            Profile::agora_chat(),
            Profile::netease(),
            Profile::zego(),
        ]
    }

    /// The vendor's code for an error class, if it documents one.
    #[must_use]
    pub fn code(&self, class: ErrorClass) -> Option<VendorCode> {
        self.codes.code(class)
    }

    /// Agora Signaling (RTM 2.x) channel metadata and locks: keys of at
    /// most 32 printable ASCII characters, 16 KB per item and per channel's
    /// set, whole sets written atomically, 10 calls per second, 32 locks
    /// per channel with names of at most 64 ASCII characters and TTLs of
    /// 10–300 s, Agora's negative SDK codes.
    ///
    /// Agora's 10 calls/s is per client; the engine's bucket is per
    /// application, so this profile approximates it (one client's rate,
    /// shared by all). Agora documents no item count per channel, so the
    /// 16 KB set bounds it; writes carry at most 100 items (an engine
    /// bound, not Agora's). Ownership is the engine's (an overwrite by
    /// another user needs `force`), where Agora keeps only an author.
    #[must_use]
    pub const fn agora_rtm() -> Profile {
        Profile {
            vendor: Vendor::AgoraRtm,
            limits: Limits {
                max_keys_per_room: None,
                max_ops_per_write: 100,
                locks: AGORA_LOCKS,
                max_key_len: 32,
                key_unit: Unit::Bytes,
                max_value_len: 16 * 1024,
                value_unit: Unit::Bytes,
                key_charset: Charset::Ascii,
                max_room_value_bytes: Some(16 * 1024),
                max_engine_value_bytes: None,
                request_rate: Some(Rate { per_second: 10 }),
                notification_flow: None,
                disconnect_grace_ms: DEFAULT_DISCONNECT_GRACE_MS,
                queue: NETEASE_QUEUE,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: Rules {
                writer_must_be_member: false,
                default_auto_delete: false,
                owner_on_overwrite: OwnerRule::OperatorWhenForced,
                set_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
                delete_policy: PolicyRule::Fixed(BatchPolicy::Atomic),
                reject_if_nothing_deleted: false,
            },
            codes: VendorCodes {
                invalid_parameter: Some(-12004),
                key_count: Some(-12002),
                value_size: Some(-12012),
                total_size: Some(-12006),
                key_length: Some(-12011),
                conflict: Some(-12005),
                revision_outdated: Some(-12014),
                lock_name: Some(-14005),
                lock_exists: Some(-14004),
                lock_not_found: Some(-14008),
                lock_held: Some(-14007),
                lock_not_acquired: Some(-14006),
                write_lock_not_held: Some(-12008),
                ..VendorCodes::NONE
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::String;

    use super::Unit;

    /// `exceeds` is `len(s) > max` for every mix of one- to four-byte
    /// characters up to 13 of them, and every `max` around their lengths:
    /// the byte shortcuts' boundaries (exactly `max` bytes, exactly
    /// `4 × max` bytes of four-byte characters) included.
    #[test]
    fn exceeds_agrees_with_the_length() {
        let mut checked = 0;
        for n in 0..=13usize {
            for pick in 0..4usize.pow(3) {
                // Character i is choice i % 3 of `pick`: three choices
                // cycled over n characters, the four pure runs among them.
                let mut s = String::new();
                for i in 0..n {
                    s.push(match (pick >> (2 * (i % 3))) & 3 {
                        0 => 'a',
                        1 => 'é',
                        2 => '€',
                        _ => '𝄞',
                    });
                }
                for unit in [Unit::Bytes, Unit::Chars] {
                    for max in 0..=60 {
                        assert_eq!(
                            unit.exceeds(&s, max),
                            unit.len(&s) > max,
                            "{unit:?} {s:?} max {max}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 14 * 64 * 2 * 61);
    }
}
