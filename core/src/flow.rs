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

/// A room's notification budget window (NetEase flow control, SPEC §6):
/// 16 bytes.
///
/// "No window yet" is a start of [`NO_WINDOW`] (`u64::MAX`) rather than an
/// `Option`, which would cost 8 more bytes. A window that really starts
/// at `u64::MAX` is never current either (time stops there, and a window
/// is current only strictly before its end, which saturates at the same
/// instant), so the two behave alike; [`FlowWindow::start`] tells them
/// apart for the snapshot by the counts, which only a started window has
/// (a window started at the end of time with nothing counted reads as
/// none: the one case the encoding merges, and it restores to the same
/// behaviour).
#[derive(Debug, Clone)]
pub(crate) struct FlowWindow {
    /// Start of the current window; [`NO_WINDOW`] before the first event.
    start: Millis,
    pub(crate) normal: u32,
    pub(crate) high: u32,
}

/// The start of no window.
const NO_WINDOW: Millis = Millis(u64::MAX);

impl Default for FlowWindow {
    fn default() -> FlowWindow {
        FlowWindow {
            start: NO_WINDOW,
            normal: 0,
            high: 0,
        }
    }
}

impl FlowWindow {
    /// A window as a snapshot holds it.
    #[cfg(feature = "serde")]
    pub(crate) fn new(start: Option<Millis>, normal: u32, high: u32) -> FlowWindow {
        FlowWindow {
            start: start.unwrap_or(NO_WINDOW),
            normal,
            high,
        }
    }

    /// Start of the current window; `None` before the first event.
    #[cfg(any(test, feature = "serde"))]
    pub(crate) fn start(&self) -> Option<Millis> {
        (self.start != NO_WINDOW || (self.normal | self.high) != 0).then_some(self.start)
    }

    fn current(&self, now: Millis) -> bool {
        self.start != NO_WINDOW && now < self.start.saturating_add(WINDOW_MS)
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
                start: now,
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

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: Option<Flow> = Some(Flow {
        normal_per_second: 2,
        high_per_second: 1,
    });

    /// A window that starts at 0 is a window: its budget is spent until
    /// 1000, and the next one starts at the next event, not at 1000.
    #[test]
    fn a_window_may_start_at_zero() {
        let mut w = FlowWindow::default();
        assert_eq!(w.start(), None);
        assert_eq!(w.classify(Millis(0), FLOW, None), Delivery::Normal);
        assert_eq!(w.start(), Some(Millis(0)));
        assert_eq!(w.classify(Millis(999), FLOW, None), Delivery::Normal);
        assert_eq!(w.classify(Millis(999), FLOW, None), Delivery::Overflow);
        assert_eq!(w.classify(Millis(1500), FLOW, None), Delivery::Normal);
        assert_eq!(w.start(), Some(Millis(1500)));
    }

    /// At the end of time a window is never current: every event starts
    /// afresh, as with an `Option` start; with counts it reads as started.
    #[test]
    fn a_window_at_the_end_of_time_starts_afresh_each_event() {
        let mut w = FlowWindow::default();
        let end = Millis(u64::MAX);
        for _ in 0..3 {
            assert_eq!(
                w.classify(end, FLOW, Some(HighPolicy::Downgrade)),
                Delivery::High
            );
            assert!(!w.high_exhausted(end, FLOW));
        }
        assert_eq!(w.start(), Some(end));
        // Any count reads as started, equal counts too.
        let both = FlowWindow {
            start: end,
            normal: 1,
            high: 1,
        };
        assert_eq!(both.start(), Some(end));
        let zero = Some(Flow {
            normal_per_second: 0,
            high_per_second: 0,
        });
        let mut w = FlowWindow::default();
        assert_eq!(w.classify(end, zero, None), Delivery::Overflow);
        assert_eq!(w.start(), None, "the one merged case: nothing counted");
    }

    #[test]
    fn a_window_is_16_bytes() {
        assert_eq!(core::mem::size_of::<FlowWindow>(), 16);
    }
}
