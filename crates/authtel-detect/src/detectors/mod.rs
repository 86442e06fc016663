//! The detectors, each an ordinary [`Handler`](authtel_core::registry::Handler), the login
//! handler that runs the login detectors in one pass, and the pieces they share: the clock,
//! the keyed hasher, the penalty box, the geo lookup, and window counting.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::EventRecord;

use crate::clock::Clock;
use crate::geo::GeoLookup;
use crate::keys::{KeyHasher, RecordKeys};
use crate::signal::DetectorKind;
use crate::verdict::PenaltyBox;

pub(crate) mod brute_force;
pub(crate) mod login;
pub(crate) mod mfa;
pub(crate) mod new_location;
pub(crate) mod refresh;
pub(crate) mod spraying;
pub(crate) mod stuffing;
pub(crate) mod travel;

/// What every detector of one set shares.
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hasher: KeyHasher,
    pub(crate) penalties: PenaltyBox,
    pub(crate) geo: Option<Arc<dyn GeoLookup>>,
    raised: [AtomicU64; 7],
    /// The latest clock reading any detector or verdict took: a lower bound of the time
    /// now, so a verdict need not read the clock to know that a penalty ended before it.
    seen_ms: AtomicU64,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("clock", &self.clock)
            .field("geo", &self.geo)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        penalties: PenaltyBox,
        geo: Option<Arc<dyn GeoLookup>>,
    ) -> Shared {
        Shared {
            clock,
            hasher: KeyHasher::new(),
            penalties,
            geo,
            raised: Default::default(),
            seen_ms: AtomicU64::new(0),
        }
    }

    /// The clock now, never behind a reading already seen: the system clock is coarse (a
    /// tick behind at most) while a span stop's own instant is exact, and a penalty imposed
    /// at that instant must not look longer than it is to the verdict that reads it next.
    pub(crate) fn now(&self) -> u64 {
        let now = self.clock.now_ms().max(self.seen_ms());
        self.note_time(now);
        now
    }

    /// The keys of `record`, with the time it was seen: its own monotonic reading on the
    /// detectors' clock when it has one, else the clock now (noted as seen).
    #[inline]
    pub(crate) fn keys<'r>(&self, record: &'r EventRecord<'r>) -> RecordKeys<'_, 'r> {
        let now = match record
            .measurements
            .monotonic_time
            .and_then(|t| self.clock.at_instant(t))
        {
            Some(own) => {
                self.note_time(own);
                own
            }
            None => self.now(),
        };
        RecordKeys::new(&self.hasher, now, record)
    }

    /// Remembers a clock reading (taken now or earlier on this set's clock) for
    /// [`Shared::seen_ms`]. A load, and a `fetch_max` only when the millisecond moved, so the
    /// latest reading never goes back, whichever thread stores last.
    #[inline]
    pub(crate) fn note_time(&self, now: u64) {
        if now > self.seen_ms.load(Ordering::Relaxed) {
            self.seen_ms.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// A time no later than now: the latest reading [`Shared::note_time`] saw.
    #[inline]
    pub(crate) fn seen_ms(&self) -> u64 {
        self.seen_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn count_signal(&self, detector: DetectorKind) {
        self.raised[detector as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn raised(&self, detector: DetectorKind) -> u64 {
        self.raised[detector as usize].load(Ordering::Relaxed)
    }
}

/// Per address, brute force's count and password spraying's set in one table entry, so the
/// login handler looks a failed login's address up once for both. The table exists when
/// either detector is on; a detector that is off leaves its half at its default.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AddressState {
    pub(crate) brute_force: brute_force::IpState,
    pub(crate) spraying: spraying::SetState,
}

/// A detector that hears `auth.login.stop`: run alone as its own handler, or by the
/// [`login::LoginHandler`] beside the others on one record's [`RecordKeys`].
pub(crate) trait LoginDetector {
    /// Whether it reads logins with this outcome.
    fn hears(&self, outcome: Outcome) -> bool;

    /// Runs on an `auth.login.stop` with an outcome it hears.
    fn login(&self, record: &EventRecord<'_>, outcome: Outcome, keys: &mut RecordKeys<'_, '_>);
}

/// A login detector's own [`Handler`](authtel_core::registry::Handler) body: the record's
/// keys are computed for it alone.
pub(crate) fn handle_alone(d: &impl LoginDetector, shared: &Shared, record: &EventRecord<'_>) {
    if !std::ptr::eq(record.event, AUTH_LOGIN.stop()) {
        return;
    }
    if let Some(o) = record.outcome.filter(|o| d.hears(*o)) {
        d.login(record, o, &mut shared.keys(record));
    }
}

/// Failures in a sliding window, approximated from two fixed windows (the current one and
/// the one before, weighted by how much of it the sliding window still covers): 16 bytes
/// per key instead of one timestamp per failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sliding {
    start: u64,
    prev: u32,
    cur: u32,
}

impl Sliding {
    fn roll(&mut self, now: u64, window: u64) {
        let elapsed = now.saturating_sub(self.start);
        if elapsed >= 2 * window {
            *self = Sliding {
                start: now,
                prev: 0,
                cur: 0,
            };
        } else if elapsed >= window {
            self.prev = self.cur;
            self.cur = 0;
            self.start += window;
        }
    }

    /// Counts one more and returns the windowed count.
    pub(crate) fn add(&mut self, now: u64, window: u64) -> u32 {
        self.roll(now, window);
        self.cur = self.cur.saturating_add(1);
        self.count(now, window)
    }

    /// Takes one back (a success forgiving a failure).
    pub(crate) fn forgive(&mut self, now: u64, window: u64) {
        self.roll(now, window);
        if self.cur > 0 {
            self.cur -= 1;
        } else {
            self.prev = self.prev.saturating_sub(1);
        }
    }

    /// The windowed count at `now` of a state not touched since: the windows that ended
    /// are rolled over first, on a copy (a key last seen days ago counts none).
    pub(crate) fn count_now(&self, now: u64, window: u64) -> u32 {
        let mut s = *self;
        s.roll(now, window);
        s.count(now, window)
    }

    /// The windowed count of a state already rolled to `now` (as [`Sliding::add`] leaves it).
    pub(crate) fn count(&self, now: u64, window: u64) -> u32 {
        // Nothing carried over: no division (a key's first window, and most keys' windows).
        if self.prev == 0 {
            return self.cur;
        }
        let into = now.saturating_sub(self.start).min(window);
        let carried = u64::from(self.prev) * (window - into) / window;
        self.cur.saturating_add(carried as u32)
    }

    pub(crate) fn reset(&mut self) {
        *self = Sliding::default();
    }
}

/// "At most one signal per key per window": whether to signal now, remembering it if so.
/// `last` holds the time of the last signal plus one (0: never).
pub(crate) fn dedupe(last: &mut u64, now: u64, window: u64) -> bool {
    if *last != 0 && now < (*last - 1).saturating_add(window) {
        return false;
    }
    *last = now + 1;
    true
}

/// Whether to put a penalty of `len` ms from `now` in the box: not when the one this key last
/// imposed ends within an eighth of `len` of the new end (under a steady attack every
/// failure would otherwise rewrite the box). Remembers the new end when it says yes.
pub(crate) fn penalty_due(imposed_until: &mut u64, now: u64, len: u64) -> bool {
    let until = now.saturating_add(len);
    if until > imposed_until.saturating_add(len / 8) {
        *imposed_until = until;
        true
    } else {
        false
    }
}

/// The outcome of a span stop or a signal that carries one.
pub(crate) fn outcome(record: &EventRecord<'_>) -> Option<Outcome> {
    record.outcome
}

/// A window in milliseconds, at least one (state divides by windows); detectors convert their
/// windows once, when built.
pub(crate) fn ms(d: std::time::Duration) -> u64 {
    ms_or_zero(d).max(1)
}

/// A wait or a block in milliseconds (zero stays zero: no wait), saturating.
pub(crate) fn ms_or_zero(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_counts_recent_failures() {
        let w = 1000;
        let mut s = Sliding::default();
        for i in 0..10 {
            s.add(5_000 + i, w);
        }
        assert_eq!(s.count(5_010, w), 10);
        // Half a window later: the previous window counts half.
        assert_eq!(s.add(6_500, w), 6);
        // Two windows later: forgotten.
        assert_eq!(s.add(9_000, w), 1);
        s.forgive(9_000, w);
        assert_eq!(s.count(9_000, w), 0);
    }

    #[test]
    fn dedupe_once_per_window() {
        let mut last = 0;
        assert!(dedupe(&mut last, 0, 100));
        assert!(!dedupe(&mut last, 99, 100));
        assert!(dedupe(&mut last, 100, 100));
    }
}
