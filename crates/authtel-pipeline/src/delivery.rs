//! The delivery core both lane types share: admission (sampling, rate limit), one
//! forwarder call (panics caught, bounded by the call timeout, cut off at shutdown), the
//! retry schedule, the circuit breaker, dead letters, and the once-per-change log line that
//! says why a lane is not delivering.
//!
//! What to do with a batch the core could not deliver (spill it, wait, dead-letter it)
//! depends on the lane: the inline lane never holds its caller, the queued lane keeps
//! order with its spill. So [`Core::attempt`] reports what happened and the lane decides.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, Forwarder};
use tokio::sync::Notify;

use crate::breaker::{Breaker, Change, Permit};
use crate::config::Settings;
use crate::dead_letter::DeadLetter;
use crate::error::PublishError;
use crate::limit::TokenBucket;
use crate::metrics::Counters;
use crate::random::unit_random;
use crate::signals::Signals;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a record may be sampled, rate limited or dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Audit records and security signals: never sampled, never dropped by default.
    Audit,
    /// High-volume, non-security telemetry.
    Telemetry,
}

/// What one [`Core::attempt`] came to. The lane decides what happens next.
#[derive(Debug)]
pub(crate) enum Attempted {
    Delivered,
    /// A permanent error: dead-letter the batch.
    Refused {
        reason: String,
        attempts: u32,
    },
    /// Transient failures until the last attempt.
    Exhausted {
        reason: String,
        attempts: u32,
    },
    /// The breaker is open until `until`; nothing was called (or no more calls).
    Blocked {
        until: Instant,
        attempts: u32,
    },
    /// Shutdown closed the gate: no call was made, or the call in progress was cut off.
    Stopped,
}

/// A part of a refused batch to dead-letter, from [`Core::isolate_refused`].
#[derive(Debug)]
pub(crate) struct Refusal<'b> {
    pub(crate) part: &'b [AuditEvent],
    /// Where `part` starts in the batch.
    pub(crate) offset: usize,
    pub(crate) reason: String,
    pub(crate) attempts: u32,
    /// Refused for good on its own (a single record); otherwise a part that could not be
    /// tried again now (transient failures, breaker, shutdown).
    pub(crate) alone: bool,
}

/// Why a lane is not delivering, for the log line written once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Health {
    Delivering = 0,
    BreakerOpen = 1,
    SpillFull = 2,
    SpillIo = 3,
}

/// Shutdown's gate: once closed, no forwarder call starts; calls in progress can be cut
/// off. `shutdown` waits on it until no call is in progress.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    cancel: Notify,
    cancelled: AtomicBool,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    active: usize,
}

/// A call in progress; leaving it wakes `shutdown`.
#[derive(Debug)]
pub(crate) struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.0.state);
        s.active -= 1;
        if s.closed {
            self.0.changed.notify_all();
        }
    }
}

