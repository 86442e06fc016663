//! Per-forwarder settings: a typed builder ([`ForwarderConfig`]) and the same settings read
//! from `AUTHTEL_*` environment variables ([`EnvConfig`]).
//!
//! Everything is validated when the pipeline is built, so a typo in production fails at
//! startup with the key and value named, not at the first outage.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authtel_core::forward::Forwarder;

/// How records reach a forwarder.
///
/// ```
/// use authtel_pipeline::Dispatch;
/// assert_eq!(Dispatch::default(), Dispatch::Auto);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dispatch {
    /// Inline in the caller: `publish` returns once the record is delivered, spilled or
    /// dead-lettered. Works with or without a tokio runtime: inside a multi-thread runtime
    /// the call runs under `block_in_place` on that runtime (the forwarder's connections keep
    /// working); inside a current-thread runtime it runs on a scoped helper thread driven by
    /// a private current-thread runtime (blocking the only thread would stall it); outside
    /// any runtime the private runtime drives it on the caller's thread. Retries happen in
    /// the caller too, so a failing destination delays it by the backoff.
    Sync,
    /// Through a bounded queue and worker tasks, in batches. Needs a tokio runtime when the
    /// pipeline is built (or one given with [`PipelineBuilder::runtime`](crate::PipelineBuilder::runtime));
    /// without one, building fails — never a silent downgrade.
    Async,
    /// `Async` when a tokio runtime is available at build, otherwise `Sync`.
    #[default]
    Auto,
}

/// What `publish` does when a forwarder's queue is full.
///
/// ```
/// use authtel_pipeline::Backpressure;
/// use std::time::Duration;
/// let b = Backpressure::Block { timeout: Duration::from_millis(50) };
/// assert_ne!(b, Backpressure::Drop);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait up to `timeout` for room; then spill if a spill directory is set, else
    /// reject the record with [`PublishError::Timeout`](crate::PublishError::Timeout).
    Block {
        /// The longest a publisher waits.
        timeout: Duration,
    },
    /// Drop the record, counted and reported by the `pipeline.records.dropped` signal.
    /// Audit records are never dropped unless
    /// [`allow_dropping_audit`](ForwarderConfig::allow_dropping_audit) is set: they are
    /// handled as `Block` with [`ForwarderConfig::block_timeout`].
    Drop,
    /// Write the record to the spill directory at once, behind the records still queued
    /// in memory (they go to disk first, in the same write); everything is replayed in
    /// publish order later.
    Spill,
}

impl Default for Backpressure {
    fn default() -> Self {
        Backpressure::Block {
            timeout: Duration::from_secs(1),
        }
    }
}

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

/// The tunables of one forwarder, without the forwarder itself. [`EnvConfig`] produces
/// one; [`ForwarderConfig`] wraps one.
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
    /// How long an audit record waits for room when the policy is `Drop`.
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
    /// Where batches go after their last attempt; default: `<tmp>/authtel-dead-letter`.
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

/// One forwarder and its settings, for [`PipelineBuilder::forwarder`](crate::PipelineBuilder::forwarder).
///
/// ```
/// use authtel_pipeline::{Backpressure, Dispatch, ForwarderConfig};
/// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
/// # #[derive(Debug)] struct Noop;
/// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
/// let cfg = ForwarderConfig::new("kafka", Noop)
///     .dispatch(Dispatch::Async)
///     .batch_size(500)
///     .queue_capacity(50_000)
///     .backpressure(Backpressure::Spill)
///     .spill_dir("/var/lib/myapp/authtel-spill");
/// assert_eq!(cfg.id(), "kafka");
/// assert_eq!(cfg.settings().batch_size, 500);
/// ```
#[derive(Clone)]
pub struct ForwarderConfig {
    pub(crate) id: String,
    pub(crate) forwarder: Arc<dyn Forwarder>,
    pub(crate) settings: Settings,
}

