//! Publishers faster than a slow, sometimes failing destination, a small queue and
//! `Backpressure::Spill`: records overflow to disk while older ones still wait in memory.
//! With one worker the destination must still see every record exactly once, in the order
//! the pipeline accepted them — and so in order per user, which audit consumers rely on
//! (Kafka partitions by actor id).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_pipeline::{
    Backpressure, BreakerConfig, Dispatch, ForwarderConfig, FsyncPolicy, Pipeline, RetryPolicy,
};
use common::{Capture, PATIENCE, TempDir, numbered, seq_of, wait_until};

const USERS: u64 = 7;

/// Records numbered 0..n, spread over several users round-robin.
fn keyed(n: u64) -> Vec<AuditEvent> {
    numbered(0..n)
        .into_iter()
        .map(|mut e| {
            let user = format!("u_{}", seq_of(&e) % USERS);
            e = e.with_actor(Party::new(user, "user"));
            e
        })
        .collect()
}

fn spill_config(dest: Arc<Capture>, dir: &TempDir) -> ForwarderConfig {
    ForwarderConfig::from_arc("kafka", dest)
        .dispatch(Dispatch::Async)
        .workers(1)
        .batch_size(32)
        .queue_capacity(64)
        .backpressure(Backpressure::Spill)
        .retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_micros(100),
            max: Duration::from_millis(1),
            jitter: true,
        })
        .breaker(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_millis(5),
        })
        // Long enough that a slow call is never cut off (which could duplicate it).
        .call_timeout(PATIENCE)
        .spill_dir(dir.path().join("spill"))
        .fsync(FsyncPolicy::Never)
        .dead_letter_dir(dir.path().join("dead"))
}

/// Per user, the sequence numbers the destination saw, in arrival order.
fn per_user(received: &[AuditEvent]) -> HashMap<String, Vec<u64>> {
    let mut by_user: HashMap<String, Vec<u64>> = HashMap::new();
    for e in received {
        by_user
            .entry(e.partition_key())
            .or_default()
            .push(seq_of(e));
    }
    by_user
}

/// Publishes `n` keyed records as fast as possible (calling `during(i)` before record
/// `i`), waits for delivery, and checks the destination saw each record once, in order.
async fn publish_and_check(
    name: &str,
    config: impl FnOnce(Arc<Capture>, &TempDir) -> ForwarderConfig,
    n: u64,
    during: impl Fn(u64, &Capture) + Send + 'static,
) -> authtel_pipeline::ForwarderMetrics {
    let dir = TempDir::new(name);
    let dest = Arc::new(Capture::new());
    dest.delay_micros.store(300, Ordering::SeqCst);
    dest.fail_per_mille.store(30, Ordering::SeqCst);
    let pipeline = Pipeline::builder()
        .forwarder(config(dest.clone(), &dir))
        .build()
        .unwrap();
    let p = pipeline.clone();
    let d = dest.clone();
    tokio::task::spawn_blocking(move || {
        for e in keyed(n) {
            during(seq_of(&e), &d);
            p.publish(e).unwrap();
        }
        assert!(
            wait_until(|| d.len() as u64 >= n),
            "only {} of {n} delivered: {:?}",
            d.len(),
            p.metrics()[0]
        );
        assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
    })
    .await
    .unwrap();

    let m = pipeline.metrics().remove(0);
    assert!(
        m.spilled > 0 && m.replayed > 0,
        "the publisher must outrun the destination for this test to mean anything: {m:?}"
    );
    assert!(m.retried > 0, "failures must be retried: {m:?}");
    assert_eq!((m.dead_lettered, m.dropped), (0, 0), "{m:?}");
    let received = dest.received.lock().unwrap().clone();
    let by_user = per_user(&received);
    for (user, seqs) in &by_user {
        let first_break = seqs.windows(2).position(|w| w[0] >= w[1]);
        assert_eq!(
            first_break,
            None,
            "{user}: record {} delivered after {}",
            first_break.map_or(0, |i| seqs[i + 1]),
            first_break.map_or(0, |i| seqs[i])
        );
    }
    assert_eq!(by_user.len() as u64, USERS);
    let seqs: Vec<u64> = received.iter().map(seq_of).collect();
    assert_eq!(seqs.len() as u64, n, "every record exactly once");
    if let Some(i) = seqs.windows(2).position(|w| w[0] + 1 != w[1]) {
        panic!(
            "delivery order differs from acceptance order: record {} followed record {}",
            seqs[i + 1],
            seqs[i]
        );
    }
    assert!(wait_until(|| pipeline.metrics()[0].spill_bytes == 0));
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overflow_spill_keeps_acceptance_order_with_one_worker() {
    publish_and_check("spill-order", spill_config, 20_000, |_, _| {}).await;
}

/// `Block` with a short timeout spills on overflow too; in the middle the destination goes
/// down long enough for the breaker to open, so batches taken from memory spill as well
/// (or, when newer records are already on disk, wait for the breaker instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_timeout_spill_and_outage_keep_acceptance_order_with_one_worker() {
    let config = |dest, dir: &TempDir| {
        spill_config(dest, dir).backpressure(Backpressure::Block {
            timeout: Duration::from_millis(1),
        })
    };
    let m = publish_and_check("block-outage", config, 20_000, |i, dest| {
        if i == 6_000 || i == 9_000 {
            dest.down.store(i == 6_000, Ordering::SeqCst);
        }
    })
    .await;
    assert!(m.breaker_opens > 0, "{m:?}");
}