impl Gate {
    /// A pass for one forwarder call, unless shutdown closed the gate.
    pub(crate) fn enter(&self) -> Option<Pass<'_>> {
        let mut s = lock(&self.state);
        if s.closed {
            return None;
        }
        s.active += 1;
        Some(Pass(self))
    }

    /// No call starts after this returns.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
    }

    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Cuts off calls in progress and backoff or breaker waits.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.cancel.notify_waiters();
    }

    /// Resolves once [`cancel`](Self::cancel) was called.
    pub(crate) async fn cancelled(&self) {
        loop {
            let notified = self.cancel.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.cancelled.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }

    /// Waits until no call is in progress, at most until `deadline`; true when none is.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let mut s = lock(&self.state);
        while s.active > 0 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

struct Failure {
    kind: FailKind,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailKind {
    Transient,
    Permanent,
    Stopped,
}

/// One forwarder's delivery core.
pub(crate) struct Core {
    pub(crate) id: String,
    pub(crate) forwarder: Arc<dyn Forwarder>,
    pub(crate) settings: Settings,
    pub(crate) counters: Counters,
    pub(crate) breaker: Breaker,
    pub(crate) gate: Gate,
    dead_letter: Option<DeadLetter>,
    signals: Arc<Signals>,
    bucket: Option<TokenBucket>,
    health: AtomicU8,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Core {
    pub(crate) fn new(
        id: String,
        forwarder: Arc<dyn Forwarder>,
        settings: Settings,
        dead_letter: Option<DeadLetter>,
        signals: Arc<Signals>,
    ) -> Core {
        Core {
            breaker: Breaker::new(settings.breaker),
            bucket: settings.rate_limit.map(TokenBucket::new),
            id,
            forwarder,
            settings,
            counters: Counters::default(),
            gate: Gate::default(),
            dead_letter,
            signals,
            health: AtomicU8::new(Health::Delivering as u8),
        }
    }

    /// Sampling and rate limiting (telemetry only). `Ok(false)`: sampled out, done.
    pub(crate) fn admit(&self, class: Class) -> Result<bool, PublishError> {
        if class == Class::Telemetry {
            let rate = self.settings.sample_rate;
            if rate < 1.0 && unit_random() >= rate {
                Counters::add(&self.counters.sampled_out, 1);
                return Ok(false);
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
        Ok(true)
    }

    pub(crate) fn drop_records(&self, n: usize, reason: &'static str, audit: bool) {
        Counters::add(&self.counters.dropped, n);
        self.signals.dropped(&self.id, reason, n as u64, audit);
    }

    /// Logs at warn when the lane stops delivering for a new reason, at info when it
    /// delivers again; nothing while the state stays the same.
    pub(crate) fn set_health(&self, health: Health, why: &str) {
        let old = self.health.swap(health as u8, Ordering::AcqRel);
        if old == health as u8 {
            return;
        }
        match health {
            Health::Delivering => tracing::info!(
                forwarder = %self.id,
                "authtel pipeline delivers to this forwarder again"
            ),
            Health::BreakerOpen => tracing::warn!(
                forwarder = %self.id,
                reason = %why,
                open_for = ?self.settings.breaker.open_for,
                "authtel pipeline is not delivering: circuit breaker opened; records spill or wait until a probe succeeds"
            ),
            Health::SpillFull => tracing::warn!(
                forwarder = %self.id,
                max_bytes = self.settings.spill_max_bytes,
                "authtel pipeline is not delivering and its spill directory is full; records are kept in memory or refused — free disk space or raise spill_max_bytes"
            ),
            Health::SpillIo => tracing::warn!(
                forwarder = %self.id,
                error = %why,
                "authtel pipeline cannot write its spill file; records are kept in memory or refused — check the disk"
            ),
        }
    }

    fn note(&self, change: Change, reason: &str) {
        match change {
            Change::Opened => {
                Counters::add(&self.counters.breaker_opens, 1);
                self.set_health(Health::BreakerOpen, reason);
            }
            Change::Closed => self.set_health(Health::Delivering, ""),
            Change::None => {}
        }
    }

    /// Calls the forwarder with the retry schedule and the breaker, until delivered, given
    /// up on, blocked by the breaker or stopped by shutdown. `attempts_before` counts calls
    /// an earlier `attempt` of the same batch made.
    pub(crate) async fn attempt(&self, batch: &[AuditEvent], attempts_before: u32) -> Attempted {
        let n = batch.len();
        let mut attempt = attempts_before;
        loop {
            let permit = match self.breaker.permit() {
                Permit::Wait(until) => {
                    return Attempted::Blocked {
                        until,
                        attempts: attempt,
                    };
                }
                Permit::Call(permit) => permit,
            };
            let started = Instant::now();
            let result = self.call(batch).await;
            match result {
                Ok(()) => {
                    self.note(permit.succeeded(), "");
                    self.counters.record_latency(started.elapsed());
                    Counters::add(&self.counters.delivered, n);
                    return Attempted::Delivered;
                }
                Err(f) if f.kind == FailKind::Stopped => {
                    drop(permit);
                    return Attempted::Stopped;
                }
                Err(f) if f.kind == FailKind::Permanent => {
                    self.note(permit.answered(), "");
                    return Attempted::Refused {
                        reason: f.reason,
                        attempts: attempt + 1,
                    };
                }
                Err(f) => {
                    attempt += 1;
                    self.note(permit.failed(), &f.reason);
                    if attempt >= self.settings.retry.max_attempts {
                        return Attempted::Exhausted {
                            reason: f.reason,
                            attempts: attempt,
                        };
                    }
                    Counters::add(&self.counters.retried, n);
                    let wait = self.settings.retry.backoff(attempt, unit_random());
                    if !wait.is_zero() && !self.pause(wait).await {
                        return Attempted::Stopped;
                    }
                }
            }
        }
    }

    /// After the forwarder refused `batch` for good, finds the records it refuses: the batch
    /// is split in halves and each half tried again, down to single records, so one bad
    /// record never takes its neighbours to the dead letters. Returns the parts to
    /// dead-letter (single refused records, or a part that could not be retried now), each
    /// with its reason and attempts. A batch of one is returned as it is, with no new call.
    pub(crate) async fn isolate_refused<'b>(
        &self,
        batch: &'b [AuditEvent],
        reason: String,
        attempts: u32,
    ) -> Vec<Refusal<'b>> {
        let mut refused = Vec::new();
        let mut split = vec![(batch, 0, reason, attempts)];
        while let Some((part, offset, reason, attempts)) = split.pop() {
            if part.len() <= 1 {
                refused.push(Refusal {
                    part,
                    offset,
                    reason,
                    attempts,
                    alone: true,
                });
                continue;
            }
            let mid = part.len() / 2;
            let (front, back) = part.split_at(mid);
            // Back first onto the stack, so the front's refusals are split (and reported)
            // first: dead letters keep the batch's order.
            let mut halves = Vec::with_capacity(2);
            for (half, at) in [(front, offset), (back, offset + mid)] {
                let not_now = |reason, attempts| Refusal {
                    part: half,
                    offset: at,
                    reason,
                    attempts,
                    alone: false,
                };
                match self.attempt(half, 0).await {
                    Attempted::Delivered => {}
                    Attempted::Refused { reason, attempts: n } => {
                        halves.push((half, at, reason, attempts + n));
                    }
                    Attempted::Exhausted { reason, attempts: n } => {
                        refused.push(not_now(reason, attempts + n));
                    }
                    Attempted::Blocked { attempts: n, .. } => refused.push(not_now(
                        format!(
                            "{reason} (circuit breaker opened while the refused record was isolated)"
                        ),
                        attempts + n,
                    )),
                    Attempted::Stopped => refused.push(not_now(
                        format!(
                            "{reason} (pipeline shut down while the refused record was isolated)"
                        ),
                        attempts,
                    )),
                }
            }
            split.extend(halves.into_iter().rev());
        }
        refused
    }

    /// Sleeps `d` unless shutdown cancels first; true when it slept the whole time.
    pub(crate) async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            biased;
            () = self.gate.cancelled() => false,
            () = tokio::time::sleep(d) => true,
        }
    }

    /// One forwarder call: refused once shutdown closed the gate, panics caught, bounded
    /// by `call_timeout`, cut off when shutdown's deadline passes.
    async fn call(&self, batch: &[AuditEvent]) -> Result<(), Failure> {
        let stopped = || Failure {
            kind: FailKind::Stopped,
            reason: "pipeline shut down".to_owned(),
        };
        let Some(_pass) = self.gate.enter() else {
            return Err(stopped());
        };
        let panicked = |p: Box<dyn std::any::Any + Send>| {
            Counters::add(&self.counters.panics, 1);
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            Failure {
                kind: FailKind::Transient,
                reason: format!("forwarder panicked: {}", screen_reason(&msg)),
            }
        };
        let fut = match catch_unwind(AssertUnwindSafe(|| self.forwarder.forward(batch))) {
            Ok(fut) => fut,
            Err(p) => return Err(panicked(p)),
        };
        let timed = tokio::time::timeout(self.settings.call_timeout, CatchUnwind(fut));
        let outcome = tokio::select! {
            biased;
            () = self.gate.cancelled() => return Err(stopped()),
            outcome = timed => outcome,
        };
        match outcome {
            Err(_) => {
                Counters::add(&self.counters.timeouts, 1);
                Err(Failure {
                    kind: FailKind::Transient,
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
                    kind: match e.kind() {
                        ErrorKind::Permanent => FailKind::Permanent,
                        _ => FailKind::Transient,
                    },
                    reason: screen_reason(&reason),
                })
            }
        }
    }

    /// Writes the batch to the dead-letter file (or, without one, counts it as dropped)
    /// and reports `pipeline.forward.error`.
    pub(crate) fn dead_letter(&self, batch: &[AuditEvent], reason: &str, attempts: u32) {
        let n = batch.len();
        let ids: Vec<_> = batch.iter().map(|e| e.id()).collect();
        let Some(dead_letter) = &self.dead_letter else {
            tracing::error!(
                forwarder = %self.id,
                reason,
                records = n,
                first_event_id = %ids.first().map(ToString::to_string).unwrap_or_default(),
                "authtel pipeline gave up on a batch and has no dead-letter directory; these records are lost — set dead_letter_dir (AUTHTEL_PIPELINE_DEAD_LETTER_DIR) or a spill_dir"
            );
            Counters::add(&self.counters.dropped, n);
            self.signals
                .forward_error(&self.id, reason, attempts, &ids, "");
            return;
        };
        let path = dead_letter.path().display().to_string();
        if let Err(e) = dead_letter.write(batch, reason, attempts) {
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
        self.signals
            .forward_error(&self.id, reason, attempts, &ids, &path);
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
