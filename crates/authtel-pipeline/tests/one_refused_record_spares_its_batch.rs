//! A forwarder that refuses a whole batch for good because of one record in it (Kafka's
//! "message too large", a store's constraint): the pipeline splits the batch until the
//! refused record stands alone, delivers every other record and dead-letters only that one —
//! on the queued lane, on the inline lane, and when replaying a spill.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline, RetryPolicy, read_dead_letters};
use common::{TempDir, numbered, seq_of};

/// Refuses (permanently) any batch holding a record whose `seq` is poisoned; stores the
/// rest. While `down`, every call fails transiently.
#[derive(Debug, Default)]
struct Picky {
    poisoned: BTreeSet<u64>,
    down: AtomicBool,
    calls: AtomicU64,
    stored: Mutex<Vec<u64>>,
}

impl Forwarder for Picky {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let result = if self.down.load(Ordering::SeqCst) {
            Err(ForwardError::message(
                ErrorKind::Transient,
                "store 127.0.0.1:5432 unreachable",
            ))
        } else if let Some(bad) = batch.iter().map(seq_of).find(|s| self.poisoned.contains(s)) {
            Err(ForwardError::message(
                ErrorKind::Permanent,
                format!("record seq={bad} violates a constraint"),
            ))
        } else {
            self.stored.lock().unwrap().extend(batch.iter().map(seq_of));
            Ok(())
        };
        Box::pin(async move { result })
    }
}

fn lane(dest: Arc<Picky>, dispatch: Dispatch, dir: &TempDir) -> ForwarderConfig {
    ForwarderConfig::from_arc("store", dest)
        .dispatch(dispatch)
        .batch_size(128)
        .retry(RetryPolicy {
            max_attempts: 2,
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        })
        .dead_letter_dir(dir.path().join("dead"))
}

fn dead_seqs(dir: &TempDir) -> Vec<u64> {
    let path = dir.path().join("dead").join("store.dead.jsonl");
    if !path.exists() {
        return Vec::new();
    }
    let mut seqs: Vec<u64> = read_dead_letters(&path)
        .unwrap()
        .events
        .iter()
        .map(seq_of)
        .collect();
    seqs.sort_unstable();
    seqs
}

fn check(dest: &Picky, dir: &TempDir, total: u64) {
    let mut stored = dest.stored.lock().unwrap().clone();
    stored.sort_unstable();
    stored.dedup();
    let expected: Vec<u64> = (0..total).filter(|s| !dest.poisoned.contains(s)).collect();
    assert_eq!(stored, expected, "every good record is delivered");
    assert_eq!(
        dead_seqs(dir),
        dest.poisoned.iter().copied().collect::<Vec<_>>()
    );
}

fn run(dispatch: Dispatch, name: &str) {
    let dir = TempDir::new(name);
    let dest = Arc::new(Picky {
        poisoned: [7, 500, 501, 999].into_iter().collect(),
        ..Picky::default()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .runtime(runtime.handle().clone())
        .forwarder(lane(dest.clone(), dispatch, &dir))
        .build()
        .unwrap();
    for e in numbered(0..1000) {
        pipeline.publish(e).unwrap();
    }
    pipeline
        .shutdown(Instant::now() + Duration::from_secs(60))
        .unwrap();
    let m = &pipeline.metrics()[0];
    assert_eq!((m.delivered, m.dead_lettered), (996, 4), "{m:?}");
    check(&dest, &dir, 1000);
}

#[test]
fn queued_lane_dead_letters_only_the_refused_records() {
    run(Dispatch::Async, "refused-queued");
}

#[test]
fn inline_lane_dead_letters_only_the_refused_records() {
    run(Dispatch::Sync, "refused-inline");
}

#[test]
fn spill_replay_dead_letters_only_the_refused_records() {
    let dir = TempDir::new("refused-replay");
    let dest = Arc::new(Picky {
        poisoned: [3, 250].into_iter().collect(),
        ..Picky::default()
    });
    dest.down.store(true, Ordering::SeqCst);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .runtime(runtime.handle().clone())
        .forwarder(
            lane(dest.clone(), Dispatch::Async, &dir)
                .spill_dir(dir.path().join("spill"))
                .breaker(authtel_pipeline::BreakerConfig {
                    failure_threshold: 1,
                    open_for: Duration::from_millis(50),
                }),
        )
        .build()
        .unwrap();
    for e in numbered(0..400) {
        pipeline.publish(e).unwrap();
    }
    // Everything waits on disk while the store is down; then it comes back.
    assert!(common::wait_until(|| pipeline.metrics()[0].spilled > 0));
    dest.down.store(false, Ordering::SeqCst);
    pipeline
        .wait_replayed(Instant::now() + Duration::from_secs(60))
        .unwrap();
    pipeline
        .shutdown(Instant::now() + Duration::from_secs(30))
        .unwrap();
    check(&dest, &dir, 400);
    assert_eq!(pipeline.metrics()[0].dead_lettered, 2);
}
