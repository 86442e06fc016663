//! A forwarder that panics or hangs: the caller is unaffected, hangs are bounded by the
//! per-call timeout, both are counted, and the records end in the dead-letter file with
//! the `pipeline.forward.error` signal.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::registry::{Registry, handler_fn};
use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{PATIENCE, TempDir, numbered, wait_until};

#[derive(Debug)]
struct Panics;
impl Forwarder for Panics {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        panic!("destination client bug")
    }
}

#[derive(Debug)]
struct PanicsWhenPolled;
impl Forwarder for PanicsWhenPolled {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async { panic!("destination client bug inside the future") })
    }
}

#[derive(Debug, Default)]
struct Hangs(AtomicUsize);
impl Forwarder for Hangs {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

fn quick(cfg: ForwarderConfig, dir: &TempDir) -> ForwarderConfig {
    cfg.retry(RetryPolicy {
        max_attempts: 2,
        base: Duration::from_micros(50),
        max: Duration::from_micros(50),
        jitter: false,
    })
    .breaker(BreakerConfig {
        failure_threshold: 1_000,
        open_for: Duration::from_millis(1),
    })
    .call_timeout(Duration::from_millis(50))
    .dead_letter_dir(dir.path())
}

/// (forwarder id, event count) of each forward-error signal.
type Reports = Arc<Mutex<Vec<(String, u64)>>>;

fn signals() -> (Registry, Reports) {
    let registry = Registry::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    registry
        .attach(
            "errors",
            &catalogue::PIPELINE_FORWARD_ERROR,
            handler_fn(move |r| {
                let mut forwarder = String::new();
                let mut count = 0;
                r.metadata.for_each_field(|k, v| match (k, v) {
                    ("forwarder", authtel_core::metadata::Value::Str(s)) => {
                        forwarder = s.to_owned()
                    }
                    ("event_count", authtel_core::metadata::Value::U64(n)) => count = n,
                    _ => {}
                });
                s.lock().unwrap().push((forwarder, count));
            }),
        )
        .unwrap();
    (registry, seen)
}

fn dead_ids(dir: &TempDir, forwarder: &str) -> Vec<uuid::Uuid> {
    let text = std::fs::read_to_string(dir.path().join(format!("{forwarder}.dead.jsonl"))).unwrap();
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert!(
                v["reason"].as_str().unwrap().contains("panicked")
                    || v["reason"].as_str().unwrap().contains("timed out")
            );
            v["event"]["id"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

#[test]
fn panicking_forwarder_in_sync_mode_does_not_reach_the_caller() {
    let dir = TempDir::new("panic-sync");
    let (registry, seen) = signals();
    let pipeline = Pipeline::builder()
        .forwarder(quick(
            ForwarderConfig::new("panics", Panics).dispatch(Dispatch::Sync),
            &dir,
        ))
        .signals_to(registry)
        .build()
        .unwrap();
    let events = numbered(0..10);
    let ids: Vec<_> = events.iter().map(|e| e.id()).collect();
    for e in events {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.publish(e)));
        assert!(
            matches!(r, Ok(Ok(()))),
            "publish must neither panic nor fail"
        );
    }
    let m = &pipeline.metrics()[0];
    assert_eq!(
        (m.panics, m.dead_lettered, m.delivered),
        (20, 10, 0),
        "{m:?}"
    );
    assert_eq!(dead_ids(&dir, "panics"), ids);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 10);
    assert!(
        seen.iter().all(|(f, n)| f == "panics" && *n == 1),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_future_in_async_mode_is_caught_and_counted() {
    let dir = TempDir::new("panic-async");
    let (registry, seen) = signals();
    let pipeline = Pipeline::builder()
        .forwarder(quick(
            ForwarderConfig::new("panics-later", PanicsWhenPolled)
                .dispatch(Dispatch::Async)
                .batch_size(10),
            &dir,
        ))
        .signals_to(registry)
        .build()
        .unwrap();
    let events = numbered(0..100);
    let mut ids: Vec<_> = events.iter().map(|e| e.id()).collect();
    for e in events {
        pipeline.publish(e).unwrap();
    }
    let p = pipeline.clone();
    tokio::task::spawn_blocking(move || {
        assert!(wait_until(|| p.metrics()[0].dead_lettered == 100));
        assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
    })
    .await
    .unwrap();
    let m = &pipeline.metrics()[0];
    assert!(m.panics >= 10, "{m:?}");
    let mut dead = dead_ids(&dir, "panics-later");
    dead.sort();
    ids.sort();
    assert_eq!(dead, ids);
    let total: u64 = seen.lock().unwrap().iter().map(|(_, n)| n).sum();
    assert_eq!(
        total, 100,
        "one forward-error signal per dead-lettered batch, counting every record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_forwarder_is_bounded_by_the_call_timeout() {
    let dir = TempDir::new("hang");
    let hangs = Arc::new(Hangs::default());
    let pipeline = Pipeline::builder()
        .forwarder(quick(
            ForwarderConfig::from_arc("hangs", hangs.clone())
                .dispatch(Dispatch::Async)
                .batch_size(5),
            &dir,
        ))
        .build()
        .unwrap();
    let started = Instant::now();
    for e in numbered(0..20) {
        pipeline.publish(e).unwrap();
    }
    // Publishing does not wait for the destination at all.
    assert!(started.elapsed() < PATIENCE);
    let p = pipeline.clone();
    tokio::task::spawn_blocking(move || {
        assert!(wait_until(|| p.metrics()[0].dead_lettered == 20));
        assert_eq!(p.shutdown(Instant::now() + PATIENCE), Ok(()));
    })
    .await
    .unwrap();
    let m = &pipeline.metrics()[0];
    // Each batch (at least 4 of at most 5 records) got 2 attempts, each one cut off.
    let calls = hangs.0.load(Ordering::SeqCst) as u64;
    assert_eq!(m.timeouts, calls, "{m:?}");
    assert!(calls >= 8 && calls.is_multiple_of(2), "{calls}");
    assert_eq!(dead_ids(&dir, "hangs").len(), 20);
}
