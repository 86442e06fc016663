//! `authtel query --actor X`, first page: the store call the command makes
//! (`AuditStore::query` with `AuditQuery::new().actor(X).limit(100)`, as `Filters::query`
//! builds it with the default `--limit`), against the same SELECT written by hand through
//! sqlx (same columns, same filter, order and limit; every column decoded, nothing parsed),
//! alternated actor by actor so both see the same load. Plus a primary-key lookup through
//! sqlx, and the whole command as a process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authtel_sql::sqlx::{self, AssertSqlSafe, Row};
use authtel_sql::{AuditQuery, AuditStore};

use crate::seed::ACTORS;

/// The CLI's default page size.
pub(crate) const PAGE: u32 = 100;

/// A seeded store on either backend.
pub(crate) enum Db {
    /// SQLite, with the file path.
    Sqlite(AuditStore<authtel_sql::sqlite::Sqlite>),
    /// PostgreSQL, in its own database.
    Postgres(AuditStore<authtel_sql::postgres::Postgres>),
}

/// p50 and p99 of a set of timings, in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Percentiles {
    pub(crate) p50: f64,
    pub(crate) p99: f64,
}

impl Percentiles {
    pub(crate) fn of(mut v: Vec<Duration>) -> Percentiles {
        assert!(!v.is_empty());
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
        Percentiles {
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

/// What one query-by-actor run measured.
#[derive(Debug)]
pub(crate) struct QueryTimes {
    pub(crate) store: Percentiles,
    pub(crate) raw: Percentiles,
    pub(crate) by_pk: Percentiles,
    pub(crate) actors: usize,
}

/// Every column of a row decoded into owned values, as the store's own row reader does
/// before it parses them into a record.
macro_rules! decode_all {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                let texts: Vec<Option<String>> =
                    [0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
                        .into_iter()
                        .map(|c| r.try_get::<Option<String>, _>(c).unwrap())
                        .collect();
                let at: i64 = r.try_get(1).unwrap();
                let version: i64 = r.try_get(17).unwrap();
                (texts, at, version)
            })
            .collect::<Vec<_>>()
    };
}

/// The store's SELECT list for PostgreSQL (authtel-sql's dialect).
pub(crate) const PG_COLUMNS: &str = "event_id::text, (extract(epoch from occurred_at) * 1000000)::int8, \
     action, outcome, actor_id, actor_type, target_id, target_type, session_id, client_ip, \
     user_agent, resource, operation, reason, span_id, trace_id, metadata, schema_version::int8";
/// The same on SQLite.
pub(crate) const SQLITE_COLUMNS: &str = "event_id, occurred_at, action, outcome, actor_id, actor_type, \
     target_id, target_type, session_id, client_ip, user_agent, resource, operation, reason, \
     span_id, trace_id, metadata, schema_version";

impl Db {
    /// The store call `authtel query --actor <actor>` makes; the page's length.
    async fn store_page(&self, actor: &str) -> usize {
        let q = AuditQuery::new().actor(actor).limit(PAGE);
        let page = match self {
            Db::Sqlite(s) => s.query(&q).await,
            Db::Postgres(s) => s.query(&q).await,
        }
        .expect("query");
        page.events.len()
    }

    /// The hand-written SELECT of the same page.
    async fn raw_page(&self, actor: &str) -> usize {
        match self {
            Db::Sqlite(s) => {
                let sql = format!(
                    "SELECT {SQLITE_COLUMNS} FROM audit_events WHERE actor_id = ? \
                     ORDER BY occurred_at, event_id LIMIT ?"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(actor)
                    .bind(i64::from(PAGE))
                    .fetch_all(s.pool())
                    .await
                    .unwrap();
                decode_all!(rows).len()
            }
            Db::Postgres(s) => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM audit_events WHERE actor_id = $1 \
                     ORDER BY occurred_at, event_id LIMIT $2"
                );
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(actor)
                    .bind(i64::from(PAGE))
                    .fetch_all(s.pool())
                    .await
                    .unwrap();
                decode_all!(rows).len()
            }
        }
    }

    /// One row by its id, through sqlx.
    async fn by_pk(&self, id: &str) -> usize {
        match self {
            Db::Sqlite(s) => {
                let sql = format!("SELECT {SQLITE_COLUMNS} FROM audit_events WHERE event_id = ?");
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_all(s.pool())
                    .await
                    .unwrap();
                decode_all!(rows).len()
            }
            Db::Postgres(s) => {
                let sql =
                    format!("SELECT {PG_COLUMNS} FROM audit_events WHERE event_id = $1::uuid");
                let rows = sqlx::query(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_all(s.pool())
                    .await
                    .unwrap();
                decode_all!(rows).len()
            }
        }
    }
}

/// The `j`-th actor of a fixed permutation of all actors (617 is coprime with 1000).
fn actor(j: usize) -> String {
    format!("u_{}", (j as u64 * 617) % ACTORS)
}

/// Query by actor over `actors` distinct actors (after a warm-up of 50), alternating which
/// side runs first; then `actors` primary-key lookups of scattered ids among `rows`.
pub(crate) async fn by_actor(db: &Db, actors: usize, rows: u64) -> QueryTimes {
    for j in 0..50 {
        assert_eq!(db.store_page(&actor(j)).await, PAGE as usize);
        assert_eq!(db.raw_page(&actor(j)).await, PAGE as usize);
    }
    let (mut store, mut raw) = (Vec::new(), Vec::new());
    for j in 0..actors {
        let a = actor(j + 50);
        for side in [j % 2, 1 - j % 2] {
            let t = Instant::now();
            let n = if side == 0 {
                db.store_page(&a).await
            } else {
                db.raw_page(&a).await
            };
            let took = t.elapsed();
            assert_eq!(n, PAGE as usize, "a full first page for {a}");
            if side == 0 {
                store.push(took);
            } else {
                raw.push(took);
            }
        }
    }
    let mut by_pk = Vec::new();
    for j in 0..actors as u64 {
        let i = (j * 7919 + 13) % rows;
        let id = format!("00000000-0000-7000-8000-{i:012x}");
        let t = Instant::now();
        assert_eq!(db.by_pk(&id).await, 1);
        by_pk.push(t.elapsed());
    }
    QueryTimes {
        store: Percentiles::of(store),
        raw: Percentiles::of(raw),
        by_pk: Percentiles::of(by_pk),
        actors,
    }
}

/// The whole `authtel query --actor X --format ndjson` command, `runs` times (distinct
/// actors): process start, connect, schema check, the query, the output.
pub(crate) fn cli_process(url: &str, runs: usize) -> Percentiles {
    let times = (0..runs)
        .map(|j| {
            let t = Instant::now();
            let out = Command::new(crate::AUTHTEL)
                .args(["--database-url", url, "query", "--actor", &actor(j + 500)])
                .args(["--format", "ndjson"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output()
                .expect("run authtel");
            let took = t.elapsed();
            assert!(
                out.status.success(),
                "authtel query failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
            assert_eq!(lines, PAGE as usize, "one page of NDJSON");
            took
        })
        .collect();
    Percentiles::of(times)
}
