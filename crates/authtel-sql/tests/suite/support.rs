// Forwarders and record factories shared by every backend's copy of the suite.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party, Timestamp};
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;

/// Records every delivered event.
#[derive(Debug, Default)]
pub(crate) struct Recording {
    pub(crate) events: Mutex<Vec<AuditEvent>>,
    pub(crate) calls: AtomicU32,
}

impl Recording {
    pub(crate) fn ids(&self) -> Vec<uuid::Uuid> {
        self.events.lock().unwrap().iter().map(|e| e.id()).collect()
    }
    pub(crate) fn len(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

impl Forwarder for Recording {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.events.lock().unwrap().extend_from_slice(batch);
        Box::pin(async { Ok(()) })
    }
}

/// Fails the first `failures` calls with a transient error, then records.
#[derive(Debug, Default)]
pub(crate) struct Flaky {
    pub(crate) failures: u32,
    pub(crate) calls: AtomicU32,
    pub(crate) inner: Recording,
}

impl Forwarder for Flaky {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.failures {
            return Box::pin(async {
                Err(ForwardError::message(
                    ErrorKind::Transient,
                    "send to flaky broker 127.0.0.1:1",
                ))
            });
        }
        self.inner.forward(batch)
    }
}

/// Always fails with `kind`.
#[derive(Debug)]
pub(crate) struct Failing(pub ErrorKind);

impl Forwarder for Failing {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        let kind = self.0;
        Box::pin(async move {
            Err(ForwardError::message(
                kind,
                "deliver to projection: schema mismatch at destination",
            ))
        })
    }
}

/// Signals that it was entered, then never finishes: a relay "dies" inside it.
#[derive(Debug, Default)]
pub(crate) struct Hanging {
    pub(crate) entered: tokio::sync::Notify,
}

impl Forwarder for Hanging {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.entered.notify_one();
        Box::pin(std::future::pending())
    }
}

pub(crate) fn event(action: &str, outcome: Outcome) -> AuditEvent {
    let mut e = AuditEvent::new(action, outcome).unwrap();
    e = e.with_actor(Party::new("u_1", "user"));
    e = e.with_client_ip("203.0.113.7".parse().unwrap());
    e = e.with_user_agent("Mozilla/5.0");
    e = e.with_session_id("s_1");
    e = e.with_span_id("00000000000000aa");
    e = e.with_trace_id("00000000000000bb");
    e = e.with_metadata("method", "password").unwrap();
    e = e.with_metadata("attempts_remaining", 3).unwrap();
    e
}

pub(crate) fn at(e: AuditEvent, t: Timestamp) -> AuditEvent {
    e.with_occurred_at(t)
}

pub(crate) fn minutes_ago(n: i64) -> Timestamp {
    Timestamp::from_unix_micros(Timestamp::now().unix_micros() - n * 60_000_000)
}

pub(crate) fn shared<F: Forwarder>(f: F) -> Arc<F> {
    Arc::new(f)
}

/// Polls `check` every few milliseconds until it holds or `limit` passes.
pub(crate) async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub(crate) fn services_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_some()
}
