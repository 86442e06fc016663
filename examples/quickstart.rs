//! authtel quickstart: a small auth service's morning, written to a SQLite audit trail,
//! logged by the default logger, counted in Prometheus metrics (served on `/metrics` while it
//! runs) and watched by the attack detectors. At the end it prints the trail, the detection
//! queries' and the detectors' findings, and where the database file is.
//!
//! ```text
//! cargo run --example quickstart
//! RUST_LOG=authtel::security=warn cargo run --example quickstart   # security signals only
//! AUTHTEL_QUICKSTART_DB=./audit.db cargo run --example quickstart  # keep the trail here
//! AUTHTEL_METRICS_ADDR=127.0.0.1:9464 cargo run --example quickstart  # fixed metrics port
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 cargo run --example quickstart --features otlp
//! KAFKA_BOOTSTRAP=127.0.0.1:19092 cargo run --example quickstart --features kafka  # KAFKA_TOPIC=authtel-audit
//! ```
//!
//! `main` sets up where events go, in one chain; `simulate_traffic` is the auth code, which
//! only emits through `authtel::telemetry` and knows nothing about sinks.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use authtel::audit::Timestamp;
use authtel::catalogue::{
    AUTH_LOGIN, AUTHORIZATION_DENIED, JWT_REFRESH, MFA_LOCKOUT, MFA_VERIFY, OAUTH_CALLBACK,
    OAUTH_LINK, SECURITY_LOCKOUT, SECURITY_RATE_LIMITED,
};
use authtel::context::RequestContext;
use authtel::log::LoggerOptions;
use authtel::metadata::Metadata;
use authtel::registry::{self, Selection, handler_fn};
use authtel::sql::{AuditQuery, AuditStore, MAX_PAGE, sqlx::Sqlite};
use authtel::telemetry::{self, Measurements};
use authtel::vocabulary::{Aal, AuthMethod};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    // Show `tracing` output on the terminal; RUST_LOG overrides the default `info`.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let db = audit_db_path()?;
    let metrics_addr: SocketAddr = std::env::var("AUTHTEL_METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()?;
    let started = Timestamp::now();

    // Every sink in one chain; `from_env` adds OTLP and Kafka when their variables are set.
    // Detectors are ordinary handlers that raise `security.*` signals and answer "allow,
    // slow down or block?" for the application's own throttling.
    let authtel = authtel::setup()
        .service_name("authtel-quickstart")
        .default_logger(LoggerOptions::new())
        .sql(format!("sqlite://{}", db.display()))
        .prometheus(metrics_addr)
        .detectors(authtel::detect::DetectConfig::from_env()?)
        .from_env()
        .install()?;
    for warning in authtel.warnings() {
        println!("setup: {warning}");
    }
    if let Some(addr) = authtel.metrics_address() {
        println!("prometheus: serving http://{addr}/metrics while the simulation runs");
    }
    let events_seen = attach_counter()?;

    let traffic = simulate_traffic();
    authtel.flush(Duration::from_secs(10))?;

    let detectors = authtel
        .detectors()
        .expect("detectors were configured above");
    let raised: u64 = detectors.stats().signals.iter().map(|(_, n)| n).sum();
    println!(
        "detect: {raised} signals raised; next attempt from 203.0.113.66: {:?}",
        detectors.verdict(Some("203.0.113.66".parse()?), None)
    );
    let store = authtel
        .sqlite()
        .expect("the SQLite store was configured above");
    let runtime = authtel
        .runtime_handle()
        .expect("the SQL lane runs on a runtime");
    runtime.block_on(print_audit_trail(store, &db, started))?;

    let scraped = authtel.render_metrics().unwrap_or_default();
    let series = scraped
        .lines()
        .filter(|l| l.starts_with("authtel_"))
        .count();
    println!("prometheus: {series} authtel series rendered");

    let report = authtel.shutdown(Duration::from_secs(15))?;
    for lane in &report.lanes {
        println!(
            "delivery: lane {} delivered {} of {} records ({} dead-lettered, {} dropped)",
            lane.forwarder, lane.delivered, lane.published, lane.dead_lettered, lane.dropped
        );
    }
    println!(
        "quickstart: {traffic}; {} events delivered to handlers",
        events_seen.load(Ordering::Relaxed)
    );
    Ok(())
}

/// The audit database: `AUTHTEL_QUICKSTART_DB`, or a fresh file in the temp directory
/// (removed first, so every run starts from an empty trail).
fn audit_db_path() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("AUTHTEL_QUICKSTART_DB") {
        return Ok(PathBuf::from(path));
    }
    let dir = std::env::temp_dir().join("authtel-quickstart");
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("audit.db");
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(db)
}

