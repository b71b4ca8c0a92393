//! The replay tool's engine: one [`Dialect`] per vendor, lines in, lines out.

use roomstate::Millis;

use crate::json::{obj, Json};
use crate::request::{parse_line, Line, VendorId};
use crate::{Dialect, Response};

/// Five dialects (one engine per vendor, each with its built-in profile),
/// alive for a whole replay, and the replay clock.
pub struct Replayer {
    dialects: [Dialect; 5],
    now: u64,
}

impl Default for Replayer {
    fn default() -> Replayer {
        Replayer::new()
    }
}

impl Replayer {
    /// Fresh engines, clock at 0.
    #[must_use]
    pub fn new() -> Replayer {
        Replayer {
            dialects: VendorId::ALL.map(Dialect::new),
            now: 0,
        }
    }

    /// The dialect of `vendor`.
    #[must_use]
    pub fn dialect(&self, vendor: VendorId) -> &Dialect {
        let [t, e, a, n, z] = &self.dialects;
        match vendor {
            VendorId::Tencent => t,
            VendorId::Easemob => e,
            VendorId::AgoraChat => a,
            VendorId::NetEase => n,
            VendorId::Zego => z,
        }
    }

    fn dialect_mut(&mut self, vendor: VendorId) -> &mut Dialect {
        let [t, e, a, n, z] = &mut self.dialects;
        match vendor {
            VendorId::Tencent => t,
            VendorId::Easemob => e,
            VendorId::AgoraChat => a,
            VendorId::NetEase => n,
            VendorId::Zego => z,
        }
    }

    /// The replay clock: the last `now` a well-formed line gave.
    #[must_use]
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Answers one input line (without its newline).
    pub fn line(&mut self, line: &str) -> Response {
        match parse_line(line) {
            Ok(Line::Request { request, now }) => {
                let now = self.tick(now);
                self.dialect_mut(request.vendor).request(now, &request)
            }
            Ok(Line::Control {
                vendor,
                control,
                now,
            }) => {
                let now = self.tick(now);
                self.dialect_mut(vendor).control(now, &control)
            }
            Err(e) => match e.vendor {
                Some(v) => {
                    let now = Millis(self.now);
                    self.dialect_mut(v).bad_input(now, &e.message)
                }
                None => Response {
                    status: 400,
                    body: obj([("error", Json::from(e.message))]),
                },
            },
        }
    }

    fn tick(&mut self, now: Option<u64>) -> Millis {
        if let Some(now) = now {
            self.now = now;
        }
        Millis(self.now)
    }
}

/// Answers one input line with one output line (no newline): the entry
/// point of the replay binary and of fuzz targets. Never panics.
pub fn replay_line(replayer: &mut Replayer, line: &str) -> String {
    replayer.line(line).to_line()
}

/// The body of the `replay_line` fuzz target, shared with the stable
/// corpus replay test: replays every line of `data` (invalid UTF-8 lossily
/// decoded) through one [`Replayer`] and panics if an answer is not exactly
/// one line of the form `{"status":...}`, or if an engine's invariants break.
#[allow(clippy::panic)] // a test oracle: panicking is how it reports a finding
pub fn check_replay(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut replayer = Replayer::new();
    for line in text.lines().take(256) {
        let out = replay_line(&mut replayer, line);
        assert!(!out.contains('\n'), "answer spans lines: {out}");
        assert!(
            out.starts_with("{\"status\":"),
            "answer is not a response: {out}"
        );
        for vendor in VendorId::ALL {
            if let Err(v) = replayer.dialect(vendor).engine().check_invariants() {
                panic!("{vendor:?} engine broke an invariant after {line:?}: {v:?}");
            }
        }
    }
}
