//! authtel quickstart: a small auth service's traffic, logged by the default logger,
//! counted in Prometheus metrics (served on `/metrics` while it runs) and kept in the
//! in-memory recent-audit store, whose trail and statistics are printed at the end.
//!
//! ```text
//! cargo run --example quickstart
//! RUST_LOG=authtel::security=warn cargo run --example quickstart   # security signals only
//! AUTHTEL_METRICS_ADDR=127.0.0.1:9464 cargo run --example quickstart  # fixed metrics port
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example quickstart --features otlp
//! KAFKA_BOOTSTRAP=127.0.0.1:19092 cargo run --example quickstart --features kafka  # KAFKA_TOPIC=authtel-audit
//! ```
//!
//! `main` sets up where events go; `simulate_traffic` is the auth code, which only emits
//! through `authtel::telemetry` and knows nothing about sinks.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use authtel::audit_store::{Reader, RecentAuditStore};
use authtel::catalogue::{
    AUTH_LOGIN, AUTHORIZATION_DENIED, JWT_REFRESH, MFA_LOCKOUT, MFA_VERIFY, OAUTH_CALLBACK,
    OAUTH_LINK, SECURITY_LOCKOUT, SECURITY_RATE_LIMITED,
};
use authtel::log::{LoggerOptions, attach_default_logger};
use authtel::metadata::Metadata;
use authtel::prometheus::PrometheusSink;
use authtel::registry::{self, Selection, handler_fn};
use authtel::telemetry::{self, Measurements};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // Show `tracing` output on the terminal; RUST_LOG overrides the default `info`.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let events_seen = attach_sinks()?;
    let (audit, metrics) = attach_audit_and_metrics()?;
    #[cfg(feature = "otlp")]
    let otlp = attach_otlp()?;
    let kafka = attach_kafka()?;
    // Real-time attack detection: ordinary handlers that raise `security.*` signals and
    // answer "allow, slow down or block?" for the application's own throttling.
    let detectors = authtel::detect::Detectors::new(authtel::detect::DetectConfig::from_env()?)?;
    detectors.attach_global()?;

    let traffic = simulate_traffic();
    let raised: u64 = detectors.stats().signals.iter().map(|(_, n)| n).sum();
    println!(
        "detect: {raised} signals raised; next attempt from 203.0.113.66: {:?}",
        detectors.verdict(Some("203.0.113.66".parse()?), None)
    );

    print_audit_trail(&audit)?;
    let scraped = metrics.render();
    let series = scraped
        .lines()
        .filter(|l| l.starts_with("authtel_"))
        .count();
    println!(
        "prometheus: {series} authtel series served at http://{}/metrics",
        metrics
            .listen_address()
            .map_or_else(|| "(no listener)".to_owned(), |a| a.to_string())
    );
    #[cfg(feature = "otlp")]
    if let Some(otlp) = otlp {
        otlp.flush(std::time::Instant::now() + std::time::Duration::from_secs(5))?;
        println!("otlp: {:?}", otlp.stats());
    }
    if let Some(kafka) = kafka {
        kafka.finish()?;
    }
    println!(
        "quickstart: {traffic}; {} events delivered to handlers",
        events_seen.load(Ordering::Relaxed)
    );
    Ok(())
}

