//! A destination that is down for a while, then recovers: records spill while the breaker
//! is open and are replayed in publish order; a spill left at shutdown is replayed by the
//! next pipeline.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use authtel_pipeline::{
    BreakerConfig, Dispatch, ForwarderConfig, FsyncPolicy, Pipeline, RetryPolicy,
};
use common::{Capture, PATIENCE, TempDir, numbered, wait_until};

fn config(dest: Arc<Capture>, dir: &TempDir) -> ForwarderConfig {
    ForwarderConfig::from_arc("store", dest)
        .dispatch(Dispatch::Async)
        .workers(1)
        .batch_size(64)
        .retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_micros(100),
            max: Duration::from_millis(1),
            jitter: true,
        })
        .breaker(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_millis(30),
        })
        .spill_dir(dir.path().join("spill"))
        .fsync(FsyncPolicy::Interval(Duration::from_millis(50)))
        .dead_letter_dir(dir.path().join("dead"))
}

/// Removes later duplicates, keeping first deliveries in arrival order.
fn first_deliveries(seqs: &[u64]) -> Vec<u64> {
    let mut seen = std::collections::HashSet::new();
    seqs.iter().copied().filter(|s| seen.insert(*s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_spill_during_outage_and_replay_in_order() {
    const N: u64 = 5_000;
    let dir = TempDir::new("outage");
    let dest = Arc::new(Capture::new());
    dest.down.store(true, Ordering::SeqCst);
    let pipeline = Pipeline::builder()
        .forwarder(config(dest.clone(), &dir))
        .build()
        .unwrap();
    let p = pipeline.clone();
    let d = dest.clone();
    tokio::task::spawn_blocking(move || {
        for (i, e) in numbered(0..N).into_iter().enumerate() {
            p.publish(e).unwrap();
            if i as u64 == N / 2 {
                // Half-way: wait until the outage has made records spill.
                assert!(wait_until(|| p.metrics()[0].spilled > 0));
                assert!(p.metrics()[0].breaker_opens > 0);
            }
        }
        d.down.store(false, Ordering::SeqCst);
        assert!(wait_until(|| first_deliveries(&d.seqs()).len() as u64 == N));
        assert_eq!(p.flush(Instant::now() + PATIENCE), Ok(()));
    })
    .await
    .unwrap();

    let order = first_deliveries(&dest.seqs());
    assert_eq!(
        order,
        (0..N).collect::<Vec<_>>(),
        "replayed in publish order"
    );
    let m = &pipeline.metrics()[0];
    assert!(m.spilled > 0 && m.replayed > 0, "{m:?}");
    assert_eq!((m.dead_lettered, m.dropped), (0, 0), "{m:?}");
    assert!(
        wait_until(|| pipeline.metrics()[0].spill_bytes == 0),
        "spill files are removed once replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spill_left_at_shutdown_is_replayed_on_next_start() {
    const N: u64 = 1_000;
    let dir = TempDir::new("restart");
    let down = Arc::new(Capture::new());
    down.down.store(true, Ordering::SeqCst);
    let first = Pipeline::builder()
        .forwarder(config(down.clone(), &dir))
        .build()
        .unwrap();
    let f = first.clone();
    tokio::task::spawn_blocking(move || {
        for e in numbered(0..N) {
            f.publish(e).unwrap();
        }
        assert!(wait_until(|| f.metrics()[0].spilled == N));
        assert_eq!(f.shutdown(Instant::now() + PATIENCE), Ok(()));
    })
    .await
    .unwrap();
    assert_eq!(down.len(), 0);
    drop(first);

    let healthy = Arc::new(Capture::new());
    let second = Pipeline::builder()
        .forwarder(config(healthy.clone(), &dir))
        .build()
        .unwrap();
    let h = healthy.clone();
    tokio::task::spawn_blocking(move || {
        assert!(wait_until(|| first_deliveries(&h.seqs()).len() as u64 == N));
    })
    .await
    .unwrap();
    assert_eq!(
        first_deliveries(&healthy.seqs()),
        (0..N).collect::<Vec<_>>()
    );
    assert_eq!(second.metrics()[0].replayed, N);
}
