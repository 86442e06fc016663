//! Per-forwarder settings: a typed builder ([`ForwarderConfig`](crate::ForwarderConfig)) and the same settings read
//! from `AUTHTEL_*` environment variables ([`EnvConfig`]).
//!
//! Everything is validated when the pipeline is built, so a typo in production fails at
//! startup with the key and value named, not at the first outage.

use std::path::PathBuf;
use std::time::Duration;

/// How records reach a forwarder: an inline lane, or a queued lane.
///
/// ```
/// use authtel_pipeline::Dispatch;
/// assert_eq!(Dispatch::default(), Dispatch::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// **The inline lane: blocks the caller.** `publish` returns once the record is
    /// delivered, spilled or dead-lettered, retries included, so a failing or hanging
    /// destination holds the caller for up to `max_attempts × call_timeout` plus backoff.
    /// Choose it explicitly for batch tools and tests, never for a login path. Works with
    /// or without a tokio runtime: inside a multi-thread runtime the call runs under
    /// `block_in_place` on that runtime (the forwarder's connections keep working); inside
    /// a current-thread runtime it runs on a scoped helper thread driven by a private
    /// current-thread runtime; outside any runtime the private runtime drives it on the
    /// caller's thread.
    Sync,
    /// The queued lane on a tokio runtime: the one `build` is called in or the one given
    /// with [`PipelineBuilder::runtime`](crate::PipelineBuilder::runtime). Without one,
    /// building fails — never a silent change of lane.
    Async,
    /// The queued lane: on the ambient runtime when there is one at build, otherwise on a
    /// worker thread the pipeline starts itself (`authtel-pipeline`). Never delivers on
    /// the thread that publishes.
    #[default]
    Auto,
}

/// What `publish` does when a queued lane's queue is full. Only `Block` ever makes a
/// publisher wait, and never on a current-thread runtime.
///
/// ```
/// use authtel_pipeline::Backpressure;
/// use std::time::Duration;
/// assert_eq!(Backpressure::default(), Backpressure::Drop);
/// let b = Backpressure::Block { timeout: Duration::from_millis(50) };
/// assert_ne!(b, Backpressure::Drop);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backpressure {
    /// The application's explicit choice to make publishers wait: up to `timeout` for
    /// room, then spill if a spill directory is set, else handled as `Drop`. On a
    /// multi-thread tokio runtime the wait runs under `block_in_place`, so the runtime's
    /// other tasks (the lane's worker too) go on on other threads; on a current-thread
    /// runtime `publish` cannot wait and handles the record as `Drop` at once. From async
    /// code prefer [`Pipeline::publish_async`](crate::Pipeline::publish_async).
    Block {
        /// The longest a publisher waits.
        timeout: Duration,
    },
    /// Never wait. Telemetry records are dropped, counted and reported by the
    /// `pipeline.records.dropped` signal. Audit records are not dropped unless
    /// [`allow_dropping_audit`](crate::ForwarderConfig::allow_dropping_audit) is set: they spill
    /// if a spill directory is set, else go over the capacity into a reserve of another
    /// `queue_capacity` records; only past that are they refused
    /// ([`PublishError::QueueFull`](crate::PublishError::QueueFull), counted, reported).
    #[default]
    Drop,
    /// Never wait: write the record to the spill directory at once, behind the records
    /// still queued in memory (they go to disk first, in the same write). While older
    /// records wait on disk (the destination is down or replay is catching up), every
    /// record goes straight to disk: it is in the file before `publish` returns `Ok`.
    /// Everything is replayed in publish order.
    Spill,
}

/// The longest timeout, backoff, breaker period or fsync interval accepted: anything
/// longer is a typo (a breaker open for `u64::MAX` ms would never probe again).
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The largest queue accepted.
const MAX_QUEUE_CAPACITY: usize = 10_000_000;
/// The smallest spill bound accepted (a spill that cannot hold a batch is no spill).
const MIN_SPILL_BYTES: u64 = 1 << 20;