/// The recent-audit store (in memory, bounded) and Prometheus metrics with a scrape
/// listener (`AUTHTEL_METRICS_ADDR`, default: a free port on 127.0.0.1).
fn attach_audit_and_metrics() -> anyhow::Result<(RecentAuditStore, PrometheusSink)> {
    let audit = RecentAuditStore::builder("quickstart")
        .with_max_entries(10_000)
        .build()?;
    registry::attach("quickstart-audit", Selection::All, audit.clone())?;

    let addr: SocketAddr = std::env::var("AUTHTEL_METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()?;
    let metrics = PrometheusSink::builder()
        .with_listen_address(addr)
        .attach()?;
    if let Some(addr) = metrics.listen_address() {
        println!("prometheus: serving http://{addr}/metrics while the simulation runs");
    }
    Ok((audit, metrics))
}

/// OTLP export when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (feature `otlp`).
#[cfg(feature = "otlp")]
fn attach_otlp() -> anyhow::Result<Option<authtel::otlp::OtlpSink>> {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none() {
        println!("otlp: OTEL_EXPORTER_OTLP_ENDPOINT is not set, not exporting");
        return Ok(None);
    }
    let sink = authtel::otlp::OtlpSink::builder()
        .with_service_name("authtel-quickstart")
        .attach()?;
    Ok(Some(sink))
}

/// Audited events to a Kafka topic through the pipeline when `KAFKA_BOOTSTRAP` is set: one
/// worker (each user's records stay in order), publishers wait for room rather than drop.
#[cfg(feature = "kafka")]
fn attach_kafka() -> anyhow::Result<Option<KafkaLane>> {
    use authtel::kafka::KafkaForwarder;
    use authtel::pipeline::{Backpressure, Dispatch, ForwarderConfig, Pipeline};
    use std::time::Duration;

    let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") else {
        println!("kafka: KAFKA_BOOTSTRAP is not set, not sending");
        return Ok(None);
    };
    let topic = std::env::var("KAFKA_TOPIC").unwrap_or_else(|_| "authtel-audit".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    // Audit topics are created on purpose; an existing one is left as it is.
    runtime.block_on(authtel::kafka::create_topic(
        &bootstrap,
        &topic,
        1,
        Duration::from_secs(10),
    ))?;
    let kafka = Arc::new(
        KafkaForwarder::builder(&bootstrap, &topic)
            .with_source("authtel://quickstart")
            .build()?,
    );
    let lane = ForwarderConfig::from_arc("kafka", kafka.clone())
        .dispatch(Dispatch::Async)
        .workers(1)
        .backpressure(Backpressure::Block {
            timeout: Duration::from_secs(5),
        });
    let pipeline = Pipeline::builder()
        .runtime(runtime.handle().clone())
        .forwarder(lane)
        .build()?;
    registry::attach("quickstart-kafka", Selection::All, pipeline.handler())?;
    println!("kafka: sending audited events to topic {topic} at {bootstrap}");
    Ok(Some(KafkaLane {
        pipeline,
        kafka,
        topic,
        _runtime: runtime,
    }))
}

/// Says how to get the Kafka sink when `KAFKA_BOOTSTRAP` is set in a build without it.
#[cfg(not(feature = "kafka"))]
fn attach_kafka() -> anyhow::Result<Option<KafkaLane>> {
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        println!(
            "kafka: KAFKA_BOOTSTRAP is set but this build has no Kafka sink; run \
             KAFKA_BOOTSTRAP={bootstrap} cargo run --example quickstart --features kafka"
        );
    }
    Ok(None)
}

/// Without the `kafka` feature there is no Kafka lane.
#[cfg(not(feature = "kafka"))]
enum KafkaLane {}

#[cfg(not(feature = "kafka"))]
impl KafkaLane {
    fn finish(self) -> anyhow::Result<()> {
        match self {}
    }
}

/// The Kafka lane: the pipeline, the forwarder (for its counters) and the runtime the
/// pipeline's worker runs on.
#[cfg(feature = "kafka")]
struct KafkaLane {
    pipeline: authtel::pipeline::Pipeline,
    kafka: Arc<authtel::kafka::KafkaForwarder>,
    topic: String,
    _runtime: tokio::runtime::Runtime,
}

#[cfg(feature = "kafka")]
impl KafkaLane {
    /// Delivers what is queued (bounded), then says how many records the broker acknowledged.
    fn finish(self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        self.pipeline.shutdown(deadline)?;
        let lane = &self.pipeline.metrics()[0];
        println!(
            "kafka: {} audited records acknowledged by the broker on topic {} ({} dead-lettered, {} dropped)",
            self.kafka.counters().records_acked,
            self.topic,
            lane.dead_lettered,
            lane.dropped
        );
        Ok(())
    }
}

