//! A broker frozen for 10 s (SIGSTOP/SIGCONT) while 50,000 records are produced: every
//! record arrives, each user's records stay in order, and the projector stores each once.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::forward::Forwarder;
use authtel_kafka::KafkaForwarder;
use authtel_pipeline::{ForwarderMetrics, Pipeline};
use common::faults::{
    BATCH, PARTITIONS, RECORDS, fault_forwarder, ordered_pipeline, publish_all, records, shut_down,
    spilling_pipeline, verify_log_and_projection, wait_drained,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_loses_nothing_and_keeps_per_user_order() {
    let Some(broker) = common::PrivateBroker::start("frozen_broker_loses_nothing") else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("freeze");
    common::create_topic(&bootstrap, &topic, PARTITIONS).await;
    let kafka = Arc::new(fault_forwarder(&bootstrap, &topic));
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

/// The same freeze with the real pipeline driving the forwarder: its retries carry the
/// records across the outage while publishers wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_behind_the_pipeline_loses_nothing() {
    freeze_behind_pipeline(
        "frozen_broker_behind_the_pipeline",
        ordered_pipeline,
        (RECORDS / 5) as u64,
        |m| {
            assert!(
                m.retried > 0,
                "the freeze made batches fail and be retried: {m:?}"
            )
        },
    )
    .await;
}

/// The freeze behind a pipeline that spills instead of blocking its publishers. The
/// publisher outruns the broker, so the small queue overflows at once and nearly every
/// record takes the disk path (spill, then replay, with the broker frozen mid-replay).
/// Every record still arrives once in the projection and each user's records stay in order
/// on the log: the spill never reorders (authtel-pipeline's delivery-order rule).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_broker_behind_a_spilling_pipeline_keeps_order() {
    freeze_behind_pipeline(
        "frozen_broker_behind_a_spilling_pipeline",
        spilling_pipeline,
        (RECORDS / 10) as u64,
        |m| {
            assert!(
                m.spilled > 0,
                "the outage overflowed the queue to disk: {m:?}"
            )
        },
    )
    .await;
}

/// Publishes every record through the pipeline `lane` builds, freezes the broker for 10 s
/// once `freeze_after` records are delivered, and waits until the pipeline drained. Then:
/// nothing dead-lettered or dropped, `check` on the metrics, every record on the log in
/// per-user order and once in the projection.
async fn freeze_behind_pipeline(
    test: &str,
    lane: fn(KafkaForwarder, &Path) -> Pipeline,
    freeze_after: u64,
    check: impl FnOnce(&ForwarderMetrics),
) {
    let Some(broker) = common::PrivateBroker::start(test) else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("freeze-pipeline");
    common::create_topic(&bootstrap, &topic, PARTITIONS).await;
    let dir = std::env::temp_dir().join(common::unique_topic("authtel-kafka-pipeline"));
    let pipeline = lane(fault_forwarder(&bootstrap, &topic), &dir);
    let all = Arc::new(records());

    let publisher = publish_all(&pipeline, &all);
    let delivered = || pipeline.metrics()[0].delivered;
    assert!(common::wait_until(|| delivered() >= freeze_after).await);
    broker.freeze();
    tokio::time::sleep(Duration::from_secs(10)).await;
    broker.thaw();
    publisher.await.unwrap();

    let m = wait_drained(&pipeline, String::new).await;
    eprintln!("{test}: {m:?}");
    assert_eq!(m.dead_lettered, 0, "{m:?}");
    assert_eq!(m.dropped, 0, "{m:?}");
    check(&m);

    verify_log_and_projection(&bootstrap, &topic, &all).await;
    shut_down(&pipeline, &dir).await;
}
