//! authtel-sql against raw sqlx, in the same run (records of about 650 bytes of JSON).
//!
//! Criterion groups (ns per 500-record batch; ratio = case / baseline, lower is better):
//! - `sql_sqlite_batch`: `authtel_batch_writer` vs `baseline:raw_multirow_insert_500`
//!   (target ratio ≤ 1.0), on temporary files in WAL mode with `synchronous = NORMAL`; the
//!   baseline writes into a second database with the same schema and indexes.
//! - `sql_pg_batch`: `authtel_batch_writer` (UNNEST, idempotent) vs `baseline:raw_copy`
//!   (plain `COPY … FROM STDIN` of the same rows into a table `LIKE audit_events INCLUDING
//!   ALL`, i.e. the same keys and indexes; target ratio ≤ 1.25, i.e. ≥ 0.8x).
//!
//! JSON lines in `$CARGO_TARGET_DIR/authtel-bench/sql.jsonl` (PostgreSQL):
//! - `sql_pg_tx/record_with_outbox_p50|p99` (µs) vs a bare single audit insert in the same
//!   kind of transaction (target ratio ≤ 1.15), with the server's default commit settings
//!   and again with `SET synchronous_commit = on` per session.
//! - `sql_pg_relay/entries_per_s`: outbox → no-op forwarder (target ≥ 20 000/s).
//!
//! PostgreSQL comes from `DATABASE_URL`; without it the PostgreSQL cases are skipped with a
//! message. Note: the test server started by `cargo xtask services` runs with `fsync = off`.

use std::hint::black_box;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditStore, BatchWriter, Relay, RelayConfig};
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;

const BATCH: usize = 500;

fn record() -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure);
    e.actor = Some(Party::new("u_0123456789abcdef", "user"));
    e.client_ip = Some(
        "203.0.113.77"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
    );
    e.session_id = Some("sess_8f14e45fceea167a5a36dedd4bea2543".into());
    e.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36".into(),
    );
    e.reason = Some("invalid_credentials".into());
    e.span_id = Some("a3ce929d0e0e4736".into());
    e.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    e.metadata.insert("method".into(), "password".into());
    e.metadata.insert("provider".into(), "local".into());
    e.metadata.insert("attempts_remaining".into(), 2.into());
    e.metadata.insert("duration_ms".into(), 12.5.into());
    e.metadata
        .insert("tenant".into(), "acme-corporation-eu-west".into());
    e
}

fn bench_err(source: sqlx::Error) -> authtel_sql::SqlError {
    authtel_sql::SqlError::Database {
        context: "run a bench statement",
        source,
    }
}

fn batch() -> Vec<AuditEvent> {
    (0..BATCH).map(|_| record()).collect()
}

fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH as u64));
}

fn meta_json(e: &AuditEvent) -> String {
    serde_json::to_string(&e.metadata).unwrap_or_default()
}