/// Prints the last audit records and the store's statistics, read as an administrator
/// (the store's default access policy refuses everyone else).
fn print_audit_trail(audit: &RecentAuditStore) -> anyhow::Result<()> {
    let admin = Reader::new("quickstart-operator").with_role("admin");
    println!("recent audit trail (newest first):");
    for e in audit.recent(&admin, 10)? {
        println!(
            "  {} {:<32} {:<8} actor={} ip={}",
            e.occurred_at,
            e.action,
            e.outcome,
            e.actor.as_ref().map_or("-", |a| a.id.as_str()),
            e.client_ip
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        );
    }
    let stats = audit.stats();
    println!(
        "audit store: {} records held (~{} bytes), {} stored in all; by outcome: {:?}",
        stats.entries, stats.estimated_bytes, stats.stored_total, stats.by_outcome
    );
    Ok(())
}

/// Attaches where events go: the default logger, and a counter to show that any closure
/// can be a handler. Sinks (Prometheus `/metrics`, the audit trail, Kafka, OTLP when their
/// environment variables are set) are attached here too, once, at startup.
fn attach_sinks() -> anyhow::Result<Arc<AtomicU64>> {
    attach_default_logger(LoggerOptions::new())?;

    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    registry::attach(
        "quickstart-counter",
        Selection::All,
        handler_fn(move |record| {
            if record.event.kind() != authtel::catalogue::EventKind::SpanStart {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }),
    )?;
    Ok(seen)
}

/// What the simulation did, for the closing summary.
#[derive(Debug, Default)]
struct Traffic {
    logins_ok: u32,
    logins_failed: u32,
    lockouts: u32,
    mfa_failed: u32,
    mfa_lockouts: u32,
    rate_limited: u32,
    denied: u32,
}

impl fmt::Display for Traffic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} logins ({} ok, {} failed), lockouts: {} account + {} MFA, \
             {} wrong MFA codes, {} requests rate-limited, {} authorizations denied",
            self.logins_ok + self.logins_failed,
            self.logins_ok,
            self.logins_failed,
            self.lockouts,
            self.mfa_lockouts,
            self.mfa_failed,
            self.rate_limited,
            self.denied,
        )
    }
}

