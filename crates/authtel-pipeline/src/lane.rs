//! A forwarder's lane: one of the two lane types around the shared delivery core.
//!
//! Two modes are two types ([`InlineLane`], [`QueuedLane`]), not a flag tested in four
//! places; this enum only routes the pipeline's calls to the one a forwarder has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;

use crate::delivery::{Class, Core};
use crate::error::{FlushError, PublishError};
use crate::inline::InlineLane;
use crate::metrics::ForwarderMetrics;
use crate::queued::QueuedLane;

#[derive(Debug)]
pub(crate) enum Lane {
    Inline(Box<InlineLane>),
    Queued(Arc<QueuedLane>),
}

impl Lane {
    pub(crate) fn core(&self) -> &Core {
        match self {
            Lane::Inline(l) => &l.core,
            Lane::Queued(l) => &l.core,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.core().id
    }

    pub(crate) fn metrics(&self) -> ForwarderMetrics {
        match self {
            Lane::Inline(l) => l.metrics(),
            Lane::Queued(l) => l.metrics(),
        }
    }

    #[inline]
    pub(crate) fn publish(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        match self {
            Lane::Inline(l) => l.publish(event, class),
            Lane::Queued(l) => l.publish(event, class, timeout),
        }
    }

    pub(crate) async fn publish_async(&self, event: AuditEvent) -> Result<(), PublishError> {
        match self {
            Lane::Inline(l) => l.publish(event, Class::Audit),
            // The spill write (and its fsync) goes to the blocking pool: on disk before
            // `Ok`, without stalling the runtime's worker thread.
            Lane::Queued(l)
                if l.spills_in_publish() && tokio::runtime::Handle::try_current().is_ok() =>
            {
                let lane = Arc::clone(l);
                let id = lane.core.id.clone();
                match tokio::task::spawn_blocking(move || lane.publish(event, Class::Audit, None))
                    .await
                {
                    Ok(r) => r,
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => Err(PublishError::Closed { forwarder: id }),
                }
            }
            Lane::Queued(l) => l.publish_async(event).await,
        }
    }

    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        match self {
            Lane::Inline(l) => l.flush(deadline),
            Lane::Queued(l) => l.flush(deadline),
        }
    }

    /// True when the spill is empty and nothing waits in memory.
    pub(crate) fn wait_replayed(&self, deadline: Instant) -> bool {
        match self {
            Lane::Inline(l) => l.wait_replayed(deadline),
            Lane::Queued(l) => l.wait_replayed(deadline),
        }
    }

    pub(crate) fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        match self {
            Lane::Inline(l) => l.shutdown(deadline),
            Lane::Queued(l) => l.shutdown(deadline),
        }
    }

    pub(crate) fn close(&self) {
        if let Lane::Queued(l) = self {
            l.close();
        }
    }
}
