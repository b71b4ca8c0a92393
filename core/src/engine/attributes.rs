//! Attribute writes and reads (SPEC §4). A write reads top-down:
//! [`Engine::write`] dispatches; [`write_policy`] and the membership check
//! are the request-level checks; [`plan`] is the dry run that decides every
//! op against the state the ops before it leave; [`apply`] changes the
//! room; [`commit`] emits the one event.

use alloc::vec::Vec;

use super::ttl::{self, TtlTimers};
use super::{commit, locks, Engine, Output};
use crate::command::{Actor, Expect, Op, Write};
use crate::error::{OpError, Rejection};
use crate::event::{Cause, Change};
use crate::outcome::{BatchReport, OpFailure, Outcome, ReadReport, Success};
use crate::profile::{BatchPolicy, Limits, OwnerRule, PolicyRule, Profile, Rules, Unit};
use crate::room::Room;
use crate::stamp::Stamp;
use crate::store::ADMIN;
use crate::text::Str;
use crate::time::Millis;

/// An owner as the dry run sees it: an interned number, or `None` for
/// the operator when it has no record yet (it owns nothing stored).
pub(crate) type Who = Option<u32>;

/// A key's state as the dry run sees it: `(owner, value bytes, revision)`.
pub(crate) type Current = (Who, u64, u64);

/// What the ops before the one being decided did to their keys: `(op
/// index, state after; None: deleted)`. A buffer the engine reuses, so a
/// batch of several ops allocates nothing in steady state.
pub(crate) type Overlay = Vec<(usize, Option<Current>)>;

/// What the dry run learned about the first ops' keys, so the apply need
/// not hash or look them up again: `(op index, key hash, position)`.
type Hints = heapless::Vec<(usize, u64, Option<u32>), 8>;

impl Engine {
    pub(super) fn write(&mut self, now: Millis, w: Write) -> Outcome {
        let Profile { limits, rules, .. } = self.profile;
        let room = self.rooms.get_mut(&w.room).ok_or(Rejection::RoomNotFound)?;
        let policy = write_policy(&w, &limits, &rules)?;
        ttl::check_ttls(&w, now)?;
        // A single op's key is looked up once, here: its owner is nearly
        // always the operator, whose number it then gives without a search
        // of the room's users (one record read instead of a hash and a
        // scan; issue 9's cold writes).
        let single = match w.ops.as_slice() {
            [op] => {
                let hash = room.hash(op.key());
                Some((hash, room.attrs.find(hash, op.key())))
            }
            _ => None,
        };
        let operator: Who = match (&w.operator, single) {
            (Actor::User(u), Some((_, Some(pos)))) => room.user_owning(pos, u),
            _ => room.find_owner(&w.operator),
        };
        if let Actor::User(_) = &w.operator {
            let present = operator
                .and_then(|n| room.users.get(n))
                .is_some_and(|r| r.is_present());
            if rules.writer_must_be_member && !present {
                return Err(Rejection::NotInRoom);
            }
        }
        locks::check_fence(room, &w.operator, w.lock.as_ref())?;
        if let Some(expected) = w.major_revision {
            if expected != room.attr_rev {
                return Err(Rejection::RevisionOutdated {
                    current: room.attr_rev,
                });
            }
        }
        let take_owner = w.update_owner
            || match rules.owner_on_overwrite {
                OwnerRule::Keep => false,
                OwnerRule::OperatorWhenForced => w.force,
                OwnerRule::Operator => true,
            };

        if let Some(found) = single {
            return write_one(
                &mut self.out,
                &mut self.ttls,
                &mut self.value_bytes,
                &self.profile,
                room,
                now,
                w,
                found,
                operator,
                policy,
                take_owner,
            );
        }

        let new_seq = room.seq.saturating_add(1);
        let (failed, hints) = plan(
            &w,
            &mut self.out.overlay,
            room,
            operator,
            take_owner,
            policy,
            &limits,
            self.value_bytes,
            new_seq,
        )?;
        let applied = w.ops.len() - failed.len();
        if applied == 0 {
            let has_set = w.ops.iter().any(|op| matches!(op, Op::Set { .. }));
            if !has_set && rules.reject_if_nothing_deleted {
                return Err(Rejection::NothingDeleted);
            }
            return Ok(Success::Written(BatchReport {
                seq: room.seq,
                applied: 0,
                failed,
            }));
        }

        let before = room.value_bytes;
        let cause = if w.force {
            Cause::Forced
        } else {
            Cause::Written
        };
        let operator_actor = w.operator.clone();
        let changes = apply(
            &mut self.out,
            &mut self.ttls,
            now,
            room,
            w,
            operator,
            &failed,
            &hints,
            take_owner,
            rules.default_auto_delete,
            Stamp {
                revision: new_seq,
                at: now,
            },
        );
        self.value_bytes = self.value_bytes - before + room.value_bytes;
        commit(
            &mut self.out,
            &self.profile,
            room,
            now,
            operator_actor,
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
            None => {
                let mut all = Vec::with_capacity(room.attrs.len());
                all.extend(room.attrs.positions().filter_map(|p| room.attribute(p)));
                all
            }
            Some(keys) => {
                let mut found: Vec<u32> = keys
                    .iter()
                    .filter_map(|k| room.attrs.find(room.hash(k), k))
                    .collect();
                found.sort_unstable();
                found.dedup();
                found
                    .into_iter()
                    .filter_map(|p| room.attribute(p))
                    .collect()
            }
        };
        Ok(Success::Read(ReadReport {
            seq: room.seq,
            attributes,
        }))
    }
}

