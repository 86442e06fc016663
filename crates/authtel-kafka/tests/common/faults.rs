//! The broker fault tests' workload and checks: 50,000 records of 100 users, each carrying
//! its per-user sequence number, sent through the real pipeline and verified on the log
//! and in SQL.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, Projector};
use authtel_pipeline::{
    Backpressure, Dispatch, ForwarderConfig, ForwarderMetrics, Pipeline, RetryPolicy,
};

use super::stores::RowCount;

pub const RECORDS: usize = 50_000;
pub const USERS: usize = 100;
pub const BATCH: usize = 500;
pub const PARTITIONS: i32 = 2;

/// `RECORDS` login records; user `u_{i % USERS}` gets sequence numbers 0, 1, 2, …
pub fn records() -> Vec<AuditEvent> {
    (0..RECORDS)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_actor(Party::new(format!("u_{}", i % USERS), "user"));
            e = e.with_metadata("seq", (i / USERS) as u64).unwrap();
            e
        })
        .collect()
}

fn seq_of(e: &AuditEvent) -> u64 {
    e.metadata()["seq"].as_u64().unwrap()
}

/// A forwarder with short timeouts, so records fail during an outage and the retries
/// (a loop standing in for the pipeline, or the pipeline) have to resend them.
pub fn fault_forwarder(bootstrap: &str, topic: &str) -> KafkaForwarder {
    KafkaForwarder::builder(bootstrap, topic)
        .with_message_timeout(Duration::from_secs(3))
        .with_config("request.timeout.ms", "2500")
        .with_config("reconnect.backoff.max.ms", "500")
        .build()
        .unwrap()
}

/// The pipeline as an ordered Kafka lane runs it: one worker, `BATCH`-record batches,
/// retries for minutes, publishers blocking for room.
pub fn ordered_pipeline(kafka: KafkaForwarder, dir: &Path) -> Pipeline {
    let config = ForwarderConfig::new("kafka", kafka)
        .dispatch(Dispatch::Async)
        .workers(1)
        .batch_size(BATCH)
        .retry(RetryPolicy {
            max_attempts: 1000,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: true,
        })
        // Publishers wait for room instead of spilling: the outage is then absorbed by
        // the retries alone, which is what these tests are about.
        .backpressure(Backpressure::Block {
            timeout: Duration::from_secs(120),
        })
        .dead_letter_dir(dir.join("dead"));
    Pipeline::builder().forwarder(config).build().unwrap()
}

/// The same lane with `Backpressure::Spill` and a small queue: an outage overflows it to
/// disk, and the records come back from the spill in order when the broker returns.
pub fn spilling_pipeline(kafka: KafkaForwarder, dir: &Path) -> Pipeline {
    let config = ForwarderConfig::new("kafka", kafka)
        .dispatch(Dispatch::Async)
        .workers(1)
        .batch_size(BATCH)
        .queue_capacity(2 * BATCH)
        .retry(RetryPolicy {
            max_attempts: 1000,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: true,
        })
        .backpressure(Backpressure::Spill)
        .spill_dir(dir.join("spill"))
        .dead_letter_dir(dir.join("dead"));
    Pipeline::builder().forwarder(config).build().unwrap()
}

/// Publishes every record through `pipeline` on a blocking thread, in order.
pub fn publish_all(pipeline: &Pipeline, all: &Arc<Vec<AuditEvent>>) -> tokio::task::JoinHandle<()> {
    let (pipeline, all) = (pipeline.clone(), all.clone());
    tokio::task::spawn_blocking(move || {
        for e in all.iter() {
            pipeline.publish(e.clone()).expect("accepted");
        }
    })
}

/// Shuts `pipeline` down (10 s budget) and removes the test's directory.
pub async fn shut_down(pipeline: &Pipeline, dir: &Path) {
    let p = pipeline.clone();
    tokio::task::spawn_blocking(move || p.shutdown(Instant::now() + Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("pipeline shut down");
    let _ = std::fs::remove_dir_all(dir);
}

/// Bounded wait (180 s) until the pipeline delivered `RECORDS` with nothing queued or
/// spilled; `context` adds what the test knows (e.g. the broker's log) to a failure.
pub async fn wait_drained(pipeline: &Pipeline, context: impl Fn() -> String) -> ForwarderMetrics {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let m = pipeline.metrics()[0].clone();
        if m.delivered >= RECORDS as u64 && m.queue_depth == 0 && m.spill_bytes == 0 {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "pipeline did not drain within 180 s: {m:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every sent record is on the log, each user's records first appear in order, and the
/// projector stores each exactly once in SQL (duplicates counted, not stored).
pub async fn verify_log_and_projection(bootstrap: &str, topic: &str, all: &[AuditEvent]) {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    // Order per key on the log itself: first occurrences of each user's seq are 0,1,2,…
    let (b, t) = (bootstrap.clone(), topic.clone());
    let log =
        tokio::task::spawn_blocking(move || super::consume_at_least(&b, &t, PARTITIONS, RECORDS))
            .await
            .unwrap();
    let mut seen = HashSet::new();
    let mut next_seq: HashMap<String, u64> = HashMap::new();
    for m in &log {
        let e: AuditEvent = serde_json::from_slice(&m.value).unwrap();
        if !seen.insert(e.id()) {
            continue;
        }
        let key = m.key.clone().unwrap();
        let expected = next_seq.entry(key.clone()).or_insert(0);
        assert_eq!(seq_of(&e), *expected, "user {key} out of order");
        *expected += 1;
    }
    let missing: Vec<usize> = (0..all.len())
        .filter(|&i| !seen.contains(&all[i].id()))
        .collect();
    assert!(
        missing.is_empty() && seen.len() == RECORDS,
        "every record arrived: {} messages read, {} distinct, {} of the sent records \
         missing (send positions {:?} .. {:?})",
        log.len(),
        seen.len(),
        missing.len(),
        missing.first(),
        missing.last()
    );
    eprintln!(
        "log: {} messages, {} distinct records, {} duplicates",
        log.len(),
        seen.len(),
        log.len() - seen.len()
    );

    // The projector stores each record exactly once in SQL, duplicates counted.
    let sink = Arc::new(super::stores::sqlite().await);
    let projector = Projector::builder(&bootstrap, super::unique_topic("group"), &topic)
        .with_config("session.timeout.ms", "6000")
        .build(sink.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = projector.clone();
        async move { p.run().await }
    });
    let logged = log.len() as u64;
    assert!(
        super::wait_until(|| projector.counters().consumed >= logged).await,
        "projector read the whole log: {:?}",
        projector.counters()
    );
    projector.stop();
    task.await.unwrap().expect("projector stopped cleanly");
    let c = projector.counters();
    assert_eq!(sink.rows().await, (RECORDS as i64, RECORDS as i64));
    assert_eq!(c.projected, RECORDS as u64, "{c:?}");
    assert_eq!(c.projected + c.duplicates, c.consumed, "{c:?}");
}
