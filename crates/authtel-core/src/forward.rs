//! The [`Forwarder`] contract: how sink crates receive batches of audit records.
//!
//! The dispatching engine (queues, retries, spill, breaker) lives in `authtel-pipeline`;
//! core only defines the contract so sinks depend on nothing heavy.
//!
//! # Contract
//! - `forward` may be called concurrently from several workers; implementations serialize
//!   internally if their destination needs it.
//! - A call should finish within the forwarder's own timeout; the pipeline also bounds it.
//! - Delivery is at-least-once: the pipeline retries [`ErrorKind::Transient`] failures, so
//!   the same record (same [`AuditEvent::id`](crate::audit::AuditEvent::id)) can arrive twice.
//!   Destinations deduplicate on that id.
//! - The pipeline retries; forwarders do not loop on their own.
//! - `shutdown` is idempotent; `forward` after `shutdown` returns a permanent error.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::audit::AuditEvent;

/// The future a forwarder returns. Boxed so the trait stays object-safe and runtime-free.
pub type ForwardFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ForwardError>> + Send + 'a>>;

/// Delivers batches of audit records to one destination.
///
/// ```
/// use authtel_core::audit::AuditEvent;
/// use authtel_core::forward::{Forwarder, ForwardError, ForwardFuture};
///
/// #[derive(Debug)]
/// struct Stdout;
/// impl Forwarder for Stdout {
///     fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
///         Box::pin(async move {
///             for e in batch {
///                 let line = serde_json::to_string(e).map_err(|e| ForwardError::permanent("serialize", e))?;
///                 println!("{line}");
///             }
///             Ok(())
///         })
///     }
/// }
/// ```
pub trait Forwarder: Send + Sync + fmt::Debug + 'static {
    /// Delivers `batch`. `Ok` means the destination acknowledged every record.
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a>;

    /// Pushes out anything the forwarder buffers itself, waiting at most until `deadline`.
    fn flush(&self, deadline: Instant) -> Result<(), ForwardError> {
        let _ = deadline;
        Ok(())
    }

    /// Releases the destination; idempotent.
    fn shutdown(&self, deadline: Instant) -> Result<(), ForwardError> {
        let _ = deadline;
        Ok(())
    }

    /// How many records per call this destination handles best, if it knows: a pipeline
    /// uses it as the default batch size (an explicit setting wins). A network producer
    /// that pipelines sends wants large batches; `None` keeps the pipeline's default.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
    /// #[derive(Debug)]
    /// struct Bulk;
    /// impl Forwarder for Bulk {
    ///     fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
    ///         Box::pin(async { Ok(()) })
    ///     }
    ///     fn preferred_batch_size(&self) -> Option<usize> {
    ///         Some(2048)
    ///     }
    /// }
    /// assert_eq!(Bulk.preferred_batch_size(), Some(2048));
    /// ```
    fn preferred_batch_size(&self) -> Option<usize> {
        None
    }
}

/// Whether retrying can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A timeout, a connection refused, a broker down: retry with backoff.
    Transient,
    /// A schema mismatch, a record too large, bad credentials: retrying cannot help.
    Permanent,
}

/// A forwarder's failure.
///
/// ```
/// use authtel_core::forward::{ErrorKind, ForwardError};
/// let e = ForwardError::transient("connect to 127.0.0.1:5432", std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
/// assert_eq!(e.kind(), ErrorKind::Transient);
/// assert!(e.to_string().starts_with("connect to 127.0.0.1:5432"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{context} failed ({kind_text})")]
pub struct ForwardError {
    kind: ErrorKind,
    kind_text: &'static str,
    context: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ForwardError {
    fn make(
        kind: ErrorKind,
        context: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        ForwardError {
            kind,
            kind_text: match kind {
                ErrorKind::Transient => "transient: will be retried",
                ErrorKind::Permanent => "permanent: will not be retried",
            },
            context: context.into(),
            source,
        }
    }

    /// A transient failure of `context` (what was being done, with which target).
    pub fn transient(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::make(ErrorKind::Transient, context, Some(source.into()))
    }

    /// A permanent failure of `context`.
    pub fn permanent(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::make(ErrorKind::Permanent, context, Some(source.into()))
    }

    /// A failure with no underlying error value.
    pub fn message(kind: ErrorKind, context: impl Into<String>) -> Self {
        Self::make(kind, context, None)
    }

    /// Whether retrying can help.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether this is transient.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// What was being done.
    pub fn context(&self) -> &str {
        &self.context
    }
}