/// An auth service's morning: logins that work and fail, an account locked after repeated
/// failures, MFA, an OAuth callback, rate limiting, a JWT refresh, a denied authorization.
fn simulate_traffic() -> Traffic {
    let mut service = AuthService::new();
    let mut traffic = Traffic::default();

    // 20 login attempts: (user, password, client ip). u_mallory keeps guessing.
    let attempts = [
        ("u_alice", "correct horse", "203.0.113.10"),
        ("u_bob", "battery staple", "203.0.113.11"),
        ("u_carol", "wrong guess", "203.0.113.12"),
        ("u_carol", "tr0ub4dor", "203.0.113.12"),
        ("u_dave", "letmein!", "203.0.113.13"),
        ("u_mallory", "123456", "198.51.100.23"),
        ("u_erin", "s3cure-erin", "203.0.113.14"),
        ("u_mallory", "password", "198.51.100.23"),
        ("u_frank", "frank-pass", "203.0.113.15"),
        ("u_mallory", "qwerty", "198.51.100.23"),
        ("u_alice", "correct horse", "203.0.113.10"),
        ("u_mallory", "admin", "198.51.100.23"),
        ("u_grace", "grace-pass", "203.0.113.16"),
        ("u_mallory", "iloveyou", "198.51.100.23"),
        ("u_bob", "battery staple", "203.0.113.11"),
        ("u_heidi", "heidi-pass", "203.0.113.17"),
        ("u_ivan", "typo-ivan", "203.0.113.18"),
        ("u_ivan", "ivan-pass", "203.0.113.18"),
        ("u_judy", "judy-pass", "203.0.113.19"),
        ("u_erin", "s3cure-erin", "203.0.113.14"),
    ];
    for (user, password, ip) in attempts {
        let ip: IpAddr = ip.parse().expect("the addresses above are valid");
        let meta = Metadata::new()
            .user_id(user)
            .client_ip(ip)
            .method("password");
        // One line around the operation: start, then stop with the Result's outcome.
        match telemetry::span(&AUTH_LOGIN, meta, || service.login(user, password)) {
            Ok(()) => traffic.logins_ok += 1,
            Err(LoginError::WrongPassword { now_locked }) => {
                traffic.logins_failed += 1;
                if now_locked {
                    traffic.lockouts += 1;
                    telemetry::event(
                        &SECURITY_LOCKOUT,
                        Measurements::new().count(1),
                        Metadata::new()
                            .user_id(user)
                            .client_ip(ip)
                            .reason("too_many_failures"),
                    );
                }
            }
            Err(LoginError::Locked) => traffic.logins_failed += 1,
        }
    }

    // A spraying bot: one address, one password, 25 accounts (authtel-detect flags it).
    let bot: IpAddr = "203.0.113.66".parse().expect("a valid address");
    for n in 0..25 {
        let user = format!("u_sprayed_{n:02}");
        let meta = Metadata::new()
            .user_id(&user)
            .client_ip(bot)
            .method("password");
        let _ = telemetry::span(&AUTH_LOGIN, meta, || Err::<(), _>("invalid_password"));
        traffic.logins_failed += 1;
    }

    // MFA: u_alice mistypes her code twice, then gets it right; u_dave runs out of tries.
    for (user, code) in [
        ("u_alice", "111111"),
        ("u_alice", "222222"),
        ("u_alice", "424242"),
    ]
    .into_iter()
    .chain([
        ("u_dave", "000000"),
        ("u_dave", "999999"),
        ("u_dave", "123123"),
    ]) {
        let mut span = telemetry::start(&MFA_VERIFY, Metadata::new().user_id(user).method("totp"));
        let result = service.verify_totp(user, code);
        // Attempts remaining is only known after checking the code.
        let meta = span.metadata_mut();
        *meta = std::mem::take(meta).attempts_remaining(service.mfa_attempts_left(user));
        span.stop_with(&result);
        match result {
            Ok(()) => {}
            Err(MfaError::WrongCode { now_locked }) => {
                traffic.mfa_failed += 1;
                if now_locked {
                    traffic.mfa_lockouts += 1;
                    telemetry::event(
                        &MFA_LOCKOUT,
                        Measurements::new(),
                        Metadata::new().user_id(user),
                    );
                }
            }
        }
    }

    // OAuth: a GitHub callback for u_grace, who links the account.
    let callback = telemetry::span(&OAUTH_CALLBACK, Metadata::new().provider("github"), || {
        service.exchange_oauth_code("github")
    });
    if callback.is_ok() {
        telemetry::event(
            &OAUTH_LINK,
            Measurements::new(),
            Metadata::new().user_id("u_grace").provider("github"),
        );
    }

    // Rate limiting: a burst from one address.
    let burst_ip = "198.51.100.23";
    let rejected = (0..12).filter(|_| !service.allow_request(burst_ip)).count() as u64;
    if rejected > 0 {
        traffic.rate_limited += rejected as u32;
        let key = format!("ip:{burst_ip}");
        telemetry::event(
            &SECURITY_RATE_LIMITED,
            Measurements::new().count(rejected),
            Metadata::new().rate_limit_key(&key),
        );
    }

    // A JWT refresh for an existing session.
    let _ = telemetry::span(
        &JWT_REFRESH,
        Metadata::new().user_id("u_bob").session_id("s_7f3a"),
        || service.refresh_jwt("u_bob"),
    );

    // Authorization: u_erin may not delete another tenant's invoices.
    if !service.may("u_erin", "delete", "invoice/acme/2024-117") {
        traffic.denied += 1;
        telemetry::event(
            &AUTHORIZATION_DENIED,
            Measurements::new(),
            Metadata::new()
                .caller("u_erin")
                .operation("delete")
                .resource("invoice/acme/2024-117")
                .reason("not_in_tenant"),
        );
    }

    traffic
}

