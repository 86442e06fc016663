//! produce → Kafka → projector → SQL, on SQLite and PostgreSQL: the stored row is the sent
//! record, bad messages are counted and skipped, lag drains to zero, and two projectors in
//! one group share the partitions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, ProjectionSink, Projector, ProjectorState};
use authtel_sql::AuditStore;
use common::stores::RowCount;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn events(n: usize, users: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
            e = e.with_actor(Party::new(format!("u_{}", i % users), "user"));
            e = e.with_reason("bad_password");
            e
        })
        .collect()
}

fn projector(
    bootstrap: &str,
    group: &str,
    topic: &str,
    sink: Arc<dyn ProjectionSink>,
) -> Projector {
    Projector::builder(bootstrap, group, topic)
        .with_config("session.timeout.ms", "6000")
        .with_config("heartbeat.interval.ms", "500")
        .build(sink)
        .unwrap()
}

async fn send_garbage(bootstrap: &str, topic: &str) {
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    raw.send(
        FutureRecord::<str, [u8]>::to(topic)
            .key("junk")
            .payload(b"{not an audit record"),
        Duration::from_secs(30),
    )
    .await
    .expect("garbage delivered");
}

async fn round_trip<S>(test: &str, store: AuditStore<S>)
where
    S: sqlx::Database,
    AuditStore<S>: ProjectionSink + RowCount,
{
    let Some(bootstrap) = common::bootstrap(test) else {
        return;
    };
    let topic = common::unique_topic("rt");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    let sent = events(200, 7);
    kafka.forward(&sent[..100]).await.unwrap();
    send_garbage(&bootstrap, &topic).await;
    kafka.forward(&sent[100..]).await.unwrap();

    let store = Arc::new(store);
    let p = projector(
        &bootstrap,
        &common::unique_topic("g"),
        &topic,
        store.clone(),
    );
    let task = tokio::spawn({
        let p = p.clone();
        async move { p.run().await }
    });
    assert!(
        common::wait_until(|| p.counters().consumed >= 201).await,
        "{test}: projector read everything: {:?} {:?}",
        p.counters(),
        p.health()
    );
    // Lag drains to zero once the last batch is stored and committed.
    let mut drained = false;
    for _ in 0..200 {
        let lag = p.lag(Duration::from_secs(10)).await.expect("lag readable");
        if lag.partitions.len() == 1 && lag.total() == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(drained, "{test}: lag reached zero");
    p.stop();
    task.await.unwrap().expect("clean stop");
    assert_eq!(p.health().state, ProjectorState::Stopped);

    let c = p.counters();
    assert_eq!(c.consumed, 201, "{c:?}");
    assert_eq!(c.projected, 200, "{c:?}");
    assert_eq!(c.decode_errors, 1, "{c:?}");
    assert_eq!(c.dead_lettered, 1, "{c:?}");
    assert_eq!(c.duplicates, 0, "{c:?}");
    assert_eq!(store.rows().await, (200, 200));
    let stored = store.actor_events("u_3").await;
    let expected: Vec<_> = sent
        .iter()
        .filter(|e| e.actor().unwrap().id == "u_3")
        .cloned()
        .collect();
    assert_eq!(
        stored, expected,
        "{test}: stored rows equal the sent records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_into_sqlite() {
    round_trip("round_trip_into_sqlite", common::stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_into_postgres() {
    let Some(store) = common::stores::postgres("round_trip_into_postgres").await else {
        return;
    };
    round_trip("round_trip_into_postgres", store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_projectors_in_one_group_share_the_partitions() {
    let test = "two_projectors_in_one_group_share_the_partitions";
    let Some(bootstrap) = common::bootstrap(test) else {
        return;
    };
    let Some(store) = common::stores::postgres(test).await else {
        return;
    };
    let store = Arc::new(store);
    let topic = common::unique_topic("shared");
    common::create_topic(&bootstrap, &topic, 2).await;
    let group = common::unique_topic("g");
    let a = projector(&bootstrap, &group, &topic, store.clone());
    let b = projector(&bootstrap, &group, &topic, store.clone());
    let tasks = [a.clone(), b.clone()].map(|p| tokio::spawn(async move { p.run().await }));
    // Wait for the group to settle with one partition each.
    let mut settled = false;
    for _ in 0..600 {
        let la = a
            .lag(Duration::from_secs(5))
            .await
            .map(|l| l.partitions.len());
        let lb = b
            .lag(Duration::from_secs(5))
            .await
            .map(|l| l.partitions.len());
        if matches!((la, lb), (Ok(1), Ok(1))) {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "both projectors got a partition");

    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    let sent = events(1000, 50);
    for chunk in sent.chunks(100) {
        kafka.forward(chunk).await.unwrap();
    }
    assert!(
        common::wait_until(|| a.counters().projected + b.counters().projected >= 1000).await,
        "{:?} {:?}",
        a.counters(),
        b.counters()
    );
    a.stop();
    b.stop();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let (ca, cb) = (a.counters(), b.counters());
    assert!(
        ca.projected > 0 && cb.projected > 0,
        "both did work: {ca:?} {cb:?}"
    );
    assert_eq!(ca.projected + cb.projected, 1000);
    assert_eq!(store.rows().await, (1000, 1000));
}
