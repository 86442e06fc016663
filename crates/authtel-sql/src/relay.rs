//! The outbox relay: claims due outbox entries, delivers them through the forwarder
//! registered under the entry's forwarder id, then marks them done, reschedules them with
//! backoff, or dead-letters them with the reason.
//!
//! The outbox is a source for the pipeline's delivery engine, not a second engine: each
//! forwarder sits behind an [`authtel_pipeline::Deliverer`] (call timeout, panics caught,
//! circuit breaker, a refused batch split down to the records refused alone), and the relay
//! stores what each record's outcome means. The retry schedule is the pipeline's
//! [`RetryPolicy`], applied across passes through the entry's stored attempt count.
//!
//! Claiming moves an entry's `next_attempt_at` one lease into the future in the same
//! statement that selects it; on PostgreSQL the select uses `FOR UPDATE SKIP LOCKED`, so
//! relays in several processes never hold the same entry at the same time. A relay that
//! dies mid-batch simply never marks its entries: they come due again when the lease ends
//! and are delivered again (at least once; forwarders deduplicate on the event id).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll};
use std::time::Duration;

use authtel_core::forward::Forwarder;
use authtel_pipeline::{Deliverer, ForwarderConfig};
use sqlx::Database;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::{AuditStore, BreakerConfig, RetryPolicy};

/// How a relay works through the outbox.
///
/// ```
/// use std::time::Duration;
/// let c = authtel_sql::RelayConfig::default().with_batch_size(200).with_lease(Duration::from_secs(10));
/// assert_eq!(c.batch_size(), 200);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    pub(crate) batch_size: u32,
    pub(crate) lease: Duration,
    pub(crate) forward_timeout: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) breaker: BreakerConfig,
    pub(crate) heartbeat: Duration,
}

impl Default for RelayConfig {
    /// Batches of 500, a 60 s lease, 30 s forward timeout, polling every 250 ms when idle,
    /// 8 attempts 1 s apart doubling up to 5 minutes (about 10 minutes in all), and the
    /// pipeline's default breaker (open 5 s after 5 failures in a row), and a status
    /// heartbeat every 5 s.
    fn default() -> RelayConfig {
        RelayConfig {
            batch_size: 500,
            lease: Duration::from_secs(60),
            forward_timeout: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            retry: RetryPolicy::new(8, Duration::from_secs(1), Duration::from_secs(300)),
            breaker: BreakerConfig::default(),
            heartbeat: Duration::from_secs(5),
        }
    }
}

impl RelayConfig {
    /// Entries claimed per forwarder per pass (1-10 000).
    pub fn with_batch_size(mut self, n: u32) -> Self {
        self.batch_size = n.clamp(1, 10_000);
        self
    }

    /// How long a claim holds an entry; after it, another relay may take the entry over.
    /// Keep it well above the forward timeout. The forward timeout is lowered to half the
    /// lease if it was longer.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.forward_timeout = self.forward_timeout.min(lease / 2);
        self
    }

    /// How long one forward call may take before it counts as a transient failure.
    pub fn with_forward_timeout(mut self, t: Duration) -> Self {
        self.forward_timeout = t.min(self.lease / 2);
        self
    }

    /// How often an idle relay looks for due entries (commits through the same store wake
    /// it at once).
    pub fn with_poll_interval(mut self, t: Duration) -> Self {
        self.poll_interval = t;
        self
    }

    /// The retry schedule and attempt limit: an entry is tried at most `max_attempts`
    /// times, one call per pass, waiting [`RetryPolicy::delay_after`] between them.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The circuit breaker in front of each forwarder: while it is open, the relay claims
    /// nothing for that forwarder (no attempt is spent on a destination known to be down).
    pub fn with_breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// How often the relay refreshes its row per forwarder in `audit_relay_status` (breaker
    /// state, last failure, heartbeat) when nothing changed; a breaker change is written at
    /// the next pass. At least 100 ms. Readers call the relay stale after three heartbeats
    /// plus one forward timeout per forwarder (a pass may spend that long on calls).
    pub fn with_heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(100));
        self
    }

    /// Entries claimed per forwarder per pass.
    pub fn batch_size(&self) -> u32 {
        self.batch_size
    }
}

/// Delivers the outbox of one store to its forwarders. Build it, register a forwarder for
/// each of the store's forwarder ids, then [`spawn`](Relay::spawn) it or drive it with
/// `run_once`.
#[derive(Debug)]
pub struct Relay<DB: Database> {
    pub(crate) store: AuditStore<DB>,
    pub(crate) forwarders: Vec<Deliverer>,
    pub(crate) config: RelayConfig,
    pub(crate) stats: Arc<RelayStats>,
    pub(crate) status: crate::relay_status::StatusBook,
}

