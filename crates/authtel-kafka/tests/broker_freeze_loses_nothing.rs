//! A broker frozen for 10 s (SIGSTOP/SIGCONT) while 50,000 records are produced: every
//! record arrives, each user's records stay in order, and the projector stores each once.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, Projector};
use common::stores::RowCount;

const RECORDS: usize = 50_000;
const USERS: usize = 100;
const BATCH: usize = 500;
const PARTITIONS: i32 = 2;

fn records() -> Vec<AuditEvent> {
    (0..RECORDS)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success);
            e.actor = Some(Party::new(format!("u_{}", i % USERS), "user"));
            e.metadata.insert("seq".into(), ((i / USERS) as u64).into());
            e
        })
        .collect()
}

fn seq_of(e: &AuditEvent) -> u64 {
    e.metadata["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_loses_nothing_and_keeps_per_user_order() {
    let Some(broker) = common::PrivateBroker::start("frozen_broker_loses_nothing") else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("freeze");
    common::create_topic(&bootstrap, &topic, PARTITIONS).await;
    // Short timeouts so records fail during the freeze and the retry loop (standing in for
    // the pipeline) has to resend them.
    let kafka = Arc::new(
        KafkaForwarder::builder(&bootstrap, &topic)
            .with_message_timeout(Duration::from_secs(3))
            .with_config("request.timeout.ms", "2500")
            .with_config("reconnect.backoff.max.ms", "500")
            .build()
            .unwrap(),
    );
    let all = Arc::new(records());
    let acked = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));

    let producer = tokio::spawn({
        let (kafka, all, acked, retries) =
            (kafka.clone(), all.clone(), acked.clone(), retries.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            for chunk in all.chunks(BATCH) {
                loop {
                    match kafka.forward(chunk).await {
                        Ok(()) => break,
                        Err(e) => {
                            assert!(e.is_transient(), "only transient failures expected: {e}");
                            let cause = std::error::Error::source(&e).map(ToString::to_string);
                            assert!(
                                Instant::now() < deadline,
                                "no recovery within 180 s: {e}: {cause:?}; health {:?}",
                                kafka.health()
                            );
                            retries.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                acked.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        }
    });

    // Freeze once a fifth has been acknowledged; the 10 s is the fault's length.
    assert!(common::wait_until(|| acked.load(Ordering::Relaxed) >= (RECORDS / 5) as u64).await);
    broker.freeze();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during_freeze = acked.load(Ordering::Relaxed);
    broker.thaw();
    producer
        .await
        .expect("every batch was eventually acknowledged");
    assert!(during_freeze < RECORDS as u64, "the freeze hit the run");
    let retried = retries.load(Ordering::Relaxed);
    eprintln!(
        "freeze: {retried} batch retries, counters {:?}",
        kafka.counters()
    );
    assert!(
        retried > 0,
        "the freeze made deliveries fail and be retried"
    );

    verify_log_and_projection(&bootstrap, &topic, &all).await;
}

/// Every sent record is on the log, each user's records first appear in order, and the
/// projector stores each exactly once in SQL (duplicates counted, not stored).
async fn verify_log_and_projection(bootstrap: &str, topic: &str, all: &[AuditEvent]) {
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    // Order per key on the log itself: first occurrences of each user's seq are 0,1,2,…
    let (b, t) = (bootstrap.clone(), topic.clone());
    let min = RECORDS;
    let log =
        tokio::task::spawn_blocking(move || common::consume_at_least(&b, &t, PARTITIONS, min))
            .await
            .unwrap();
    let mut seen = HashSet::new();
    let mut next_seq: HashMap<String, u64> = HashMap::new();
    for m in &log {
        let e: AuditEvent = serde_json::from_slice(&m.value).unwrap();
        if !seen.insert(e.id) {
            continue;
        }
        let key = m.key.clone().unwrap();
        let expected = next_seq.entry(key.clone()).or_insert(0);
        assert_eq!(seq_of(&e), *expected, "user {key} out of order");
        *expected += 1;
    }
    assert_eq!(seen.len(), RECORDS, "every record arrived");
    assert!(
        all.iter().all(|e| seen.contains(&e.id)),
        "they are the records sent"
    );

    // The projector stores each record exactly once in SQL, duplicates counted.
    let sink = Arc::new(common::stores::sqlite().await);
    let projector = Projector::builder(&bootstrap, common::unique_topic("group"), &topic)
        .with_config("session.timeout.ms", "6000")
        .build(sink.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = projector.clone();
        async move { p.run().await }
    });
    let logged = log.len() as u64;
    assert!(
        common::wait_until(|| projector.counters().consumed >= logged).await,
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

/// The same freeze with the real pipeline driving the forwarder: its retries carry the
/// records across the outage while publishers wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_behind_the_pipeline_loses_nothing() {
    use authtel_pipeline::{Backpressure, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};

    let Some(broker) = common::PrivateBroker::start("frozen_broker_behind_the_pipeline") else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("freeze-pipeline");
    common::create_topic(&bootstrap, &topic, PARTITIONS).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic)
        .with_message_timeout(Duration::from_secs(3))
        .with_config("request.timeout.ms", "2500")
        .with_config("reconnect.backoff.max.ms", "500")
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(common::unique_topic("authtel-kafka-pipeline"));
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
        // Publishers wait for room instead of spilling. With `Spill`, the pipeline replays
        // spilled records while the memory queue still drains, so a user's records
        // interleave out of order (seen here: record 17549 on the log before record 500);
        // reported to the pipeline's owner.
        .backpressure(Backpressure::Block {
            timeout: Duration::from_secs(120),
        })
        .dead_letter_dir(dir.join("dead"));
    let pipeline = Pipeline::builder().forwarder(config).build().unwrap();
    let all = Arc::new(records());

    let publisher = tokio::task::spawn_blocking({
        let (pipeline, all) = (pipeline.clone(), all.clone());
        move || {
            for e in all.iter() {
                pipeline.publish(e.clone()).expect("accepted");
            }
        }
    });
    let delivered = || pipeline.metrics()[0].delivered;
    assert!(common::wait_until(|| delivered() >= (RECORDS / 5) as u64).await);
    broker.freeze();
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.thaw();
    publisher.await.unwrap();

    // Bounded wait for the pipeline to drain: delivered, nothing queued or spilled.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let m = pipeline.metrics()[0].clone();
        if m.delivered >= RECORDS as u64 && m.queue_depth == 0 && m.spill_bytes == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "pipeline did not drain: {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = pipeline.metrics()[0].clone();
    eprintln!("freeze behind the pipeline: {m:?}");
    assert_eq!(m.dead_lettered, 0, "{m:?}");
    assert_eq!(m.dropped, 0, "{m:?}");
    assert!(
        m.retried > 0,
        "the freeze made batches fail and be retried: {m:?}"
    );

    verify_log_and_projection(&bootstrap, &topic, &all).await;
    let p = pipeline.clone();
    tokio::task::spawn_blocking(move || p.shutdown(Instant::now() + Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("pipeline shut down");
    let _ = std::fs::remove_dir_all(&dir);
}
