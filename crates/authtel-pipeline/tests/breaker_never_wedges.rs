//! The circuit breaker against every error kind at the half-open probe, through real
//! lanes: whatever the probe gets (transient, permanent, timeout, panic), delivery resumes
//! once the destination recovers. The first version wedged for good when the probe got a
//! permanent error (`probing` was never released): the destination was never called again.

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{PATIENCE, TempDir, numbered, seq_of, wait_until};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Transient,
    Permanent,
    Timeout,
    Panic,
}

/// Call 1 fails transiently (opens the breaker), call 2 — the half-open probe — fails
/// with `probe`, every later call succeeds.
#[derive(Debug)]
struct Scripted {
    probe: Fault,
    calls: AtomicU64,
    received: Mutex<Vec<u64>>,
}

impl Forwarder for Scripted {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fault = match call {
            1 => Some(Fault::Transient),
            2 => Some(self.probe),
            _ => None,
        };
        if fault == Some(Fault::Panic) {
            panic!("forwarder bug at the probe");
        }
        if fault.is_none() {
            self.received
                .lock()
                .unwrap()
                .extend(batch.iter().map(seq_of));
        }
        Box::pin(async move {
            match fault {
                None => Ok(()),
                Some(Fault::Timeout) => std::future::pending().await,
                Some(Fault::Permanent) => Err(ForwardError::message(
                    ErrorKind::Permanent,
                    "record too large for topic audit",
                )),
                Some(_) => Err(ForwardError::message(
                    ErrorKind::Transient,
                    "broker 127.0.0.1:9092 unreachable",
                )),
            }
        })
    }
}

fn config(dest: Arc<Scripted>, dispatch: Dispatch, dir: &TempDir) -> ForwarderConfig {
    ForwarderConfig::from_arc("kafka", dest)
        .dispatch(dispatch)
        .batch_size(1)
        .retry(RetryPolicy {
            max_attempts: 1,
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        })
        .breaker(BreakerConfig {
            failure_threshold: 1,
            open_for: Duration::from_millis(20),
        })
        .call_timeout(Duration::from_millis(50))
        .dead_letter_dir(dir.path())
}

#[test]
fn queued_lane_delivers_again_whatever_the_probe_got() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    for fault in [
        Fault::Transient,
        Fault::Permanent,
        Fault::Timeout,
        Fault::Panic,
    ] {
        let dir = TempDir::new("breaker-queued");
        let dest = Arc::new(Scripted {
            probe: fault,
            calls: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
        });
        let p = Pipeline::builder()
            .runtime(rt.handle().clone())
            .forwarder(config(dest.clone(), Dispatch::Async, &dir))
            .build()
            .unwrap();
        for e in numbered(0..2) {
            p.publish(e).unwrap();
        }
        // Both early records are given up on (dead-lettered) or, for the probe that
        // failed transiently, retried after the next probe; publish more and wait.
        assert!(
            wait_until(|| dest.calls.load(Ordering::SeqCst) >= 2),
            "{fault:?}"
        );
        for e in numbered(2..10) {
            p.publish(e).unwrap();
        }
        let delivered = || dest.received.lock().unwrap().clone();
        assert!(
            wait_until(|| delivered().ends_with(&[2, 3, 4, 5, 6, 7, 8, 9])),
            "{fault:?}: delivery resumed, got {:?} after {} calls",
            delivered(),
            dest.calls.load(Ordering::SeqCst)
        );
        let m = &p.metrics()[0];
        assert_eq!(
            m.breaker,
            authtel_pipeline::BreakerState::Closed,
            "{fault:?}"
        );
        assert_eq!(m.delivered + m.dead_lettered, 10, "{fault:?}: {m:?}");
        p.shutdown(Instant::now() + PATIENCE).unwrap();
    }
}

#[test]
fn inline_lane_delivers_again_whatever_the_probe_got() {
    for fault in [
        Fault::Transient,
        Fault::Permanent,
        Fault::Timeout,
        Fault::Panic,
    ] {
        let dir = TempDir::new("breaker-inline");
        let dest = Arc::new(Scripted {
            probe: fault,
            calls: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
        });
        let p = Pipeline::builder()
            .forwarder(config(dest.clone(), Dispatch::Sync, &dir))
            .build()
            .unwrap();
        let mut next = numbered(0..1000).into_iter();
        // Call 1 opens the breaker; wait out the open period so the next call probes.
        p.publish(next.next().unwrap()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
        p.publish(next.next().unwrap()).unwrap();
        assert_eq!(dest.calls.load(Ordering::SeqCst), 2, "{fault:?}");
        // The destination has recovered: within a few open periods records arrive again.
        let deadline = Instant::now() + PATIENCE;
        while dest.received.lock().unwrap().is_empty() && Instant::now() < deadline {
            p.publish(next.next().unwrap()).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            !dest.received.lock().unwrap().is_empty(),
            "{fault:?}: the destination was never called again after the probe"
        );
        let before = dest.received.lock().unwrap().len();
        for _ in 0..5 {
            p.publish(next.next().unwrap()).unwrap();
        }
        assert_eq!(dest.received.lock().unwrap().len(), before + 5, "{fault:?}");
    }
}
