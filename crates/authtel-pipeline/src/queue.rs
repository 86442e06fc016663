//! The bounded in-memory queue of a queued lane.
//!
//! Order rule: records on disk (the spill) are always older than records in the queue,
//! and a batch a worker took from the queue is older than both. So while the spill holds
//! anything (`behind_spill`), the queue is never delivered directly: it waits, or joins the
//! spill's tail, until replay has emptied the spill. Every move of queued records to disk
//! holds the queue lock and then the spill lock (always in that order), so no record
//! can slip between the two.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use tokio::sync::Notify;

use crate::delivery::lock;

#[derive(Debug)]
pub(crate) struct Queue {
    pub(crate) state: Mutex<QueueState>,
    pub(crate) capacity: usize,
    /// With `Backpressure::Spill`: while older records wait on disk, new ones go straight
    /// to the spill instead of memory, so they are on disk before `publish` returns.
    spill_direct: bool,
    not_full: Condvar,
    blocked: AtomicUsize,
    /// `publish_async` callers waiting for room.
    pub(crate) room: Notify,
    pub(crate) wake: Notify,
}

#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) items: VecDeque<AuditEvent>,
    /// Older records wait in the spill: the queue must not be delivered before them.
    pub(crate) behind_spill: bool,
}

/// Why a record did not go into the queue; it is handed back.
#[derive(Debug)]
pub(crate) enum Refused {
    /// The queue holds `limit` records.
    Full(AuditEvent),
    /// Older records are on disk and the lane spills directly.
    ToSpill(AuditEvent),
}

/// What a worker found in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
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
    pub(crate) fn new(capacity: usize, behind_spill: bool, spill_direct: bool) -> Queue {
        Queue {
            state: Mutex::new(QueueState {
                items: VecDeque::with_capacity(capacity.min(4096)),
                behind_spill,
            }),
            capacity,
            spill_direct,
            not_full: Condvar::new(),
            blocked: AtomicUsize::new(0),
            room: Notify::new(),
            wake: Notify::new(),
        }
    }

    /// Queues `event` if fewer than `limit` records are queued. Never waits.
    #[inline]
    pub(crate) fn try_push(&self, event: AuditEvent, limit: usize) -> Result<(), Refused> {
        let mut guard = lock(&self.state);
        if self.spill_direct && guard.behind_spill {
            return Err(Refused::ToSpill(event));
        }
        let q = &mut guard.items;
        if q.len() >= limit {
            return Err(Refused::Full(event));
        }
        let was_empty = q.is_empty();
        push_back(q, event);
        drop(guard);
        // Workers re-check the queue before sleeping, so only the empty-to-non-empty
        // transition needs a wake-up; a stored permit covers the race.
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Waits up to `timeout` for room. Only for `Backpressure::Block` outside a tokio
    /// runtime: the application asked for a blocking publish.
    pub(crate) fn push_timeout(&self, event: AuditEvent, timeout: Duration) -> Result<(), Refused> {
        let deadline = Instant::now() + timeout;
        let mut q = lock(&self.state);
        loop {
            if self.spill_direct && q.behind_spill {
                return Err(Refused::ToSpill(event));
            }
            if q.items.len() < self.capacity {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Refused::Full(event));
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
    pub(crate) fn take(
        &self,
        out: &mut VecDeque<AuditEvent>,
        max: usize,
        in_flight: &AtomicUsize,
    ) -> Take {
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
    pub(crate) fn room_made(&self) {
        if self.blocked.load(Ordering::SeqCst) > 0 {
            self.not_full.notify_all();
            self.room.notify_waiters();
        }
    }

    /// Waits (asynchronously, never blocking a thread) until the queue has room or holds
    /// records behind the spill, then queues `event` like [`try_push`](Self::try_push).
    pub(crate) async fn push_async(&self, event: AuditEvent) -> Result<(), Refused> {
        /// Counts this caller as waiting for room while it lives, even if the future is
        /// dropped mid-wait.
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.blocked.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.blocked);
        let mut event = event;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(event, self.capacity) {
                Err(Refused::Full(e)) => event = e,
                other => return other,
            }
            // Bounded re-check: a worker that made room before we registered is seen at
            // the latest then.
            let _ = tokio::time::timeout(Duration::from_millis(50), room).await;
        }
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.state).items.len()
    }

    pub(crate) fn behind_spill(&self) -> bool {
        lock(&self.state).behind_spill
    }
}

/// `VecDeque::push_back`, with the growing case out of line: where the deque has room the
/// compiler sees that `push_back` cannot grow (so cannot unwind) and moves the record into
/// the queue once, instead of also keeping a copy on the stack to drop if growing panicked.
#[inline]
fn push_back(q: &mut VecDeque<AuditEvent>, event: AuditEvent) {
    if q.len() < q.capacity() {
        q.push_back(event);
    } else {
        push_back_growing(q, event);
    }
}

#[cold]
#[inline(never)]
fn push_back_growing(q: &mut VecDeque<AuditEvent>, event: AuditEvent) {
    q.push_back(event);
}
