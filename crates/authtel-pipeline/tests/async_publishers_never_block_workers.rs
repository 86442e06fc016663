//! Publishing from async code: tasks on a 2-worker runtime publish into a full queue. They
//! must not block the runtime's worker threads (the lane's worker runs on the same two
//! threads) nor lose records. The first version blocked each publishing task's thread on a
//! condition variable for 1 s, the lane never ran, and records were rejected: 0 of them
//! delivered in 60 s from four tasks.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use authtel_pipeline::{ForwarderConfig, Pipeline};
use common::{Capture, PATIENCE, numbered, wait_until};

const PER_TASK: u64 = 500;

/// Ticks every millisecond while publishers run; returns the longest gap between ticks.
/// A blocked worker thread shows as a long gap.
fn heartbeat(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    tokio::spawn(async move {
        let mut last = Instant::now();
        let mut worst = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
            worst = worst.max(last.elapsed());
            last = Instant::now();
        }
        worst
    })
}

async fn settle(p: &Pipeline, dest: &Capture) {
    assert!(
        wait_until(|| dest.len() as u64 == 4 * PER_TASK),
        "delivered {} of {}",
        dest.len(),
        4 * PER_TASK
    );
    let mut seqs = dest.seqs();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..4 * PER_TASK).collect::<Vec<_>>());
    let m = &p.metrics()[0];
    assert_eq!(m.dropped, 0, "{m:?}");
    let p2 = p.clone();
    tokio::task::spawn_blocking(move || p2.shutdown(Instant::now() + PATIENCE))
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_async_from_four_tasks_into_a_slow_destination_loses_nothing() {
    let dest = Arc::new(Capture::new());
    // A slow destination (2 ms a batch) keeps the small queue full the whole time.
    dest.delay_micros.store(2_000, Ordering::SeqCst);
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("sql", dest.clone())
                .queue_capacity(64)
                .batch_size(16),
        )
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let beat = heartbeat(stop.clone());
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            for e in numbered(t * PER_TASK..(t + 1) * PER_TASK) {
                p.publish_async(e)
                    .await
                    .expect("waits for room, never refused");
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let gap = beat.await.unwrap();
    assert!(
        gap < Duration::from_millis(250),
        "a worker thread was blocked for {gap:?}"
    );
    settle(&p, &dest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_four_tasks_into_a_full_queue_never_blocks_and_loses_nothing() {
    let dest = Arc::new(Capture::new());
    let p = Pipeline::builder()
        .forwarder(
            // The burst (4 × 500) overflows the queue but fits its audit reserve (another
            // capacity's worth) even if the lane's worker never got a thread meanwhile.
            ForwarderConfig::from_arc("sql", dest.clone())
                .queue_capacity(1_024)
                .batch_size(64),
        )
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let beat = heartbeat(stop.clone());
    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            for e in numbered(t * PER_TASK..(t + 1) * PER_TASK) {
                let started = Instant::now();
                // A full queue sends an audit record into the reserve: no wait, no loss.
                p.publish(e).expect("an audit record is not refused here");
                slowest = slowest.max(started.elapsed());
                // A request handler awaits between logins.
                tokio::task::yield_now().await;
            }
            slowest
        }));
    }
    for task in tasks {
        let slowest = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
        assert!(
            slowest < Duration::from_millis(100),
            "a publish took {slowest:?}"
        );
    }
    stop.store(true, Ordering::SeqCst);
    let gap = beat.await.unwrap();
    assert!(
        gap < Duration::from_millis(250),
        "a worker thread was blocked for {gap:?}"
    );
    settle(&p, &dest).await;
}
