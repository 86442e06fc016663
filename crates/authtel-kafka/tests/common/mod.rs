//! Shared test support: service discovery (skip or fail), unique topics, a plain consumer,
//! and private tansu brokers for fault injection.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

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

/// A tansu broker of our own on a free loopback port, so freezing or killing it disturbs
/// no other test. Killed when dropped.
pub struct PrivateBroker {
    bin: String,
    port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    pub fn start(test: &str) -> Option<PrivateBroker> {
        let bin = service_env("TANSU_BIN", test)?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut broker = PrivateBroker {
            bin,
            port,
            child: None,
        };
        broker.spawn();
        Some(broker)
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut child = Command::new(&self.bin)
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                ])
                .args(["--storage-engine", "memory://tansu/"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn tansu");
            // Bounded wait for the port; a broker that exits (port still held) is retried.
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                    self.child = Some(child);
                    return;
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "private tansu broker did not listen on {} within 30 s",
                self.port
            );
        }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {sig} {}", self.pid());
    }

    /// SIGSTOP: the broker keeps its data and its port but answers nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// kill -9, then a new broker on the same port (memory storage: topics are gone).
    pub fn crash_and_restart(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().unwrap();
        child.wait().unwrap();
        self.spawn();
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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

/// The SQL stores the projector writes into, one suite per backend.
pub mod stores {
    use authtel_sql::AuditStore;
    use authtel_sql::postgres::Postgres;
    use authtel_sql::sqlite::Sqlite;
    use authtel_sql::sqlx;

    /// A migrated SQLite store in memory (one connection, shared by test and projector).
    pub async fn sqlite() -> AuditStore<Sqlite> {
        let pool = authtel_sql::sqlite::connect("sqlite::memory:")
            .await
            .expect("open sqlite");
        let store = AuditStore::builder(pool).build();
        store.migrate().await.expect("migrate sqlite");
        store
    }

    /// A migrated PostgreSQL store in its own schema, or `None` (skipped) without a database.
    pub async fn postgres(test: &str) -> Option<AuditStore<Postgres>> {
        let url = super::service_env("DATABASE_URL", test)?;
        let pool = authtel_sql::postgres::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{test}: connect to {url}: {e}"));
        let schema = super::unique_topic("k").replace('-', "_");
        let store = AuditStore::builder(pool)
            .with_schema(&schema)
            .unwrap()
            .build();
        store.migrate().await.expect("migrate postgres");
        Some(store)
    }

    /// (rows, distinct event ids) in a store.
    pub trait RowCount {
        fn rows(&self) -> impl std::future::Future<Output = (i64, i64)> + Send;
        /// The stored records of one actor, oldest first.
        fn actor_events(
            &self,
            actor: &str,
        ) -> impl std::future::Future<Output = Vec<authtel_core::audit::AuditEvent>> + Send;
    }

    impl RowCount for AuditStore<Sqlite> {
        async fn actor_events(&self, actor: &str) -> Vec<authtel_core::audit::AuditEvent> {
            let q = authtel_sql::AuditQuery::new().actor(actor).limit(1000);
            self.query(&q).await.expect("query").events
        }

        async fn rows(&self) -> (i64, i64) {
            sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM audit_events")
                .fetch_one(self.pool())
                .await
                .expect("count rows")
        }
    }

    impl RowCount for AuditStore<Postgres> {
        async fn actor_events(&self, actor: &str) -> Vec<authtel_core::audit::AuditEvent> {
            let q = authtel_sql::AuditQuery::new().actor(actor).limit(1000);
            self.query(&q).await.expect("query").events
        }

        async fn rows(&self) -> (i64, i64) {
            let schema = self.schema().unwrap();
            // The schema is a validated identifier made by this test.
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM \"{schema}\".audit_events"
            )))
            .fetch_one(self.pool())
            .await
            .expect("count rows")
        }
    }
}
