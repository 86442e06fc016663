//! Storing a batch: transient failures retried with backoff, permanent refusals narrowed
//! down to the refused records, which become dead letters with the undecodable messages.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::ForwardError;
use tokio::sync::watch;

use super::dead_letter::Poison;
use super::{Batch, Projector, ProjectorError, ProjectorState, STORE_RETRY_MAX, STORE_RETRY_MIN};

impl Projector {
    /// Stores the batch. A permanent refusal is narrowed down by storing halves, then
    /// quarters, … until each refused record stands alone; those go to `batch.poison`, the
    /// rest is stored. If nothing of the batch can be stored, the last record stored before
    /// is stored again (a skipped duplicate): if the store refuses that too, the store is
    /// broken and the run ends without committing.
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
        let mut pending = Vec::new();
        pending.push(0..batch.events.len());
        let mut stored = None;
        let mut refused: Vec<(usize, ForwardError)> = Vec::new();
        // Each split halves a range and stops at one record: at most 2n - 1 attempts.
        while let Some(range) = pending.pop() {
            match self.store_slice(&batch.events[range.clone()], stop).await? {
                Ok(()) => stored = Some(range.start),
                Err(e) if range.len() == 1 => refused.push((range.start, e)),
                Err(_) => {
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
            }
        }
        if stored.is_none() && !refused.is_empty() && !self.store_still_works(stop).await? {
            let (_, source) = refused.swap_remove(0);
            return Err(ProjectorError::Store {
                topic: self.inner.topic.clone(),
                records: batch.events.len(),
                source,
            });
        }
        if let Some(i) = stored {
            *self
                .inner
                .canary
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(batch.events[i].clone());
        }
        for (i, e) in refused {
            c.refused.fetch_add(1, Ordering::Relaxed);
            let reason = format!("refused by the store: {}", error_chain(&e));
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

    /// Whether the store still takes the last record this projector stored (`false` when
    /// there is none).
    async fn store_still_works(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, ProjectorError> {
        let canary = self
            .inner
            .canary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(canary) = canary else {
            return Ok(false);
        };
        let c = &self.inner.counters;
        let before = c.duplicates.load(Ordering::Relaxed);
        let works = self
            .store_slice(std::slice::from_ref(&canary), stop)
            .await?
            .is_ok();
        // The canary is not a record read from Kafka: it does not count as a duplicate.
        if works && c.duplicates.load(Ordering::Relaxed) > before {
            c.duplicates.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(works)
    }

    /// Stores `events` in one call, retrying transient failures with backoff until stored or
    /// stopped; `Ok(Err(e))` is a permanent refusal.
    async fn store_slice(
        &self,
        events: &[AuditEvent],
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Result<(), ForwardError>, ProjectorError> {
        let c = &self.inner.counters;
        let mut backoff = STORE_RETRY_MIN;
        loop {
            match self.inner.sink.project(events).await {
                Ok(new) => {
                    let new = new.min(events.len() as u64);
                    c.store_commits.fetch_add(1, Ordering::Relaxed);
                    c.projected.fetch_add(new, Ordering::Relaxed);
                    c.duplicates
                        .fetch_add(events.len() as u64 - new, Ordering::Relaxed);
                    self.set_state(ProjectorState::Running);
                    return Ok(Ok(()));
                }
                Err(e) if e.is_transient() => {
                    c.store_failures.fetch_add(1, Ordering::Relaxed);
                    self.note_error(error_chain(&e));
                    self.set_state(ProjectorState::RetryingStore);
                    let waited = tokio::select! {
                        _ = tokio::time::sleep(backoff) => true,
                        _ = stop.wait_for(|s| *s) => false,
                    };
                    if !waited {
                        // Stopping with the batch unstored: its offsets stay uncommitted.
                        return Err(ProjectorError::Store {
                            topic: self.inner.topic.clone(),
                            records: events.len(),
                            source: e,
                        });
                    }
                    backoff = (backoff * 2).min(STORE_RETRY_MAX);
                }
                Err(e) => {
                    c.store_failures.fetch_add(1, Ordering::Relaxed);
                    self.note_error(error_chain(&e));
                    return Ok(Err(e));
                }
            }
        }
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
            let mut backoff = STORE_RETRY_MIN;
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
                let waited = tokio::select! {
                    _ = tokio::time::sleep(backoff) => true,
                    _ = stop.wait_for(|s| *s) => false,
                };
                if !waited {
                    return Err(ProjectorError::DeadLetter {
                        dead_letter_topic: inner.dead_letters.topic.clone(),
                        source: Box::new(e),
                    });
                }
                backoff = (backoff * 2).min(STORE_RETRY_MAX);
            }
        }
        if !batch.poison.is_empty() {
            self.set_state(ProjectorState::Running);
        }
        Ok(())
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
