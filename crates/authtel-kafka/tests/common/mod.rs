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

/// Where a private broker keeps its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `memory://`: fast, gone when the process dies.
    Memory,
    /// `sqlite://`: a SQLite file in the broker's own directory (tansu built with `libsql`),
    /// so a broker killed and restarted keeps every topic and record.
    Sqlite,
}

/// A tansu broker of our own on a free loopback port with its own directory and log file,
/// so freezing or killing it disturbs no other test. Killed when dropped.
pub struct PrivateBroker {
    bin: String,
    port: u16,
    storage: Storage,
    dir: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<Child>,
    starts: u32,
}

/// The first line of `tansu --help` that lists the storage engines compiled in.
pub fn storage_engines(bin: &str) -> String {
    Command::new(bin)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Storage engines:"))
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

/// A loopback port that is free now and lies below the kernel's ephemeral range, so no
/// client's outgoing connection can take it (or connect to itself on it) while the broker
/// is down between a crash and its restart.
fn free_port_below_ephemeral_range() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let floor = 20_000u16.min(low.saturating_sub(2_000));
    let span = u32::from(low - floor);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = floor + ((seed.wrapping_add(n.wrapping_mul(37))) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {floor}..{low}");
}

impl PrivateBroker {
    /// A private broker on memory storage; `None` (skipped) without `TANSU_BIN`.
    pub fn start(test: &str) -> Option<PrivateBroker> {
        PrivateBroker::start_with(test, Storage::Memory)
    }

    /// A private broker on `storage`. `None` (skipped) when `TANSU_BIN` is unset or lacks
    /// the engine and services are optional; panics naming the fix when they are required.
    pub fn start_with(test: &str, storage: Storage) -> Option<PrivateBroker> {
        let bin = service_env("TANSU_BIN", test)?;
        if storage == Storage::Sqlite {
            let engines = storage_engines(&bin);
            if !engines.contains("libsql") && !engines.contains("sqlite") {
                let why = format!(
                    "{test}: {bin} has no persistent storage engine (`tansu --help` lists \
                     storage engines: {engines:?}); run `cargo xtask services install`, which \
                     builds tansu with the libsql engine once (12-15 min)"
                );
                assert!(!services_required(), "{why}");
                eprintln!("SKIPPED {why}");
                return None;
            }
        }
        let port = free_port_below_ephemeral_range();
        let dir = std::env::temp_dir().join(unique_topic("authtel-tansu"));
        std::fs::create_dir_all(&dir).expect("create broker dir");
        let log = dir.join("tansu.log");
        let mut broker = PrivateBroker {
            bin,
            port,
            storage,
            dir,
            log,
            child: None,
            starts: 0,
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

    fn storage_url(&self) -> &'static str {
        match self.storage {
            Storage::Memory => "memory://tansu/",
            // Relative to the broker's working directory (its own temp dir).
            Storage::Sqlite => "sqlite://tansu.db",
        }
    }

    /// The last `lines` lines of the broker's stdout and stderr (all its starts).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        format!(
            "--- last {lines} lines of {} ---\n{}",
            self.log.display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Starts the broker and waits, bounded, until it answers a metadata request.
    fn spawn(&mut self) {
        self.starts += 1;
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open broker log");
        use std::io::Write;
        writeln!(
            log,
            "=== start {} of tansu on {url} with {} ===",
            self.starts,
            self.storage_url()
        )
        .unwrap();
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", self.storage_url()])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn tansu");
        self.child = Some(child);
        self.wait_until_answering();
        if self.storage == Storage::Sqlite && self.starts == 1 {
            index_tansu_headers(&self.dir.join("tansu.db"));
        }
    }

    /// Bounded wait until the broker answers a metadata request; fails with its log tail if
    /// it exits or stays silent.
    fn wait_until_answering(&mut self) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("reconnect.backoff.max.ms", "200")
            .create()
            .expect("metadata client");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let child = self.child.as_mut().expect("broker running");
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "private tansu on port {} exited ({status}) at start {}\n{}",
                    self.port,
                    self.starts,
                    self.log_tail(30)
                );
            }
            if consumer
                .fetch_metadata(None, Duration::from_millis(500))
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "private tansu on port {} did not answer metadata requests within 60 s\n{}",
                self.port,
                self.log_tail(30)
            );
            std::thread::sleep(Duration::from_millis(100));
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

    /// SIGKILL, and wait until the process is gone (reaped): its port is closed.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().expect("SIGKILL tansu");
        child.wait().expect("reap tansu");
    }

    /// Starts the broker again on the same port and storage, and waits until it answers.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        self.spawn();
    }

    /// "running (pid N, F open files)" or how the broker process ended, for failure messages.
    pub fn status(&mut self) -> String {
        match self.child.as_mut() {
            None => "killed by the test".to_owned(),
            Some(c) => match c.try_wait() {
                Ok(None) => {
                    let fds = std::fs::read_dir(format!("/proc/{}/fd", c.id()))
                        .map(|d| d.count())
                        .unwrap_or(0);
                    format!("running (pid {}, {fds} open files)", c.id())
                }
                Ok(Some(status)) => format!("exited: {status}"),
                Err(e) => format!("unknown: {e}"),
            },
        }
    }
}

/// tansu 0.6.0's SQLite engine reads each fetched record's headers with a query on
/// `header (topition, offset_id)`, a table it gives no index: every record costs a scan of
/// all headers (about 25 ms per record at 300,000 header rows, so 50,000 records with six
/// CloudEvents headers each take 20 minutes to read back). The index makes the same read take
/// seconds. It is created once the broker has created its tables, and changes only speed.
fn index_tansu_headers(db: &std::path::Path) {
    let url = format!("sqlite://{}", db.display());
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    let pool = authtel_sql::sqlite::connect(&url)
                        .await
                        .unwrap_or_else(|e| panic!("open tansu's database {url}: {e}"));
                    authtel_sql::sqlx::query(
                        "CREATE INDEX IF NOT EXISTS authtel_test_header_by_record \
                         ON header (topition, offset_id)",
                    )
                    .execute(&pool)
                    .await
                    .unwrap_or_else(|e| panic!("index tansu's header table in {url}: {e}"));
                    pool.close().await;
                });
        })
        .join()
        .unwrap();
    });
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
        // Keep the directory (log, database) when the test failed, for the post-mortem.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
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

/// The broker fault tests' workload and checks: 50,000 records of 100 users, each carrying
/// its per-user sequence number, sent through the real pipeline and verified on the log
/// and in SQL.
pub mod faults {
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
    pub fn publish_all(
        pipeline: &Pipeline,
        all: &Arc<Vec<AuditEvent>>,
    ) -> tokio::task::JoinHandle<()> {
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
    pub async fn wait_drained(
        pipeline: &Pipeline,
        context: impl Fn() -> String,
    ) -> ForwarderMetrics {
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
        let log = tokio::task::spawn_blocking(move || {
            super::consume_at_least(&b, &t, PARTITIONS, RECORDS)
        })
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
}