impl<DB: Database> Relay<DB> {
    /// A relay for `store` with no forwarders yet.
    pub fn new(store: &AuditStore<DB>, config: RelayConfig) -> Relay<DB> {
        Relay {
            store: store.clone(),
            forwarders: Vec::new(),
            config,
            stats: Arc::default(),
            status: crate::relay_status::StatusBook::new(config.heartbeat, config.heartbeat * 3),
        }
    }

    /// Delivers entries of forwarder id `id` through `forwarder`. The id must be one the
    /// store enqueues for ([`AuditStoreBuilder::with_forwarder`](crate::AuditStoreBuilder)).
    pub fn with_forwarder(
        mut self,
        id: &str,
        forwarder: Arc<dyn Forwarder>,
    ) -> Result<Self, crate::SqlError> {
        if !self.store.forwarders().iter().any(|f| f == id) {
            return Err(crate::SqlError::UnknownForwarder(id.to_owned()));
        }
        // One call per pass: retries are the outbox's, scheduled in the entry's row.
        let once = RetryPolicy::new(1, Duration::ZERO, Duration::ZERO);
        let config = ForwarderConfig::from_arc(id, forwarder)
            .retry(once)
            .call_timeout(self.config.forward_timeout)
            .breaker(self.config.breaker);
        let deliverer =
            Deliverer::new(config).map_err(|source| crate::SqlError::RelaySettings {
                forwarder: id.to_owned(),
                source: Box::new(source),
            })?;
        self.forwarders.retain(|d| d.id() != id);
        self.forwarders.push(deliverer);
        // Readers wait three heartbeats plus a forward timeout per forwarder (one pass may
        // spend that long on calls) before calling this relay gone.
        let calls = self.config.forward_timeout * self.forwarders.len() as u32;
        self.status.stale_after = self.config.heartbeat * 3 + calls;
        Ok(self)
    }

    /// The id under which this relay writes its rows of `audit_relay_status`
    /// ([`RelayStatus::relay`](crate::RelayStatus)).
    pub fn relay_id(&self) -> &str {
        &self.status.relay
    }

    /// Counters since the relay was built.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }
}

/// Running totals of a relay, readable while it runs.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Entries delivered.
    pub delivered: AtomicU64,
    /// Failed attempts rescheduled.
    pub retried: AtomicU64,
    /// Entries dead-lettered.
    pub dead: AtomicU64,
    /// Passes that failed on the database (logged; the relay keeps going).
    pub errors: AtomicU64,
    /// Forwarder calls (or relay passes) that panicked: caught, counted; the batch is
    /// retried like after a transient failure and the relay keeps going.
    pub panics: AtomicU64,
    /// Writes of the relay's status row (breaker state, heartbeat) that failed: logged,
    /// retried at the next pass; delivery goes on regardless.
    pub status_errors: AtomicU64,
}

/// Polls a future, turning a panic into `Err(payload)`.
pub(crate) struct CatchUnwind<F>(pub(crate) F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.0).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// A panic's message, truncated, and withheld if it looks like a credential.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload");
    if authtel_core::metadata::looks_like_credential(text) {
        authtel_core::metadata::REDACTED
    } else {
        authtel_core::metadata::truncate(text, 200)
    }
}

/// A spawned relay. Stop it with [`RelayHandle::shutdown`]; dropping the handle aborts the
/// task, which loses nothing (claimed entries come due again after their lease).
#[derive(Debug)]
#[must_use = "dropping a RelayHandle stops the relay"]
pub struct RelayHandle {
    pub(crate) task: Option<JoinHandle<()>>,
    pub(crate) stop: Arc<Notify>,
    pub(crate) wake: Arc<Notify>,
    pub(crate) stats: Arc<RelayStats>,
}

impl RelayHandle {
    /// Makes the relay look for due entries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// The relay's counters.
    pub fn stats(&self) -> &RelayStats {
        &self.stats
    }

    /// Asks the relay to finish its current pass and stop, waiting at most `timeout`;
    /// returns whether it stopped cleanly in time (if not in time, it is aborted; `false`
    /// also if the task had ended by a panic). Panics the relay caught and survived are in
    /// [`RelayStats::panics`].
    pub async fn shutdown(mut self, timeout: Duration) -> bool {
        self.stop.notify_one();
        let Some(task) = self.task.take() else {
            return true;
        };
        let abort = task.abort_handle();
        match tokio::time::timeout(timeout, task).await {
            Ok(joined) => joined.is_ok(),
            Err(_) => {
                abort.abort();
                false
            }
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
