//! [`ForwarderConfig`]: one forwarder and its [`Settings`], built with `with`-style setters.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authtel_core::forward::Forwarder;

use crate::config::{
    Backpressure, BreakerConfig, Dispatch, FsyncPolicy, RateLimit, RetryPolicy, Settings,
};

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

    /// Replaces every setting, e.g. with those read by [`EnvConfig`](crate::EnvConfig).
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
        /// The wait of `AUTHTEL_PIPELINE_BACKPRESSURE=block`.
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
}