impl fmt::Debug for ForwarderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForwarderConfig")
            .field("id", &self.id)
            .field("forwarder", &self.forwarder)
            .field("settings", &self.settings)
            .finish()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.settings.$name = value;
            self
        }
    )*};
}

impl ForwarderConfig {
    /// `forwarder` under `id` (used in metrics, file names and signals) with default settings.
    pub fn new(id: impl Into<String>, forwarder: impl Forwarder) -> ForwarderConfig {
        ForwarderConfig::from_arc(id, Arc::new(forwarder))
    }

    /// Like [`new`](Self::new) for a forwarder already shared.
    ///
    /// The batch size starts at the forwarder's
    /// [`preferred_batch_size`](Forwarder::preferred_batch_size) when it names one (within
    /// the queue's capacity); [`batch_size`](Self::batch_size) and
    /// [`settings_from`](Self::settings_from) override it.
    pub fn from_arc(id: impl Into<String>, forwarder: Arc<dyn Forwarder>) -> ForwarderConfig {
        let mut settings = Settings::default();
        if let Some(preferred) = forwarder.preferred_batch_size() {
            settings.batch_size = preferred.clamp(1, settings.queue_capacity);
        }
        ForwarderConfig {
            id: id.into(),
            forwarder,
            settings,
        }
    }

    /// Replaces every setting, e.g. with those read by [`EnvConfig`].
    #[must_use]
    pub fn settings_from(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    setters! {
        /// Sync, async or auto.
        dispatch: Dispatch;
        /// Records per forwarder call.
        batch_size: usize;
        /// Records waiting in memory.
        queue_capacity: usize;
        /// Worker tasks; one delivers in publish order, several deliver batches concurrently.
        workers: usize;
        /// What happens when the queue is full.
        backpressure: Backpressure;
        /// How long an audit record waits for room under `Backpressure::Drop`.
        block_timeout: Duration;
        /// Let `Backpressure::Drop` drop audit records too.
        allow_dropping_audit: bool;
        /// Retries of transient failures.
        retry: RetryPolicy;
        /// The circuit breaker.
        breaker: BreakerConfig;
        /// The longest one forwarder call may take.
        call_timeout: Duration;
        /// The spill directory's size bound, in bytes.
        spill_max_bytes: u64;
        /// Lines longer than this are skipped on replay.
        spill_max_line_bytes: usize;
        /// When spill writes are synced.
        fsync: FsyncPolicy;
        /// The fraction of non-security telemetry records kept.
        sample_rate: f64;
    }

    /// Where records spill (a directory per forwarder id is created inside).
    #[must_use]
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.spill_dir = Some(dir.into());
        self
    }

    /// Where batches go after their last attempt.
    #[must_use]
    pub fn dead_letter_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.settings.dead_letter_dir = Some(dir.into());
        self
    }

    /// A rate limit for non-security telemetry records.
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.settings.rate_limit = Some(limit);
        self
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
    /// An `AUTHTEL_PIPELINE_*` variable this version does not know: probably a typo.
    #[error("unknown configuration variable {key}; known: {known}")]
    UnknownKey {
        /// The variable.
        key: String,
        /// The variables that are read.
        known: &'static str,
    },
}

