//! Rates over time: the application's request bucket and each room's
//! notification window.

use crate::command::HighPolicy;
use crate::event::Delivery;
use crate::profile::{Flow, Rate};
use crate::time::Millis;

/// Milli-tokens per token: refill is `per_second` milli-tokens per
/// millisecond, exact in integers.
const MILLI: u64 = 1000;

/// Application-wide token bucket (SPEC §6), starting full.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    pub(crate) milli_tokens: u64,
    pub(crate) last: Millis,
}

impl TokenBucket {
    pub(crate) fn full(rate: Option<Rate>) -> TokenBucket {
        TokenBucket {
            milli_tokens: rate.map_or(0, |r| u64::from(r.per_second) * MILLI),
            last: Millis::ZERO,
        }
    }

    /// Takes one token at `now`; `false` if none is left.
    pub(crate) fn take(&mut self, now: Millis, rate: Rate) -> bool {
        let per_second = u64::from(rate.per_second);
        let capacity = per_second * MILLI;
        let refill = now.since(self.last).saturating_mul(per_second);
        self.milli_tokens = self.milli_tokens.saturating_add(refill).min(capacity);
        self.last = now;
        if self.milli_tokens >= MILLI {
            self.milli_tokens -= MILLI;
            true
        } else {
            false
        }
    }
}

/// Length of a notification window.
const WINDOW_MS: u64 = 1000;

/// A room's notification budget window (NetEase flow control, SPEC §6).
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowWindow {
    /// Start of the current window; `None` before the first event.
    pub(crate) start: Option<Millis>,
    pub(crate) normal: u32,
    pub(crate) high: u32,
}

impl FlowWindow {
    fn current(&self, now: Millis) -> bool {
        self.start
            .is_some_and(|s| now < s.saturating_add(WINDOW_MS))
    }

    /// Whether a high-priority event at `now` would be over budget.
    pub(crate) fn high_exhausted(&self, now: Millis, flow: Option<Flow>) -> bool {
        // Outside a window nothing is spent yet, but a budget of 0 is
        // exhausted all the same.
        let spent = if self.current(now) { self.high } else { 0 };
        flow.is_some_and(|f| spent >= f.high_per_second)
    }

    /// The delivery class of an event at `now`, spending budget.
    /// `high` is the event's high-priority request, if any; a `Reject`
    /// over budget never reaches here (the command was refused first).
    pub(crate) fn classify(
        &mut self,
        now: Millis,
        flow: Option<Flow>,
        high: Option<HighPolicy>,
    ) -> Delivery {
        let Some(flow) = flow else {
            return if high.is_some() {
                Delivery::High
            } else {
                Delivery::Normal
            };
        };
        if !self.current(now) {
            *self = FlowWindow {
                start: Some(now),
                normal: 0,
                high: 0,
            };
        }
        if high.is_some() && self.high < flow.high_per_second {
            self.high += 1;
            return Delivery::High;
        }
        if self.normal < flow.normal_per_second {
            self.normal += 1;
            Delivery::Normal
        } else {
            Delivery::Overflow
        }
    }
}
