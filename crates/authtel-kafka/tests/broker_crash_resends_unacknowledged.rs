//! A broker killed with SIGKILL and restarted while records are produced: every record the
//! producer had not been acknowledged for is sent again and arrives, in per-user order.
//!
//! The broker here is tansu on its in-memory storage engine (the build available on this
//! machine), so records it acknowledged before the crash die with it; that loss is the
//! broker's, and this test measures it rather than hiding it. With a persistent engine
//! (`tansu --storage-engine postgres://…`) the same test would see no loss at all.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::KafkaForwarder;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const RECORDS: usize = 20_000;
const USERS: usize = 50;
const BATCH: usize = 500;

fn partition_count(bootstrap: &str, topic: &str) -> i32 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    md.topics()[0].partitions().len() as i32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_broker_gets_every_unacknowledged_record_again() {
    let Some(mut broker) = common::PrivateBroker::start("crashed_broker_resends") else {
        return;
    };
    let bootstrap = broker.bootstrap();
    let topic = common::unique_topic("crash");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = Arc::new(
        KafkaForwarder::builder(&bootstrap, &topic)
            .with_message_timeout(Duration::from_secs(3))
            .with_config("request.timeout.ms", "2500")
            .with_config("reconnect.backoff.max.ms", "500")
            .build()
            .unwrap(),
    );
    let all: Arc<Vec<AuditEvent>> = Arc::new(
        (0..RECORDS)
            .map(|i| {
                let mut e = AuditEvent::new("auth.token.issue", Outcome::Success);
                e.actor = Some(Party::new(format!("u_{}", i % USERS), "user"));
                e.metadata.insert("seq".into(), ((i / USERS) as u64).into());
                e
            })
            .collect(),
    );
    let acked = Arc::new(AtomicU64::new(0));
    let restarted = Arc::new(AtomicBool::new(false));
    // Batches that must be on the restarted broker: those that failed at least once (only
    // the crash makes them fail, so their successful retry went to the new broker) and
    // those first sent after the restart.
    let must_arrive = Arc::new(Mutex::new(HashSet::new()));

    let producer = tokio::spawn({
        let (kafka, all, acked, restarted, must_arrive) = (
            kafka.clone(),
            all.clone(),
            acked.clone(),
            restarted.clone(),
            must_arrive.clone(),
        );
        async move {
            let deadline = Instant::now() + Duration::from_secs(180);
            for (n, chunk) in all.chunks(BATCH).enumerate() {
                if restarted.load(Ordering::SeqCst) {
                    must_arrive.lock().unwrap().insert(n);
                }
                while let Err(e) = kafka.forward(chunk).await {
                    let cause = std::error::Error::source(&e).map(ToString::to_string);
                    assert!(e.is_transient(), "{e}: {cause:?}");
                    assert!(Instant::now() < deadline, "no recovery: {e}: {cause:?}");
                    must_arrive.lock().unwrap().insert(n);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                acked.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
    });

    assert!(common::wait_until(|| acked.load(Ordering::SeqCst) >= (RECORDS / 4) as u64).await);
    tokio::task::block_in_place(|| broker.crash_and_restart());
    // Memory storage lost the topic; recreate it as an operator (or a persistent engine)
    // would. If the producer's metadata request auto-created it first, that one is used.
    common::create_topic(&bootstrap, &topic, 1).await;
    restarted.store(true, Ordering::SeqCst);
    producer
        .await
        .expect("every batch was eventually acknowledged");

    let must: Vec<usize> = must_arrive.lock().unwrap().iter().copied().collect();
    let must_ids: HashSet<_> = must
        .iter()
        .flat_map(|&n| all[n * BATCH..(n + 1) * BATCH].iter().map(|e| e.id))
        .collect();
    assert!(!must_ids.is_empty());

    let partitions = {
        let (b, t) = (bootstrap.clone(), topic.clone());
        tokio::task::spawn_blocking(move || partition_count(&b, &t))
            .await
            .unwrap()
    };
    let (b, t, want) = (bootstrap.clone(), topic.clone(), must_ids.len());
    let log =
        tokio::task::spawn_blocking(move || common::consume_at_least(&b, &t, partitions, want))
            .await
            .unwrap();
    let mut seen = HashSet::new();
    let mut last_seq: HashMap<String, u64> = HashMap::new();
    for m in &log {
        let e: AuditEvent = serde_json::from_slice(&m.value).unwrap();
        if !seen.insert(e.id) {
            continue;
        }
        let seq = e.metadata["seq"].as_u64().unwrap();
        let key = m.key.clone().unwrap();
        if let Some(prev) = last_seq.insert(key.clone(), seq) {
            assert!(seq > prev, "user {key}: seq {seq} after {prev}");
        }
    }
    let missing = must_ids.iter().filter(|id| !seen.contains(id)).count();
    assert_eq!(missing, 0, "unacknowledged records missing after the crash");
    let lost_by_broker = RECORDS - seen.len();
    eprintln!(
        "crash: {} batches re-sent or sent after restart ({} records, all arrived); \
         {lost_by_broker} records acknowledged before the crash were lost with the memory broker; \
         counters {:?}",
        must.len(),
        must_ids.len(),
        kafka.counters()
    );
}
