//! The queued lane's spill: where batches and queued records go when they cannot be
//! delivered now, replay from it, and the file I/O that runs off the async workers.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use authtel_core::audit::AuditEvent;

use super::{Delivery, QueuedLane};
use crate::delivery::{Health, lock};
use crate::metrics::Counters;
use crate::spill::SpillError;

impl QueuedLane {
    // ---- spill --------------------------------------------------------------------------

    /// Spills a batch taken from the queue (older than everything on disk and queued): at
    /// the spill's head when the spill holds records, else followed by the queue.
    pub(super) fn spill_head(&self, batch: &[AuditEvent]) -> Result<(), SpillError> {
        let spill = self.spill.as_ref().ok_or(SpillError::NoSpill)?;
        let mut q = lock(&self.queue.state);
        let mut store = lock(spill);
        if store.is_empty() {
            drop(store);
            return self.spill_locked(q, batch, None);
        }
        let written = store.write_head(batch);
        q.behind_spill = true;
        drop(q);
        let result = written.and_then(|n| {
            Counters::add(&self.core.counters.spilled, n);
            store.sync_if_due().map_err(SpillError::Io)
        });
        drop(store);
        self.after_spill(&result);
        result
    }

    /// Appends everything queued, then `last`, to the spill's tail as one write.
    pub(super) fn spill_tail(&self, last: Option<&AuditEvent>) -> Result<(), SpillError> {
        if self.spill.is_none() {
            return Err(SpillError::NoSpill);
        }
        let q = lock(&self.queue.state);
        self.spill_locked(q, &[], last)
    }

    /// Writes `lead`, the queue and `last` under the queue lock (taken by the caller) and
    /// the spill lock, and marks the queue as waiting behind the spill. The fsync waits
    /// only under the spill lock.
    pub(super) fn spill_locked(
        &self,
        mut q: std::sync::MutexGuard<'_, crate::queue::QueueState>,
        lead: &[AuditEvent],
        last: Option<&AuditEvent>,
    ) -> Result<(), SpillError> {
        let spill = self.spill.as_ref().ok_or(SpillError::NoSpill)?;
        let mut store = lock(spill);
        let written = store.write(lead.iter().chain(q.items.iter()).chain(last));
        let result = match written {
            Ok(n) => {
                let moved = std::mem::take(&mut q.items);
                q.behind_spill |= n > 0;
                drop(q);
                let synced = store.sync_if_due();
                drop(store);
                drop(moved);
                Counters::add(&self.core.counters.spilled, n);
                if n > 0 {
                    self.queue.room_made();
                    // The worker replays the spill now instead of waiting for a publish.
                    self.queue.wake.notify_one();
                }
                synced.map_err(SpillError::Io)
            }
            Err(e) => {
                drop(store);
                drop(q);
                Err(e)
            }
        };
        self.after_spill(&result);
        result
    }

    pub(super) fn after_spill(&self, result: &Result<(), SpillError>) {
        match result {
            Err(SpillError::Full) => self.core.set_health(Health::SpillFull, ""),
            Err(SpillError::Io(e)) => self.core.set_health(Health::SpillIo, &e.to_string()),
            Err(SpillError::NoSpill) | Ok(()) => {}
        }
    }

    /// Delivers one batch from the spill. True when it made progress.
    pub(super) async fn replay_once(self: &Arc<Self>) -> bool {
        if self.spill.is_none() {
            return false;
        }
        // A batch taken from the queue before anything spilled is older than the spill:
        // replay waits until it is settled.
        if self.in_flight.load(Ordering::SeqCst) > 0 || self.replaying.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        let progress = self.replay_inner().await;
        self.replaying.store(false, Ordering::Release);
        progress
    }

    pub(super) async fn replay_inner(self: &Arc<Self>) -> bool {
        if self.core.breaker.blocked() {
            return false;
        }
        let max = self.core.settings.batch_size;
        let Some(read) = self
            .off_worker(move |lane| {
                let spill = lane
                    .spill
                    .as_ref()
                    .ok_or_else(|| io::Error::other("no spill"))?;
                lock(spill).read_batch(max)
            })
            .await
        else {
            return false;
        };
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(forwarder = %self.core.id, error = %e, "authtel pipeline cannot read its spill file");
                return false;
            }
        };
        if !batch.events.is_empty() && self.deliver(&batch.events, true).await == Delivery::Kept {
            return false;
        }
        let (skipped, progress) = (batch.skipped, !batch.events.is_empty() || batch.skipped > 0);
        self.off_worker(move |lane| {
            let Some(spill) = &lane.spill else { return };
            // Queue lock first (the lock order): once the spill is empty, the queue is next.
            let mut q = lock(&lane.queue.state);
            let mut store = lock(spill);
            store.commit(&batch);
            if store.is_empty() {
                q.behind_spill = false;
            }
        })
        .await;
        if skipped > 0 {
            Counters::add(&self.core.counters.corrupt_spill_lines, skipped as usize);
            tracing::warn!(
                forwarder = %self.core.id,
                skipped,
                "authtel pipeline skipped unreadable spill lines (garbage, truncated or oversized)"
            );
        }
        progress
    }

    // ---- file I/O off the runtime's workers -----------------------------------------

    /// Runs `f` (spill or dead-letter I/O, fsync) on the runtime's blocking pool, so a
    /// slow disk never stalls the async workers. `None` when the runtime is shutting down
    /// and did not run it.
    pub(super) async fn off_worker<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&QueuedLane) -> R + Send + 'static,
    ) -> Option<R> {
        let lane = Arc::clone(self);
        match tokio::task::spawn_blocking(move || f(&lane)).await {
            Ok(r) => Some(r),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }

    pub(super) async fn spill_head_off_worker(self: &Arc<Self>, batch: &[AuditEvent]) -> bool {
        let batch = batch.to_vec();
        self.off_worker(move |lane| lane.spill_head(&batch).is_ok())
            .await
            .unwrap_or(false)
    }

    pub(super) async fn dead_letter_off_worker(
        self: &Arc<Self>,
        batch: &[AuditEvent],
        reason: String,
        attempts: u32,
    ) {
        let (batch, n) = (batch.to_vec(), batch.len());
        if self
            .off_worker(move |lane| lane.core.dead_letter(&batch, &reason, attempts))
            .await
            .is_none()
        {
            tracing::error!(forwarder = %self.core.id, records = n, "authtel pipeline could not write dead letters: the runtime is shutting down");
        }
    }
}
