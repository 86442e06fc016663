//! Errors of building and publishing.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::ConfigError;

/// Why a pipeline could not start.
///
/// ```
/// use authtel_pipeline::{BuildError, Dispatch, ForwarderConfig, Pipeline};
/// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
/// # #[derive(Debug)] struct Noop;
/// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
/// // No tokio runtime here, so async dispatch cannot start.
/// let err = Pipeline::builder()
///     .forwarder(ForwarderConfig::new("sql", Noop).dispatch(Dispatch::Async))
///     .build()
///     .unwrap_err();
/// assert!(matches!(err, BuildError::NoRuntime { .. }));
/// assert!(err.to_string().contains("Dispatch::Sync"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A setting is invalid.
    #[error("forwarder {forwarder:?}: {source}")]
    Config {
        /// The forwarder id.
        forwarder: String,
        /// What is wrong.
        #[source]
        source: ConfigError,
    },
    /// Async dispatch was asked for outside a tokio runtime.
    #[error(
        "forwarder {forwarder:?} uses Dispatch::Async but no tokio runtime is running; build the pipeline inside a runtime, pass one with PipelineBuilder::runtime, or use Dispatch::Sync or Dispatch::Auto"
    )]
    NoRuntime {
        /// The forwarder id.
        forwarder: String,
    },
    /// Two forwarders share an id, or an id is empty.
    #[error(
        "forwarder id {id:?} is empty or used twice; give each forwarder a unique non-empty id such as \"kafka\""
    )]
    BadId {
        /// The id.
        id: String,
    },
    /// The spill or dead-letter directory cannot be used.
    #[error(
        "forwarder {forwarder:?}: cannot use directory {path:?}; check it exists and is writable"
    )]
    Directory {
        /// The forwarder id.
        forwarder: String,
        /// The directory.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// The private runtime for sync delivery could not be created.
    #[error(
        "cannot start the runtime that drives sync delivery; check thread and file-descriptor limits"
    )]
    Runtime(#[source] std::io::Error),
}

/// Why a record was not accepted by a forwarder.
///
/// ```
/// use authtel_pipeline::PublishError;
/// use std::time::Duration;
/// let e = PublishError::Timeout { forwarder: "kafka".into(), timeout: Duration::from_millis(5) };
/// assert!(e.to_string().contains("kafka"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The queue stayed full for `timeout` and there is no spill directory.
    #[error(
        "forwarder {forwarder:?}: queue stayed full for {timeout:?}, record rejected; the destination is slow or down — raise queue_capacity, add a spill_dir, or check the destination"
    )]
    Timeout {
        /// The forwarder id.
        forwarder: String,
        /// How long the publisher waited.
        timeout: Duration,
    },
    /// The record was dropped by the backpressure policy (counted and reported).
    #[error("forwarder {forwarder:?}: queue full, record dropped by backpressure policy drop")]
    Dropped {
        /// The forwarder id.
        forwarder: String,
    },
    /// The spill directory reached its size bound.
    #[error(
        "forwarder {forwarder:?}: spill directory is full ({max_bytes} bytes), record rejected; free disk space or raise spill_max_bytes, and check the destination"
    )]
    SpillFull {
        /// The forwarder id.
        forwarder: String,
        /// The configured bound.
        max_bytes: u64,
    },
    /// The spill file could not be written.
    #[error("forwarder {forwarder:?}: cannot write spill file: {message}; check the disk")]
    SpillIo {
        /// The forwarder id.
        forwarder: String,
        /// The I/O failure.
        message: String,
    },
    /// The queue and its audit reserve are full, there is no spill directory and audit
    /// records may not be dropped: the record is refused (counted and reported).
    #[error(
        "forwarder {forwarder:?}: queue full ({capacity} records and as many again for audit records), record refused; the destination is slow or down — add a spill_dir so an outage goes to disk, raise queue_capacity, or check the destination"
    )]
    QueueFull {
        /// The forwarder id.
        forwarder: String,
        /// The queue capacity.
        capacity: usize,
    },
    /// The pipeline was shut down.
    #[error("forwarder {forwarder:?}: pipeline is shut down, record rejected")]
    Closed {
        /// The forwarder id.
        forwarder: String,
    },
}

/// `flush` or `shutdown` ran out of time.
///
/// ```
/// use authtel_pipeline::FlushError;
/// let e = FlushError { forwarder: "sql".into(), pending: 3 };
/// assert!(e.to_string().contains("3 records"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "forwarder {forwarder:?}: {pending} records still in memory at the deadline; they stay queued (configure a spill_dir so shutdown can persist them)"
)]
pub struct FlushError {
    /// The forwarder id.
    pub forwarder: String,
    /// Records neither delivered nor spilled.
    pub pending: u64,
}

/// [`Pipeline::wait_replayed`](crate::Pipeline::wait_replayed) ran out of time.
///
/// ```
/// use authtel_pipeline::ReplayError;
/// let e = ReplayError { forwarder: "kafka".into(), spill_bytes: 4096 };
/// assert!(e.to_string().contains("4096 bytes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "forwarder {forwarder:?}: spill not replayed by the deadline ({spill_bytes} bytes still on disk, or records still in memory); replay goes on — check the destination and the breaker state in the metrics"
)]
pub struct ReplayError {
    /// The forwarder id.
    pub forwarder: String,
    /// Bytes still in the spill directory.
    pub spill_bytes: u64,
}

/// A dead-letter file could not be read or replayed.
///
/// ```
/// let e = authtel_pipeline::read_dead_letters(std::path::Path::new("/nonexistent/x.dead.jsonl")).unwrap_err();
/// assert!(e.to_string().contains("/nonexistent/x.dead.jsonl"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// Reading the file failed.
    #[error("cannot read dead-letter file {path:?}; check the path and its permissions")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// No forwarder has this id.
    #[error("no forwarder {forwarder:?} in this pipeline; replay into one of: {known}")]
    UnknownForwarder {
        /// The id asked for.
        forwarder: String,
        /// The ids there are.
        known: String,
    },
}
