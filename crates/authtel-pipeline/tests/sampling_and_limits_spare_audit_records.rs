//! Sampling and rate limiting apply to non-security telemetry only: audit records and
//! security signals always get through. Backpressure: block times out with a typed error,
//! drop is counted and reported (never for audit records unless allowed), spill keeps them.

mod common;

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, handler_fn};
use authtel_pipeline::{
    Backpressure, Dispatch, ForwarderConfig, Pipeline, PublishError, RateLimit,
};
use common::{Capture, PATIENCE, TempDir, numbered, wait_until};

#[test]
fn sampling_never_touches_audit_records_or_security_signals() {
    let dest = Arc::new(Capture::new());
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("otlp", dest.clone())
                .dispatch(Dispatch::Sync)
                .sample_rate(0.0)
                .rate_limit(RateLimit {
                    per_second: 1,
                    burst: 1,
                }),
        )
        .build()
        .unwrap();
    for _ in 0..200 {
        p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
            .unwrap();
        p.publish_telemetry(AuditEvent::new("security.lockout", Outcome::Failure).unwrap())
            .unwrap();
        p.publish_telemetry(AuditEvent::new("token.verify.stop", Outcome::Success).unwrap())
            .unwrap();
    }
    let m = &p.metrics()[0];
    assert_eq!(
        m.delivered, 400,
        "every audit record and security signal: {m:?}"
    );
    assert_eq!(m.sampled_out, 200);
    assert_eq!(m.dropped, 0);
    assert!(
        dest.received
            .lock()
            .unwrap()
            .iter()
            .all(|e| e.action() != "token.verify.stop")
    );
}

#[test]
fn rate_limit_drops_excess_telemetry_and_reports_it() {
    let registry = Registry::new();
    let reports = Arc::new(Mutex::new(Vec::new()));
    let r = reports.clone();
    registry
        .attach(
            "dropped",
            &catalogue::PIPELINE_RECORDS_DROPPED,
            handler_fn(move |rec| r.lock().unwrap().push(rec.measurements.count)),
        )
        .unwrap();
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::new("otlp", Capture::new())
                .dispatch(Dispatch::Sync)
                .rate_limit(RateLimit {
                    per_second: 1,
                    burst: 10,
                }),
        )
        .signals_to(registry)
        .build()
        .unwrap();
    let mut dropped = 0;
    for _ in 0..100 {
        match p.publish_telemetry(AuditEvent::new("jwt.refresh.stop", Outcome::Success).unwrap()) {
            Ok(()) => {}
            Err(PublishError::Dropped { forwarder }) => {
                assert_eq!(forwarder, "otlp");
                dropped += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
            .unwrap();
    }
    let m = &p.metrics()[0];
    // Burst 10, then 1 token a second: a slow machine may earn a few more.
    assert!((80..=90).contains(&dropped), "{dropped}");
    assert_eq!(m.dropped, dropped);
    assert_eq!(
        m.delivered,
        200 - dropped,
        "audit records are never rate limited"
    );
    let reports = reports.lock().unwrap();
    assert!(
        !reports.is_empty(),
        "drops are reported by the pipeline.records.dropped signal"
    );
    assert!(reports[0].unwrap() >= 1);
}

/// Holds every call until opened.
#[derive(Debug, Default)]
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    inner: Capture,
}

impl Gate {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl Forwarder for Gate {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move {
            tokio::task::block_in_place(|| {
                let g = self.open.lock().unwrap();
                let _g = self.cv.wait_while(g, |open| !*open).unwrap();
            });
            self.inner.forward(batch).await
        })
    }
}

fn gated(
    rt: &tokio::runtime::Runtime,
    gate: Arc<Gate>,
    backpressure: Backpressure,
    dir: &std::path::Path,
) -> Pipeline {
    Pipeline::builder()
        .runtime(rt.handle().clone())
        .forwarder(
            ForwarderConfig::from_arc("slow", gate)
                .dispatch(Dispatch::Async)
                .batch_size(1)
                .queue_capacity(2)
                .backpressure(backpressure)
                .block_timeout(Duration::from_millis(20))
                .call_timeout(Duration::from_secs(300))
                .spill_dir(dir.join("spill"))
                .dead_letter_dir(dir.join("dead")),
        )
        .build()
        .unwrap()
}

/// Publishes until the queue is full and the worker holds one record at the gate.
fn fill(p: &Pipeline) {
    p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
        .unwrap();
    assert!(wait_until(|| p.metrics()[0].queue_depth == 0));
    for _ in 0..2 {
        p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
            .unwrap();
    }
}