/// Retries of transient failures: exponential backoff, optionally with full jitter.
///
/// The wait before retry `n` (1-based) is `min(max, base * 2^(n-1))`, or a uniformly random
/// value below that with `jitter`.
///
/// ```
/// use authtel_pipeline::RetryPolicy;
/// use std::time::Duration;
/// let r = RetryPolicy { max_attempts: 5, base: Duration::from_millis(10), max: Duration::from_secs(1), jitter: false };
/// assert_eq!(r.backoff(3, 0.0), Duration::from_millis(40));
/// assert_eq!(RetryPolicy::default().max_attempts, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls per batch, the first included. At least 1.
    pub max_attempts: u32,
    /// The first backoff.
    pub base: Duration,
    /// The longest backoff.
    pub max: Duration,
    /// Full jitter: spread retries of many workers over the whole window.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_secs(10),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// At most `max_attempts` calls (at least 1), waiting `base`, `2 base`, `4 base`, … up to
    /// `max` between them, without jitter (set [`jitter`](Self::jitter) for full jitter).
    ///
    /// ```
    /// use authtel_pipeline::RetryPolicy;
    /// use std::time::Duration;
    /// let p = RetryPolicy::new(8, Duration::from_secs(1), Duration::from_secs(300));
    /// assert_eq!(p.delay_after(1), Duration::from_secs(1));
    /// assert_eq!(p.delay_after(3), Duration::from_secs(4));
    /// assert_eq!(p.delay_after(20), Duration::from_secs(300));
    /// ```
    pub fn new(max_attempts: u32, base: Duration, max: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            base,
            max: max.max(base),
            jitter: false,
        }
    }

    /// The wait after failed attempt `attempt` (1-based), drawing the jitter if it has any:
    /// what a source that schedules retries itself (the SQL outbox stores the next attempt's
    /// time) waits.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        self.backoff(attempt, crate::random::unit_random())
    }

    /// The wait after failed attempt `attempt` (1-based); `unit` in `[0, 1)` draws the jitter.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let window = self.base.saturating_mul(1u32 << exp).min(self.max);
        if self.jitter {
            window.mul_f64(unit.clamp(0.0, 1.0))
        } else {
            window
        }
    }
}

/// The circuit breaker: after `failure_threshold` consecutive transient failures it opens
/// for `open_for`; then one probe call decides whether it closes again.
///
/// ```
/// use authtel_pipeline::BreakerConfig;
/// assert_eq!(BreakerConfig::default().failure_threshold, 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker. At least 1.
    pub failure_threshold: u32,
    /// How long it stays open before a half-open probe.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: 5,
            open_for: Duration::from_secs(5),
        }
    }
}

/// When spill writes reach the disk.
///
/// Every write reaches the operating system before `publish` (or the worker) moves on, so
/// a killed *process* loses nothing in any mode; the policy decides what survives a
/// *machine* crash or power loss.
///
/// ```
/// use authtel_pipeline::FsyncPolicy;
/// assert_eq!(FsyncPolicy::default(), FsyncPolicy::EveryBatch);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// `fsync` after every spilled batch: nothing acknowledged is lost.
    #[default]
    EveryBatch,
    /// `fsync` at most once per interval (and on flush): a crash loses up to one interval.
    Interval(Duration),
    /// Leave it to the operating system.
    Never,
}

/// A token bucket for non-security telemetry records.
///
/// ```
/// use authtel_pipeline::RateLimit;
/// let r = RateLimit { per_second: 1000, burst: 100 };
/// assert_eq!(r.burst, 100);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained records per second.
    pub per_second: u32,
    /// Records allowed at once.
    pub burst: u32,
}

