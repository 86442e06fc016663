//! The queued lane: `publish` hands the record to a bounded queue and returns; worker
//! tasks take batches and deliver them through the shared [`Core`]. A publisher never
//! waits on the destination, and never on a full queue unless the application chose
//! `Backpressure::Block` and publishes outside a tokio runtime.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;

use crate::config::Backpressure;
use crate::delivery::{Attempted, Class, Core, lock};
use crate::error::{FlushError, PublishError};
use crate::metrics::{Counters, ForwarderMetrics};
use crate::queue::{Queue, Refused, Take};
use crate::spill::{SpillError, SpillStore};

mod spill;

/// How often a spilling lane with nothing new to do looks at its spill again.
const REPLAY_POLL: Duration = Duration::from_millis(20);

/// Audit records that find the queue full (no spill, no permission to drop them) may go
/// over the capacity by this many times the capacity, so a publisher never waits; past
/// that they are refused, counted and reported.
const AUDIT_RESERVE: usize = 1;

/// Whether this thread may wait for room: outside a runtime, or on a multi-thread
/// runtime (under `block_in_place`); never on a current-thread runtime.
fn can_block() -> bool {
    match tokio::runtime::Handle::try_current() {
        Err(_) => true,
        Ok(h) => h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread,
    }
}

fn block_here<R>(f: impl FnOnce() -> R) -> Option<R> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Some(f());
    }
    // `block_in_place` panics, before running `f`, where blocking is not allowed.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio::task::block_in_place(f)
    }))
    .ok()
}

/// How a batch left the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Done,
    /// Replay only: left in the spill for later.
    Kept,
    /// Shutdown: the batch is neither delivered nor on disk.
    Stranded,
}

pub(crate) struct QueuedLane {
    pub(crate) core: Core,
    queue: Queue,
    in_flight: AtomicUsize,
    /// Records workers let go at shutdown without delivering or spilling them.
    stranded: AtomicUsize,
    idle: (Mutex<()>, Condvar),
    idle_waiters: AtomicUsize,
    spill: Option<Mutex<SpillStore>>,
    replaying: AtomicBool,
    closed: AtomicBool,
    running_workers: AtomicUsize,
}

impl std::fmt::Debug for QueuedLane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedLane")
            .field("id", &self.core.id)
            .finish_non_exhaustive()
    }
}

impl QueuedLane {
    pub(crate) fn new(core: Core, spill: Option<SpillStore>) -> QueuedLane {
        // Records left by an earlier run are older than anything published now.
        let behind_spill = spill.as_ref().is_some_and(|s| !s.is_empty());
        let spill_direct = spill.is_some() && core.settings.backpressure == Backpressure::Spill;
        QueuedLane {
            queue: Queue::new(core.settings.queue_capacity, behind_spill, spill_direct),
            spill: spill.map(Mutex::new),
            core,
            in_flight: AtomicUsize::new(0),
            stranded: AtomicUsize::new(0),
            idle: (Mutex::new(()), Condvar::new()),
            idle_waiters: AtomicUsize::new(0),
            replaying: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            running_workers: AtomicUsize::new(0),
        }
    }

    /// Whether `publish` writes to the spill file itself (`Backpressure::Spill`).
    pub(crate) fn spills_in_publish(&self) -> bool {
        self.spill.is_some() && self.core.settings.backpressure == Backpressure::Spill
    }

    pub(crate) fn metrics(&self) -> ForwarderMetrics {
        let mut m = self.core.counters.snapshot(&self.core.id);
        m.asynchronous = true;
        m.breaker = self.core.breaker.state();
        m.queue_depth = self.queue.len() as u64;
        m.spill_bytes = self.spill.as_ref().map_or(0, |s| lock(s).bytes());
        m
    }

    // ---- publishing -------------------------------------------------------------------

    /// The hot path — an audit record, an open lane, room in the queue — is inlined into
    /// `Pipeline::publish`, so the record is copied once, into the queue; everything else
    /// (sampling, a closed lane, a full queue) is out of line.
    #[inline]
    pub(crate) fn publish(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        if class != Class::Audit || self.closed.load(Ordering::Acquire) {
            return self.publish_slow(event, class, timeout);
        }
        Counters::add(&self.core.counters.published, 1);
        match self.queue.try_push(event, self.queue.capacity) {
            Ok(()) => Ok(()),
            Err(refused) => self.refused(refused, class, timeout),
        }
    }