fn sqlite_batch(c: &mut Criterion, rt: &Runtime) {
    let dir = std::env::temp_dir().join(format!("authtel-sql-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    // The baseline writes into its own database with the very same schema and indexes.
    let open = |name: &str| {
        let path = dir.join(name);
        async move {
            let pool = authtel_sql::sqlite::connect(path.to_str().unwrap_or("bench.db")).await?;
            let store = AuditStore::builder(pool).build();
            store.migrate().await?;
            Ok::<_, authtel_sql::SqlError>(store)
        }
    };
    let stores = rt.block_on(async {
        Ok::<_, authtel_sql::SqlError>((open("authtel.db").await?, open("raw.db").await?))
    });
    let (store, raw) = match stores {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sql_sqlite_batch skipped: {e}");
            return;
        }
    };
    let writer = BatchWriter::new(&store);
    let mut group = c.benchmark_group("sql_sqlite_batch");
    short(&mut group);
    group.bench_function("authtel_batch_writer", |b| {
        b.to_async(rt).iter_batched(
            batch,
            |batch| {
                let writer = &writer;
                async move {
                    writer
                        .forward(black_box(&batch))
                        .await
                        .expect("batch write")
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("baseline:raw_multirow_insert_500", |b| {
        b.to_async(rt).iter_batched(
            batch,
            |batch| {
                let pool = raw.pool().clone();
                async move {
                    let mut tx = pool.begin().await.expect("begin");
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO audit_events (event_id, occurred_at, action, outcome, actor_id, \
                         actor_type, target_id, target_type, session_id, client_ip, user_agent, \
                         resource, operation, reason, span_id, trace_id, metadata, schema_version) ",
                    );
                    qb.push_values(&batch, |mut r, e| {
                        let actor = e.actor.as_ref();
                        r.push_bind(e.id.to_string())
                            .push_bind(e.occurred_at.unix_micros())
                            .push_bind(&e.action)
                            .push_bind(e.outcome.as_str())
                            .push_bind(actor.map(|a| &a.id))
                            .push_bind(actor.map(|a| &a.kind))
                            .push_bind(None::<String>)
                            .push_bind(None::<String>)
                            .push_bind(&e.session_id)
                            .push_bind(e.client_ip.map(|ip| ip.to_string()))
                            .push_bind(&e.user_agent)
                            .push_bind(&e.resource)
                            .push_bind(&e.operation)
                            .push_bind(&e.reason)
                            .push_bind(&e.span_id)
                            .push_bind(&e.trace_id)
                            .push_bind(meta_json(e))
                            .push_bind(i64::from(e.schema_version));
                    });
                    qb.build().execute(&mut *tx).await.expect("raw insert");
                    tx.commit().await.expect("commit");
                }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use sqlx::PgPool;

    pub(super) async fn store(
        url: &str,
        forwarders: &[&str],
    ) -> Result<AuditStore<sqlx::Postgres>, authtel_sql::SqlError> {
        let pool = authtel_sql::postgres::connect(url).await?;
        let schema = format!("bench_{}", std::process::id());
        let mut b = AuditStore::builder(pool).with_schema(&schema)?;
        for f in forwarders {
            b = b.with_forwarder(f)?;
        }
        let store = b.build();
        store.migrate().await?;
        Ok(store)
    }

    pub(super) async fn drop_schema(url: &str) {
        let sql = format!("DROP SCHEMA IF EXISTS bench_{} CASCADE", std::process::id());
        if let Ok(pool) = authtel_sql::postgres::connect(url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
        }
    }

    fn copy_field(out: &mut String, v: Option<&str>) {
        match v {
            None => out.push_str("\\N"),
            Some(v) => {
                for ch in v.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
        }
    }

    /// The same rows as text COPY data (what a hand-written COPY loader would send).
    fn copy_rows(batch: &[AuditEvent]) -> String {
        let mut out = String::with_capacity(batch.len() * 700);
        for e in batch {
            let actor = e.actor.as_ref();
            let fields = [
                Some(e.id.to_string()),
                Some(e.occurred_at.to_string()),
                Some(e.action.clone()),
                Some(e.outcome.as_str().to_owned()),
                actor.map(|a| a.id.clone()),
                actor.map(|a| a.kind.clone()),
                None,
                None,
                e.session_id.clone(),
                e.client_ip.map(|ip| ip.to_string()),
                e.user_agent.clone(),
                e.resource.clone(),
                e.operation.clone(),
                e.reason.clone(),
                e.span_id.clone(),
                e.trace_id.clone(),
                Some(meta_json(e)),
                Some(e.schema_version.to_string()),
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push('\t');
                }
                copy_field(&mut out, f.as_deref());
            }
            out.push('\n');
        }
        out
    }

    async fn raw_copy(pool: &PgPool, table: &str, batch: &[AuditEvent]) {
        let mut conn = pool.acquire().await.expect("acquire");
        let data = copy_rows(batch);
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT text)"))
            .await
            .expect("copy in");
        copy.send(data.into_bytes()).await.expect("copy send");
        copy.finish().await.expect("copy finish");
    }

    pub(super) fn batch_group(c: &mut Criterion, rt: &Runtime, url: &str) {
        let setup = rt.block_on(async {
            let store = store(url, &[]).await?;
            let schema = store.schema().unwrap_or("public").to_owned();
            let raw = format!("\"{schema}\".raw_events");
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {raw} (LIKE \"{schema}\".audit_events INCLUDING ALL)"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                .execute(store.pool())
                .await
                .map_err(bench_err)?;
            Ok::<_, authtel_sql::SqlError>((store, raw))
        });
        let (store, raw) = match setup {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sql_pg_batch skipped: {e}");
                return;
            }
        };
        let writer = BatchWriter::new(&store);
        let mut group = c.benchmark_group("sql_pg_batch");
        short(&mut group);
        group.bench_function("authtel_batch_writer", |b| {
            b.to_async(rt).iter_batched(
                batch,
                |batch| {
                    let writer = &writer;
                    async move {
                        writer
                            .forward(black_box(&batch))
                            .await
                            .expect("batch write")
                    }
                },
                BatchSize::PerIteration,
            )
        });
        group.bench_function("baseline:raw_copy", |b| {
            b.to_async(rt).iter_batched(
                batch,
                |batch| {
                    let (pool, raw) = (store.pool().clone(), raw.clone());
                    async move { raw_copy(&pool, &raw, black_box(&batch)).await }
                },
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }

    fn percentile(sorted: &[f64], p: f64) -> f64 {
        sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    /// p50/p99 of one audit insert plus its outbox entry plus commit, against a bare audit
    /// insert plus commit, interleaved so both see the same machine load.
    pub(super) async fn tx_latency(
        url: &str,
        sync_commit_on: bool,
        rows: &mut Vec<String>,
    ) -> Result<(), authtel_sql::SqlError> {
        let store = store(url, &["kafka"]).await?;
        let bare = store_without_outbox(&store);
        let n = if std::env::var_os("AUTHTEL_BENCH_QUICK").is_some() {
            1000
        } else {
            3000
        };
        let (mut with, mut without) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let set = if sync_commit_on {
            "SET LOCAL synchronous_commit = on"
        } else {
            "SELECT 1"
        };
        for i in 0..n + 100 {
            for (target, times) in [(&store, &mut with), (&bare, &mut without)] {
                let e = record();
                let started = Instant::now();
                let mut tx = target.pool().begin().await.map_err(bench_err)?;
                if sync_commit_on {
                    sqlx::query(set)
                        .execute(&mut *tx)
                        .await
                        .map_err(bench_err)?;
                }
                target.record_in(&mut tx, &e).await?;
                tx.commit().await.map_err(bench_err)?;
                if i >= 100 {
                    times.push(started.elapsed().as_secs_f64() * 1e6);
                }
            }
        }
        with.sort_by(f64::total_cmp);
        without.sort_by(f64::total_cmp);
        let suffix = if sync_commit_on {
            "_sync_commit_on"
        } else {
            ""
        };
        for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
            let (a, b) = (percentile(&with, p), percentile(&without, p));
            rows.push(format!(
                "{{\"case\":\"sql_pg_tx/record_with_outbox_{name}{suffix}\",\"value\":{a:.1},\"unit\":\"us\",\"baseline\":\"bare single audit insert{suffix}\",\"baseline_value\":{b:.1},\"ratio\":{:.3}}}",
                a / b
            ));
        }
        Ok(())
    }

    fn store_without_outbox(store: &AuditStore<sqlx::Postgres>) -> AuditStore<sqlx::Postgres> {
        let mut b = AuditStore::builder(store.pool().clone());
        if let Some(s) = store.schema() {
            b = b
                .with_schema(s)
                .unwrap_or_else(|_| AuditStore::builder(store.pool().clone()));
        }
        b.build()
    }

    #[derive(Debug)]
    struct Noop;
    impl Forwarder for Noop {
        fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
            black_box(batch);
            Box::pin(async { Ok(()) })
        }
    }

    pub(super) async fn relay_throughput(
        url: &str,
        rows: &mut Vec<String>,
    ) -> Result<(), authtel_sql::SqlError> {
        let store = store(url, &["noop"]).await?;
        let n = if std::env::var_os("AUTHTEL_BENCH_QUICK").is_some() {
            20_000
        } else {
            50_000
        };
        for chunk in 0..n / BATCH {
            let _ = chunk;
            let mut tx = store.begin().await?;
            for e in batch() {
                tx.record(&e).await?;
            }
            tx.commit().await?;
        }
        let relay = Relay::new(&store, RelayConfig::default().with_batch_size(BATCH as u32))
            .with_forwarder("noop", Arc::new(Noop))?;
        let started = Instant::now();
        let mut delivered = 0;
        while delivered < n as u64 {
            let pass = relay.run_once().await?;
            if pass.claimed == 0 {
                break;
            }
            delivered += pass.delivered;
        }
        let rate = delivered as f64 / started.elapsed().as_secs_f64();
        rows.push(format!(
            "{{\"case\":\"sql_pg_relay/entries_per_s\",\"value\":{rate:.0},\"unit\":\"entries/s\",\"baseline\":\"target 20000\",\"baseline_value\":20000,\"ratio\":{:.3}}}",
            rate / 20_000.0
        ));
        Ok(())
    }
}

fn write_jsonl(rows: &[String]) {
    if rows.is_empty() {
        return;
    }
    for r in rows {
        println!("{r}");
    }
    let Some(target) = std::env::var_os("CARGO_TARGET_DIR") else {
        eprintln!("sql bench: CARGO_TARGET_DIR is unset; JSON rows only printed");
        return;
    };
    let dir = std::path::Path::new(&target).join("authtel-bench");
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("sql.jsonl"))?;
        rows.iter().try_for_each(|r| writeln!(f, "{r}"))
    });
    if let Err(e) = result {
        eprintln!("sql bench: could not write {}: {e}", dir.display());
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut c = Criterion::default().configure_from_args();
    sqlite_batch(&mut c, &rt);
    #[cfg(feature = "postgres")]
    match std::env::var("DATABASE_URL") {
        Err(_) => eprintln!("sql bench: DATABASE_URL is not set; PostgreSQL cases skipped"),
        Ok(url) => {
            pg::batch_group(&mut c, &rt, &url);
            let mut rows = Vec::new();
            rt.block_on(async {
                for sync in [false, true] {
                    if let Err(e) = pg::tx_latency(&url, sync, &mut rows).await {
                        eprintln!("sql_pg_tx skipped: {e}");
                    }
                }
                if let Err(e) = pg::relay_throughput(&url, &mut rows).await {
                    eprintln!("sql_pg_relay skipped: {e}");
                }
                pg::drop_schema(&url).await;
            });
            write_jsonl(&rows);
        }
    }
    #[cfg(not(feature = "postgres"))]
    eprintln!("sql bench: built without feature `postgres`; PostgreSQL cases skipped");
    c.final_summary();
}
