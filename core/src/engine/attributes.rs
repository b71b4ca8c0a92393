//! Attribute writes and reads (SPEC §4): request checks, a dry run that
//! decides every op, then the apply and its one event.

use alloc::vec::Vec;

use super::Engine;
use crate::command::{Actor, Expect, Op, Write};
use crate::error::{OpError, Rejection};
use crate::event::{Cause, Change};
use crate::outcome::{BatchReport, OpFailure, Outcome, ReadReport, Success};
use crate::profile::{BatchPolicy, Limits, OwnerRule, PolicyRule, Profile, Unit};
use crate::text::Str;
use crate::time::Millis;

use super::commit;

/// How one op of a write fared in the dry run.
struct Shadow<'a> {
    owner: &'a Actor,
    bytes: u64,
    revision: u64,
}

impl Engine {
    pub(super) fn write(&mut self, now: Millis, w: Write) -> Outcome {
        let Profile { limits, rules, .. } = self.profile;
        let room = self
            .rooms
            .get_mut(&*w.room)
            .ok_or(Rejection::RoomNotFound)?;
        if w.ops.is_empty() {
            return Err(Rejection::Empty);
        }
        if w.ops.len() > limits.max_ops_per_write as usize {
            return Err(Rejection::TooManyOps {
                max: limits.max_ops_per_write,
            });
        }
        let has_set = w.ops.iter().any(|op| matches!(op, Op::Set { .. }));
        let rule = if has_set {
            rules.set_policy
        } else {
            rules.delete_policy
        };
        let policy = match (rule, w.policy) {
            (PolicyRule::Fixed(p), None) => p,
            (PolicyRule::Fixed(p), Some(q)) if p == q => p,
            (PolicyRule::Fixed(_), Some(_)) => return Err(Rejection::PolicyNotAllowed),
            (PolicyRule::PerRequest(d), q) => q.unwrap_or(d),
        };
        if let Actor::User(u) = &w.operator {
            if rules.writer_must_be_member && !room.is_present(u) {
                return Err(Rejection::NotInRoom);
            }
        }
        let take_owner = w.update_owner
            || match rules.owner_on_overwrite {
                OwnerRule::Keep => false,
                OwnerRule::OperatorWhenForced => w.force,
                OwnerRule::Operator => true,
            };

        // Dry run: decide every op against the state the ops before it leave.
        let new_seq = room.seq.saturating_add(1);
        let mut overlay: Vec<(&str, Option<Shadow<'_>>)> = Vec::new();
        // Slot positions seen by the dry run, for the first ops of a batch.
        let mut hints: heapless::Vec<(usize, Option<usize>), 8> = heapless::Vec::new();
        let attrs = &room.attrs;
        let mut failed: Vec<OpFailure> = Vec::new();
        let mut keys = room.attrs.len();
        let mut room_bytes = room.value_bytes;
        let mut engine_bytes = self.value_bytes;
        let last = w.ops.len() - 1;
        for (i, op) in w.ops.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if policy == BatchPolicy::StopOnError && !failed.is_empty() {
                failed.push(OpFailure {
                    index,
                    key: op.key().clone(),
                    error: OpError::NotAttempted,
                });
                continue;
            }
            let current = match overlay.iter().rev().find(|(k, _)| *k == &**op.key()) {
                Some((_, s)) => s.as_ref().map(|s| (s.owner, s.bytes, s.revision)),
                None => {
                    let pos = attrs.position(op.key());
                    // Remember where the key was, so applying the op need
                    // not hash it again (a hint: checked before use).
                    let _ = hints.push((i, pos));
                    pos.and_then(|p| attrs.at(p))
                        .map(|s| (&s.attr.owner, s.attr.value.len() as u64, s.attr.revision))
                }
            };
            let verdict =
                check_op(op, &w.operator, w.force, current.as_ref(), &limits).and_then(|()| {
                    let Op::Set { value, .. } = op else {
                        return Ok(());
                    };
                    let old_bytes = current.as_ref().map_or(0, |c| c.1);
                    if current.is_none()
                        && limits.max_keys_per_room.is_some_and(|m| keys >= m as usize)
                    {
                        return Err(OpError::KeyCountLimit);
                    }
                    let new_room = room_bytes - old_bytes + value.len() as u64;
                    if limits.max_room_value_bytes.is_some_and(|m| new_room > m) {
                        return Err(OpError::RoomSizeLimit);
                    }
                    let new_engine = engine_bytes - old_bytes + value.len() as u64;
                    if limits
                        .max_engine_value_bytes
                        .is_some_and(|m| new_engine > m)
                    {
                        return Err(OpError::EngineSizeLimit);
                    }
                    Ok(())
                });
            match verdict {
                Err(error) if policy == BatchPolicy::Atomic => {
                    return Err(Rejection::Op { index, error });
                }
                Err(error) => failed.push(OpFailure {
                    index,
                    key: op.key().clone(),
                    error,
                }),
                Ok(()) => {
                    let old_bytes = current.as_ref().map_or(0, |c| c.1);
                    let shadow = match op {
                        Op::Set { value, .. } => {
                            if current.is_none() {
                                keys += 1;
                            }
                            let bytes = value.len() as u64;
                            room_bytes = room_bytes - old_bytes + bytes;
                            engine_bytes = engine_bytes - old_bytes + bytes;
                            let owner = match current {
                                Some((owner, ..)) if !take_owner => owner,
                                _ => &w.operator,
                            };
                            Some(Shadow {
                                owner,
                                bytes,
                                revision: new_seq,
                            })
                        }
                        Op::Delete { .. } => {
                            keys -= 1;
                            room_bytes -= old_bytes;
                            engine_bytes -= old_bytes;
                            None
                        }
                    };
                    if i < last {
                        overlay.push((op.key(), shadow));
                    }
                }
            }
        }
        drop(overlay);

        let applied = w.ops.len() - failed.len();
        if applied == 0 {
            if !has_set && rules.reject_if_nothing_deleted {
                return Err(Rejection::NothingDeleted);
            }
            return Ok(Success::Written(BatchReport {
                seq: room.seq,
                applied: 0,
                failed,
            }));
        }

        // Apply what the dry run accepted; nothing here can fail.
        let before = room.value_bytes;
        let mut changes = Vec::with_capacity(applied);
        let mut fails = failed.iter().map(|f| f.index as usize).peekable();
        for (i, op) in w.ops.into_iter().enumerate() {
            if fails.peek() == Some(&i) {
                fails.next();
                continue;
            }
            match op {
                Op::Set {
                    key,
                    value,
                    auto_delete,
                    ..
                } => {
                    let auto = auto_delete.unwrap_or(rules.default_auto_delete);
                    let hint = hints.iter().find(|(j, _)| *j == i).and_then(|(_, p)| *p);
                    changes.push(room.put_attr(
                        key,
                        value,
                        &w.operator,
                        take_owner,
                        auto,
                        new_seq,
                        now,
                        hint,
                    ));
                }
                Op::Delete { key, .. } => {
                    if room.delete_attr(&key).is_some() {
                        changes.push(Change::AttributeDeleted { key });
                    }
                }
            }
        }
        self.value_bytes = self.value_bytes - before + room.value_bytes;
        let cause = if w.force {
            Cause::Forced
        } else {
            Cause::Written
        };
        commit(
            &mut self.events,
            &self.profile,
            room,
            now,
            w.operator,
            cause,
            changes,
            None,
        );
        Ok(Success::Written(BatchReport {
            seq: room.seq,
            applied: u32::try_from(applied).unwrap_or(u32::MAX),
            failed,
        }))
    }

