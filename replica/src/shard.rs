//! Rooms to Raft groups: a stable hash of the room id, then jump
//! consistent hash onto the groups.
//!
//! The same room lands in the same group on every node, every process and
//! every build: FNV-1a 64 of the id's UTF-8 bytes (no seed, unlike std's
//! `RandomState`), then Lamping and Veach's jump consistent hash, which
//! moves only `1/(n+1)` of the rooms when a group is added.

use crate::router::GroupId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`: a stable, seedless hash.
#[must_use]
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Jump consistent hash: the bucket in `0..buckets` for `key`
/// (`buckets == 0` gives 0).
#[must_use]
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let n = i64::from(buckets.max(1));
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < n {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // (b + 1) * 2^31 / ((key >> 33) + 1), in floating point as in the
        // paper; the result is below n, so it fits.
        let r = ((key >> 33) + 1) as f64;
        j = (((b + 1) as f64) * ((1u64 << 31) as f64 / r)) as i64;
    }
    u32::try_from(b.max(0)).unwrap_or(0)
}

/// The group that serves `room` among `groups` groups.
#[must_use]
pub fn group_of(room: &str, groups: u32) -> GroupId {
    jump_consistent_hash(fnv1a64(room.as_bytes()), groups)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // Vectors from the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn jump_hash_matches_the_papers_values_and_is_balanced() {
        // Values of the reference implementation (Lamping & Veach, 2014).
        assert_eq!(jump_consistent_hash(0, 1), 0);
        assert_eq!(jump_consistent_hash(0, 60), 0);
        assert_eq!(jump_consistent_hash(1, 60), 55);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            let g = group_of(&format!("room-{i}"), 4) as usize;
            counts[g] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "unbalanced: {counts:?}");
        }
    }

    #[test]
    fn jump_hash_moves_only_the_new_groups_share() {
        let mut moved = 0;
        for i in 0..4000 {
            let room = format!("room-{i}");
            let (a, b) = (group_of(&room, 4), group_of(&room, 5));
            if a != b {
                assert_eq!(b, 4, "a room moved between old groups");
                moved += 1;
            }
        }
        assert!((600..1000).contains(&moved), "moved {moved}");
    }

    /// The paper's step in exact integer arithmetic: floor((b + 1) · 2^31 /
    /// ((key >> 33) + 1)). The floating-point step can differ only where
    /// that quotient lies within a rounding error of an integer; below
    /// 2^20 buckets the error is under 2^-20, and none of the keys below
    /// comes that close.
    fn exact_jump(mut key: u64, buckets: u32) -> u32 {
        let n = u128::from(buckets.max(1));
        let (mut b, mut j) = (0u128, 0u128);
        while j < n {
            b = j;
            key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
            j = ((b + 1) << 31) / (u128::from(key >> 33) + 1);
        }
        u32::try_from(b).unwrap_or(u32::MAX)
    }

    #[test]
    fn jump_hash_agrees_with_exact_arithmetic_over_many_buckets() {
        // With many buckets the later steps' quotients are large, so a
        // divisor off by one ((key >> 33) instead of (key >> 33) + 1)
        // moves their floor often; a few buckets would hide it.
        for buckets in [1, 2, 7, 1_000, 65_536, (1 << 20) - 1] {
            let mut key = 0x9e37_79b9_7f4a_7c15u64;
            for _ in 0..2_000 {
                key = key.rotate_left(17) ^ key.wrapping_mul(0xbf58_476d_1ce4_e5b9);
                assert_eq!(
                    jump_consistent_hash(key, buckets),
                    exact_jump(key, buckets),
                    "key {key:#x}, {buckets} buckets"
                );
            }
        }
    }
}