/// The request-level checks of a write, in order: at least one op, at
/// most `max_ops_per_write`, a request policy the profile allows. Returns
/// the batch policy in force.
fn write_policy(w: &Write, limits: &Limits, rules: &Rules) -> Result<BatchPolicy, Rejection> {
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
    match (rule, w.policy) {
        (PolicyRule::Fixed(p), None) => Ok(p),
        (PolicyRule::Fixed(p), Some(q)) if p == q => Ok(p),
        (PolicyRule::Fixed(_), Some(_)) => Err(Rejection::PolicyNotAllowed),
        (PolicyRule::PerRequest(d), q) => Ok(q.unwrap_or(d)),
    }
}

/// The dry run: decides every op, in order, against the state the ops
/// before it leave, without changing the room. Returns the failed ops (an
/// `Atomic` batch's first failure rejects the whole command) and the hints
/// the apply reuses.
#[allow(clippy::too_many_arguments)] // the write and the state it is judged against
fn plan(
    w: &Write,
    overlay: &mut Overlay,
    room: &Room,
    operator: Who,
    take_owner: bool,
    policy: BatchPolicy,
    limits: &Limits,
    engine_bytes: u64,
    new_seq: u64,
) -> Result<(Vec<OpFailure>, Hints), Rejection> {
    // What the ops before this one did to their keys (none for the last
    // op, which nothing after it reads): `None` deleted.
    overlay.clear();
    let mut hints = Hints::new();
    let mut failed: Vec<OpFailure> = Vec::new();
    let mut keys = room.attrs.len();
    let mut room_bytes = room.value_bytes;
    let mut engine_bytes = engine_bytes;
    let last = w.ops.len() - 1;
    for (i, op) in w.ops.iter().enumerate() {
        let index = i;
        if policy == BatchPolicy::StopOnError && !failed.is_empty() {
            failed.push(OpFailure {
                index,
                key: op.key().clone(),
                error: OpError::NotAttempted,
            });
            continue;
        }
        let earlier = overlay
            .iter()
            .rev()
            .find(|(j, _)| w.ops.get(*j).is_some_and(|o| o.key() == op.key()));
        let current: Option<Current> = match earlier {
            Some((_, c)) => *c,
            None => {
                let hash = room.hash(op.key());
                let pos = room.attrs.find(hash, op.key());
                let _ = hints.push((i, hash, pos));
                pos.and_then(|p| room.attrs.entry(p)).map(|(m, len)| {
                    let revision = room.revision_of(op.key(), m.x);
                    (Some(m.owner()), u64::from(len), revision)
                })
            }
        };
        let old_bytes = current.map_or(0, |c| c.1);
        let verdict = check_op(op, &w.operator, operator, w.force, current, limits)
            .and_then(|()| check_limits(op, current, keys, room_bytes, engine_bytes, limits));
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
                let after = match op {
                    Op::Set { value, .. } => {
                        if current.is_none() {
                            keys += 1;
                        }
                        let bytes = value.len() as u64;
                        room_bytes = room_bytes - old_bytes + bytes;
                        engine_bytes = engine_bytes - old_bytes + bytes;
                        let owner = match current {
                            Some((owner, ..)) if !take_owner => owner,
                            _ => operator,
                        };
                        Some((owner, bytes, new_seq))
                    }
                    Op::Delete { .. } => {
                        keys -= 1;
                        room_bytes -= old_bytes;
                        engine_bytes -= old_bytes;
                        None
                    }
                };
                if i < last {
                    overlay.push((index, after));
                }
            }
        }
    }
    Ok((failed, hints))
}