    #[cold]
    #[inline(never)]
    fn refused(
        &self,
        refused: Refused,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        match refused {
            Refused::ToSpill(event) => self.spill_or_reject(event, class),
            Refused::Full(event) => self.overflow(event, class, timeout),
        }
    }

    /// [`publish`](Self::publish) for telemetry (sampled, rate limited) or a closed lane.
    #[inline(never)]
    fn publish_slow(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        if !self.core.admit(class)? {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            if self.spill.is_some() {
                Counters::add(&self.core.counters.published, 1);
                return self.spill_or_reject(event, class);
            }
            self.core.drop_records(1, "closed", class == Class::Audit);
            return Err(PublishError::Closed {
                forwarder: self.core.id.clone(),
            });
        }
        Counters::add(&self.core.counters.published, 1);
        match self.queue.try_push(event, self.queue.capacity) {
            Ok(()) => Ok(()),
            Err(refused) => self.refused(refused, class, timeout),
        }
    }

    /// Like [`publish`](Self::publish), but a full queue makes the calling task wait for
    /// room instead of applying the backpressure policy — the task yields, the thread goes
    /// on. With `Backpressure::Spill` the record spills instead of waiting.
    pub(crate) async fn publish_async(&self, event: AuditEvent) -> Result<(), PublishError> {
        if self.closed.load(Ordering::Acquire)
            || self.core.settings.backpressure == Backpressure::Spill
        {
            return self.publish(event, Class::Audit, None);
        }
        Counters::add(&self.core.counters.published, 1);
        match self.queue.push_async(event).await {
            Ok(()) => Ok(()),
            Err(Refused::ToSpill(event) | Refused::Full(event)) => {
                self.spill_or_reject(event, Class::Audit)
            }
        }
    }

    // The full queue hands the record back (see `Queue::try_push`).
    #[allow(clippy::result_large_err)]
    fn overflow(
        &self,
        event: AuditEvent,
        class: Class,
        timeout: Option<Duration>,
    ) -> Result<(), PublishError> {
        let policy = match timeout {
            Some(timeout) => Backpressure::Block { timeout },
            None => self.core.settings.backpressure,
        };
        let may_drop = class == Class::Telemetry || self.core.settings.allow_dropping_audit;
        let explicit = timeout.is_some();
        match policy {
            Backpressure::Spill => self.spill_or_reject(event, class),
            // Blocking is the application's explicit choice. On a multi-thread runtime's
            // worker it waits under `block_in_place`, so the runtime's other tasks — the
            // lane's worker among them — move to another thread and keep making room; on
            // a current-thread runtime it cannot wait at all.
            Backpressure::Block { timeout } if can_block() => {
                let mut slot = Some(event);
                let waited = block_here(|| {
                    let event = slot.take().expect("the record is taken once");
                    self.queue.push_timeout(event, timeout)
                });
                // `None`: this thread turned out not to allow blocking after all (a
                // current-thread runtime or a `LocalSet` under another runtime's handle);
                // the record is handled without waiting.
                let pushed = waited.unwrap_or_else(|| {
                    Err(Refused::Full(
                        slot.take().expect("block_in_place refused before running"),
                    ))
                });
                match pushed {
                    Ok(()) => Ok(()),
                    Err(Refused::ToSpill(event)) => self.spill_or_reject(event, class),
                    Err(Refused::Full(event)) if self.spill.is_some() => {
                        self.spill_or_reject(event, class)
                    }
                    // `publish_with_timeout` asked for an answer within `timeout`.
                    Err(Refused::Full(event)) if !may_drop && !explicit => self.reserve(event),
                    Err(Refused::Full(_)) => {
                        self.core.drop_records(1, "timeout", class == Class::Audit);
                        Err(PublishError::Timeout {
                            forwarder: self.core.id.clone(),
                            timeout,
                        })
                    }
                }
            }
            Backpressure::Block { .. } | Backpressure::Drop => {
                if may_drop {
                    self.core
                        .drop_records(1, "queue_full", class == Class::Audit);
                    Err(PublishError::Dropped {
                        forwarder: self.core.id.clone(),
                    })
                } else if self.spill.is_some() {
                    self.spill_or_reject(event, class)
                } else {
                    self.reserve(event)
                }
            }
        }
    }

