//! The inline lane (`Dispatch::Sync`): `publish` delivers in the caller, through the
//! shared [`Core`], and returns once the record is delivered, spilled or dead-lettered.
//! It blocks the caller for the whole delivery, retries included: the application chooses
//! it explicitly (a CLI tool, a test), it is never picked by `Dispatch::Auto`.

use std::sync::Mutex;
use std::time::Instant;

use authtel_core::audit::AuditEvent;

use crate::delivery::{Attempted, Class, Core, Health, lock};
use crate::error::{FlushError, PublishError};
use crate::metrics::{Counters, ForwarderMetrics};
use crate::spill::{SpillError, SpillStore};

pub(crate) struct InlineLane {
    pub(crate) core: Core,
    spill: Option<Mutex<SpillStore>>,
}

impl std::fmt::Debug for InlineLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineLane")
            .field("id", &self.core.id)
            .finish_non_exhaustive()
    }
}

impl InlineLane {
    pub(crate) fn new(core: Core, spill: Option<SpillStore>) -> InlineLane {
        InlineLane {
            core,
            spill: spill.map(Mutex::new),
        }
    }

    pub(crate) fn metrics(&self) -> ForwarderMetrics {
        let mut m = self.core.counters.snapshot(&self.core.id);
        m.asynchronous = false;
        m.breaker = self.core.breaker.state();
        m.spill_bytes = self.spill.as_ref().map_or(0, |s| lock(s).bytes());
        m
    }

    fn spill_waiting(&self) -> bool {
        self.spill.as_ref().is_some_and(|s| !lock(s).is_empty())
    }

    pub(crate) fn publish(&self, event: AuditEvent, class: Class) -> Result<(), PublishError> {
        if !self.core.admit(class)? {
            return Ok(());
        }
        if self.core.gate.is_closed() {
            if self.append(std::slice::from_ref(&event)).is_ok() {
                Counters::add(&self.core.counters.published, 1);
                return Ok(());
            }
            self.core.drop_records(1, "closed", class == Class::Audit);
            return Err(PublishError::Closed {
                forwarder: self.core.id.clone(),
            });
        }
        Counters::add(&self.core.counters.published, 1);
        let batch = [event];
        // While older records wait in the spill, the new one joins them so order holds,
        // and the caller replays a little of the backlog.
        if self.spill_waiting() && self.append(&batch).is_ok() {
            crate::blocking::block_on(async {
                for _ in 0..4 {
                    if !self.replay_once().await {
                        break;
                    }
                }
            });
            return Ok(());
        }
        crate::blocking::block_on(self.deliver(&batch));
        Ok(())
    }

    /// Delivers in the caller; never waits for the breaker: with it open the batch spills,
    /// or is dead-lettered when it cannot.
    async fn deliver(&self, batch: &[AuditEvent]) {
        let core = &self.core;
        match core.attempt(batch, 0).await {
            Attempted::Delivered => {}
            Attempted::Refused { reason, attempts } => {
                for r in core.isolate_refused(batch, reason, attempts).await {
                    core.dead_letter(r.part, &r.reason, r.attempts);
                }
            }
            Attempted::Exhausted { reason, attempts } => {
                if !(core.breaker.is_open() && self.append(batch).is_ok()) {
                    core.dead_letter(batch, &reason, attempts);
                }
            }
            Attempted::Blocked { attempts, .. } => {
                if self.append(batch).is_err() {
                    core.dead_letter(
                        batch,
                        "circuit breaker open and no spill directory",
                        attempts,
                    );
                }
            }
            Attempted::Stopped => {
                if self.append(batch).is_err() {
                    core.drop_records(batch.len(), "closed", true);
                }
            }
        }
    }

    fn append(&self, batch: &[AuditEvent]) -> Result<(), SpillError> {
        let spill = self.spill.as_ref().ok_or(SpillError::NoSpill)?;
        let mut store = lock(spill);
        let result = store
            .write(batch)
            .and_then(|n| {
                Counters::add(&self.core.counters.spilled, n);
                store.sync_if_due().map_err(SpillError::Io)
            })
            .map(drop);
        drop(store);
        match &result {
            Err(SpillError::Full) => self.core.set_health(Health::SpillFull, ""),
            Err(SpillError::Io(e)) => self.core.set_health(Health::SpillIo, &e.to_string()),
            _ => {}
        }
        result
    }

    /// Delivers one batch from the spill. True when it made progress.
    async fn replay_once(&self) -> bool {
        let Some(spill) = &self.spill else {
            return false;
        };
        if self.core.breaker.blocked() {
            return false;
        }
        let read = lock(spill).read_batch(self.core.settings.batch_size);
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(forwarder = %self.core.id, error = %e, "authtel pipeline cannot read its spill file");
                return false;
            }
        };
        if !batch.events.is_empty() {
            match self.core.attempt(&batch.events, 0).await {
                Attempted::Delivered => {
                    Counters::add(&self.core.counters.replayed, batch.events.len());
                }
                Attempted::Refused { reason, attempts } => {
                    let refused = self.core.isolate_refused(&batch.events, reason, attempts);
                    let mut n = 0;
                    for r in refused.await {
                        n += r.part.len();
                        self.core.dead_letter(r.part, &r.reason, r.attempts);
                    }
                    Counters::add(&self.core.counters.replayed, batch.events.len() - n);
                }
                _ => return false,
            }
        }
        lock(spill).commit(&batch);
        if batch.skipped > 0 {
            Counters::add(
                &self.core.counters.corrupt_spill_lines,
                batch.skipped as usize,
            );
            tracing::warn!(
                forwarder = %self.core.id,
                skipped = batch.skipped,
                "authtel pipeline skipped unreadable spill lines (garbage, truncated or oversized)"
            );
        }
        !batch.events.is_empty() || batch.skipped > 0
    }

    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        if self.spill_waiting() {
            crate::blocking::block_on(async {
                while Instant::now() < deadline && self.replay_once().await {}
            });
        }
        self.sync_spill();
        if let Err(e) = self.core.forwarder.flush(deadline) {
            tracing::warn!(forwarder = %self.core.id, error = %e, "forwarder flush failed");
        }
        Ok(())
    }

    fn sync_spill(&self) {
        if let Some(spill) = &self.spill
            && let Err(e) = lock(spill).sync()
        {
            tracing::error!(forwarder = %self.core.id, error = %e, "authtel pipeline cannot sync its spill file");
        }
    }

    /// Replays the spill until it is empty or the deadline passes.
    pub(crate) fn wait_replayed(&self, deadline: Instant) -> bool {
        self.flush(deadline).ok();
        !self.spill_waiting()
    }

    /// Closes the gate: calls in other threads are cut off, no call starts afterwards.
    pub(crate) fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        self.core.gate.close();
        self.core.gate.cancel();
        let _ = self.core.gate.wait_idle(deadline);
        self.sync_spill();
        if let Err(e) = self.core.forwarder.shutdown(deadline) {
            tracing::warn!(forwarder = %self.core.id, error = %e, "forwarder shutdown failed");
        }
        Ok(())
    }
}
