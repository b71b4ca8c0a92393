//! Builders for queue commands, so the common path is short:
//! `Offer::new(room, operator, key, value).transient().notify(Notify::high())`.

use alloc::vec::Vec;

use crate::command::{Actor, Command, NewElement, Notify};
use crate::text::Str;

/// Builds a [`Command::QueueOffer`]: not transient, notified normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer(Command);

impl Offer {
    /// An offer of `key` = `value` by `operator` in `room`.
    pub fn new(
        room: impl Into<Str>,
        operator: Actor,
        key: impl Into<Str>,
        value: impl Into<Str>,
    ) -> Offer {
        Offer(Command::QueueOffer {
            room: room.into(),
            operator,
            key: key.into(),
            value: value.into(),
            transient: false,
            notify: Notify::default(),
        })
    }

    /// Removed when its owner exits.
    #[must_use]
    pub fn transient(mut self) -> Offer {
        if let Command::QueueOffer { transient, .. } = &mut self.0 {
            *transient = true;
        }
        self
    }

    /// Notification options.
    #[must_use]
    pub fn notify(mut self, n: Notify) -> Offer {
        if let Command::QueueOffer { notify, .. } = &mut self.0 {
            *notify = n;
        }
        self
    }
}

impl From<Offer> for Command {
    fn from(o: Offer) -> Command {
        o.0
    }
}

/// Builds a [`Command::QueueBatchOffer`]: elements added with
/// [`BatchOffer::element`], not transient by default, notified normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchOffer {
    room: Str,
    operator: Actor,
    elements: Vec<NewElement>,
    transient: bool,
    notify: Notify,
}

impl BatchOffer {
    /// An empty batch offer by `operator` in `room` (an empty batch is
    /// rejected with `Empty`: add elements).
    pub fn new(room: impl Into<Str>, operator: Actor) -> BatchOffer {
        BatchOffer {
            room: room.into(),
            operator,
            elements: Vec::new(),
            transient: false,
            notify: Notify::default(),
        }
    }

    /// Adds an element.
    #[must_use]
    pub fn element(mut self, e: NewElement) -> BatchOffer {
        self.elements.push(e);
        self
    }

    /// Elements that do not say are transient.
    #[must_use]
    pub fn transient(mut self) -> BatchOffer {
        self.transient = true;
        self
    }

    /// Notification options.
    #[must_use]
    pub fn notify(mut self, n: Notify) -> BatchOffer {
        self.notify = n;
        self
    }
}

impl From<BatchOffer> for Command {
    fn from(b: BatchOffer) -> Command {
        Command::QueueBatchOffer {
            room: b.room,
            operator: b.operator,
            elements: b.elements,
            transient: b.transient,
            notify: b.notify,
        }
    }
}

/// Builds a [`Command::QueuePoll`]: the head unless a key is named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll(Command);

impl Poll {
    /// A poll of the head of `room`'s queue by `operator`.
    pub fn head(room: impl Into<Str>, operator: Actor) -> Poll {
        Poll(Command::QueuePoll {
            room: room.into(),
            operator,
            key: None,
            notify: Notify::default(),
        })
    }

    /// A poll of the element named `key`.
    pub fn key(room: impl Into<Str>, operator: Actor, key: impl Into<Str>) -> Poll {
        Poll(Command::QueuePoll {
            room: room.into(),
            operator,
            key: Some(key.into()),
            notify: Notify::default(),
        })
    }

    /// Notification options.
    #[must_use]
    pub fn notify(mut self, n: Notify) -> Poll {
        if let Command::QueuePoll { notify, .. } = &mut self.0 {
            *notify = n;
        }
        self
    }
}

impl From<Poll> for Command {
    fn from(p: Poll) -> Command {
        p.0
    }
}

impl From<crate::command::Write> for Command {
    fn from(w: crate::command::Write) -> Command {
        Command::Write(w)
    }
}