/// Settings read from `AUTHTEL_*` variables.
///
/// | variable | value |
/// |---|---|
/// | `AUTHTEL_FORWARDERS` | comma-separated forwarder kinds expected (`sql,kafka`) |
/// | `AUTHTEL_PIPELINE_DISPATCH` | `sync`, `async`, `auto` |
/// | `AUTHTEL_PIPELINE_QUEUE_CAPACITY`, `_BATCH_SIZE`, `_WORKERS` | integers |
/// | `AUTHTEL_PIPELINE_BACKPRESSURE` | `block`, `drop`, `spill` |
/// | `AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS`, `_CALL_TIMEOUT_MS` | milliseconds |
/// | `AUTHTEL_PIPELINE_ALLOW_DROPPING_AUDIT` | `true`, `false` |
/// | `AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS`, `_RETRY_BASE_MS`, `_RETRY_MAX_MS`, `_RETRY_JITTER` | integers, `true`/`false` |
/// | `AUTHTEL_PIPELINE_BREAKER_FAILURES`, `_BREAKER_OPEN_MS` | integers |
/// | `AUTHTEL_PIPELINE_SPILL_DIR`, `_SPILL_MAX_BYTES`, `_SPILL_MAX_LINE_BYTES` | path, integers |
/// | `AUTHTEL_PIPELINE_FSYNC`, `_FSYNC_INTERVAL_MS` | `batch`, `interval`, `never`; milliseconds |
/// | `AUTHTEL_PIPELINE_DEAD_LETTER_DIR` | path |
/// | `AUTHTEL_PIPELINE_SAMPLE_RATE` | `0.0` to `1.0` |
/// | `AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC`, `_RATE_LIMIT_BURST` | integers |
///
/// Other `AUTHTEL_*` variables belong to other crates and are ignored; an unknown
/// `AUTHTEL_PIPELINE_*` variable is an error (a typo would otherwise be silently ignored).
///
/// ```
/// use authtel_pipeline::{Backpressure, EnvConfig, FsyncPolicy};
/// let env = EnvConfig::from_vars([
///     ("AUTHTEL_PIPELINE_BATCH_SIZE", "100"),
///     ("AUTHTEL_PIPELINE_BACKPRESSURE", "spill"),
///     ("AUTHTEL_PIPELINE_SPILL_DIR", "/var/lib/app/spill"),
///     ("AUTHTEL_PIPELINE_FSYNC", "never"),
///     ("AUTHTEL_FORWARDERS", "sql, kafka"),
/// ]).unwrap();
/// assert_eq!(env.settings.batch_size, 100);
/// assert_eq!(env.settings.backpressure, Backpressure::Spill);
/// assert_eq!(env.settings.fsync, FsyncPolicy::Never);
/// assert_eq!(env.forwarders, ["sql", "kafka"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnvConfig {
    /// The settings every forwarder starts from.
    pub settings: Settings,
    /// The forwarder kinds `AUTHTEL_FORWARDERS` asks for.
    pub forwarders: Vec<String>,
}

const KNOWN: &str = "AUTHTEL_PIPELINE_{DISPATCH,QUEUE_CAPACITY,BATCH_SIZE,WORKERS,BACKPRESSURE,BLOCK_TIMEOUT_MS,CALL_TIMEOUT_MS,ALLOW_DROPPING_AUDIT,RETRY_MAX_ATTEMPTS,RETRY_BASE_MS,RETRY_MAX_MS,RETRY_JITTER,BREAKER_FAILURES,BREAKER_OPEN_MS,SPILL_DIR,SPILL_MAX_BYTES,SPILL_MAX_LINE_BYTES,FSYNC,FSYNC_INTERVAL_MS,DEAD_LETTER_DIR,SAMPLE_RATE,RATE_LIMIT_PER_SEC,RATE_LIMIT_BURST}";