    pub(super) fn read(&self, id: &str, keys: Option<&[Str]>) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let attributes = match keys {
            Some([]) => return Err(Rejection::Empty),
            None => room.attrs.iter().map(|s| s.attr.clone()).collect(),
            Some(keys) => {
                let mut found: Vec<usize> =
                    keys.iter().filter_map(|k| room.attrs.position(k)).collect();
                found.sort_unstable();
                found.dedup();
                found
                    .into_iter()
                    .filter_map(|p| room.attrs.at(p).map(|s| s.attr.clone()))
                    .collect()
            }
        };
        Ok(Success::Read(ReadReport {
            seq: room.seq,
            attributes,
        }))
    }
}

/// Steps 1–3 of SPEC §4 for one op: key and value shape, expectation,
/// existence and ownership. `current` is `(owner, value bytes, revision)`.
fn check_op(
    op: &Op,
    operator: &Actor,
    force: bool,
    current: Option<&(&Actor, u64, u64)>,
    limits: &Limits,
) -> Result<(), OpError> {
    let key = op.key();
    check_key(key, limits.max_key_len, limits.key_unit)?;
    if !limits.key_charset.allows(key) {
        return Err(OpError::KeyCharset);
    }
    let expect = match op {
        Op::Set { value, expect, .. } => {
            if limits.value_unit.len(value) > limits.max_value_len as usize {
                return Err(OpError::ValueTooLong);
            }
            expect
        }
        Op::Delete { expect, .. } => expect,
    };
    let revision = current.map(|c| c.2);
    match expect {
        Some(Expect::Absent) if revision.is_some() => {
            return Err(OpError::Conflict { current: revision })
        }
        Some(Expect::Revision(n)) if revision != Some(*n) => {
            return Err(OpError::Conflict { current: revision })
        }
        _ => {}
    }
    match current {
        None if matches!(op, Op::Delete { .. }) => Err(OpError::NotFound),
        Some((owner, ..)) if !force && matches!(operator, Actor::User(_)) && *owner != operator => {
            Err(OpError::NotOwner)
        }
        _ => Ok(()),
    }
}

pub(crate) fn check_key(key: &str, max: u32, unit: Unit) -> Result<(), OpError> {
    if key.is_empty() {
        Err(OpError::KeyEmpty)
    } else if unit.len(key) > max as usize {
        Err(OpError::KeyTooLong)
    } else {
        Ok(())
    }
}
