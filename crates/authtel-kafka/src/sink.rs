//! [`ProjectionSink`]: where the [`Projector`](crate::Projector) writes. The projector owns
//! reading, batching, retrying and offsets; a sink owns one thing, storing a batch
//! atomically and idempotently.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use std::sync::Arc;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ForwardError, Forwarder};

/// The future a sink returns: how many records were new.
pub type ProjectFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, ForwardError>> + Send + 'a>>;

/// Stores batches of audit records for the [`Projector`](crate::Projector).
///
/// # Contract
/// - `project` writes the whole batch in one transaction and returns after it committed;
///   an `Err` means nothing of the batch is stored (the projector retries transient errors
///   and stops on permanent ones, without committing offsets).
/// - It is idempotent on [`AuditEvent::id`]: records already stored are skipped, not
///   updated, and not counted as new. After a crash the projector redelivers the batch.
/// - Calls never overlap for one projector; several projectors may share one sink.
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::Mutex;
/// use authtel_core::audit::AuditEvent;
/// use authtel_kafka::{ProjectFuture, ProjectionSink};
///
/// #[derive(Debug, Default)]
/// struct InMemory(Mutex<HashSet<uuid::Uuid>>);
/// impl ProjectionSink for InMemory {
///     fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
///         Box::pin(async move {
///             let mut ids = self.0.lock().unwrap();
///             Ok(batch.iter().filter(|e| ids.insert(e.id())).count() as u64)
///         })
///     }
/// }
/// ```
pub trait ProjectionSink: Send + Sync + fmt::Debug + 'static {
    /// Stores `batch` atomically, skipping ids already stored; returns how many were new.
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a>;
}

impl<S: ProjectionSink + ?Sized> ProjectionSink for std::sync::Arc<S> {
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
        (**self).project(batch)
    }
}

/// Any [`Forwarder`] as a [`ProjectionSink`], so the projector can write wherever the
/// pipeline can — the SQL store's `authtel_sql::BatchWriter` included — without this crate
/// depending on the destination. See [`ProjectorBuilder::build_forwarding`](crate::ProjectorBuilder::build_forwarding).
///
/// The [`Forwarder`] contract says nothing about duplicates, so every record of a stored
/// batch counts as projected (`ProjectorCounters::duplicates` then counts only duplicates
/// inside one batch). The forwarder must be idempotent on the event id, as the contract asks.
///
/// ```
/// use std::sync::Arc;
/// use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
/// use authtel_kafka::{ForwarderSink, ProjectionSink};
/// #[derive(Debug)]
/// struct Nowhere;
/// impl Forwarder for Nowhere {
///     fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
///         Box::pin(async { Ok(()) })
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let sink = ForwarderSink::new(Arc::new(Nowhere));
/// let batch = [AuditEvent::new("auth.logout.stop", authtel_core::Outcome::Success).unwrap()];
/// assert_eq!(sink.project(&batch).await.unwrap(), 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ForwarderSink(Arc<dyn Forwarder>);

impl ForwarderSink {
    /// Wraps `forwarder`.
    pub fn new(forwarder: Arc<dyn Forwarder>) -> ForwarderSink {
        ForwarderSink(forwarder)
    }
}

impl ProjectionSink for ForwarderSink {
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
        Box::pin(async move {
            self.0.forward(batch).await?;
            Ok(batch.len() as u64)
        })
    }
}
