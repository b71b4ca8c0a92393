//! Reading version-1 snapshots: their profile predates locks, signed
//! vendor codes, the Agora Signaling vendor, and the counter and history
//! limits; their rooms have no major revision, locks, counters or TTL
//! deadlines.
//!
//! A version-1 profile gets the built-ins' values for the new limits
//! (Agora's lock limits, Tencent's 20 counters of ≤128 B, 256 events /
//! 64 KiB of history) and no code for the error classes added since (none
//! of the five version-1 built-ins has one: only Agora Signaling, which
//! version 1 did not know, does), so a version-1 snapshot of a built-in
//! profile restores under that built-in's current values where version 1
//! had no field.

use serde::Deserialize;

use crate::profile::{
    Charset, Flow, Limits, Profile, QueueLimits, Rate, Rules, Unit, Vendor, VendorCode,
    VendorCodes, AGORA_LOCKS, DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS,
    TENCENT_COUNTERS_PER_ROOM, TENCENT_COUNTER_KEY_BYTES,
};

/// [`Vendor`] as version 1 wrote it (before `AgoraRtm`, which moved
/// `Custom`'s variant number).
#[derive(Deserialize)]
enum VendorV1 {
    Tencent,
    Easemob,
    AgoraChat,
    NetEase,
    Zego,
    Custom,
}

impl From<VendorV1> for Vendor {
    fn from(v: VendorV1) -> Vendor {
        match v {
            VendorV1::Tencent => Vendor::Tencent,
            VendorV1::Easemob => Vendor::Easemob,
            VendorV1::AgoraChat => Vendor::AgoraChat,
            VendorV1::NetEase => Vendor::NetEase,
            VendorV1::Zego => Vendor::Zego,
            VendorV1::Custom => Vendor::Custom,
        }
    }
}

/// [`VendorCodes`] as version 1 wrote it: unsigned, one per error class
/// of the time.
#[derive(Deserialize)]
struct VendorCodesV1 {
    invalid_parameter: Option<u32>,
    room_exists: Option<u32>,
    room_not_found: Option<u32>,
    no_permission: Option<u32>,
    not_in_room: Option<u32>,
    too_many_ops: Option<u32>,
    key_count: Option<u32>,
    value_size: Option<u32>,
    total_size: Option<u32>,
    nothing_deleted: Option<u32>,
    rate_limited: Option<u32>,
}

impl VendorCodesV1 {
    /// The version-1 codes, and none for the classes added since.
    fn into_codes(self) -> VendorCodes {
        let c = |v: Option<u32>| v.map(VendorCode::from);
        VendorCodes {
            invalid_parameter: c(self.invalid_parameter),
            room_exists: c(self.room_exists),
            room_not_found: c(self.room_not_found),
            no_permission: c(self.no_permission),
            not_in_room: c(self.not_in_room),
            too_many_ops: c(self.too_many_ops),
            key_count: c(self.key_count),
            value_size: c(self.value_size),
            total_size: c(self.total_size),
            nothing_deleted: c(self.nothing_deleted),
            rate_limited: c(self.rate_limited),
            ..VendorCodes::NONE
        }
    }
}

/// [`Profile`] as version 1 wrote it.
#[derive(Deserialize)]
pub(crate) struct ProfileV1 {
    vendor: VendorV1,
    limits: LimitsV1,
    rules: Rules,
    codes: VendorCodesV1,
}

/// [`Limits`] as version 1 wrote it: the same fields, up to `queue`.
#[derive(Deserialize)]
struct LimitsV1 {
    max_keys_per_room: Option<u32>,
    max_ops_per_write: u32,
    max_key_len: u32,
    key_unit: Unit,
    max_value_len: u32,
    value_unit: Unit,
    key_charset: Charset,
    max_room_value_bytes: Option<u64>,
    max_engine_value_bytes: Option<u64>,
    request_rate: Option<Rate>,
    notification_flow: Option<Flow>,
    disconnect_grace_ms: u64,
    queue: QueueLimits,
}

impl From<ProfileV1> for Profile {
    fn from(p: ProfileV1) -> Profile {
        let l = p.limits;
        let vendor = Vendor::from(p.vendor);
        Profile {
            vendor,
            limits: Limits {
                max_keys_per_room: l.max_keys_per_room,
                max_ops_per_write: l.max_ops_per_write,
                locks: AGORA_LOCKS,
                max_key_len: l.max_key_len,
                key_unit: l.key_unit,
                max_value_len: l.max_value_len,
                value_unit: l.value_unit,
                key_charset: l.key_charset,
                max_room_value_bytes: l.max_room_value_bytes,
                max_engine_value_bytes: l.max_engine_value_bytes,
                request_rate: l.request_rate,
                notification_flow: l.notification_flow,
                disconnect_grace_ms: l.disconnect_grace_ms,
                queue: l.queue,
                max_counters_per_room: Some(TENCENT_COUNTERS_PER_ROOM),
                max_counter_key_len: TENCENT_COUNTER_KEY_BYTES,
                history_events: DEFAULT_HISTORY_EVENTS,
                history_bytes: DEFAULT_HISTORY_BYTES,
            },
            rules: p.rules,
            codes: p.codes.into_codes(),
        }
    }
}
