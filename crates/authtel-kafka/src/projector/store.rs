//! Storing a batch through the pipeline's delivery engine: the sink sits behind an
//! [`authtel_pipeline::Deliverer`] (call timeout, panics caught, circuit breaker, a refused
//! batch split down to the records refused alone). The projector keeps what only a source
//! knows: records not stored yet are tried again, with backoff, until stored or stopped
//! (offsets stay put meanwhile); records refused alone become dead letters.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_pipeline::RecordOutcome;
use tokio::sync::watch;

use super::dead_letter::Poison;
use super::{Batch, Counters, Projector, ProjectorError, ProjectorState};
use crate::sink::ProjectionSink;

/// The projection sink as a [`Forwarder`], so the delivery engine can call it; it counts
/// what each call stored and skipped (a forwarder's `Ok` says nothing about duplicates).
pub(super) struct SinkCall {
    pub(super) sink: Arc<dyn ProjectionSink>,
    pub(super) counters: Arc<Counters>,
}

impl fmt::Debug for SinkCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkCall")
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl Forwarder for SinkCall {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move {
            let c = &self.counters;
            match self.sink.project(batch).await {
                Ok(new) => {
                    let new = new.min(batch.len() as u64);
                    c.store_commits.fetch_add(1, Ordering::Relaxed);
                    c.projected.fetch_add(new, Ordering::Relaxed);
                    c.duplicates
                        .fetch_add(batch.len() as u64 - new, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    c.store_failures.fetch_add(1, Ordering::Relaxed);
                    Err(e)
                }
            }
        })
    }
}

/// What became of a batch's records after one or more deliveries.
#[derive(Default)]
struct Settled {
    /// The index of a record stored (any), for the canary.
    stored: Option<usize>,
    /// Records refused alone, with the reason.
    refused: Vec<(usize, String)>,
}

impl Projector {
    /// Stores the batch: delivers it, then delivers again whatever is left to retry (after
    /// the backoff, or when the breaker lets a call through) until every record is stored or
    /// refused alone; those go to `batch.poison`. If nothing of the batch could be stored,
    /// the last record stored before is stored again (a skipped duplicate): if the store
    /// refuses that too, the store is broken and the run ends without committing.
    pub(super) async fn store(
        &self,
        batch: &mut Batch,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let c = &self.inner.counters;
        c.duplicates
            .fetch_add(batch.in_batch_duplicates, Ordering::Relaxed);
        if batch.events.is_empty() {
            return Ok(());
        }
        let settled = self.deliver_all(&batch.events, stop).await?;
        if settled.stored.is_none()
            && !settled.refused.is_empty()
            && !self.store_still_works().await
        {
            let (_, reason) = &settled.refused[0];
            return Err(ProjectorError::Store {
                topic: self.inner.topic.clone(),
                records: batch.events.len(),
                source: ForwardError::message(ErrorKind::Permanent, reason.clone()),
            });
        }
        if let Some(i) = settled.stored {
            *self
                .inner
                .canary
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(batch.events[i].clone());
        }
        for (i, reason) in settled.refused {
            c.refused.fetch_add(1, Ordering::Relaxed);
            let reason = format!("refused by the store: {reason}");
            let (partition, offset) = batch.origins[i];
            self.note_error(format!(
                "dead-lettering record {} at partition {partition} offset {offset}: {reason}",
                batch.events[i].id()
            ));
            batch
                .poison
                .push(Poison::refused(&batch.events[i], batch.origins[i], reason));
        }
        Ok(())
    }

