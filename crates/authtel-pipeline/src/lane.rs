//! One forwarder's lane: its queue, workers, retries, breaker, spill and dead letters.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, Forwarder};
use tokio::sync::Notify;

use crate::breaker::{Breaker, Permit};
use crate::config::{Backpressure, Settings};
use crate::error::{FlushError, PublishError};
use crate::limit::{TokenBucket, unit_random};
use crate::metrics::{Counters, ForwarderMetrics};
use crate::signals::Signals;
use crate::spill::{DeadLetter, SpillError, SpillStore};

/// Whether a record may be sampled, rate limited or dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Audit records and security signals: never sampled, never dropped by default.
    Audit,
    /// High-volume, non-security telemetry.
    Telemetry,
}

/// How often a spilling lane with nothing new to do looks at its spill again.
const REPLAY_POLL: Duration = Duration::from_millis(20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bounded in-memory queue of an async lane.
///
/// Order rule: records on disk (the spill) are always older than records in the queue,
/// and a batch a worker took from the queue is older than both. So while the spill holds
/// anything (`behind_spill`), the queue is never delivered directly: it waits, or joins the
/// spill's tail, until replay has emptied the spill. Every move of queued records to disk
/// holds the queue lock and then the spill lock (always in that order), so no record
/// can slip between the two.
#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    capacity: usize,
    not_full: Condvar,
    blocked: AtomicUsize,
    wake: Notify,
}

#[derive(Debug)]
struct QueueState {
    items: VecDeque<AuditEvent>,
    /// Older records wait in the spill: the queue must not be delivered before them.
    behind_spill: bool,
}

/// What a worker found in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// This many records moved into the worker's batch.
    Batch(usize),
    /// Records are queued, but older ones are in the spill.
    BehindSpill,
    /// Nothing queued.
    Empty,
}

// The full queue hands the record back so the caller can apply the backpressure policy;
// boxing it would cost an allocation per record on the hot path.
#[allow(clippy::result_large_err)]
impl Queue {
    fn try_push(&self, event: AuditEvent) -> Result<(), AuditEvent> {
        let mut guard = lock(&self.state);
        let q = &mut guard.items;
        if q.len() >= self.capacity {
            return Err(event);
        }
        let was_empty = q.is_empty();
        q.push_back(event);
        drop(guard);
        // Workers re-check the queue before sleeping, so only the empty-to-non-empty
        // transition needs a wake-up; a stored permit covers the race.
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    fn push_timeout(&self, event: AuditEvent, timeout: Duration) -> Result<(), AuditEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.state);
        while q.items.len() >= self.capacity {
            let now = Instant::now();
            if now >= deadline {
                return Err(event);
            }
            self.blocked.fetch_add(1, Ordering::SeqCst);
            q = self
                .not_full
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            self.blocked.fetch_sub(1, Ordering::SeqCst);
        }
        let was_empty = q.items.is_empty();
        q.items.push_back(event);
        drop(q);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Moves up to `max` records into the empty `out`, counting them in flight under the
    /// same lock so `flush` never sees them in neither place — unless older records wait in
    /// the spill. When everything queued fits, the two deques are swapped: publishers wait
    /// for a pointer swap, not a batch copy.
    fn take(&self, out: &mut VecDeque<AuditEvent>, max: usize, in_flight: &AtomicUsize) -> Take {
        debug_assert!(out.is_empty());
        let mut guard = lock(&self.state);
        if guard.behind_spill {
            return if guard.items.is_empty() {
                Take::Empty
            } else {
                Take::BehindSpill
            };
        }
        let q = &mut guard.items;
        let n = q.len().min(max);
        if n == q.len() {
            std::mem::swap(&mut *q, out);
        } else {
            out.extend(q.drain(..n));
        }
        in_flight.fetch_add(n, Ordering::SeqCst);
        let more = !q.is_empty();
        drop(guard);
        if n > 0 {
            self.room_made();
        }
        if more {
            self.wake.notify_one();
        }
        if n == 0 { Take::Empty } else { Take::Batch(n) }
    }

    /// Wakes publishers waiting for room, if any.
    fn room_made(&self) {
        if self.blocked.load(Ordering::SeqCst) > 0 {
            self.not_full.notify_all();
        }
    }

    fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    fn behind_spill(&self) -> bool {
        lock(&self.state).behind_spill
    }
}

/// How a batch left the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Delivered,
    DeadLettered,
    Spilled,
    /// Replay only: left in the spill for later.
    Kept,
}

struct Failure {
    kind: ErrorKind,
    reason: String,
}

pub(crate) struct Lane {
    pub(crate) id: String,
    forwarder: Arc<dyn Forwarder>,
    settings: Settings,
    pub(crate) asynchronous: bool,
    counters: Counters,
    queue: Queue,
    in_flight: AtomicUsize,
    idle: (Mutex<()>, Condvar),
    idle_waiters: AtomicUsize,
    breaker: Breaker,
    spill: Option<Mutex<SpillStore>>,
    replaying: AtomicBool,
    dead_letter: DeadLetter,
    bucket: Option<TokenBucket>,
    signals: Arc<Signals>,
    closed: AtomicBool,
    running_workers: AtomicUsize,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("id", &self.id)
            .field("asynchronous", &self.asynchronous)
            .finish_non_exhaustive()
    }
}

impl Lane {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        forwarder: Arc<dyn Forwarder>,
        settings: Settings,
        asynchronous: bool,
        spill: Option<SpillStore>,
        dead_letter: DeadLetter,
        signals: Arc<Signals>,
    ) -> Lane {
        // Records left by an earlier run are older than anything published now.
        let behind_spill = spill.as_ref().is_some_and(|s| !s.is_empty());
        Lane {
            queue: Queue {
                state: Mutex::new(QueueState {
                    items: VecDeque::with_capacity(settings.queue_capacity.min(4096)),
                    behind_spill,
                }),
                capacity: settings.queue_capacity,
                not_full: Condvar::new(),
                blocked: AtomicUsize::new(0),
                wake: Notify::new(),
            },
            breaker: Breaker::new(settings.breaker),
            bucket: settings.rate_limit.map(TokenBucket::new),
            spill: spill.map(Mutex::new),
            id,
            forwarder,
            settings,
            asynchronous,
            counters: Counters::default(),
            in_flight: AtomicUsize::new(0),
            idle: (Mutex::new(()), Condvar::new()),
            idle_waiters: AtomicUsize::new(0),
            replaying: AtomicBool::new(false),
            dead_letter,
            signals,
            closed: AtomicBool::new(false),
            running_workers: AtomicUsize::new(0),
        }
    }

    pub(crate) fn metrics(&self) -> ForwarderMetrics {
        let mut m = self.counters.snapshot(&self.id);
        m.asynchronous = self.asynchronous;
        m.breaker = self.breaker.state();
        m.queue_depth = self.queue.len() as u64;
        m.spill_bytes = self.spill.as_ref().map_or(0, |s| lock(s).bytes());
        m
    }

    // ---- publishing -------------------------------------------------------------------

    pub(crate) fn publish(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        if class == Class::Telemetry {
            let rate = self.settings.sample_rate;
            if rate < 1.0 && unit_random() >= rate {
                Counters::add(&self.counters.sampled_out, 1);
                return Ok(());
            }
            if let Some(bucket) = &self.bucket
                && !bucket.try_take()
            {
                self.drop_records(1, "rate_limited", false);
                return Err(PublishError::Dropped {
                    forwarder: self.id.clone(),
                });
            }
        }
        if self.closed.load(Ordering::Acquire) {
            if self.spill.is_some() {
                Counters::add(&self.counters.published, 1);
                return self.spill_or_reject(event, class);
            }
            self.drop_records(1, "closed", class == Class::Audit);
            return Err(PublishError::Closed {
                forwarder: self.id.clone(),
            });
        }
        Counters::add(&self.counters.published, 1);
        if !self.asynchronous {
            self.publish_sync(event);
            return Ok(());
        }
        match self.queue.try_push(event) {
            Ok(()) => Ok(()),
            Err(event) => self.overflow(event, class, timeout),
        }
    }

    fn overflow(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        let policy = match timeout {
            Some(timeout) => Backpressure::Block { timeout },
            None => self.settings.backpressure,
        };
        match policy {
            Backpressure::Drop
                if class == Class::Telemetry || self.settings.allow_dropping_audit =>
            {
                self.drop_records(1, "queue_full", class == Class::Audit);
                Err(PublishError::Dropped {
                    forwarder: self.id.clone(),
                })
            }
            Backpressure::Drop => self.block(event, class, self.settings.block_timeout),
            Backpressure::Block { timeout } => self.block(event, class, timeout),
            Backpressure::Spill => self.spill_or_reject(event, class),
        }
    }

    fn block(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Duration,
    ) -> Result<(), PublishError> {
        match self.queue.push_timeout(event, timeout) {
            Ok(()) => Ok(()),
            Err(event) if self.spill.is_some() => self.spill_or_reject(event, class),
            Err(_) => {
                self.drop_records(1, "timeout", class == Class::Audit);
                Err(PublishError::Timeout {
                    forwarder: self.id.clone(),
                    timeout,
                })
            }
        }
    }

    /// The record joins the spill's tail — behind everything queued, which goes first.
    fn spill_or_reject(&self, event: AuditEvent, class: Class) -> Result<(), PublishError> {
        match self.spill_in_order(&[], Some(&event), false) {
            Ok(_) => Ok(()),
            Err(SpillError::Full) => {
                self.drop_records(1, "spill_full", class == Class::Audit);
                Err(PublishError::SpillFull {
                    forwarder: self.id.clone(),
                    max_bytes: self.settings.spill_max_bytes,
                })
            }
            Err(SpillError::Io(e)) => {
                self.drop_records(1, "spill_io_error", class == Class::Audit);
                Err(PublishError::SpillIo {
                    forwarder: self.id.clone(),
                    message: e.to_string(),
                })
            }
        }
    }

    fn drop_records(&self, n: usize, reason: &str, audit: bool) {
        Counters::add(&self.counters.dropped, n);
        self.signals.dropped(&self.id, reason, n as u64, audit);
    }

    /// Sync dispatch: deliver in the caller. While older records wait in the spill, the new
    /// one joins them so order holds, and the caller replays a little of the backlog.
    fn publish_sync(&self, event: AuditEvent) {
        let batch = [event];
        if self.queue.behind_spill() && self.spill_in_order(&[], Some(&batch[0]), false).is_ok() {
            crate::blocking::block_on(async {
                for _ in 0..4 {
                    if !self.replay_once().await {
                        break;
                    }
                }
            });
            return;
        }
        crate::blocking::block_on(self.deliver(&batch, false));
    }

    // ---- workers ------------------------------------------------------------------------

    pub(crate) fn spawn_workers(self: &Arc<Self>, handle: &tokio::runtime::Handle) {
        for _ in 0..self.settings.workers {
            self.running_workers.fetch_add(1, Ordering::SeqCst);
            let lane = Arc::clone(self);
            handle.spawn(async move {
                lane.run_worker().await;
                lane.running_workers.fetch_sub(1, Ordering::SeqCst);
                lane.notify_idle();
            });
        }
    }

    async fn run_worker(&self) {
        let mut batch = VecDeque::with_capacity(self.settings.batch_size);
        let max = self.settings.batch_size;
        loop {
            // Busy path: no wake-up registration while there is work, so publishers and
            // this worker do not contend on the `Notify`.
            let mut next = self.queue.take(&mut batch, max, &self.in_flight);
            if let Take::Batch(n) = next {
                self.process_taken(&mut batch, n).await;
                continue;
            }
            // Register for a wake-up, then look again: a record pushed in between either
            // is seen now or leaves a permit behind.
            let notified = self.queue.wake.notified();
            tokio::pin!(notified);
            if next == Take::Empty {
                notified.as_mut().enable();
                next = self.queue.take(&mut batch, max, &self.in_flight);
            }
            match next {
                Take::Batch(n) => {
                    self.process_taken(&mut batch, n).await;
                    continue;
                }
                // Newer records wait in memory behind older ones on disk: they join the
                // spill's tail, so publishers never wait on a slow replay. A failure is
                // logged; the records stay queued and backpressure applies.
                Take::BehindSpill => {
                    let _ = self.spill_in_order(&[], None, false);
                    self.notify_idle();
                }
                Take::Empty if self.closed.load(Ordering::Acquire) => return,
                Take::Empty => {}
            }
            if self.queue.behind_spill() {
                if !self.replay_once().await {
                    let _ = tokio::time::timeout(REPLAY_POLL, notified).await;
                }
            } else {
                notified.await;
            }
        }
    }

    async fn process_taken(&self, batch: &mut VecDeque<AuditEvent>, n: usize) {
        self.process(batch.make_contiguous()).await;
        batch.clear();
        self.in_flight.fetch_sub(n, Ordering::SeqCst);
        self.notify_idle();
    }

    /// Wakes `flush`/`shutdown` waiters, if any (they also re-check every 10 ms).
    fn notify_idle(&self) {
        if self.idle_waiters.load(Ordering::SeqCst) > 0 {
            let _g = lock(&self.idle.0);
            self.idle.1.notify_all();
        }
    }

    /// Waits for a worker to finish a batch, at most `max`.
    fn wait_idle(&self, max: Duration) {
        self.idle_waiters.fetch_add(1, Ordering::SeqCst);
        let g = lock(&self.idle.0);
        let _ = self.idle.1.wait_timeout(g, max);
        self.idle_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// A batch taken from the queue: spilled at once while the breaker is open (if it can
    /// lead the spill), otherwise delivered.
    async fn process(&self, batch: &[AuditEvent]) {
        if self.spill.is_some()
            && self.breaker.is_open()
            && matches!(self.spill_lead(batch), Ok(true))
        {
            return;
        }
        self.deliver(batch, false).await;
    }

    // ---- delivery -----------------------------------------------------------------------

    /// Calls the forwarder with retries, the breaker and the per-call timeout. `replay`
    /// batches come from the spill: they are never re-spilled or dead-lettered for
    /// transient failures, only kept.
    async fn deliver(&self, batch: &[AuditEvent], replay: bool) -> Delivery {
        let n = batch.len();
        let mut attempt = 0u32;
        loop {
            if let Permit::Wait(until) = self.breaker.permit() {
                if replay {
                    return Delivery::Kept;
                }
                if matches!(self.spill_lead(batch), Ok(true)) {
                    return Delivery::Spilled;
                }
                if !self.asynchronous {
                    // Never hold a caller for a whole open period.
                    self.dead_letter(
                        batch,
                        "circuit breaker open and no spill directory",
                        attempt,
                    );
                    return Delivery::DeadLettered;
                }
                tokio::time::sleep_until(until.into()).await;
                continue;
            }
            attempt += 1;
            let started = Instant::now();
            match self.call(batch).await {
                Ok(()) => {
                    self.breaker.on_success();
                    self.counters.record_latency(started.elapsed());
                    Counters::add(&self.counters.delivered, n);
                    if replay {
                        Counters::add(&self.counters.replayed, n);
                    }
                    return Delivery::Delivered;
                }
                Err(f) if f.kind == ErrorKind::Permanent => {
                    self.dead_letter(batch, &f.reason, attempt);
                    return Delivery::DeadLettered;
                }
                Err(f) => {
                    if self.breaker.on_failure() {
                        Counters::add(&self.counters.breaker_opens, 1);
                        tracing::warn!(
                            forwarder = %self.id,
                            reason = %f.reason,
                            open_for = ?self.settings.breaker.open_for,
                            "authtel pipeline circuit breaker opened; records spill or wait"
                        );
                    }
                    if attempt >= self.settings.retry.max_attempts {
                        if replay {
                            return Delivery::Kept;
                        }
                        if self.spill.is_some() && self.breaker.is_open() {
                            match self.spill_lead(batch) {
                                Ok(true) => return Delivery::Spilled,
                                // Newer records are already on disk: spilling this batch
                                // would deliver it after them, so it waits for the breaker.
                                Ok(false) => continue,
                                Err(_) => {}
                            }
                        }
                        self.dead_letter(batch, &f.reason, attempt);
                        return Delivery::DeadLettered;
                    }
                    Counters::add(&self.counters.retried, n);
                    let wait = self.settings.retry.backoff(attempt, unit_random());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }

    /// One forwarder call: panics caught, bounded by `call_timeout`.
    async fn call(&self, batch: &[AuditEvent]) -> Result<(), Failure> {
        let panicked = |p: Box<dyn std::any::Any + Send>| {
            Counters::add(&self.counters.panics, 1);
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            Failure {
                kind: ErrorKind::Transient,
                reason: format!("forwarder panicked: {}", screen_reason(&msg)),
            }
        };
        let fut = match catch_unwind(AssertUnwindSafe(|| self.forwarder.forward(batch))) {
            Ok(fut) => fut,
            Err(p) => return Err(panicked(p)),
        };
        match tokio::time::timeout(self.settings.call_timeout, CatchUnwind(fut)).await {
            Err(_) => {
                Counters::add(&self.counters.timeouts, 1);
                Err(Failure {
                    kind: ErrorKind::Transient,
                    reason: format!(
                        "forwarder call timed out after {:?}",
                        self.settings.call_timeout
                    ),
                })
            }
            Ok(Err(p)) => Err(panicked(p)),
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => {
                let mut reason = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    reason.push_str(": ");
                    reason.push_str(&s.to_string());
                    source = s.source();
                }
                Err(Failure {
                    kind: e.kind(),
                    reason: screen_reason(&reason),
                })
            }
        }
    }

    fn dead_letter(&self, batch: &[AuditEvent], reason: &str, attempts: u32) {
        let n = batch.len();
        let path = self.dead_letter.path().display().to_string();
        if let Err(e) = self.dead_letter.write(batch, reason, attempts) {
            tracing::error!(
                forwarder = %self.id,
                error = %e,
                file = %path,
                records = n,
                "authtel pipeline cannot write the dead-letter file; these records are lost"
            );
            Counters::add(&self.counters.dropped, n);
        } else {
            Counters::add(&self.counters.dead_lettered, n);
        }
        let ids: Vec<_> = batch.iter().map(|e| e.id).collect();
        self.signals
            .forward_error(&self.id, reason, attempts, &ids, &path);
    }

    // ---- spill --------------------------------------------------------------------------

    /// Spills a batch that is being delivered (older than everything queued): it goes
    /// first, the queue behind it. An async lane refuses (`Ok(false)`) when newer records
    /// are already on disk, since the batch would then be replayed after them. A sync lane
    /// has no queue and its callers run concurrently, so it never refuses.
    fn spill_lead(&self, batch: &[AuditEvent]) -> Result<bool, SpillError> {
        self.spill_in_order(batch, None, self.asynchronous)
    }

    /// Appends `lead`, then everything queued, then `last` to the spill as one write, and
    /// marks the queue as waiting behind the spill. Holds the queue lock until the write is
    /// in the file, so nothing published meanwhile can land before these records; the
    /// fsync waits only under the spill lock. Returns `Ok(false)` without writing when
    /// `lead_must_be_oldest` and older-than-queue records are already on disk.
    fn spill_in_order(
        &self,
        lead: &[AuditEvent],
        last: Option<&AuditEvent>,
        lead_must_be_oldest: bool,
    ) -> Result<bool, SpillError> {
        let Some(spill) = &self.spill else {
            return Err(SpillError::Io(std::io::Error::other("no spill directory")));
        };
        let mut q = lock(&self.queue.state);
        if lead_must_be_oldest && q.behind_spill {
            return Ok(false);
        }
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
                Counters::add(&self.counters.spilled, n);
                if n > 0 {
                    self.queue.room_made();
                    // The worker replays the spill now instead of waiting for a publish.
                    self.queue.wake.notify_one();
                }
                synced.map(|()| true).map_err(SpillError::Io)
            }
            Err(e) => {
                drop(store);
                drop(q);
                Err(e)
            }
        };
        if let Err(e) = &result {
            match e {
                SpillError::Full => tracing::error!(
                    forwarder = %self.id,
                    max_bytes = self.settings.spill_max_bytes,
                    "authtel pipeline spill directory is full"
                ),
                SpillError::Io(err) => tracing::error!(
                    forwarder = %self.id,
                    error = %err,
                    "authtel pipeline cannot write its spill file"
                ),
            }
        }
        result
    }

    /// Delivers one batch from the spill. True when it made progress.
    async fn replay_once(&self) -> bool {
        let Some(spill) = &self.spill else {
            return false;
        };
        // A batch taken from the queue before anything spilled is older than the spill:
        // replay waits until it is settled.
        if self.in_flight.load(Ordering::SeqCst) > 0 || self.replaying.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        let progress = self.replay_inner(spill).await;
        self.replaying.store(false, Ordering::Release);
        progress
    }

    async fn replay_inner(&self, spill: &Mutex<SpillStore>) -> bool {
        if self.breaker.blocked() {
            return false;
        }
        let read = lock(spill).read_batch(self.settings.batch_size);
        let batch = match read {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(forwarder = %self.id, error = %e, "authtel pipeline cannot read its spill file");
                return false;
            }
        };
        let outcome = if batch.events.is_empty() {
            Delivery::Delivered
        } else {
            self.deliver(&batch.events, true).await
        };
        if outcome == Delivery::Kept {
            return false;
        }
        // Queue lock first (the lock order): once the spill is empty, the queue is next.
        let mut q = lock(&self.queue.state);
        let mut store = lock(spill);
        store.commit(&batch);
        if store.is_empty() {
            q.behind_spill = false;
        }
        drop(store);
        drop(q);
        if batch.skipped > 0 {
            Counters::add(&self.counters.corrupt_spill_lines, batch.skipped as usize);
            tracing::warn!(
                forwarder = %self.id,
                skipped = batch.skipped,
                "authtel pipeline skipped unreadable spill lines (garbage, truncated or oversized)"
            );
        }
        !batch.events.is_empty() || batch.skipped > 0
    }

    // ---- flush and shutdown ------------------------------------------------------------

    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        let result = if self.asynchronous {
            self.wait_drained(deadline)
        } else {
            if self.queue.behind_spill() {
                crate::blocking::block_on(async {
                    while Instant::now() < deadline && self.replay_once().await {}
                });
            }
            Ok(())
        };
        if let Some(spill) = &self.spill
            && let Err(e) = lock(spill).sync()
        {
            tracing::error!(forwarder = %self.id, error = %e, "authtel pipeline cannot sync its spill file");
        }
        if let Err(e) = self.forwarder.flush(deadline) {
            tracing::warn!(forwarder = %self.id, error = %e, "forwarder flush failed");
        }
        result
    }

    /// Waits until the queue is empty and no batch is in flight; at the deadline, spills
    /// what is still queued if it can.
    fn wait_drained(&self, deadline: Instant) -> Result<(), FlushError> {
        loop {
            let queued = self.queue.len();
            let in_flight = self.in_flight.load(Ordering::SeqCst);
            if queued == 0 && in_flight == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let mut left = queued;
                if self.spill.is_some() && self.spill_in_order(&[], None, false).is_ok() {
                    left = 0;
                }
                let pending = (left + in_flight) as u64;
                return if pending == 0 {
                    Ok(())
                } else {
                    Err(FlushError {
                        forwarder: self.id.clone(),
                        pending,
                    })
                };
            }
            self.wait_idle((deadline - now).min(Duration::from_millis(10)));
        }
    }

    pub(crate) fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        self.closed.store(true, Ordering::Release);
        self.queue.wake.notify_waiters();
        let result = self.flush(deadline);
        while self.running_workers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            self.wait_idle(Duration::from_millis(10));
        }
        if let Err(e) = self.forwarder.shutdown(deadline) {
            tracing::warn!(forwarder = %self.id, error = %e, "forwarder shutdown failed");
        }
        result
    }

    /// Stops the workers once the queue is drained (pipeline dropped without shutdown).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue.wake.notify_waiters();
    }
}

/// Error text can carry whatever a destination echoed back; screen it like metadata.
fn screen_reason(reason: &str) -> String {
    authtel_core::policy::screen_text(reason).to_owned()
}

/// Polls a future, turning a panic into an `Err` instead of unwinding into the worker.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut *inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(p)),
        }
    }
}