impl EnvConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<EnvConfig, ConfigError> {
        EnvConfig::from_vars(std::env::vars())
    }

    /// Reads `(key, value)` pairs; tests pass their own instead of touching the process.
    pub fn from_vars<K, V>(vars: impl IntoIterator<Item = (K, V)>) -> Result<EnvConfig, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut cfg = EnvConfig::default();
        let mut fsync_interval = None;
        let mut fsync_kind = None;
        let mut rate = None;
        let mut burst = None;
        for (k, v) in vars {
            let (key, raw) = (k.as_ref(), v.as_ref().trim());
            let s = &mut cfg.settings;
            match key {
                "AUTHTEL_FORWARDERS" => {
                    cfg.forwarders = raw
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "AUTHTEL_PIPELINE_DISPATCH" => {
                    s.dispatch = match raw {
                        "sync" => Dispatch::Sync,
                        "async" => Dispatch::Async,
                        "auto" => Dispatch::Auto,
                        _ => return Err(invalid(key, raw, "sync|async|auto")),
                    }
                }
                "AUTHTEL_PIPELINE_QUEUE_CAPACITY" => s.queue_capacity = int(key, raw)?,
                "AUTHTEL_PIPELINE_BATCH_SIZE" => s.batch_size = int(key, raw)?,
                "AUTHTEL_PIPELINE_WORKERS" => s.workers = int(key, raw)?,
                "AUTHTEL_PIPELINE_BACKPRESSURE" => {
                    s.backpressure = match raw {
                        "block" => Backpressure::Block {
                            timeout: s.block_timeout,
                        },
                        "drop" => Backpressure::Drop,
                        "spill" => Backpressure::Spill,
                        _ => return Err(invalid(key, raw, "block|drop|spill")),
                    }
                }
                "AUTHTEL_PIPELINE_BLOCK_TIMEOUT_MS" => {
                    s.block_timeout = millis(key, raw)?;
                    if let Backpressure::Block { timeout } = &mut s.backpressure {
                        *timeout = s.block_timeout;
                    }
                }
                "AUTHTEL_PIPELINE_CALL_TIMEOUT_MS" => s.call_timeout = millis(key, raw)?,
                "AUTHTEL_PIPELINE_ALLOW_DROPPING_AUDIT" => {
                    s.allow_dropping_audit = boolean(key, raw)?
                }
                "AUTHTEL_PIPELINE_RETRY_MAX_ATTEMPTS" => s.retry.max_attempts = int(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_BASE_MS" => s.retry.base = millis(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_MAX_MS" => s.retry.max = millis(key, raw)?,
                "AUTHTEL_PIPELINE_RETRY_JITTER" => s.retry.jitter = boolean(key, raw)?,
                "AUTHTEL_PIPELINE_BREAKER_FAILURES" => s.breaker.failure_threshold = int(key, raw)?,
                "AUTHTEL_PIPELINE_BREAKER_OPEN_MS" => s.breaker.open_for = millis(key, raw)?,
                "AUTHTEL_PIPELINE_SPILL_DIR" => {
                    if raw.is_empty() {
                        return Err(invalid(key, raw, "a directory path"));
                    }
                    s.spill_dir = Some(PathBuf::from(raw));
                }
                "AUTHTEL_PIPELINE_SPILL_MAX_BYTES" => s.spill_max_bytes = int(key, raw)?,
                "AUTHTEL_PIPELINE_SPILL_MAX_LINE_BYTES" => s.spill_max_line_bytes = int(key, raw)?,
                "AUTHTEL_PIPELINE_FSYNC" => {
                    fsync_kind = Some(match raw {
                        "batch" => 0,
                        "interval" => 1,
                        "never" => 2,
                        _ => return Err(invalid(key, raw, "batch|interval|never")),
                    })
                }
                "AUTHTEL_PIPELINE_FSYNC_INTERVAL_MS" => fsync_interval = Some(millis(key, raw)?),
                "AUTHTEL_PIPELINE_DEAD_LETTER_DIR" => {
                    if raw.is_empty() {
                        return Err(invalid(key, raw, "a directory path"));
                    }
                    s.dead_letter_dir = Some(PathBuf::from(raw));
                }
                "AUTHTEL_PIPELINE_SAMPLE_RATE" => {
                    s.sample_rate = raw
                        .parse::<f64>()
                        .ok()
                        .filter(|r| (0.0..=1.0).contains(r))
                        .ok_or_else(|| invalid(key, raw, "a number in 0.0..=1.0"))?
                }
                "AUTHTEL_PIPELINE_RATE_LIMIT_PER_SEC" => rate = Some(int::<u32>(key, raw)?),
                "AUTHTEL_PIPELINE_RATE_LIMIT_BURST" => burst = Some(int::<u32>(key, raw)?),
                k if k.starts_with("AUTHTEL_PIPELINE_") => {
                    return Err(ConfigError::UnknownKey {
                        key: k.to_owned(),
                        known: KNOWN,
                    });
                }
                _ => {}
            }
        }
        let s = &mut cfg.settings;
        s.fsync = match (fsync_kind, fsync_interval) {
            (Some(1) | None, Some(d)) => FsyncPolicy::Interval(d),
            (Some(1), None) => FsyncPolicy::Interval(Duration::from_secs(1)),
            (Some(2), _) => FsyncPolicy::Never,
            _ => FsyncPolicy::EveryBatch,
        };
        if let Some(per_second) = rate {
            s.rate_limit = Some(RateLimit {
                per_second,
                burst: burst.unwrap_or(per_second),
            });
        }
        s.validate().map_err(|e| match e {
            ConfigError::InvalidValue {
                key,
                value,
                expected,
            } => ConfigError::InvalidValue {
                key: env_name(&key),
                value,
                expected,
            },
            ConfigError::Missing { key, because } => ConfigError::Missing {
                key: env_name(&key),
                because,
            },
            other => other,
        })?;
        Ok(cfg)
    }
}

