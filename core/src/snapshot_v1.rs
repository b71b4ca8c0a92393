//! Reading version-1 snapshots: their profile predates the counter and
//! history limits, and their rooms have no counters or TTL deadlines.
//!
//! A version-1 profile gets the built-ins' values for the new limits
//! (Tencent's 20 counters of ≤128 B, 256 events / 64 KiB of history), so a
//! version-1 snapshot of a built-in profile restores under that built-in.

use serde::Deserialize;

use crate::profile::{
    Charset, Flow, Limits, Profile, QueueLimits, Rate, Rules, Unit, Vendor, VendorCodes,
    DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, TENCENT_COUNTERS_PER_ROOM,
    TENCENT_COUNTER_KEY_BYTES,
};

/// [`Profile`] as version 1 wrote it.
#[derive(Deserialize)]
pub(crate) struct ProfileV1 {
    vendor: Vendor,
    limits: LimitsV1,
    rules: Rules,
    codes: VendorCodes,
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
        Profile {
            vendor: p.vendor,
            limits: Limits {
                max_keys_per_room: l.max_keys_per_room,
                max_ops_per_write: l.max_ops_per_write,
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
            codes: p.codes,
        }
    }
}