/// A toy in-memory auth service: just enough logic for the traffic above to mean something.
struct AuthService {
    passwords: HashMap<&'static str, &'static str>,
    failed_logins: HashMap<String, u32>,
    failed_mfa: HashMap<String, u32>,
    requests_per_ip: HashMap<String, u32>,
}

#[derive(Debug)]
enum LoginError {
    WrongPassword { now_locked: bool },
    Locked,
}

#[derive(Debug)]
enum MfaError {
    WrongCode { now_locked: bool },
}

#[derive(Debug)]
struct OAuthError;

#[derive(Debug)]
struct SessionExpired;

const MAX_LOGIN_FAILURES: u32 = 5;
const MAX_MFA_FAILURES: u32 = 3;
const REQUESTS_PER_WINDOW: u32 = 5;
const TOTP_CODE: &str = "424242";

impl AuthService {
    fn new() -> AuthService {
        let passwords = [
            ("u_alice", "correct horse"),
            ("u_bob", "battery staple"),
            ("u_carol", "tr0ub4dor"),
            ("u_dave", "letmein!"),
            ("u_erin", "s3cure-erin"),
            ("u_frank", "frank-pass"),
            ("u_grace", "grace-pass"),
            ("u_heidi", "heidi-pass"),
            ("u_ivan", "ivan-pass"),
            ("u_judy", "judy-pass"),
            ("u_mallory", "never-guessed"),
        ];
        AuthService {
            passwords: passwords.into_iter().collect(),
            failed_logins: HashMap::new(),
            failed_mfa: HashMap::new(),
            requests_per_ip: HashMap::new(),
        }
    }

    fn login(&mut self, user: &str, password: &str) -> Result<(), LoginError> {
        let failures = self.failed_logins.entry(user.to_owned()).or_default();
        if *failures >= MAX_LOGIN_FAILURES {
            return Err(LoginError::Locked);
        }
        if self.passwords.get(user) == Some(&password) {
            *failures = 0;
            return Ok(());
        }
        *failures += 1;
        Err(LoginError::WrongPassword {
            now_locked: *failures == MAX_LOGIN_FAILURES,
        })
    }

    fn verify_totp(&mut self, user: &str, code: &str) -> Result<(), MfaError> {
        let failures = self.failed_mfa.entry(user.to_owned()).or_default();
        if code == TOTP_CODE && *failures < MAX_MFA_FAILURES {
            *failures = 0;
            return Ok(());
        }
        *failures += 1;
        Err(MfaError::WrongCode {
            now_locked: *failures == MAX_MFA_FAILURES,
        })
    }

    fn mfa_attempts_left(&self, user: &str) -> u32 {
        MAX_MFA_FAILURES.saturating_sub(self.failed_mfa.get(user).copied().unwrap_or(0))
    }

    fn exchange_oauth_code(&self, provider: &str) -> Result<(), OAuthError> {
        if provider == "github" {
            Ok(())
        } else {
            Err(OAuthError)
        }
    }

    /// A fixed window of `REQUESTS_PER_WINDOW` requests per address.
    fn allow_request(&mut self, ip: &str) -> bool {
        let count = self.requests_per_ip.entry(ip.to_owned()).or_default();
        *count += 1;
        *count <= REQUESTS_PER_WINDOW
    }

    fn refresh_jwt(&self, user: &str) -> Result<(), SessionExpired> {
        if self.passwords.contains_key(user) {
            Ok(())
        } else {
            Err(SessionExpired)
        }
    }

    fn may(&self, user: &str, operation: &str, resource: &str) -> bool {
        // Only tenant "acme" members may delete acme's invoices; u_erin is in another tenant.
        !(operation == "delete" && resource.starts_with("invoice/acme/") && user == "u_erin")
    }
}
