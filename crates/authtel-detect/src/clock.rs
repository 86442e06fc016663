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

/// The process's monotonic clock, counted in milliseconds from when this value was made.
///
/// Windows, penalties and dedupe are seconds to hours long, so the detectors read time at
/// the kernel tick's resolution: on Linux [`SystemClock::now_ms`] reads
/// `CLOCK_MONOTONIC_COARSE`, the timeline [`Instant`] reads (`CLOCK_MONOTONIC`) as the kernel
/// last updated it, at most one tick (1 to 10 ms, 4 ms on Debian's kernels) behind. It costs
/// about 5 ns against 27 ns for `Instant::now()` on the 2-core VM of docs/benchmarks.md —
/// a failed login that carries no time of its own reads the clock once. Elsewhere, and if
/// the coarse clock cannot be read, it is [`Instant`]. [`Clock::at_instant`] is exact: a span
/// stop's own reading is used as it is.
///
/// ```
/// use authtel_detect::clock::{Clock, SystemClock};
/// let clock = SystemClock::new();
/// let started = std::time::Instant::now();
/// let a = clock.now_ms();
/// std::thread::sleep(std::time::Duration::from_millis(30));
/// let b = clock.now_ms();
/// assert!(b >= a + 20, "30 ms later, less one tick of each reading: {a} then {b}");
/// // An instant's own reading is on the same timeline, within a tick of now_ms.
/// let exact = clock.at_instant(started).unwrap();
/// assert!(exact <= a + 10 && a <= exact + 10);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
    /// `CLOCK_MONOTONIC` at `origin`, in ns, when the coarse clock can be read.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    origin_ns: Option<u64>,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            origin_ns: coarse::now_ns(libc::CLOCK_MONOTONIC_COARSE)
                .and(coarse::now_ns(libc::CLOCK_MONOTONIC)),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    #[inline]
    fn now_ms(&self) -> u64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(origin) = self.origin_ns
            && let Some(now) = coarse::now_ns(libc::CLOCK_MONOTONIC_COARSE)
        {
            // Within the first tick the coarse reading may still be behind the origin.
            return now.saturating_sub(origin) / 1_000_000;
        }
        self.origin.elapsed().as_millis() as u64
    }

    fn at_instant(&self, instant: Instant) -> Option<u64> {
        Some(instant.saturating_duration_since(self.origin).as_millis() as u64)
    }
}

/// Reading a clock by id (the coarse clock has no std API).
#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    /// The clock's reading in ns, or `None` if the kernel refuses the id.
    #[inline]
    pub(super) fn now_ns(clock: libc::clockid_t) -> Option<u64> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call, and
        // clock_gettime writes nothing else.
        let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
        let (secs, nanos) = (
            u64::try_from(ts.tv_sec).ok()?,
            u64::try_from(ts.tv_nsec).ok()?,
        );
        (rc == 0).then(|| secs * 1_000_000_000 + nanos)
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

    #[test]
    fn system_clock_keeps_the_instant_timeline() {
        // now_ms (coarse on Linux) and at_instant (exact) must agree within a tick, or a
        // span stop and an event of the same moment would land in different windows.
        let c = SystemClock::new();
        for _ in 0..50 {
            let before = Instant::now();
            let now = c.now_ms();
            let after = Instant::now();
            let (lo, hi) = (c.at_instant(before).unwrap(), c.at_instant(after).unwrap());
            assert!(
                now + 11 >= lo && now <= hi,
                "{lo} <= {now} (+ a tick) <= {hi}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        assert!(
            c.origin_ns.is_some(),
            "the coarse clock is readable on Linux"
        );
    }
}
