// Fixtures for the CLI tests: a migrated store on SQLite (a temporary file) or PostgreSQL
// (`DATABASE_URL`, one schema per test), seeding helpers, and a runner for the real binary.

#![allow(dead_code, unused_imports, unused_macros, unreachable_pub)]

use std::future::Future;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party, Timestamp};
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditStore, BatchWriter, Relay, RelayConfig, RetryPolicy};

/// The binary under test.
pub const AUTHTEL: &str = env!("CARGO_BIN_EXE_authtel");

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store on either backend.
pub enum Store {
    Sqlite(AuditStore<authtel_sql::sqlite::Sqlite>),
    Postgres(AuditStore<authtel_sql::postgres::Postgres>),
}

/// Runs `$body` with `$s` bound to the backend's store.
macro_rules! on_store {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            $crate::support::Store::Sqlite($s) => $body,
            $crate::support::Store::Postgres($s) => $body,
        }
    };
}
pub(crate) use on_store;

/// Generates `sqlite::<name>` and `postgres::<name>` tests calling `<name>(Backend)`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name($crate::support::Backend::Sqlite) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name($crate::support::Backend::Postgres) })*
        }
    };
}
pub(crate) use on_both_backends;

/// Whether CI (or the developer) demands that PostgreSQL tests run, not skip.
pub fn services_required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_some()
}

/// A migrated store, its URL and schema for the CLI, and a runtime for seeding.
pub struct Fixture {
    pub url: String,
    pub schema: Option<String>,
    pub store: Store,
    pub rt: tokio::runtime::Runtime,
    pub backend: Backend,
}

/// A temporary SQLite file path (the directory is created).
pub fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join("authtel-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}-{}.db", uuid::Uuid::now_v7().simple()))
}

impl Fixture {
    /// A fresh, migrated store enqueueing for `forwarders`; `None` (after saying so) when
    /// PostgreSQL is wanted but `DATABASE_URL` is not set outside CI.
    pub fn new(backend: Backend, name: &str, forwarders: &[&str]) -> Option<Fixture> {
        let f = Fixture::unmigrated(backend, name, forwarders)?;
        on_store!(&f.store, s => f.rt.block_on(s.migrate())).unwrap();
        Some(f)
    }

    /// Like [`Fixture::new`], without running the migrations (an empty database).
    pub fn unmigrated(backend: Backend, name: &str, forwarders: &[&str]) -> Option<Fixture> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (url, schema, store) = match backend {
            Backend::Sqlite => {
                let url = temp_db(name).to_str().unwrap().to_owned();
                let pool = rt.block_on(authtel_sql::sqlite::connect(&url)).unwrap();
                let mut b = AuditStore::builder(pool);
                for f in forwarders {
                    b = b.with_forwarder(f).unwrap();
                }
                (url, None, Store::Sqlite(b.build()))
            }
            Backend::Postgres => {
                let Ok(url) = std::env::var("DATABASE_URL") else {
                    assert!(
                        !services_required(),
                        "DATABASE_URL is not set but CI/AUTHTEL_REQUIRE_SERVICES requires \
                         PostgreSQL; run `eval $(cargo xtask services start)`"
                    );
                    eprintln!("skipping postgres::{name}: DATABASE_URL is not set");
                    return None;
                };
                let pool = rt.block_on(authtel_sql::postgres::connect(&url)).unwrap();
                let schema = format!(
                    "t_cli_{name}_{}",
                    &uuid::Uuid::now_v7().simple().to_string()[20..]
                );
                let mut b = AuditStore::builder(pool).with_schema(&schema).unwrap();
                for f in forwarders {
                    b = b.with_forwarder(f).unwrap();
                }
                (url, Some(schema), Store::Postgres(b.build()))
            }
        };
        Some(Fixture {
            url,
            schema,
            store,
            rt,
            backend,
        })
    }

    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }

    /// Records `events` in one transaction, with outbox entries.
    pub fn record(&self, events: &[AuditEvent]) {
        on_store!(&self.store, s => self.block_on(async {
            let mut tx = s.begin().await.unwrap();
            for e in events {
                tx.record(e).await.unwrap();
            }
            tx.commit().await.unwrap();
        }));
    }

    /// Writes `events` with the batch writer (no outbox entries).
    pub fn write_batch(&self, events: &[AuditEvent]) {
        on_store!(&self.store, s => self.block_on(BatchWriter::new(s).forward(events))).unwrap();
    }

    /// One relay pass: `dead` fails permanently (its entries die), `retry` fails
    /// transiently with attempts left (its entries wait for a retry in an hour).
    pub fn fail_deliveries(&self, dead: &str, retry: &str) {
        let config = RelayConfig::default()
            .with_batch_size(1000)
            .with_retry(RetryPolicy::new(
                5,
                Duration::from_secs(3600),
                Duration::from_secs(3600),
            ));
        on_store!(&self.store, s => self.block_on(async {
            let relay = Relay::new(s, config)
                .with_forwarder(dead, Arc::new(Failing(ErrorKind::Permanent)))
                .unwrap()
                .with_forwarder(retry, Arc::new(Failing(ErrorKind::Transient)))
                .unwrap();
            relay.run_once().await.unwrap();
        }));
    }

    /// The CLI with this store's `--database-url` (and `--schema`) and then `args`.
    pub fn cli(&self, args: &[&str]) -> Run {
        let mut all = vec!["--database-url".to_owned(), self.url.clone()];
        if let Some(s) = &self.schema {
            all.extend(["--schema".to_owned(), s.clone()]);
        }
        all.extend(args.iter().map(|a| (*a).to_owned()));
        authtel(&all)
    }
}

impl Drop for Fixture {
    /// Removes a SQLite fixture's files (the million-row one is hundreds of MiB).
    fn drop(&mut self) {
        if self.backend == Backend::Sqlite {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.url));
            }
        }
    }
}

/// The binary's exit code and output.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout lines parsed as JSON.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Panics with the output unless the exit code is `code`.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "exit code; output:\n{self:#?}");
        self
    }
}

/// A command for the binary with a clean environment (no inherited `DATABASE_URL`).
pub fn command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut c = Command::new(AUTHTEL);
    c.args(args)
        .env_remove("DATABASE_URL")
        .env_remove("AUTHTEL_SCHEMA");
    c
}

/// Runs the binary to completion.
pub fn authtel<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = command(args).output().unwrap();
    Run {
        code: status.code().expect("authtel was killed by a signal"),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// Always fails with `kind`.
#[derive(Debug)]
pub struct Failing(pub ErrorKind);

impl Forwarder for Failing {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        let kind = self.0;
        Box::pin(async move {
            Err(ForwardError::message(
                kind,
                "deliver to siem.internal:6514: connection refused",
            ))
        })
    }
}

/// `n` minutes before now.
pub fn minutes_ago(n: i64) -> Timestamp {
    Timestamp::from_unix_micros(Timestamp::now().unix_micros() - n * 60_000_000)
}

/// A record of `action` by `actor` from `ip`, `age_minutes` ago.
pub fn event(
    action: &str,
    outcome: Outcome,
    actor: &str,
    ip: &str,
    age_minutes: i64,
) -> AuditEvent {
    let mut e = AuditEvent::new(action, outcome).unwrap();
    e = e.with_occurred_at(minutes_ago(age_minutes));
    e = e.with_actor(Party::new(actor, "user"));
    e = e.with_client_ip(ip.parse().unwrap());
    e = e.with_user_agent("Mozilla/5.0");
    e
}
