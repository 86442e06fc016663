//! Kill the process (SIGKILL, a child process) between commit and delivery: after a restart
//! the relay delivers every committed record exactly once to an idempotent forwarder.
//!
//! The test re-runs its own binary as the child (selected by `AUTHTEL_SQL_CRASH_CHILD`). The
//! child commits records, starts a relay whose forwarder never answers (so a batch is claimed
//! and never marked), reports "ready" and waits; the parent SIGKILLs it, then runs a fresh
//! relay on the same database.

use std::collections::HashSet;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditQuery, AuditStore, Relay, RelayConfig};

const CHILD_ENV: &str = "AUTHTEL_SQL_CRASH_CHILD";
const RECORDS: usize = 50;
const LEASE: Duration = Duration::from_millis(1500);

#[derive(Debug)]
struct NeverAnswers;
impl Forwarder for NeverAnswers {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        println!("claimed");
        Box::pin(std::future::pending())
    }
}

/// Idempotent on the event id, and counts every delivery so duplicates show.
#[derive(Debug, Default)]
struct Dedup {
    deliveries: Mutex<Vec<uuid::Uuid>>,
}
impl Forwarder for Dedup {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.deliveries
            .lock()
            .unwrap()
            .extend(batch.iter().map(|e| e.id()));
        Box::pin(async { Ok(()) })
    }
}

fn required() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_some()
}

fn config() -> RelayConfig {
    RelayConfig::default().with_batch_size(20).with_lease(LEASE)
}

macro_rules! crash_case {
    ($name:ident, $db:ty, $open:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let child_spec = std::env::var(CHILD_ENV).ok();
            let Some((store, spec)): Option<(AuditStore<$db>, String)> =
                $open(child_spec.as_deref()).await
            else {
                return;
            };
            if child_spec.is_some() {
                // Child: commit, let the relay claim a batch, report, wait to be killed.
                for _ in 0..RECORDS {
                    let mut tx = store.begin().await.unwrap();
                    tx.record(&AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
                        .await
                        .unwrap();
                    tx.commit().await.unwrap();
                }
                let _relay = Relay::new(&store, config())
                    .with_forwarder("kafka", Arc::new(NeverAnswers))
                    .unwrap()
                    .spawn();
                std::future::pending::<()>().await;
                return;
            }
            store.migrate().await.unwrap();
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    stringify!($name),
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, spec)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    if line.contains("claimed") {
                        let _ = tx.send(());
                    }
                }
            });
            let claimed = rx.recv_timeout(Duration::from_secs(120));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            claimed.expect("the child committed and claimed a batch before the kill");

            let committed: HashSet<uuid::Uuid> = store
                .query(&AuditQuery::new().limit(1000))
                .await
                .unwrap()
                .events
                .iter()
                .map(|e| e.id())
                .collect();
            assert_eq!(committed.len(), RECORDS, "every committed record is stored");
            let state = store.delivery_state().await.unwrap();
            assert_eq!(
                state[0].pending, RECORDS as u64,
                "nothing was marked delivered"
            );

            let dedup = Arc::new(Dedup::default());
            let relay = Relay::new(&store, config())
                .with_forwarder("kafka", dedup.clone())
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            while dedup.deliveries.lock().unwrap().len() < RECORDS {
                assert!(Instant::now() < deadline, "restarted relay did not finish");
                relay.run_once().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let delivered = dedup.deliveries.lock().unwrap().clone();
            assert_eq!(delivered.len(), RECORDS, "each record exactly once");
            assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), committed);
            let state = store.delivery_state().await.unwrap();
            assert_eq!((state[0].pending, state[0].done), (0, RECORDS as u64));
        }
    };
}

/// The store and the text that lets the child open the same database.
async fn open_sqlite(child: Option<&str>) -> Option<(AuditStore<sqlx::Sqlite>, String)> {
    let path = match child {
        Some(p) => p.to_owned(),
        None => {
            let dir = std::env::temp_dir().join("authtel-sql-tests");
            std::fs::create_dir_all(&dir).unwrap();
            dir.join(format!("crash-{}.db", uuid::Uuid::now_v7().simple()))
                .to_string_lossy()
                .into_owned()
        }
    };
    let pool = authtel_sql::sqlite::connect(&path).await.unwrap();
    let store = AuditStore::builder(pool)
        .with_forwarder("kafka")
        .unwrap()
        .build();
    Some((store, path))
}

async fn open_postgres(child: Option<&str>) -> Option<(AuditStore<sqlx::Postgres>, String)> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        assert!(
            !required(),
            "DATABASE_URL is not set but CI/AUTHTEL_REQUIRE_SERVICES requires PostgreSQL"
        );
        eprintln!("skipping: DATABASE_URL is not set");
        return None;
    };
    let schema = match child {
        Some(s) => s.to_owned(),
        None => format!(
            "t_crash_{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        ),
    };
    let pool = authtel_sql::postgres::connect(&url).await.unwrap();
    let store = AuditStore::builder(pool)
        .with_schema(&schema)
        .unwrap()
        .with_forwarder("kafka")
        .unwrap()
        .build();
    Some((store, schema))
}

crash_case!(
    sqlite_sigkill_between_commit_and_delivery_loses_nothing,
    sqlx::Sqlite,
    open_sqlite
);
crash_case!(
    postgres_sigkill_between_commit_and_delivery_loses_nothing,
    sqlx::Postgres,
    open_postgres
);