/// The tunables of one forwarder, without the forwarder itself. [`EnvConfig`](crate::EnvConfig) produces
/// one; [`ForwarderConfig`](crate::ForwarderConfig) wraps one.
///
/// ```
/// use authtel_pipeline::Settings;
/// let s = Settings::default();
/// assert_eq!(s.batch_size, 256);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Sync, async or auto.
    pub dispatch: Dispatch,
    /// Records per forwarder call (async).
    pub batch_size: usize,
    /// Records waiting in memory (async).
    pub queue_capacity: usize,
    /// Worker tasks (async). One worker delivers in publish order, across spills and
    /// replays too; several workers deliver batches concurrently, so batches (and records
    /// of one user) may arrive out of order.
    pub workers: usize,
    /// What happens when the queue is full.
    pub backpressure: Backpressure,
    /// The wait `AUTHTEL_PIPELINE_BACKPRESSURE=block` uses
    /// (`AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS`).
    pub block_timeout: Duration,
    /// Whether `Drop` may drop audit records too.
    pub allow_dropping_audit: bool,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// The circuit breaker.
    pub breaker: BreakerConfig,
    /// The longest one forwarder call may take; a hung call counts as a transient failure.
    pub call_timeout: Duration,
    /// Where records spill; `None` disables spilling.
    pub spill_dir: Option<PathBuf>,
    /// The spill directory's size bound, in bytes.
    pub spill_max_bytes: u64,
    /// Lines longer than this are skipped on replay.
    pub spill_max_line_bytes: usize,
    /// When spill writes are synced.
    pub fsync: FsyncPolicy,
    /// Where batches go after their last attempt (`<dir>/<forwarder>.dead.jsonl`);
    /// default: the spill directory. With neither, records given up on are counted as
    /// dropped and logged with their ids, and a warning at build says so.
    pub dead_letter_dir: Option<PathBuf>,
    /// The fraction of non-security telemetry records kept, `0.0..=1.0`.
    pub sample_rate: f64,
    /// A rate limit for non-security telemetry records.
    pub rate_limit: Option<RateLimit>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dispatch: Dispatch::Auto,
            batch_size: 256,
            queue_capacity: 16_384,
            workers: 1,
            backpressure: Backpressure::default(),
            block_timeout: Duration::from_secs(1),
            allow_dropping_audit: false,
            retry: RetryPolicy::default(),
            breaker: BreakerConfig::default(),
            call_timeout: Duration::from_secs(10),
            spill_dir: None,
            spill_max_bytes: 1 << 30,
            spill_max_line_bytes: 1 << 20,
            fsync: FsyncPolicy::EveryBatch,
            dead_letter_dir: None,
            sample_rate: 1.0,
            rate_limit: None,
        }
    }
}