    /// Delivers `events` until each is stored or refused alone. Stopping while records are
    /// still to be retried ends the run with those records unstored (offsets uncommitted).
    async fn deliver_all(
        &self,
        events: &[AuditEvent],
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Settled, ProjectorError> {
        let mut settled = Settled::default();
        // Indices into `events` still to deliver; the first round sends the batch as it is.
        let mut todo: Vec<usize> = (0..events.len()).collect();
        let mut round = 0u32;
        loop {
            let outcomes = if todo.len() == events.len() {
                self.inner.deliverer.deliver(events).await
            } else {
                let subset: Vec<AuditEvent> = todo.iter().map(|&i| events[i].clone()).collect();
                self.inner.deliverer.deliver(&subset).await
            };
            let mut again = Vec::new();
            let mut last_reason = None;
            let mut not_before: Option<Instant> = None;
            for (&i, outcome) in todo.iter().zip(outcomes) {
                match outcome {
                    RecordOutcome::Delivered => settled.stored = Some(i),
                    RecordOutcome::Refused { reason } => {
                        self.note_error(reason.clone());
                        settled.refused.push((i, reason));
                    }
                    RecordOutcome::RetryLater {
                        reason,
                        not_before: until,
                    } => {
                        again.push(i);
                        not_before = not_before.max(until);
                        last_reason = Some(reason);
                    }
                }
            }
            if again.is_empty() {
                if round > 0 {
                    self.set_state(ProjectorState::Running);
                }
                settled.refused.sort_by_key(|(i, _)| *i);
                return Ok(settled);
            }
            round = round.saturating_add(1);
            let reason = last_reason.unwrap_or_default();
            self.note_error(format!(
                "storing {} of {} records failed, retrying (offsets not committed): {reason}",
                again.len(),
                events.len()
            ));
            self.set_state(ProjectorState::RetryingStore);
            let backoff = self.inner.store_retry.delay_after(round);
            let wait = not_before
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or_default()
                .max(backoff);
            if !wait_or_stop(wait, stop).await {
                return Err(ProjectorError::Store {
                    topic: self.inner.topic.clone(),
                    records: again.len(),
                    source: ForwardError::message(ErrorKind::Transient, reason),
                });
            }
            todo = again;
        }
    }

    /// Whether the store still takes the last record this projector stored (`false` when
    /// there is none): one delivery, no retry rounds.
    async fn store_still_works(&self) -> bool {
        let canary = self
            .inner
            .canary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(canary) = canary else {
            return false;
        };
        let c = &self.inner.counters;
        let before = c.duplicates.load(Ordering::Relaxed);
        let works = self
            .inner
            .deliverer
            .deliver(std::slice::from_ref(&canary))
            .await
            .first()
            == Some(&RecordOutcome::Delivered);
        // The canary is not a record read from Kafka: it does not count as a duplicate.
        if works && c.duplicates.load(Ordering::Relaxed) > before {
            c.duplicates.fetch_sub(1, Ordering::Relaxed);
        }
        works
    }

    /// Produces the batch's dead letters, retrying each with backoff until the broker takes
    /// it or `stop`; offsets are committed only after all of them were acknowledged.
    pub(super) async fn dead_letter(
        &self,
        batch: &Batch,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), ProjectorError> {
        let inner = &self.inner;
        if !batch.poison.is_empty()
            && let Err(e) = inner.dead_letters.ensure_topic().await
        {
            self.note_error(format!(
                "could not create the dead-letter topic {:?} (producing to it anyway): {e}",
                inner.dead_letters.topic
            ));
        }
        for poison in &batch.poison {
            let mut attempt = 0u32;
            loop {
                let Err(e) = inner.dead_letters.send(&inner.topic, poison).await else {
                    inner.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    break;
                };
                self.note_error(format!(
                    "could not dead-letter the message at partition {} offset {} to topic {:?} \
                     (create it or fix the broker; retrying, offsets not committed): {e}",
                    poison.partition, poison.offset, inner.dead_letters.topic
                ));
                self.set_state(ProjectorState::RetryingDeadLetter);
                attempt = attempt.saturating_add(1);
                if !wait_or_stop(inner.store_retry.delay_after(attempt), stop).await {
                    return Err(ProjectorError::DeadLetter {
                        dead_letter_topic: inner.dead_letters.topic.clone(),
                        source: Box::new(e),
                    });
                }
            }
        }
        if !batch.poison.is_empty() {
            self.set_state(ProjectorState::Running);
        }
        Ok(())
    }
}

/// Sleeps for `wait` unless `stop` comes first; `false` when stopped.
async fn wait_or_stop(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = stop.wait_for(|s| *s) => false,
    }
}

/// An error and its causes on one line.
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
