//! Kafka throughput and end-to-end latency against the local broker (`KAFKA_BOOTSTRAP`),
//! written as JSON lines to `$AUTHTEL_BENCH_DIR/kafka.jsonl` for `cargo xtask bench`.
//!
//! - `kafka/forwarder_one_call`: N records through one `KafkaForwarder::forward` call
//!   (serialize, scrub check, CloudEvents headers, `acks=all` reports), next to
//!   `raw rdkafka FutureProducer` sending the same keys, values and headers, pre-serialized,
//!   with the same producer settings. Ratio = forwarder throughput / raw throughput.
//! - `kafka/forwarder_batches_256`: the same records in sequential 256-record batches, the
//!   way a single pipeline lane with the default batch size drives a forwarder (each batch
//!   waits for its acks); `kafka/forwarder_batches_2048` with a lane's `batch_size(2048)`.
//! - `kafka/e2e_p50`, `kafka/e2e_p99`: emit → row committed in SQLite by the projector
//!   (producer `linger.ms=1`, projector linger 5 ms and `fetch.wait.max.ms=10`).
//!
//! Not criterion: each sample needs a real broker round trip and a topic; medians of a few
//! rounds are what matter here.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, ProjectFuture, ProjectionSink, Projector, cloudevents};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

fn records(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            e = e.with_actor(Party::new(format!("u_{}", i % 1000), "user"));
            e = e.with_session_id(format!("s_{i}"));
            e = e.with_client_ip(std::net::IpAddr::from([
                10,
                0,
                (i / 256 % 256) as u8,
                (i % 256) as u8,
            ]));
            e = e.with_user_agent("Mozilla/5.0 (X11; Linux x86_64)");
            e = e.with_metadata("method", "password").unwrap();
            e
        })
        .collect()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn forwarder_rate(bootstrap: &str, events: &[AuditEvent], batch: usize) -> f64 {
    let topic = unique("bench-fwd");
    authtel_kafka::create_topic(bootstrap, &topic, 1, Duration::from_secs(30))
        .await
        .expect("create topic");
    let kafka = KafkaForwarder::builder(bootstrap, &topic).build().unwrap();
    kafka.forward(&events[..10]).await.expect("warm-up");
    let started = Instant::now();
    for chunk in events.chunks(batch) {
        kafka.forward(chunk).await.expect("delivered");
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

async fn raw_rate(bootstrap: &str, events: &[AuditEvent]) -> f64 {
    let topic = unique("bench-raw");
    authtel_kafka::create_topic(bootstrap, &topic, 1, Duration::from_secs(30))
        .await
        .expect("create topic");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "lz4")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "30000")
        .create()
        .unwrap();
    // The same bytes, prepared outside the timed loop.
    let prepared: Vec<(String, Vec<u8>, &AuditEvent)> = events
        .iter()
        .map(|e| (e.partition_key(), serde_json::to_vec(e).unwrap(), e))
        .collect();
    let source = "authtel://authtel-kafka";
    // Warm-up outside the timed loop, as for the forwarder: connection and producer id.
    let (key, value, e) = &prepared[0];
    let warm = FutureRecord::to(&topic)
        .key(key.as_str())
        .payload(value.as_slice())
        .headers(cloudevents::headers_for(e, source));
    producer
        .send(warm, Duration::from_secs(30))
        .await
        .expect("warm-up");
    let started = Instant::now();
    let mut pending = Vec::with_capacity(prepared.len());
    for (key, value, e) in &prepared {
        let mut record = FutureRecord::to(&topic)
            .key(key.as_str())
            .payload(value.as_slice())
            .headers(cloudevents::headers_for(e, source));
        loop {
            match producer.send_result(record) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    for f in pending {
        f.await.expect("not cancelled").expect("delivered");
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

/// Records when each event id was committed by the store.
#[derive(Debug)]
struct Timed<S> {
    inner: S,
    stored: Mutex<HashMap<uuid::Uuid, Instant>>,
}

impl<S: ProjectionSink> ProjectionSink for Timed<S> {
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
        Box::pin(async move {
            let n = self.inner.project(batch).await?;
            let now = Instant::now();
            let mut stored = self.stored.lock().unwrap();
            for e in batch {
                stored.entry(e.id()).or_insert(now);
            }
            Ok(n)
        })
    }
}

async fn e2e_latency(bootstrap: &str, n: usize) -> (f64, f64) {
    let topic = unique("bench-e2e");
    authtel_kafka::create_topic(bootstrap, &topic, 1, Duration::from_secs(30))
        .await
        .expect("create topic");
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .unwrap();
    let store = authtel_sql::AuditStore::builder(pool).build();
    store.migrate().await.unwrap();
    let sink = Arc::new(Timed {
        inner: store,
        stored: Mutex::new(HashMap::new()),
    });
    let projector = Projector::builder(bootstrap, unique("bench-group"), &topic)
        .with_config("session.timeout.ms", "6000")
        .with_config("fetch.wait.max.ms", "10")
        .with_linger(Duration::from_millis(5))
        .build(sink.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = projector.clone();
        async move { p.run().await }
    });
    let kafka = KafkaForwarder::builder(bootstrap, &topic)
        .with_config("linger.ms", "1")
        .build()
        .unwrap();
    // Wait (bounded) until the projector is assigned, so the group join is not measured.
    let deadline = Instant::now() + Duration::from_secs(60);
    while projector
        .lag(Duration::from_secs(5))
        .await
        .map_or(true, |l| l.partitions.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "projector never got its partition"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = records(n);
    let mut emitted = HashMap::with_capacity(n);
    for e in &events {
        emitted.insert(e.id(), Instant::now());
        kafka.forward(std::slice::from_ref(e)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.stored.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "projector did not store everything"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    projector.stop();
    task.await.unwrap().unwrap();
    let stored = sink.stored.lock().unwrap();
    let mut ms: Vec<f64> = events
        .iter()
        .map(|e| (stored[&e.id()] - emitted[&e.id()]).as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[n / 2], ms[(n * 99) / 100])
}

fn row(out: &mut impl Write, case: &str, value: f64, unit: &str, baseline: Option<(&str, f64)>) {
    let line = match baseline {
        Some((name, b)) => serde_json::json!({
            "case": case, "value": value, "unit": unit,
            "baseline": name, "baseline_value": b, "ratio": value / b,
        }),
        None => serde_json::json!({
            "case": case, "value": value, "unit": unit,
            "baseline": null, "baseline_value": null, "ratio": null,
        }),
    };
    writeln!(out, "{line}").unwrap();
    println!("{line}");
}

fn main() {
    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        eprintln!(
            "kafka bench skipped: KAFKA_BOOTSTRAP is not set (cargo xtask bench starts the broker)"
        );
        return;
    };
    // `cargo test --benches` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let quick = std::env::var("AUTHTEL_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (n, rounds) = if quick { (20_000, 2) } else { (50_000, 3) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let events = records(n);
    let (fwd, fwd_256, fwd_2048, raw) = rt.block_on(async {
        let (mut fwd, mut fwd_256, mut fwd_2048, mut raw) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            raw.push(raw_rate(&bootstrap, &events).await);
            fwd.push(forwarder_rate(&bootstrap, &events, n).await);
            fwd_256.push(forwarder_rate(&bootstrap, &events, 256).await);
            fwd_2048.push(forwarder_rate(&bootstrap, &events, 2048).await);
        }
        (median(fwd), median(fwd_256), median(fwd_2048), median(raw))
    });
    let (p50, p99) = rt.block_on(e2e_latency(&bootstrap, if quick { 300 } else { 1000 }));

    let mut out = authtel_testing::bench_rows::append("kafka.jsonl").unwrap();
    let raw_base = Some(("raw rdkafka FutureProducer", raw));
    row(
        &mut out,
        "kafka/forwarder_one_call",
        fwd,
        "records/s",
        raw_base,
    );
    row(
        &mut out,
        "kafka/forwarder_batches_256",
        fwd_256,
        "records/s",
        raw_base,
    );
    row(
        &mut out,
        "kafka/forwarder_batches_2048",
        fwd_2048,
        "records/s",
        raw_base,
    );
    row(&mut out, "kafka/e2e_p50", p50, "ms", None);
    row(&mut out, "kafka/e2e_p99", p99, "ms", None);
}
