//! One bad message never stops the projector: a message that is not an audit record, one
//! whose timestamp used to panic the decoder (a non-ASCII UTC offset), and a record the SQL
//! store refuses (a NUL byte in `reason`, accepted by the Kafka forwarder) are counted,
//! produced to the dead-letter topic with why and where from, and their offsets committed;
//! the 30 good records around them — including the refused record's batch neighbours — are
//! stored. On SQLite and PostgreSQL, against the real broker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::{
    DEAD_LETTER_ORIGIN, DEAD_LETTER_REASON, KafkaForwarder, ProjectionSink, Projector,
    ProjectorState,
};
use authtel_sql::AuditStore;
use common::stores::RowCount;
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn good(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_actor(Party::new(format!("u_{i}"), "user"));
            e
        })
        .collect()
}

async fn send_raw(bootstrap: &str, topic: &str, key: &str, payload: &[u8]) {
    let raw: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    raw.send(
        FutureRecord::<str, [u8]>::to(topic)
            .key(key)
            .payload(payload),
        Duration::from_secs(30),
    )
    .await
    .expect("raw message delivered");
}

async fn poison_is_dead_lettered<S>(test: &str, store: AuditStore<S>, through_forwarder: bool)
where
    S: sqlx::Database,
    AuditStore<S>: ProjectionSink + RowCount,
    authtel_sql::BatchWriter<S>: Forwarder,
{
    let Some(bootstrap) = common::bootstrap(test) else {
        return;
    };
    let topic = common::unique_topic("poison");
    let dead = format!("{topic}.dead-letters");
    common::create_topic(&bootstrap, &topic, 1).await;
    // The dead-letter topic is not created here: the projector creates it when needed.

    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    let sent = good(30);
    let mut nul = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    // A NUL byte in free text: SQL text cannot hold it. (In an identifier, core's policy
    // already redacts the id before the record is sent, so the store would accept it.)
    nul = nul.with_reason("bad\0reason");
    // The timestamp decoder used to slice this offset mid-character and panic.
    let mut bad_time = serde_json::to_value(&sent[0]).unwrap();
    bad_time["id"] = serde_json::json!(uuid::Uuid::now_v7());
    bad_time["occurred_at"] = serde_json::json!("2026-11-22T10:00:00+0é00");

    kafka.forward(&sent[..10]).await.unwrap();
    send_raw(&bootstrap, &topic, "junk", b"{not an audit record").await;
    let mut middle = sent[10..15].to_vec();
    middle.push(nul.clone());
    middle.extend_from_slice(&sent[15..20]);
    kafka
        .forward(&middle)
        .await
        .expect("kafka takes the NUL record");
    send_raw(
        &bootstrap,
        &topic,
        "u_0",
        &serde_json::to_vec(&bad_time).unwrap(),
    )
    .await;
    kafka.forward(&sent[20..]).await.unwrap();

    let store = Arc::new(store);
    let p = Projector::builder(&bootstrap, common::unique_topic("g"), &topic)
        .with_config("session.timeout.ms", "6000")
        .with_config("heartbeat.interval.ms", "500")
        // One batch holds everything: the NUL record has 29 neighbours to isolate it from.
        .with_linger(Duration::from_millis(500));
    let p = if through_forwarder {
        p.build_forwarding(Arc::new(authtel_sql::BatchWriter::new(&store)))
    } else {
        p.build(store.clone())
    }
    .unwrap();
    assert_eq!(p.dead_letter_topic(), dead);
    let task = tokio::spawn({
        let p = p.clone();
        async move { p.run().await }
    });
    assert!(
        common::wait_until(|| p.counters().dead_lettered >= 3 && p.counters().projected >= 30)
            .await,
        "{test}: {:?} {:?}",
        p.counters(),
        p.health()
    );
    let mut drained = false;
    for _ in 0..200 {
        let lag = p.lag(Duration::from_secs(10)).await.expect("lag readable");
        if lag.partitions.len() == 1 && lag.total() == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        drained,
        "{test}: every offset, the poison's too, was committed"
    );
    assert_eq!(
        p.health().state,
        ProjectorState::Running,
        "{:?}",
        p.health()
    );
    p.stop();
    task.await.unwrap().expect("the projector never failed");

    let c = p.counters();
    assert_eq!(c.consumed, 33, "{c:?}");
    assert_eq!(c.projected, 30, "{c:?}");
    assert_eq!(
        (c.decode_errors, c.refused, c.dead_lettered),
        (2, 1, 3),
        "{c:?}"
    );
    assert_eq!(store.rows().await, (30, 30), "{test}");

    let letters = tokio::task::spawn_blocking({
        let (bootstrap, dead) = (bootstrap.clone(), dead.clone());
        move || common::consume(&bootstrap, &dead, 1, 3)
    })
    .await
    .unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    let offset_of = |l: &common::Received| -> i64 {
        let origin = l.header(DEAD_LETTER_ORIGIN).unwrap();
        assert!(origin.starts_with(&format!("{topic}/0/")), "{origin}");
        origin.rsplit('/').next().unwrap().parse().unwrap()
    };
    let mut letters = letters;
    letters.sort_by_key(offset_of);
    let reasons: Vec<&str> = letters
        .iter()
        .map(|l| l.header(DEAD_LETTER_REASON).unwrap())
        .collect();
    assert!(reasons[0].starts_with("not an audit record"), "{reasons:?}");
    assert!(reasons[1].contains("refused by the store"), "{reasons:?}");
    assert!(
        reasons[1].contains("reason") && reasons[1].contains("NUL"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("is not RFC 3339"), "{reasons:?}");
    assert!(reasons[2].starts_with("not an audit record"), "{reasons:?}");
    // The undecodable messages are kept byte for byte; the refused record as its JSON.
    assert_eq!(letters[0].value, b"{not an audit record");
    assert_eq!(letters[0].key.as_deref(), Some("junk"));
    let refused: AuditEvent = serde_json::from_slice(&letters[1].value).unwrap();
    assert_eq!(refused.id(), nul.id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_into_sqlite_is_dead_lettered() {
    poison_is_dead_lettered(
        "poison_into_sqlite_is_dead_lettered",
        common::stores::sqlite().await,
        false,
    )
    .await;
}

/// The same through the `Forwarder` contract (the SQL store's `BatchWriter`), as any
/// pipeline destination could be used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_through_a_forwarder_is_dead_lettered() {
    poison_is_dead_lettered(
        "poison_through_a_forwarder_is_dead_lettered",
        common::stores::sqlite().await,
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_into_postgres_is_dead_lettered() {
    let test = "poison_into_postgres_is_dead_lettered";
    let Some(store) = common::stores::postgres(test).await else {
        return;
    };
    poison_is_dead_lettered(test, store, false).await;
}