/// Publishers here are plain threads (outside any runtime), the only place `Block` waits.
#[test]
fn backpressure_block_drop_and_spill() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("backpressure");
    {
        // Block: an explicit wait, then a typed timeout error when there is no room and
        // no spill (spill would keep it: see below).
        let gate = Arc::new(Gate::default());
        let p = Pipeline::builder()
            .runtime(rt.handle().clone())
            .forwarder(
                ForwarderConfig::from_arc("slow", gate.clone())
                    .dispatch(Dispatch::Async)
                    .batch_size(1)
                    .queue_capacity(2)
                    .call_timeout(Duration::from_secs(300))
                    .dead_letter_dir(dir.path()),
            )
            .build()
            .unwrap();
        fill(&p);
        let started = Instant::now();
        let err = p
            .publish_with_timeout(
                AuditEvent::new("auth.login.stop", Outcome::Success).unwrap(),
                Duration::from_millis(30),
            )
            .unwrap_err();
        assert!(
            matches!(&err, PublishError::Timeout { timeout, .. } if *timeout == Duration::from_millis(30))
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(p.metrics()[0].dropped, 1);
        // Drop (the default) never waits: an audit record goes over the capacity into
        // the reserve instead of being dropped.
        let started = Instant::now();
        p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(p.metrics()[0].queue_depth, 3);
        gate.release();
        assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
        assert_eq!(gate.inner.len(), 4);
    }
    {
        // Drop: telemetry is dropped and counted; an audit record spills, at once.
        let gate = Arc::new(Gate::default());
        let p = gated(
            &rt,
            gate.clone(),
            Backpressure::Drop,
            &dir.path().join("drop"),
        );
        fill(&p);
        let t =
            p.publish_telemetry(AuditEvent::new("token.verify.stop", Outcome::Success).unwrap());
        assert!(matches!(t, Err(PublishError::Dropped { .. })), "{t:?}");
        p.publish(AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap())
            .unwrap();
        let m = &p.metrics()[0];
        // The two queued records go to disk ahead of it, so replay keeps publish order.
        assert_eq!(
            (m.dropped, m.spilled, m.queue_depth),
            (1, 3, 0),
            "the audit record spilled, not dropped: {m:?}"
        );
        gate.release();
        assert!(wait_until(|| gate.inner.len() == 4));
        p.shutdown(Instant::now() + PATIENCE).unwrap();
    }
    {
        // Spill: nothing waits, nothing is lost.
        let gate = Arc::new(Gate::default());
        let p = gated(
            &rt,
            gate.clone(),
            Backpressure::Spill,
            &dir.path().join("spill"),
        );
        fill(&p);
        for e in numbered(0..50) {
            p.publish(e).unwrap();
        }
        // Each overflow takes the queue to disk with it; once records wait on disk, new
        // ones go straight there.
        let m = &p.metrics()[0];
        assert_eq!(m.spilled + m.queue_depth, 52, "{m:?}");
        assert!(m.spilled >= 3, "{m:?}");
        gate.release();
        assert!(wait_until(|| gate.inner.len() == 53));
        let unique: std::collections::HashSet<_> = gate.inner.ids().into_iter().collect();
        assert_eq!(unique.len(), 53, "no record lost or doubled");
        let seqs: Vec<u64> = gate
            .inner
            .received
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| e.metadata().get("seq")?.as_u64())
            .collect();
        assert_eq!(
            seqs,
            (0..50).collect::<Vec<_>>(),
            "delivered in publish order"
        );
        p.shutdown(Instant::now() + PATIENCE).unwrap();
    }
}

/// `Block` on a multi-thread runtime's worker waits under `block_in_place`: the runtime
/// goes on — here a task on it makes the room the publisher waits for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_on_a_runtime_worker_waits_without_stalling_the_runtime() {
    let gate = Arc::new(Gate::default());
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("slow", gate.clone())
                .batch_size(1)
                .queue_capacity(2)
                .backpressure(Backpressure::Block {
                    timeout: Duration::from_secs(60),
                })
                .call_timeout(Duration::from_secs(300)),
        )
        .build()
        .unwrap();
    fill(&p);
    let releaser = tokio::spawn({
        let gate = gate.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            gate.release();
        }
    });
    let started = Instant::now();
    p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(40),
        "it waited for room: {waited:?}"
    );
    assert!(waited < PATIENCE);
    releaser.await.unwrap();
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || p2.flush(Instant::now() + PATIENCE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gate.inner.len(), 4);
    assert_eq!(p.metrics()[0].dropped, 0);
}

/// On a current-thread runtime nothing could make room while the only thread waits:
/// `Block` handles the record as `Drop` at once (an audit record goes to the reserve).
#[tokio::test(flavor = "current_thread")]
async fn block_on_a_current_thread_runtime_never_waits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gate = Arc::new(Gate::default());
    let p = Pipeline::builder()
        .runtime(rt.handle().clone())
        .forwarder(
            ForwarderConfig::from_arc("slow", gate.clone())
                .batch_size(1)
                .queue_capacity(2)
                .backpressure(Backpressure::Block {
                    timeout: Duration::from_secs(60),
                })
                .call_timeout(Duration::from_secs(300)),
        )
        .build()
        .unwrap();
    fill(&p);
    let started = Instant::now();
    p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(p.metrics()[0].queue_depth, 3);
    gate.release();
    let p2 = p.clone();
    std::thread::spawn(move || p2.flush(Instant::now() + PATIENCE))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(gate.inner.len(), 4);
    drop(p);
    rt.shutdown_background();
}