    /// An audit record the queue has no room for and that may not be dropped: it goes
    /// over the capacity, up to the reserve.
    fn reserve(&self, event: AuditEvent) -> Result<(), PublishError> {
        let limit = self.queue.capacity.saturating_mul(1 + AUDIT_RESERVE);
        match self.queue.try_push(event, limit) {
            Ok(()) => Ok(()),
            Err(Refused::ToSpill(event)) => self.spill_or_reject(event, Class::Audit),
            Err(Refused::Full(_)) => {
                self.core.drop_records(1, "queue_full", true);
                Err(PublishError::QueueFull {
                    forwarder: self.core.id.clone(),
                    capacity: self.queue.capacity,
                })
            }
        }
    }

    /// The record joins the spill's tail — behind everything queued, which goes first.
    fn spill_or_reject(&self, event: AuditEvent, class: Class) -> Result<(), PublishError> {
        match self.spill_tail(Some(&event)) {
            Ok(()) => Ok(()),
            Err(SpillError::Full) => {
                self.core
                    .drop_records(1, "spill_full", class == Class::Audit);
                Err(PublishError::SpillFull {
                    forwarder: self.core.id.clone(),
                    max_bytes: self.core.settings.spill_max_bytes,
                })
            }
            Err(SpillError::Io(e)) => {
                self.core
                    .drop_records(1, "spill_io_error", class == Class::Audit);
                Err(PublishError::SpillIo {
                    forwarder: self.core.id.clone(),
                    message: e.to_string(),
                })
            }
            Err(SpillError::NoSpill) => {
                self.core.drop_records(1, "closed", class == Class::Audit);
                Err(PublishError::Closed {
                    forwarder: self.core.id.clone(),
                })
            }
        }
    }

    // ---- workers ------------------------------------------------------------------------

    pub(crate) fn spawn_workers(self: &Arc<Self>, handle: &tokio::runtime::Handle) {
        for _ in 0..self.core.settings.workers {
            self.running_workers.fetch_add(1, Ordering::SeqCst);
            let lane = Arc::clone(self);
            handle.spawn(async move {
                lane.run_worker().await;
                lane.running_workers.fetch_sub(1, Ordering::SeqCst);
                lane.notify_idle();
            });
        }
    }

