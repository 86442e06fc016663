//! The relay's retry schedule: exponential backoff with a cap and a bounded number of
//! attempts. Kept here (not in `authtel-pipeline`) because the outbox stores the next
//! attempt time in the database, so the schedule must be a pure function of the attempt
//! count.

use std::time::Duration;

/// How often and how long the relay retries one outbox entry before dead-lettering it.
///
/// ```
/// use std::time::Duration;
/// use authtel_sql::RetryPolicy;
/// let p = RetryPolicy::new(5, Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(p.delay_after(1), Duration::from_millis(100));
/// assert_eq!(p.delay_after(3), Duration::from_millis(400));
/// assert_eq!(p.delay_after(10), Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base: Duration,
    cap: Duration,
}

impl RetryPolicy {
    /// At most `max_attempts` deliveries (at least 1), waiting `base`, `2 base`, `4 base`, …
    /// up to `cap` between them.
    pub fn new(max_attempts: u32, base: Duration, cap: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base,
            cap: cap.max(base),
        }
    }

    /// The number of attempts after which an entry is dead-lettered.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How long to wait after the `attempt`-th failed attempt (1-based).
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(20);
        self.base.saturating_mul(1 << shift).min(self.cap)
    }
}

impl Default for RetryPolicy {
    /// 8 attempts, 1 s doubling up to 5 min (about 10 minutes in all).
    fn default() -> RetryPolicy {
        RetryPolicy::new(8, Duration::from_secs(1), Duration::from_secs(300))
    }
}
