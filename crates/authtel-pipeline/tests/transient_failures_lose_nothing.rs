//! A destination failing 30 % of calls transiently: 100,000 records, all delivered, none
//! lost; the only duplicates are whole records delivered again under the same id.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{Capture, PATIENCE, TempDir, numbered};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_transient_failures_lose_nothing() {
    const N: u64 = 100_000;
    let dirs = TempDir::new("flaky");
    let dest = Arc::new(Capture::new());
    dest.fail_per_mille.store(300, Ordering::SeqCst);
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("flaky", dest.clone())
                .dispatch(Dispatch::Async)
                .workers(2)
                .batch_size(500)
                .queue_capacity(N as usize)
                // 0.3^40: a batch exhausting its attempts would take ~1e-21 luck.
                .retry(RetryPolicy {
                    max_attempts: 40,
                    base: Duration::from_micros(10),
                    max: Duration::from_micros(200),
                    jitter: true,
                })
                .breaker(BreakerConfig {
                    failure_threshold: 1_000_000,
                    open_for: Duration::from_millis(1),
                })
                .dead_letter_dir(dirs.path()),
        )
        .build()
        .unwrap();
    let published = numbered(0..N);
    let want: HashSet<_> = published.iter().map(|e| e.id()).collect();
    let producer = {
        let p = pipeline.clone();
        tokio::task::spawn_blocking(move || {
            for e in published {
                p.publish(e).unwrap();
            }
        })
    };
    producer.await.unwrap();
    let flushed = tokio::task::spawn_blocking({
        let p = pipeline.clone();
        move || p.flush(Instant::now() + PATIENCE)
    })
    .await
    .unwrap();
    assert_eq!(flushed, Ok(()));

    let got = dest.ids();
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len() as u64, N, "every record delivered");
    assert_eq!(unique, want, "nothing delivered that was not published");
    let m = &pipeline.metrics()[0];
    assert_eq!(m.published, N);
    assert_eq!(m.delivered, got.len() as u64);
    assert!(m.retried > 0, "30 % failures must cause retries: {m:?}");
    assert_eq!((m.dead_lettered, m.dropped), (0, 0), "{m:?}");
    assert!(dest.calls.load(Ordering::SeqCst) > N / 500);
}
