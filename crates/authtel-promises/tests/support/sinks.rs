//! Every sink attached at once, and every byte each one wrote.
//!
//! The logger writes into a process-wide JSON `tracing` subscriber (so signals the
//! pipeline's worker threads emit are captured too); each test binary builds one `Sinks`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use authtel_audit::{Reader, RecentAuditStore};
use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::registry::{Registry, Selection};
use authtel_kafka::KafkaForwarder;
use authtel_log::{Logger, LoggerOptions};
use authtel_otlp::{OtlpSink, Protocol};
use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use authtel_prometheus::PrometheusSink;
use authtel_sql::AuditStore;
use authtel_testing::SharedBuffer;
use authtel_testing::otlp::OtlpReceiver;

/// Bound for anything waiting on a service on a loaded two-core machine.
pub const WAIT: Duration = Duration::from_secs(90);

fn services_required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("AUTHTEL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A service variable; `None` (with a note) when missing and services are optional, a
/// failure when `CI` requires them.
pub fn service_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                !services_required(),
                "{var} is not set but CI/AUTHTEL_REQUIRE_SERVICES requires it; run `eval \"$(cargo xtask services start)\"`"
            );
            eprintln!("NOTE: {var} is not set: that sink is left out of the matrix");
            None
        }
    }
}

/// The process-wide log capture.
fn log_buffer() -> &'static SharedBuffer {
    static BUFFER: OnceLock<SharedBuffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = SharedBuffer::new();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per binary");
        buffer
    })
}

/// Fails every batch with a transient error, so the pipeline spills what it gets.
#[derive(Debug, Default)]
pub struct Down;
impl Forwarder for Down {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Transient,
                "destination down",
            ))
        })
    }
}

/// Rejects every batch permanently with the next queued text as its error (a careless
/// forwarder quoting what it received), so the pipeline dead-letters it.
#[derive(Debug, Default)]
pub struct Rejects {
    pub texts: Mutex<std::collections::VecDeque<String>>,
    pub calls: AtomicU64,
}
impl Forwarder for Rejects {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let text = self
            .texts
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| "schema mismatch".to_owned());
        Box::pin(async move { Err(ForwardError::message(ErrorKind::Permanent, text)) })
    }
}

type Sqlite = authtel_sql::sqlite::Sqlite;
type Postgres = authtel_sql::postgres::Postgres;

