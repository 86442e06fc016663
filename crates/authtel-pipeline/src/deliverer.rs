//! The delivery rules for a source that keeps its records itself — the SQL outbox relay:
//! one call per batch bounded by the call timeout, panics caught, the circuit breaker, a
//! permanently refused batch split down to the records refused alone, and the outcome of
//! every record. The source stores what it means (done, retry at, dead), so a forwarder
//! behaves the same behind the outbox as behind the pipeline's own queue.

use std::sync::Arc;
use std::time::Instant;

use authtel_core::audit::AuditEvent;

use crate::delivery::{Attempted, Core};
use crate::signals::Signals;
use crate::{BuildError, ForwarderConfig, ForwarderMetrics};

/// What became of one record of a batch given to [`Deliverer::deliver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The forwarder acknowledged it.
    Delivered,
    /// The forwarder refused it for good, alone (its batch neighbours were tried without
    /// it): dead-letter it.
    Refused {
        /// The forwarder's error, screened.
        reason: String,
    },
    /// Not delivered now (transient failures up to the retry policy, the breaker open, a
    /// timeout, a panic): try again later, not before `not_before` when it is set.
    RetryLater {
        /// The last failure, screened.
        reason: String,
        /// When the circuit breaker lets a call through again.
        not_before: Option<Instant>,
    },
}

/// One forwarder behind the pipeline's delivery rules, for a source that stores its own
/// records and their state (the SQL outbox relay). Built from a [`ForwarderConfig`]: its
/// retry policy bounds the calls of one [`deliver`](Deliverer::deliver), its breaker and
/// call timeout apply as in a lane; queue, spill and dead-letter settings do not (the
/// source keeps the records).
///
/// ```
/// # use authtel_core::{audit::AuditEvent, forward::{ErrorKind, ForwardError, Forwarder, ForwardFuture}, outcome::Outcome};
/// use authtel_pipeline::{Deliverer, ForwarderConfig, RecordOutcome};
/// # #[derive(Debug)] struct RefusesLogouts;
/// # impl Forwarder for RefusesLogouts {
/// #     fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
/// #         let bad = batch.iter().any(|e| e.action() == "auth.logout.stop");
/// #         Box::pin(async move { if bad { Err(ForwardError::message(ErrorKind::Permanent, "schema mismatch")) } else { Ok(()) } })
/// #     }
/// # }
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let deliverer = Deliverer::new(ForwarderConfig::new("kafka", RefusesLogouts))?;
/// let batch = [
///     AuditEvent::new("auth.login.stop", Outcome::Success)?,
///     AuditEvent::new("auth.logout.stop", Outcome::Success)?,
///     AuditEvent::new("auth.login.stop", Outcome::Failure)?,
/// ];
/// let outcomes = deliverer.deliver(&batch).await;
/// assert_eq!(outcomes[0], RecordOutcome::Delivered);
/// assert!(matches!(outcomes[1], RecordOutcome::Refused { .. }));
/// assert_eq!(outcomes[2], RecordOutcome::Delivered);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Deliverer {
    core: Core,
}

impl Deliverer {
    /// Checks the configuration and builds the deliverer.
    pub fn new(config: ForwarderConfig) -> Result<Deliverer, BuildError> {
        let ForwarderConfig {
            id,
            forwarder,
            settings,
        } = config;
        if id.trim().is_empty() {
            return Err(BuildError::BadId { id });
        }
        settings.validate().map_err(|source| BuildError::Config {
            forwarder: id.clone(),
            source,
        })?;
        Ok(Deliverer {
            core: Core::new(id, forwarder, settings, None, Arc::new(Signals::new(None))),
        })
    }

    /// The forwarder id.
    pub fn id(&self) -> &str {
        &self.core.id
    }

    /// When the circuit breaker is open and no call would be let through yet: the source
    /// need not take records out of storage for it now.
    pub fn blocked(&self) -> bool {
        self.core.breaker.blocked()
    }

    /// Delivers `batch` and says what became of each record, in batch order. Never panics
    /// (a forwarder's panic is a transient failure) and never waits longer than the retry
    /// policy's calls, each bounded by the call timeout.
    pub async fn deliver(&self, batch: &[AuditEvent]) -> Vec<RecordOutcome> {
        let retry = |reason: &str, not_before| RecordOutcome::RetryLater {
            reason: reason.to_owned(),
            not_before,
        };
        match self.core.attempt(batch, 0).await {
            Attempted::Delivered => vec![RecordOutcome::Delivered; batch.len()],
            Attempted::Exhausted { reason, .. } => vec![retry(&reason, None); batch.len()],
            Attempted::Blocked { until, .. } => {
                vec![retry("circuit breaker open", Some(until)); batch.len()]
            }
            Attempted::Stopped => vec![retry("delivery stopped", None); batch.len()],
            Attempted::Refused { reason, attempts } => {
                let mut outcomes = vec![RecordOutcome::Delivered; batch.len()];
                for refusal in self.core.isolate_refused(batch, reason, attempts).await {
                    let start = refusal.offset;
                    let outcome = if refusal.alone {
                        RecordOutcome::Refused {
                            reason: refusal.reason,
                        }
                    } else {
                        retry(&refusal.reason, None)
                    };
                    for slot in &mut outcomes[start..start + refusal.part.len()] {
                        *slot = outcome.clone();
                    }
                }
                outcomes
            }
        }
    }

    /// Its counters: delivered, retried, panics, timeouts, breaker opens and state.
    pub fn metrics(&self) -> ForwarderMetrics {
        let mut m = self.core.counters.snapshot(&self.core.id);
        m.asynchronous = true;
        m.breaker = self.core.breaker.state();
        m
    }
}