/// A write of one op: the checks and the apply of [`plan`] and [`apply`]
/// without the dry run's overlay and hints, which only a batch needs
/// (nothing before the op can have touched its key). The key was hashed
/// and looked up once, by [`Engine::write`] (`found`: the hash and the
/// position); the verdicts and the event are the batch path's.
#[allow(clippy::too_many_arguments)] // the engine's parts a write touches
#[inline(always)]
fn write_one(
    out: &mut Output,
    ttls: &mut TtlTimers,
    engine_bytes: &mut u64,
    profile: &Profile,
    room: &mut Room,
    now: Millis,
    w: Write,
    found: (u64, Option<u32>),
    operator: Who,
    policy: BatchPolicy,
    take_owner: bool,
) -> Outcome {
    let Profile { limits, rules, .. } = profile;
    let Write {
        operator: actor,
        mut ops,
        force,
        ..
    } = w;
    let Some(op) = ops.pop() else {
        return Err(Rejection::Empty);
    };
    let (hash, pos) = found;
    let key = op.key();
    let current: Option<Current> = pos
        .and_then(|p| room.attrs.entry(p))
        .map(|(m, len)| (Some(m.owner()), u64::from(len), room.revision_of(key, m.x)));
    let verdict = check_op(&op, &actor, operator, force, current, limits).and_then(|()| {
        check_limits(
            &op,
            current,
            room.attrs.len(),
            room.value_bytes,
            *engine_bytes,
            limits,
        )
    });
    if let Err(error) = verdict {
        if policy == BatchPolicy::Atomic {
            return Err(Rejection::Op { index: 0, error });
        }
        if matches!(op, Op::Delete { .. }) && rules.reject_if_nothing_deleted {
            return Err(Rejection::NothingDeleted);
        }
        return Ok(Success::Written(BatchReport {
            seq: room.seq,
            applied: 0,
            failed: alloc::vec![OpFailure {
                index: 0,
                key: op.key().clone(),
                error,
            }],
        }));
    }

    let before = room.value_bytes;
    let x = Stamp {
        revision: room.seq.saturating_add(1),
        at: now,
    };
    let mut changes = out.changes();
    // A user operator with no record gets one now if it sets: it owns what
    // it sets (unless an overwrite keeps the old owner: then the new record
    // is idle and goes again below).
    let fresh = match (&op, operator) {
        (Op::Set { .. }, None) => Some(room.owner_of(&actor).unwrap_or(ADMIN)),
        _ => None,
    };
    let owner = operator.or(fresh).unwrap_or(ADMIN);
    let at = Place {
        hash,
        pos,
        owner,
        take_owner,
    };
    apply_op(
        ttls,
        room,
        now,
        op,
        at,
        rules.default_auto_delete,
        x,
        &mut changes,
    );
    if let Some(n) = fresh {
        room.gc_user(n);
    }
    room.settle(&mut out.scratch);
    *engine_bytes = *engine_bytes - before + room.value_bytes;
    let cause = if force { Cause::Forced } else { Cause::Written };
    commit(out, profile, room, now, actor, cause, changes, None);
    Ok(Success::Written(BatchReport {
        seq: room.seq,
        applied: 1,
        failed: Vec::new(),
    }))
}

/// Applies what the dry run accepted (nothing here can fail) and returns
/// the event's changes, in request order.
#[allow(clippy::too_many_arguments)] // the write, its verdicts and what they decided
fn apply(
    out: &mut Output,
    ttls: &mut TtlTimers,
    now: Millis,
    room: &mut Room,
    w: Write,
    operator: Who,
    failed: &[OpFailure],
    hints: &Hints,
    take_owner: bool,
    default_auto_delete: bool,
    x: Stamp,
) -> Vec<Change> {
    let mut changes = out.changes();
    // A user operator with no record gets one now: it owns what it sets.
    let operator = match operator {
        Some(n) => n,
        None if w.ops.iter().any(|op| matches!(op, Op::Set { .. })) => {
            room.owner_of(&w.operator).unwrap_or(ADMIN)
        }
        None => ADMIN,
    };
    // Held for the batch: a delete of the operator's last entry must not
    // free the number a later set of the batch still uses.
    room.add_ref(operator, true);
    let mut fails = failed.iter().map(|f| f.index).peekable();
    for (i, op) in w.ops.into_iter().enumerate() {
        if fails.peek() == Some(&i) {
            fails.next();
            continue;
        }
        // Where the key lives: the dry run's hint (taken only for keys no
        // earlier op touched, so still true; a position is checked all the
        // same), else a lookup, which sees what the earlier ops did.
        let (hash, pos) = match hints.iter().find(|(j, ..)| *j == i) {
            Some(&(_, hash, pos)) if pos.is_none_or(|p| room.attrs.key_is(p, op.key())) => {
                (hash, pos)
            }
            _ => {
                let hash = room.hash(op.key());
                (hash, room.attrs.find(hash, op.key()))
            }
        };
        let at = Place {
            hash,
            pos,
            owner: operator,
            take_owner,
        };
        apply_op(
            ttls,
            room,
            now,
            op,
            at,
            default_auto_delete,
            x,
            &mut changes,
        );
    }
    room.add_ref(operator, false);
    room.settle(&mut out.scratch);
    changes
}