/// Every sink, attached to one registry.
pub struct Sinks {
    pub registry: Registry,
    pub pipeline: Pipeline,
    pub recent: RecentAuditStore,
    pub sqlite: AuditStore<Sqlite>,
    sqlite_path: PathBuf,
    pub postgres: Option<AuditStore<Postgres>>,
    kafka: Option<(String, String)>,
    otlp: Arc<OtlpSink>,
    pub receiver: OtlpReceiver,
    pub prometheus: PrometheusSink,
    dir: PathBuf,
    pub rejects: Arc<Rejects>,
    /// Audit records built from events (`AuditEvent::from_record`), and how many of them
    /// were not already screened. The recent store trusts that they are; a record that is
    /// not is stored differently by the sinks that screen again (SQL, Kafka).
    pub records_checked: Arc<AtomicU64>,
    pub records_unscreened: Arc<AtomicU64>,
    log_start: usize,
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Sinks {
    /// Builds and attaches everything. Call inside a multi-thread tokio runtime.
    pub async fn start(name: &str) -> Sinks {
        let log_start = log_buffer().text().len();
        let dir = std::env::temp_dir().join(unique(&format!("authtel-promises-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let registry = Registry::new();
        let records_checked = Arc::new(AtomicU64::new(0));
        let records_unscreened = Arc::new(AtomicU64::new(0));
        let (checked, unscreened) = (records_checked.clone(), records_unscreened.clone());
        registry
            .attach(
                "invariant",
                Selection::All,
                authtel_core::registry::handler_fn(move |r| {
                    if let Some(e) = AuditEvent::from_record(r) {
                        checked.fetch_add(1, Ordering::Relaxed);
                        // Screened: decoding (the policy again) changes nothing.
                        let again: AuditEvent =
                            serde_json::from_value(serde_json::to_value(&e).unwrap()).unwrap();
                        if again != e {
                            unscreened.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }),
            )
            .unwrap();
        Logger::build(LoggerOptions::new().with_level(tracing::Level::TRACE))
            .attach_to(&registry)
            .unwrap();
        let recent = RecentAuditStore::builder(name)
            .with_max_entries(1_000_000)
            .with_max_bytes(1 << 30)
            .build()
            .unwrap();
        registry
            .attach("recent", Selection::All, recent.clone())
            .unwrap();
        let receiver = OtlpReceiver::start().await.expect("OTLP receiver starts");
        let otlp = Arc::new(
            OtlpSink::builder()
                .with_protocol(Protocol::HttpProtobuf)
                .with_endpoint(receiver.http_endpoint())
                .with_timeout(Duration::from_secs(10))
                .with_service_name("authtel-promises")
                .build()
                .expect("OTLP sink builds"),
        );
        otlp.attach_to(&registry).unwrap();
        let prometheus = PrometheusSink::builder().build().unwrap();
        registry
            .attach("prometheus", Selection::All, prometheus.handler())
            .unwrap();

        let sqlite_path = dir.join("audit.db");
        let sqlite = AuditStore::builder(
            authtel_sql::sqlite::connect(sqlite_path.to_str().unwrap())
                .await
                .unwrap(),
        )
        .build();
        sqlite.migrate().await.unwrap();
        let postgres = match service_env("DATABASE_URL") {
            Some(url) => {
                let pool = authtel_sql::postgres::connect(&url).await.unwrap();
                let store = AuditStore::builder(pool)
                    .with_schema(&unique("promises"))
                    .unwrap()
                    .build();
                store.migrate().await.unwrap();
                Some(store)
            }
            None => None,
        };
        let kafka = match service_env("KAFKA_BOOTSTRAP") {
            Some(bootstrap) => {
                let topic = unique("promises");
                authtel_kafka::create_topic(&bootstrap, &topic, 1, Duration::from_secs(30))
                    .await
                    .unwrap();
                Some((bootstrap, topic))
            }
            None => None,
        };

        let once = RetryPolicy {
            max_attempts: 1,
            base: Duration::ZERO,
            max: Duration::ZERO,
            jitter: false,
        };
        let rejects = Arc::new(Rejects::default());
        let mut builder = Pipeline::builder()
            .forwarder(
                ForwarderConfig::new("sqlite", authtel_sql::BatchWriter::new(&sqlite))
                    .dispatch(Dispatch::Async),
            )
            .forwarder(
                ForwarderConfig::new("spills", Down)
                    .dispatch(Dispatch::Async)
                    .retry(once)
                    .breaker(BreakerConfig {
                        failure_threshold: 1,
                        open_for: Duration::from_secs(3600),
                    })
                    .spill_dir(dir.join("spill"))
                    .dead_letter_dir(dir.join("dead")),
            )
            .forwarder(
                ForwarderConfig::from_arc("rejects", rejects.clone())
                    .dispatch(Dispatch::Sync)
                    .batch_size(1)
                    .retry(once)
                    .dead_letter_dir(dir.join("dead")),
            );
        if let Some(pg) = &postgres {
            builder = builder.forwarder(
                ForwarderConfig::new("postgres", authtel_sql::BatchWriter::new(pg))
                    .dispatch(Dispatch::Async),
            );
        }
        if let Some((bootstrap, topic)) = &kafka {
            builder = builder.forwarder(
                ForwarderConfig::new(
                    "kafka",
                    KafkaForwarder::builder(bootstrap, topic).build().unwrap(),
                )
                .dispatch(Dispatch::Async),
            );
        }
        let pipeline = builder.signals_to(registry.clone()).build().unwrap();
        registry
            .attach("pipeline", Selection::All, pipeline.handler())
            .unwrap();
        Sinks {
            registry,
            pipeline,
            recent,
            sqlite,
            sqlite_path,
            postgres,
            kafka,
            otlp,
            receiver,
            prometheus,
            dir,
            rejects,
            records_checked,
            records_unscreened,
            log_start,
        }
    }

    /// Runs `scenario` with this registry current. Blocking: call from `spawn_blocking`.
    pub fn emit<R>(&self, scenario: impl FnOnce() -> R) -> R {
        let _scope = self.registry.enter();
        scenario()
    }

    /// Waits until every forwarder has dealt with everything published, then flushes OTLP.
    pub async fn settle(&self) {
        let pipeline = self.pipeline.clone();
        tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + WAIT;
            loop {
                let m = pipeline.metrics();
                let done = m.iter().all(|f| {
                    f.published
                        <= f.delivered + f.spilled + f.dead_lettered + f.dropped + f.sampled_out
                });
                if done || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            pipeline.flush(Instant::now() + WAIT).ok();
        })
        .await
        .unwrap();
        let otlp = self.otlp.clone();
        tokio::task::spawn_blocking(move || otlp.flush(Instant::now() + WAIT))
            .await
            .unwrap()
            .expect("OTLP flush");
    }

    /// Every output, by sink name. Call after [`Sinks::settle`].
    pub async fn outputs(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        let log = log_buffer().text();
        out.push(("log".into(), log.as_bytes()[self.log_start..].to_vec()));
        let reader = Reader::new("promises").with_role("admin");
        let recent = self.recent.recent(&reader, usize::MAX).unwrap();
        let recent: Vec<&AuditEvent> = recent.iter().map(|e| &**e).collect();
        out.push(("recent_store".into(), serde_json::to_vec(&recent).unwrap()));
        let mut file = Vec::new();
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let p = PathBuf::from(format!("{}{suffix}", self.sqlite_path.display()));
            if let Ok(bytes) = std::fs::read(&p) {
                file.extend(bytes);
            }
        }
        out.push(("sqlite_file".into(), file));
        let mut export = Vec::new();
        self.sqlite
            .export_ndjson(&authtel_sql::AuditQuery::new(), &mut export)
            .await
            .unwrap();
        out.push(("sqlite_export".into(), export));
        if let Some(pg) = &self.postgres {
            out.push(("postgres".into(), dump_postgres(pg).await.into_bytes()));
        }
        if let Some((bootstrap, topic)) = &self.kafka {
            let want = self
                .pipeline
                .metrics()
                .iter()
                .find(|m| m.forwarder == "kafka")
                .map_or(0, |m| m.delivered as usize);
            let (b, t) = (bootstrap.clone(), topic.clone());
            let got = tokio::task::spawn_blocking(move || consume(&b, &t, want))
                .await
                .unwrap();
            out.push(("kafka".into(), got));
        }
        let mut otlp = self.receiver.dump().into_bytes();
        for raw in self.receiver.raw_requests() {
            otlp.extend(raw);
        }
        out.push(("otlp".into(), otlp));
        out.push(("prometheus".into(), self.prometheus.render().into_bytes()));
        out.push(("spill_files".into(), all_bytes(&self.dir.join("spill"))));
        out.push((
            "dead_letter_files".into(),
            all_bytes(&self.dir.join("dead")),
        ));
        out
    }

    /// Whether the sinks that need a service are all in the matrix.
    pub fn sink_names(&self) -> Vec<&'static str> {
        let mut names = vec![
            "log",
            "recent_store",
            "sqlite_file",
            "sqlite_export",
            "otlp",
            "prometheus",
            "spill_files",
            "dead_letter_files",
        ];
        if self.postgres.is_some() {
            names.push("postgres");
        }
        if self.kafka.is_some() {
            names.push("kafka");
        }
        names
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn dump_postgres(store: &AuditStore<Postgres>) -> String {
    let s = store.schema().unwrap();
    let mut out = String::new();
    for table in ["audit_events", "audit_outbox"] {
        let sql = format!("SELECT row_to_json(t)::text FROM \"{s}\".{table} t");
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await
            .unwrap();
        out.extend(rows.into_iter().map(|r| r + "\n"));
    }
    out
}

/// Every byte of every file below `dir`.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(all_bytes(&path));
            } else {
                out.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Reads `want` messages back: key, headers and payload of each, concatenated.
fn consume(bootstrap: &str, topic: &str, want: usize) -> Vec<u8> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let mut n = 0;
    while n < want && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            n += 1;
            out.extend(m.key().unwrap_or_default());
            out.push(b'\n');
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    out.extend(h.key.as_bytes());
                    out.push(b'=');
                    out.extend(h.value.unwrap_or_default());
                    out.push(b'\n');
                }
            }
            out.extend(m.payload().unwrap_or_default());
            out.push(b'\n');
        }
    }
    assert_eq!(n, want, "messages read back from {topic}");
    out
}

/// Silences the default panic hook, which would print every planted panic message (the
/// secrets) to the test's stderr; the test's own assertion failures still report.
pub fn quiet_panics() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::SeqCst) {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("plant"))
            {
                return;
            }
            default(info);
        }));
    }
}
