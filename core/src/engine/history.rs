//! Catch-up: [`Command::Since`](crate::Command::Since) and its view
//! twin, over each room's [`History`](crate::history::History).

use super::Engine;
use crate::error::Rejection;
use crate::event::Event;
use crate::outcome::{EventsReport, Outcome, Success};
use crate::room::Room;

impl Engine {
    pub(super) fn since(&self, id: &str, seq: u64) -> Outcome {
        let room = self.rooms.get(id).ok_or(Rejection::RoomNotFound)?;
        let events = events_since(room, seq)?.collect();
        Ok(Success::Events(EventsReport {
            seq: room.seq,
            events,
        }))
    }
}

/// The room's events after `seq`: `seq` above the room's is invalid, and
/// one before what the history covers is `HistoryTruncated`.
pub(crate) fn events_since(
    room: &Room,
    seq: u64,
) -> Result<impl Iterator<Item = Event> + '_, Rejection> {
    if seq > room.seq {
        return Err(Rejection::InvalidParameter);
    }
    let oldest = room.history.covered_from(room.seq);
    if seq < oldest {
        return Err(Rejection::HistoryTruncated { oldest });
    }
    Ok(room.history.after(&room.id, seq))
}