fn env_name(setting: &str) -> String {
    format!(
        "AUTHTEL_PIPELINE_{}",
        setting.replace('.', "_").to_ascii_uppercase()
    )
}

fn invalid(key: &str, raw: &str, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: authtel_core::metadata::truncate(raw, 128).to_owned(),
        expected,
    }
}

fn int<T: std::str::FromStr>(key: &str, raw: &str) -> Result<T, ConfigError> {
    raw.parse()
        .map_err(|_| invalid(key, raw, "a non-negative integer"))
}

fn millis(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    raw.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(key, raw, "a whole number of milliseconds"))
}

fn boolean(key: &str, raw: &str) -> Result<bool, ConfigError> {
    match raw {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(invalid(key, raw, "true|false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::audit::AuditEvent;
    use authtel_core::forward::ForwardFuture;

    #[derive(Debug)]
    struct Prefers(Option<usize>);

    impl Forwarder for Prefers {
        fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
            Box::pin(async { Ok(()) })
        }
        fn preferred_batch_size(&self) -> Option<usize> {
            self.0
        }
    }

    #[test]
    fn forwarder_preferred_batch_size_is_the_default_and_explicit_settings_win() {
        assert_eq!(
            ForwarderConfig::new("none", Prefers(None))
                .settings()
                .batch_size,
            Settings::default().batch_size
        );
        assert_eq!(
            ForwarderConfig::new("bulk", Prefers(Some(2048)))
                .settings()
                .batch_size,
            2048
        );
        let huge = ForwarderConfig::new("huge", Prefers(Some(usize::MAX)));
        assert_eq!(
            huge.settings().batch_size,
            Settings::default().queue_capacity
        );
        assert!(huge.settings().validate().is_ok());
        assert_eq!(
            ForwarderConfig::new("zero", Prefers(Some(0)))
                .settings()
                .batch_size,
            1
        );
        assert_eq!(
            ForwarderConfig::new("set", Prefers(Some(2048)))
                .batch_size(64)
                .settings()
                .batch_size,
            64
        );
    }

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

    #[test]
    fn env_errors_name_the_variable() {
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BATCH_SIZE", "0")]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::InvalidValue { key, value, .. } if key == "AUTHTEL_PIPELINE_BATCH_SIZE" && value == "0"),
            "{e}"
        );
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BACKPRESSURE", "spill")]).unwrap_err();
        assert!(
            matches!(&e, ConfigError::Missing { key, .. } if key == "AUTHTEL_PIPELINE_SPILL_DIR"),
            "{e}"
        );
        let e = EnvConfig::from_vars([("AUTHTEL_PIPELINE_BATCHSIZE", "5")]).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownKey { .. }));
        let ok = EnvConfig::from_vars([("AUTHTEL_SQL_URL", "x"), ("PATH", "/bin")]).unwrap();
        assert_eq!(ok.settings, Settings::default());
    }
}