/// Where one op of a write lands: its key's hash and position (if stored),
/// the owner number a set gives it, and whether a set takes ownership.
struct Place {
    hash: u64,
    pos: Option<u32>,
    owner: u32,
    take_owner: bool,
}

/// Applies one checked op (both write paths): a set stores the value and
/// keeps the key's TTL deadline; a delete removes a stored key and its
/// deadline. The change, if any, goes to `changes`.
#[allow(clippy::too_many_arguments)] // the engine's parts an op touches
#[inline(always)] // once into each path: the one-op path is the hot write
fn apply_op(
    ttls: &mut TtlTimers,
    room: &mut Room,
    now: Millis,
    op: Op,
    at: Place,
    default_auto_delete: bool,
    x: Stamp,
    changes: &mut Vec<Change>,
) {
    let Place {
        hash,
        pos,
        owner,
        take_owner,
    } = at;
    match op {
        Op::Set {
            key,
            value,
            auto_delete,
            ttl,
            ..
        } => {
            // Only a key that has or gets a deadline pays for it.
            if ttl.is_some() || !room.expiry().is_empty() {
                let deadline = ttl.map(|ms| now.saturating_add(ms));
                ttl::after_set(ttls, room, &key, deadline);
            }
            let auto = auto_delete.unwrap_or(default_auto_delete);
            changes.push(room.put_attr(hash, pos, key, value, owner, take_owner, auto, x));
        }
        Op::Delete { key, .. } => {
            if pos.is_some_and(|p| room.delete_attr(hash, p)) {
                ttl::clear(ttls, room, &key);
                changes.push(Change::AttributeDeleted { key });
            }
        }
    }
}