/// Prints the newest records of the SQL audit trail, its size, and what the detection
/// queries (the same ones `authtel detect` runs) find in it.
async fn print_audit_trail(
    store: &AuditStore<Sqlite>,
    db: &std::path::Path,
    since: Timestamp,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut query = AuditQuery::new().limit(MAX_PAGE);
    loop {
        let page = store.query(&query).await?;
        rows.extend(page.events);
        match page.next {
            Some(cursor) => query = query.after(cursor),
            None => break,
        }
    }
    println!("sql: {} audit records in {}", rows.len(), db.display());
    println!(
        "console: AUTHTEL_CONSOLE_TOKEN=$(head -c 24 /dev/urandom | base64) cargo run -p authtel-cli -- console --database-url sqlite://{} --listen 127.0.0.1:8080",
        db.display()
    );
    println!(
        "sql: newest 10 (authtel query --database-url sqlite://{} shows them all):",
        db.display()
    );
    for e in rows.iter().rev().take(10) {
        println!(
            "  {} {:<32} {:<8} actor={} ip={}",
            e.occurred_at(),
            e.action(),
            e.outcome(),
            e.actor().map_or("-", |a| a.id.as_str()),
            e.client_ip()
                .map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
        );
    }
    for burst in store.failed_login_bursts(since, 5).await? {
        println!(
            "sql detect: {} failed logins from {} between {} and {}",
            burst.failures, burst.client_ip, burst.first_at, burst.last_at
        );
    }
    for lockout in store.lockouts(since).await? {
        println!(
            "sql detect: {} for {}",
            lockout.action(),
            lockout.actor().map_or("-", |a| a.id.as_str())
        );
    }
    Ok(())
}

/// Any closure can be a handler too: this one counts what reaches handlers.
fn attach_counter() -> anyhow::Result<Arc<AtomicU64>> {
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

/// Runs one simulated HTTP request: everything emitted inside carries the client's address,
/// user agent and a request id, as the `authtel::tower` layer sets them in a real service.
fn request<R>(n: &mut u32, ip: &str, f: impl FnOnce() -> R) -> R {
    *n += 1;
    let ip: IpAddr = ip
        .parse()
        .expect("the addresses in the simulation are valid");
    let id = format!("req-{n:04}");
    RequestContext::builder()
        .client_ip(ip)
        .user_agent("Mozilla/5.0 (quickstart)")
        .request_id(&id)
        .build()
        .in_scope(f)
}

/// An auth service's morning: logins that work and fail, an account locked after repeated
/// failures, MFA, an OAuth callback, rate limiting, a JWT refresh, a denied authorization.
fn simulate_traffic() -> Traffic {
    let mut service = AuthService::new();
    let mut traffic = Traffic::default();
    let mut requests = 0;

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
        // The request context supplies client_ip, user agent and request id.
        let meta = Metadata::new().user_id(user).method("password");
        request(&mut requests, ip, || {
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
                            Metadata::new().user_id(user).reason("too_many_failures"),
                        );
                    }
                }
                Err(LoginError::Locked) => traffic.logins_failed += 1,
            }
        });
    }

    // A spraying bot: one address, one password, 25 accounts (authtel-detect flags it).
    for n in 0..25 {
        let user = format!("u_sprayed_{n:02}");
        let meta = Metadata::new().user_id(&user).method("password");
        request(&mut requests, "203.0.113.66", || {
            let _ = telemetry::span(&AUTH_LOGIN, meta, || Err::<(), _>("invalid_password"));
        });
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
        let ip = if user == "u_alice" {
            "203.0.113.10"
        } else {
            "203.0.113.13"
        };
        let result = request(&mut requests, ip, || {
            let mut span =
                telemetry::start(&MFA_VERIFY, Metadata::new().user_id(user).method("totp"));
            let result = service.verify_totp(user, code);
            // Attempts remaining is only known after checking the code; a passed check
            // says how the user got in: password then TOTP, assurance level 2.
            let meta = span.metadata_mut();
            let mut checked =
                std::mem::take(meta).attempts_remaining(service.mfa_attempts_left(user));
            if result.is_ok() {
                checked = checked.factors(&MFA_FACTORS).aal(Aal::Aal2).is_mfa(true);
            }
            *meta = checked;
            span.stop_with(&result);
            if let Err(MfaError::WrongCode { now_locked: true }) = result {
                telemetry::event(
                    &MFA_LOCKOUT,
                    Measurements::new(),
                    Metadata::new().user_id(user),
                );
            }
            result
        });
        if let Err(MfaError::WrongCode { now_locked }) = result {
            traffic.mfa_failed += 1;
            traffic.mfa_lockouts += u32::from(now_locked);
        }
    }

    // OAuth: a GitHub callback for u_grace, who links the account.
    request(&mut requests, "203.0.113.16", || {
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
    });

    // Rate limiting: a burst from one address.
    let burst_ip = "198.51.100.23";
    let rejected = (0..12).filter(|_| !service.allow_request(burst_ip)).count() as u64;
    if rejected > 0 {
        traffic.rate_limited += rejected as u32;
        let key = format!("ip:{burst_ip}");
        request(&mut requests, burst_ip, || {
            telemetry::event(
                &SECURITY_RATE_LIMITED,
                Measurements::new().count(rejected),
                Metadata::new().rate_limit_key(&key),
            );
        });
    }

    // A JWT refresh for an existing session.
    request(&mut requests, "203.0.113.11", || {
        let _ = telemetry::span(
            &JWT_REFRESH,
            Metadata::new().user_id("u_bob").session_id("s_7f3a"),
            || service.refresh_jwt("u_bob"),
        );
    });

    // Authorization: u_erin may not delete another tenant's invoices.
    if !service.may("u_erin", "delete", "invoice/acme/2024-117") {
        traffic.denied += 1;
        request(&mut requests, "203.0.113.14", || {
            telemetry::event(
                &AUTHORIZATION_DENIED,
                Measurements::new(),
                Metadata::new()
                    .caller("u_erin")
                    .operation("delete")
                    .resource("invoice/acme/2024-117")
                    .reason("not_in_tenant"),
            );
        });
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
/// The factors of a login that passed its TOTP check.
const MFA_FACTORS: [AuthMethod; 2] = [AuthMethod::Password, AuthMethod::Totp];
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
