//! Time as the detectors see it: milliseconds on a monotonic clock you can replace.
//!
//! Windows, penalties and dedupe are all measured on a [`Clock`]. Production uses
//! [`SystemClock`]; tests drive a [`ManualClock`] forward instead of sleeping, so a
//! ten-minute attack replays in microseconds and always the same way.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock in milliseconds. The origin is arbitrary; only differences matter.
///
/// ```
/// use authtel_detect::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// clock.advance(std::time::Duration::from_secs(2));
/// assert_eq!(clock.now_ms(), 2_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Milliseconds since the clock's origin; never decreases.
    fn now_ms(&self) -> u64;

    /// The same reading for an [`Instant`] already taken (a span stop carries one), so the
    /// detectors need not read the clock again; `None` (the default) when this clock does
    /// not follow [`Instant`] (a manual clock).
    fn at_instant(&self, instant: Instant) -> Option<u64> {
        let _ = instant;
        None
    }
}

/// The process's monotonic clock ([`Instant`]), counted from when this value was made.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn at_instant(&self, instant: Instant) -> Option<u64> {
        Some(instant.saturating_duration_since(self.origin).as_millis() as u64)
    }
}

/// A clock that moves only when told to: for tests and replays. Clones share one time.
///
/// ```
/// use authtel_detect::clock::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let same = clock.clone();
/// clock.set(Duration::from_secs(60));
/// assert_eq!(same.now_ms(), 60_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// Sets the time since the origin. Going backwards is ignored: the clock is monotonic.
    pub fn set(&self, since_origin: Duration) {
        self.now
            .fetch_max(since_origin.as_millis() as u64, Ordering::Relaxed);
    }

    /// Sets the time since the origin in milliseconds (monotonic, as [`ManualClock::set`]).
    pub fn set_ms(&self, ms: u64) {
        self.now.fetch_max(ms, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn at_instant(&self, instant: Instant) -> Option<u64> {
        (**self).at_instant(instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_never_goes_back() {
        let c = ManualClock::new();
        c.set_ms(500);
        c.set_ms(100);
        assert_eq!(c.now_ms(), 500);
        c.advance(Duration::from_millis(5));
        assert_eq!(c.now_ms(), 505);
    }

    #[test]
    fn system_clock_moves_forward() {
        let c = SystemClock::new();
        let a = c.now_ms();
        assert!(c.now_ms() >= a);
    }
}
