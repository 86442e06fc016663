//! Shared test support: service discovery (skip or fail), unique topics, a plain consumer,
//! and private tansu brokers for fault injection.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

mod broker;
pub mod faults;
pub mod stores;

// Not every test binary starts a broker of its own.
#[allow(unused_imports)]
pub use broker::{PrivateBroker, Storage, storage_engines};

/// Generous bound for anything involving the broker on a loaded two-core machine.
pub const WAIT: Duration = Duration::from_secs(90);

fn services_required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("AUTHTEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The value of a service variable; `None` (after a skip message) when it is missing and
/// services are optional. Panics when services are required: a missing service must fail.
pub fn service_env(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if services_required() => panic!(
            "{test}: {var} is not set but CI/AUTHTEL_REQUIRE_SERVICES requires services; run `eval \"$(cargo xtask services start)\"`"
        ),
        _ => {
            eprintln!(
                "SKIPPED {test}: {var} is not set; run `eval \"$(cargo xtask services start)\"` to run it"
            );
            None
        }
    }
}

/// The shared broker's address.
pub fn bootstrap(test: &str) -> Option<String> {
    service_env("KAFKA_BOOTSTRAP", test)
}

/// A topic name no other test (or earlier run) uses.
pub fn unique_topic(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    authtel_kafka::create_topic(bootstrap, topic, partitions, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic} on {bootstrap}: {e}"));
}

/// One consumed message, owned.
#[derive(Debug, Clone)]
pub struct Received {
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub partition: i32,
}

impl Received {
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads partitions `0..partitions` of `topic` from the beginning until `want` messages
/// arrived or `WAIT` passed. Blocking: call from `spawn_blocking`.
pub fn consume(bootstrap: &str, topic: &str, partitions: i32, want: usize) -> Vec<Received> {
    read(bootstrap, topic, partitions, want, false)
}

/// Like [`consume`], then keeps reading until the partitions stay quiet for 2 s: for logs
/// that may hold duplicates beyond `want`.
pub fn consume_at_least(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    want: usize,
) -> Vec<Received> {
    read(bootstrap, topic, partitions, want, true)
}

fn read(bootstrap: &str, topic: &str, partitions: i32, want: usize, drain: bool) -> Vec<Received> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::with_capacity(want);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if out.len() >= want && (!drain || quiet_since.elapsed() > Duration::from_secs(2)) {
            break;
        }
        let polled = consumer.poll(Duration::from_millis(200));
        if polled.is_some() {
            quiet_since = Instant::now();
        }
        match polled {
            Some(Ok(m)) => out.push(Received {
                key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                value: m.payload().unwrap_or_default().to_vec(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                partition: m.partition(),
            }),
            Some(Err(e)) => eprintln!("consume {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// Polls `cond` every 50 ms until it holds or `WAIT` passes; returns whether it held.
pub async fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}