    async fn run_worker(self: &Arc<Self>) {
        let mut batch = VecDeque::with_capacity(self.core.settings.batch_size);
        let max = self.core.settings.batch_size;
        loop {
            if self.core.gate.is_closed() {
                return;
            }
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
                    let _ = self.off_worker(|lane| lane.spill_tail(None)).await;
                    self.notify_idle();
                }
                Take::Empty if self.closed.load(Ordering::Acquire) => return,
                Take::Empty => {}
            }
            if self.queue.behind_spill() {
                if !self.replay_once().await {
                    tokio::select! {
                        biased;
                        () = self.core.gate.cancelled() => return,
                        _ = tokio::time::timeout(REPLAY_POLL, notified) => {}
                    }
                }
            } else {
                tokio::select! {
                    biased;
                    () = self.core.gate.cancelled() => return,
                    () = notified => {}
                }
            }
        }
    }

    async fn process_taken(self: &Arc<Self>, batch: &mut VecDeque<AuditEvent>, n: usize) {
        if self.deliver(batch.make_contiguous(), false).await == Delivery::Stranded {
            self.stranded.fetch_add(n, Ordering::SeqCst);
        }
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

    // ---- delivery -----------------------------------------------------------------------

    /// Delivers one batch. A batch taken from the queue that cannot be delivered now
    /// (breaker open, shutdown) goes to the head of the spill — it is older than anything
    /// there — so it never waits in memory where a crash would lose it. `replay` batches
    /// come from the spill and stay there (`Kept`) unless delivered or refused for good.
    async fn deliver(self: &Arc<Self>, batch: &[AuditEvent], replay: bool) -> Delivery {
        let core = &self.core;
        let mut attempts = 0;
        loop {
            match core.attempt(batch, attempts).await {
                Attempted::Delivered => {
                    if replay {
                        Counters::add(&core.counters.replayed, batch.len());
                    }
                    return Delivery::Done;
                }
                Attempted::Refused { reason, attempts } => {
                    let mut refused = 0;
                    for r in core.isolate_refused(batch, reason, attempts).await {
                        refused += r.part.len();
                        self.dead_letter_off_worker(r.part, r.reason, r.attempts)
                            .await;
                    }
                    if replay {
                        Counters::add(&core.counters.replayed, batch.len() - refused);
                    }
                    return Delivery::Done;
                }
                _ if replay => return Delivery::Kept,
                Attempted::Stopped => {
                    return if self.spill.is_some() && self.spill_head_off_worker(batch).await {
                        Delivery::Done
                    } else {
                        Delivery::Stranded
                    };
                }
                Attempted::Exhausted { reason, attempts } => {
                    if self.spill.is_some()
                        && core.breaker.is_open()
                        && self.spill_head_off_worker(batch).await
                    {
                        return Delivery::Done;
                    }
                    self.dead_letter_off_worker(batch, reason, attempts).await;
                    return Delivery::Done;
                }
                Attempted::Blocked { until, attempts: a } => {
                    attempts = a;
                    if self.spill.is_some() && self.spill_head_off_worker(batch).await {
                        return Delivery::Done;
                    }
                    // No spill (or it is full): wait for the probe, in memory.
                    let wait = until.saturating_duration_since(Instant::now());
                    if !core.pause(wait).await {
                        return Delivery::Stranded;
                    }
                }
            }
        }
    }

    // ---- flush and shutdown ------------------------------------------------------------

    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        let result = self.wait_drained(deadline);
        self.sync_spill();
        if let Err(e) = self.core.forwarder.flush(deadline) {
            tracing::warn!(forwarder = %self.core.id, error = %e, "forwarder flush failed");
        }
        result
    }

    fn sync_spill(&self) {
        if let Some(spill) = &self.spill
            && let Err(e) = lock(spill).sync()
        {
            tracing::error!(forwarder = %self.core.id, error = %e, "authtel pipeline cannot sync its spill file");
        }
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
                if self.spill.is_some() && self.spill_tail(None).is_ok() {
                    left = 0;
                }
                return self.pending(left + in_flight);
            }
            self.wait_idle((deadline - now).min(Duration::from_millis(10)));
        }
    }

    fn pending(&self, pending: usize) -> Result<(), FlushError> {
        if pending == 0 {
            Ok(())
        } else {
            Err(FlushError {
                forwarder: self.core.id.clone(),
                pending: pending as u64,
            })
        }
    }

    /// Waits until the spill is empty (replayed) and nothing is queued or in flight;
    /// true when that happened before the deadline.
    pub(crate) fn wait_replayed(&self, deadline: Instant) -> bool {
        loop {
            let spilled = self.spill.as_ref().is_some_and(|s| !lock(s).is_empty());
            let left = self.queue.len() + self.in_flight.load(Ordering::SeqCst);
            if !spilled && left == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            self.wait_idle(Duration::from_millis(10));
        }
    }

    /// Stops taking records into memory, delivers or spills what is there until the
    /// deadline, then closes the gate: no forwarder call starts after this returns.
    /// Calls still running at the deadline are cut off; their batches spill (with a
    /// spill directory) or are counted in the error, which stays exact.
    pub(crate) fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        self.closed.store(true, Ordering::Release);
        self.queue.wake.notify_waiters();
        let _ = self.wait_drained(deadline);
        self.core.gate.close();
        self.core.gate.cancel();
        self.queue.wake.notify_waiters();
        // Cut-off calls return at their next poll; give the workers a moment to spill
        // their batches. A worker that is never polled again can never call again either.
        let grace = Instant::now() + Duration::from_secs(1);
        let _ = self.core.gate.wait_idle(grace);
        while self.running_workers.load(Ordering::SeqCst) > 0 && Instant::now() < grace {
            self.wait_idle(Duration::from_millis(5));
        }
        // Records queued meanwhile (or left at the deadline) go to disk now if they can.
        let mut queued = self.queue.len();
        if queued > 0 && self.spill.is_some() && self.spill_tail(None).is_ok() {
            queued = 0;
        }
        self.sync_spill();
        if let Err(e) = self.core.forwarder.shutdown(deadline) {
            tracing::warn!(forwarder = %self.core.id, error = %e, "forwarder shutdown failed");
        }
        self.pending(
            queued + self.in_flight.load(Ordering::SeqCst) + self.stranded.load(Ordering::SeqCst),
        )
    }

    /// Stops the workers once the queue is drained (pipeline dropped without shutdown).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.queue.wake.notify_waiters();
    }
}