/// Steps 1–3 of SPEC §4 for one op: key and value shape, expectation,
/// existence and ownership. `operator` is the operator's owner number.
fn check_op(
    op: &Op,
    actor: &Actor,
    operator: Who,
    force: bool,
    current: Option<Current>,
    limits: &Limits,
) -> Result<(), OpError> {
    let key = op.key();
    check_key(key, limits.max_key_len, limits.key_unit)?;
    if !limits.key_charset.allows(key) {
        return Err(OpError::KeyCharset);
    }
    let expect = match op {
        Op::Set { value, expect, .. } => {
            if limits
                .value_unit
                .exceeds(value, limits.max_value_len as usize)
            {
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
        Some(Expect::Present) if revision.is_none() => {
            return Err(OpError::Conflict { current: None })
        }
        _ => {}
    }
    match current {
        None if matches!(op, Op::Delete { .. }) => Err(OpError::NotFound),
        Some((owner, ..)) if !force && matches!(actor, Actor::User(_)) && owner != operator => {
            Err(OpError::NotOwner)
        }
        _ => Ok(()),
    }
}

/// Step 4 of SPEC §4 for a set: the key count and the room's and the
/// engine's value bytes after it, given the state before it (`keys`
/// stored, `room_bytes` and `engine_bytes` of values). A delete passes.
fn check_limits(
    op: &Op,
    current: Option<Current>,
    keys: usize,
    room_bytes: u64,
    engine_bytes: u64,
    limits: &Limits,
) -> Result<(), OpError> {
    let Op::Set { value, .. } = op else {
        return Ok(());
    };
    if current.is_none() && limits.max_keys_per_room.is_some_and(|m| keys >= m as usize) {
        return Err(OpError::KeyCountLimit);
    }
    let old_bytes = current.map_or(0, |c| c.1);
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
}

pub(crate) fn check_key(key: &str, max: u32, unit: Unit) -> Result<(), OpError> {
    if key.is_empty() {
        Err(OpError::KeyEmpty)
    } else if unit.exceeds(key, max as usize) {
        Err(OpError::KeyTooLong)
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)] // tests
mod tests {
    use super::*;
    use crate::command::{Command, Op};
    use crate::event::Event;

    fn engine(profile: Profile) -> Engine {
        let mut e = Engine::new(profile);
        let now = Millis(1);
        let _ = e.handle(
            now,
            Command::CreateRoom {
                room: "r".into(),
                creator: "host".into(),
            },
        );
        let _ = e.handle(
            now,
            Command::Join {
                room: "r".into(),
                user: "host".into(),
            },
        );
        let w = Write::new("r", Actor::user("host")).op(Op::set("k", "v0"));
        assert!(e.handle(now, Command::Write(w)).is_ok());
        e.drain_events(&mut Vec::new());
        e
    }

    fn write(e: &mut Engine, w: Write) -> (Outcome, Vec<Event>) {
        let out = e.handle(Millis(2), Command::Write(w));
        let mut evs = Vec::new();
        e.drain_events(&mut evs);
        e.check_invariants().unwrap();
        (out, evs)
    }

    // The one-op path interns a user with no record only to own what it
    // sets: a forced overwrite that keeps the old owner (Tencent: the
    // owner is kept) must not leave the stranger's idle record behind.
    #[test]
    fn a_strangers_forced_overwrite_that_keeps_the_owner_leaves_no_record() {
        let mut e = engine(Profile::tencent());
        let w = Write::new("r", Actor::user("stranger"))
            .op(Op::set("k", "v1"))
            .forced();
        let (out, evs) = write(&mut e, w);
        assert!(matches!(
            out,
            Ok(Success::Written(BatchReport { applied: 1, .. }))
        ));
        let ch = &evs[0].changes;
        assert!(
            matches!(&ch[..], [Change::AttributeSet { owner, value, .. }]
                if *owner == Actor::user("host") && value.as_str() == "v1")
        );
        let room = e.room("r").unwrap();
        assert_eq!(
            room.attribute("k").unwrap().owner_actor(),
            Actor::user("host")
        );
        // The same op as a new key: now the stranger owns it, and keeps a record.
        let w = Write::new("r", Actor::user("stranger")).op(Op::set("k2", "v"));
        let (out, _) = write(&mut e, w);
        assert!(out.is_ok());
        let room = e.room("r").unwrap();
        assert_eq!(
            room.attribute("k2").unwrap().owner_actor(),
            Actor::user("stranger")
        );
    }

    // A one-op write reports its failure as a batch of one would: Atomic
    // rejects the command, BestEffort reports op 0 failed and changes
    // nothing, a delete of nothing is `NothingDeleted` where the profile
    // says so.
    #[test]
    fn a_failed_single_op_is_reported_by_the_batch_policy() {
        // Tencent sets are Atomic: another user's key is rejected outright.
        let mut e = engine(Profile::tencent());
        let seq = e.room("r").unwrap().seq();
        let w = Write::new("r", Actor::user("u1")).op(Op::set("k", "x"));
        let (out, evs) = write(&mut e, w);
        assert_eq!(
            out,
            Err(Rejection::Op {
                index: 0,
                error: OpError::NotOwner
            })
        );
        assert!(evs.is_empty());
        // Tencent deletes are BestEffort, and a delete of nothing is refused.
        let w = Write::new("r", Actor::user("u1")).op(Op::delete("missing"));
        assert_eq!(write(&mut e, w).0, Err(Rejection::NothingDeleted));
        // ZEGO: BestEffort, no such refusal: op 0 reported, nothing changed.
        let mut z = engine(Profile::zego());
        let zseq = z.room("r").unwrap().seq();
        let w = Write::new("r", Actor::user("u1")).op(Op::delete("missing"));
        let (out, evs) = write(&mut z, w);
        assert_eq!(
            out,
            Ok(Success::Written(BatchReport {
                seq: zseq,
                applied: 0,
                failed: alloc::vec![OpFailure {
                    index: 0,
                    key: "missing".into(),
                    error: OpError::NotFound
                }],
            }))
        );
        assert!(evs.is_empty());
        assert_eq!(e.room("r").unwrap().seq(), seq);
        assert_eq!(z.room("r").unwrap().seq(), zseq);
    }
}