impl Settings {
    /// Checks every value; the error names the setting and the value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, value: String, expected: &'static str| {
            Err(ConfigError::InvalidValue {
                key: key.to_owned(),
                value,
                expected,
            })
        };
        if self.batch_size == 0 || self.batch_size > 1_000_000 {
            return bad(
                "batch_size",
                self.batch_size.to_string(),
                "an integer in 1..=1000000",
            );
        }
        if self.queue_capacity > MAX_QUEUE_CAPACITY {
            return bad(
                "queue_capacity",
                self.queue_capacity.to_string(),
                "an integer of at most 10000000 (records are held in memory; spill to disk for more)",
            );
        }
        if self.queue_capacity < self.batch_size {
            return bad(
                "queue_capacity",
                self.queue_capacity.to_string(),
                "an integer at least batch_size",
            );
        }
        if self.workers == 0 || self.workers > 64 {
            return bad("workers", self.workers.to_string(), "an integer in 1..=64");
        }
        if self.retry.max_attempts == 0 {
            return bad("retry.max_attempts", "0".into(), "an integer of at least 1");
        }
        if self.retry.base > self.retry.max {
            return bad(
                "retry.base",
                format!("{:?}", self.retry.base),
                "a duration no longer than retry.max",
            );
        }
        if self.breaker.failure_threshold == 0 {
            return bad(
                "breaker.failure_threshold",
                "0".into(),
                "an integer of at least 1",
            );
        }
        if self.call_timeout.is_zero() {
            return bad("call_timeout", "0".into(), "a positive duration");
        }
        for (key, d) in [
            ("call_timeout", self.call_timeout),
            ("block_timeout", self.block_timeout),
            ("retry.base", self.retry.base),
            ("retry.max", self.retry.max),
            ("breaker.open_for", self.breaker.open_for),
        ] {
            if d > MAX_DURATION {
                return bad(key, format!("{d:?}"), "a duration of at most one hour");
            }
        }
        if let Backpressure::Block { timeout } = self.backpressure
            && timeout > MAX_DURATION
        {
            return bad(
                "backpressure.timeout",
                format!("{timeout:?}"),
                "a duration of at most one hour",
            );
        }
        if let FsyncPolicy::Interval(d) = self.fsync
            && (d.is_zero() || d > MAX_DURATION)
        {
            return bad(
                "fsync_interval_ms",
                format!("{d:?}"),
                "a positive duration of at most one hour",
            );
        }
        for (key, dir) in [
            ("spill_dir", &self.spill_dir),
            ("dead_letter_dir", &self.dead_letter_dir),
        ] {
            if let Some(dir) = dir
                && !dir.is_absolute()
            {
                return bad(
                    key,
                    dir.display().to_string(),
                    "an absolute directory path (a relative one depends on the working directory)",
                );
            }
        }
        if self.spill_max_bytes < MIN_SPILL_BYTES
            || self.spill_max_bytes < self.spill_max_line_bytes as u64
        {
            return bad(
                "spill_max_bytes",
                self.spill_max_bytes.to_string(),
                "an integer of at least 1048576 and at least spill_max_line_bytes",
            );
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return bad(
                "sample_rate",
                self.sample_rate.to_string(),
                "a number in 0.0..=1.0",
            );
        }
        if let Some(r) = self.rate_limit
            && (r.per_second == 0 || r.burst == 0)
        {
            return bad(
                "rate_limit",
                format!("{}/s burst {}", r.per_second, r.burst),
                "a positive rate and burst",
            );
        }
        if self.backpressure == Backpressure::Spill && self.spill_dir.is_none() {
            return Err(ConfigError::Missing {
                key: "spill_dir".to_owned(),
                because: "backpressure is spill",
            });
        }
        if self.spill_max_line_bytes < 256 {
            return bad(
                "spill_max_line_bytes",
                self.spill_max_line_bytes.to_string(),
                "an integer of at least 256",
            );
        }
        Ok(())
    }
}

/// A configuration value that cannot be used.
///
/// ```
/// use authtel_pipeline::{ConfigError, EnvConfig};
/// let err = EnvConfig::from_vars([("AUTHTEL_PIPELINE_FSYNC", "sometimes")]).unwrap_err();
/// assert!(matches!(&err, ConfigError::InvalidValue { key, value, .. } if key == "AUTHTEL_PIPELINE_FSYNC" && value == "sometimes"));
/// assert!(err.to_string().contains("batch|interval|never"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value out of range or unparsable.
    #[error("configuration {key}={value:?} is invalid; expected {expected}")]
    InvalidValue {
        /// The setting or environment variable.
        key: String,
        /// What was given.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// A required value is absent.
    #[error("configuration {key} is required because {because}; set it")]
    Missing {
        /// The setting.
        key: String,
        /// Why it is required.
        because: &'static str,
    },
    /// An `AUTHTEL_*` variable's name or value is not valid UTF-8.
    #[error("configuration variable {key} is not valid UTF-8; set it to plain text")]
    NotUnicode {
        /// The variable, with invalid bytes replaced.
        key: String,
    },
    /// An `AUTHTEL_PIPELINE_*` variable this version does not know: probably a typo.
    #[error("unknown configuration variable {key}; known: {known}")]
    UnknownKey {
        /// The variable.
        key: String,
        /// The variables that are read.
        known: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            jitter: false,
        };
        let waits: Vec<_> = (1..=5).map(|a| r.backoff(a, 0.5).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        let j = RetryPolicy { jitter: true, ..r };
        assert_eq!(j.backoff(2, 0.5), Duration::from_millis(10));
        assert_eq!(j.backoff(100, 0.0), Duration::ZERO);
    }
}
