//! authtel-sql against raw sqlx, in the same run, on the same records (about 650 bytes of
//! JSON each). Both sides start from the same `AuditEvent`s and serialise them inside the
//! timed section: the writer validates, scrubs and encodes; the baseline encodes the same
//! columns the way a hand-written loader would (no validation, no scrubbing).
//!
//! Durability, as production runs it: PostgreSQL with `fsync = on`, `full_page_writes = on`
//! and `synchronous_commit = on`. The test server of `cargo xtask services` runs with all
//! three off, so the bench turns fsync and full_page_writes on with `ALTER SYSTEM` + reload
//! (both are reloadable) and restores them at the end; `synchronous_commit = on` is set per
//! session. `AUTHTEL_BENCH_FSYNC=off` leaves the server alone. SQLite runs as
//! `authtel_sql::sqlite::connect` opens it: WAL, `synchronous = NORMAL`. The conditions and
//! the load average are printed and written into every JSON row.
//!
//! Criterion groups (time per 500-record batch; ratio = case / baseline, lower is better):
//! - `sql_sqlite_batch`: `authtel_batch_writer` vs `baseline:raw_multirow_insert_500` (one
//!   500-row `INSERT` in one transaction, into a second database with the same schema);
//!   target ≤ 1.0.
//! - `sql_pg_batch`: `authtel_batch_writer` vs `baseline:raw_copy` (`COPY … FROM STDIN` of
//!   the same rows into a table `LIKE audit_events INCLUDING ALL`: same keys and indexes);
//!   target ≤ 1.25 (the writer at ≥ 0.8x COPY's throughput).
//!
//! JSON lines in `$CARGO_TARGET_DIR/authtel-bench/sql.jsonl`:
//! - `sql_sqlite_batch/paired`, `sql_pg_batch/paired`: the same two cases again, alternated
//!   batch by batch (so both see the same machine load), medians in ms per batch.
//! - `sql_pg_tx/record_with_outbox_p50|p99` (µs): `begin` + the crate's in-transaction write
//!   (audit row + one outbox entry) + `commit`, vs `begin` + a raw single-row audit insert +
//!   `commit`, alternated; target ratio ≤ 1.15.
//! - `sql_pg_relay/entries_per_s`: outbox → no-op forwarder (target ≥ 20 000/s).
//!
//! Every measured section starts after a checkpoint (`CHECKPOINT` on PostgreSQL,
//! `PRAGMA wal_checkpoint(TRUNCATE)` on SQLite), so a checkpoint left over from the previous
//! section never lands on whichever case happens to run next.
//!
//! PostgreSQL comes from `DATABASE_URL`; without it the PostgreSQL cases are skipped with a
//! message.

use std::future::Future;
use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditStore, BatchWriter};
use criterion::{BatchSize, BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;

const BATCH: usize = 500;

fn record() -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    e = e.with_actor(Party::new("u_0123456789abcdef", "user"));
    e = e.with_client_ip(
        "203.0.113.77"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
    );
    e = e.with_session_id("sess_8f14e45fceea167a5a36dedd4bea2543");
    e = e.with_user_agent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    );
    e = e.with_reason("invalid_credentials");
    e = e.with_span_id("a3ce929d0e0e4736");
    e = e.with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
    e = e.with_metadata("method", "password").unwrap();
    e = e.with_metadata("provider", "local").unwrap();
    e = e.with_metadata("attempts_remaining", 2).unwrap();
    e = e.with_metadata("duration_ms", 12.5).unwrap();
    e = e
        .with_metadata("tenant", "acme-corporation-eu-west")
        .unwrap();
    e
}

fn bench_err(cause: sqlx::Error) -> authtel_sql::SqlError {
    authtel_sql::SqlError::Database {
        context: "run a bench statement",
        cause,
    }
}

fn batch() -> Vec<AuditEvent> {
    (0..BATCH).map(|_| record()).collect()
}

fn quick() -> bool {
    std::env::var_os("AUTHTEL_BENCH_QUICK").is_some()
}

/// The `authtel_batch_writer` case of a batch group: one fresh batch per iteration through
/// the writer's `Forwarder` interface, as a pipeline lane calls it.
fn bench_batch_writer(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    writer: &impl Forwarder,
) {
    group.bench_function("authtel_batch_writer", |b| {
        b.to_async(rt).iter_batched(
            batch,
            |batch| async move {
                writer
                    .forward(black_box(&batch))
                    .await
                    .expect("batch write")
            },
            BatchSize::PerIteration,
        )
    });
}

fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH as u64));
}

fn meta_json(e: &AuditEvent) -> String {
    serde_json::to_string(&e.metadata()).unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs `a` and `b` on fresh batches in alternation (`a` first on even rounds, `b` first on
/// odd ones) and returns their times in ms, sorted, after `warm_up` untimed rounds.
async fn paired<A, B, FA, FB>(rounds: usize, mut a: A, mut b: B) -> (Vec<f64>, Vec<f64>)
where
    A: FnMut(Vec<AuditEvent>) -> FA,
    B: FnMut(Vec<AuditEvent>) -> FB,
    FA: Future<Output = ()>,
    FB: Future<Output = ()>,
{
    let warm_up = 3;
    let (mut ta, mut tb) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds + warm_up {
        for first in [i % 2 == 0, i % 2 != 0] {
            let input = batch();
            let started = Instant::now();
            if first {
                a(input).await
            } else {
                b(input).await
            }
            let ms = started.elapsed().as_secs_f64() * 1e3;
            if i >= warm_up {
                if first { ta.push(ms) } else { tb.push(ms) }
            }
        }
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    (ta, tb)
}

/// One JSON row in the `cargo xtask bench` format, plus the run's conditions.
fn json_row(case: &str, value: f64, unit: &str, baseline: &str, base: f64, cond: &str) -> String {
    serde_json::json!({
        "case": case,
        "value": (value * 1000.0).round() / 1000.0,
        "unit": unit,
        "baseline": baseline,
        "baseline_value": (base * 1000.0).round() / 1000.0,
        "ratio": ((value / base) * 1000.0).round() / 1000.0,
        "conditions": cond,
    })
    .to_string()
}

fn paired_row(case: &str, baseline: &str, (a, b): &(Vec<f64>, Vec<f64>), cond: &str) -> String {
    let (ma, mb) = (percentile(a, 0.5), percentile(b, 0.5));
    let cond = format!("{cond}; {} alternated pairs", a.len());
    json_row(case, ma, "ms/batch of 500", baseline, mb, &cond)
}

/// The baseline's raw 500-row insert: the same columns bound straight from the records.
async fn raw_sqlite_insert(pool: &sqlx::SqlitePool, batch: &[AuditEvent]) {
    let mut tx = pool.begin().await.expect("begin");
    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
        "INSERT INTO audit_events (event_id, occurred_at, action, outcome, actor_id, \
         actor_type, target_id, target_type, session_id, client_ip, user_agent, \
         resource, operation, reason, span_id, trace_id, metadata, schema_version) ",
    );
    qb.push_values(batch, |mut r, e| {
        let actor = e.actor();
        r.push_bind(e.id().to_string())
            .push_bind(e.occurred_at().unix_micros())
            .push_bind(e.action())
            .push_bind(e.outcome().as_str())
            .push_bind(actor.map(|a| &a.id))
            .push_bind(actor.map(|a| &a.kind))
            .push_bind(None::<String>)
            .push_bind(None::<String>)
            .push_bind(e.session_id())
            .push_bind(e.client_ip().map(|ip| ip.to_string()))
            .push_bind(e.user_agent())
            .push_bind(e.resource())
            .push_bind(e.operation())
            .push_bind(e.reason())
            .push_bind(e.span_id())
            .push_bind(e.trace_id())
            .push_bind(meta_json(e))
            .push_bind(i64::from(e.schema_version()));
    });
    qb.build().execute(&mut *tx).await.expect("raw insert");
    tx.commit().await.expect("commit");
}

async fn checkpoint_sqlite(stores: &[&AuditStore<sqlx::Sqlite>]) {
    for store in stores {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(store.pool())
            .await
        {
            eprintln!("sql bench: SQLite checkpoint failed: {e}");
        }
    }
}

fn sqlite_batch(c: &mut Criterion, rt: &Runtime, rows: &mut Vec<String>) {
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
    let cond = format!(
        "sqlite WAL synchronous=NORMAL; load1 {} at start",
        load_average()
    );
    eprintln!("sql bench conditions: {cond}");
    let writer = BatchWriter::new(&store);
    let mut group = c.benchmark_group("sql_sqlite_batch");
    short(&mut group);
    rt.block_on(checkpoint_sqlite(&[&store, &raw]));
    bench_batch_writer(&mut group, rt, &writer);
    // Each case starts with both WAL files checkpointed, so neither inherits the other's.
    rt.block_on(checkpoint_sqlite(&[&store, &raw]));
    group.bench_function("baseline:raw_multirow_insert_500", |b| {
        b.to_async(rt).iter_batched(
            batch,
            |batch| {
                let pool = raw.pool().clone();
                async move { raw_sqlite_insert(&pool, black_box(&batch)).await }
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    rt.block_on(checkpoint_sqlite(&[&store, &raw]));
    let times = rt.block_on(paired(
        if quick() { 40 } else { 150 },
        |batch| {
            let writer = &writer;
            async move { writer.forward(&batch).await.expect("batch write") }
        },
        |batch| {
            let pool = raw.pool().clone();
            async move { raw_sqlite_insert(&pool, &batch).await }
        },
    ));
    rows.push(paired_row(
        "sql_sqlite_batch/paired",
        "raw multi-row insert of 500",
        &times,
        &cond,
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use std::sync::Arc;

    use authtel_core::forward::ForwardFuture;
    use authtel_sql::{Relay, RelayConfig};
    use sqlx::{Connection as _, PgPool};

    /// The server settings this run changed, put back on drop (also when a case panics).
    pub(super) struct Durability {
        url: String,
        changed: Vec<&'static str>,
        /// What the cases ran under, for the output.
        pub(super) conditions: String,
    }

    async fn show(conn: &mut sqlx::PgConnection, name: &str) -> Result<String, sqlx::Error> {
        sqlx::query_scalar("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(conn)
            .await
    }

    impl Durability {
        /// Turns `fsync` and `full_page_writes` on unless `AUTHTEL_BENCH_FSYNC=off`; waits
        /// until new sessions see them.
        pub(super) async fn establish(url: &str) -> Result<Durability, sqlx::Error> {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let wanted = std::env::var("AUTHTEL_BENCH_FSYNC").map_or(true, |v| v != "off");
            let mut changed = Vec::new();
            for name in ["fsync", "full_page_writes"] {
                if wanted && show(&mut conn, name).await? != "on" {
                    // ALTER SYSTEM refuses multi-statement strings: one call each.
                    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER SYSTEM SET {name} = on")))
                        .execute(&mut conn)
                        .await?;
                    changed.push(name);
                }
            }
            let mut guard = Durability {
                url: url.to_owned(),
                changed,
                conditions: String::new(),
            };
            if !guard.changed.is_empty() {
                sqlx::query("SELECT pg_reload_conf()")
                    .execute(&mut conn)
                    .await?;
                // The postmaster rereads the file asynchronously: poll with fresh sessions.
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    let mut probe = sqlx::PgConnection::connect(url).await?;
                    let on = show(&mut probe, "fsync").await? == "on"
                        && show(&mut probe, "full_page_writes").await? == "on";
                    let _ = probe.close().await;
                    if on || Instant::now() > deadline {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let mut session = sqlx::PgConnection::connect(&session_url(url)).await?;
            guard.conditions = format!(
                "postgres fsync={} full_page_writes={} synchronous_commit={}",
                show(&mut session, "fsync").await?,
                show(&mut session, "full_page_writes").await?,
                show(&mut session, "synchronous_commit").await?,
            );
            Ok(guard)
        }
    }

    impl Drop for Durability {
        fn drop(&mut self) {
            if self.changed.is_empty() {
                return;
            }
            let (url, changed) = (self.url.clone(), std::mem::take(&mut self.changed));
            // Drop cannot await, and may run inside the bench's runtime: restore on a thread
            // with a runtime of its own.
            let restored = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&url).await?;
                    for name in &changed {
                        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER SYSTEM RESET {name}")))
                            .execute(&mut conn)
                            .await?;
                    }
                    sqlx::query("SELECT pg_reload_conf()")
                        .execute(&mut conn)
                        .await
                        .map(|_| ())
                })
                .map_err(|e| e.to_string())
            })
            .join();
            match restored {
                Ok(Ok(())) => eprintln!("sql bench: server settings restored"),
                other => eprintln!(
                    "sql bench: could not restore the server settings ({other:?}); run \
                     `ALTER SYSTEM RESET fsync; ALTER SYSTEM RESET full_page_writes; \
                     SELECT pg_reload_conf()` as postgres"
                ),
            }
        }
    }

    async fn checkpoint(pool: &PgPool) {
        if let Err(e) = sqlx::query("CHECKPOINT").execute(pool).await {
            eprintln!("sql bench: CHECKPOINT failed: {e}");
        }
    }

    /// `url` with `synchronous_commit = on` for every session of the pool.
    fn session_url(url: &str) -> String {
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20synchronous_commit%3Don")
    }

    pub(super) async fn store(
        url: &str,
        part: &str,
        forwarders: &[&str],
    ) -> Result<AuditStore<sqlx::Postgres>, authtel_sql::SqlError> {
        let pool = authtel_sql::postgres::connect(&session_url(url)).await?;
        let schema = format!("bench_{}_{part}", std::process::id());
        let mut b = AuditStore::builder(pool).with_schema(&schema)?;
        for f in forwarders {
            b = b.with_forwarder(f)?;
        }
        let store = b.build();
        store.migrate().await?;
        Ok(store)
    }

    pub(super) async fn drop_schemas(url: &str) {
        if let Ok(pool) = authtel_sql::postgres::connect(url).await {
            for part in ["batch", "tx", "relay"] {
                let sql = format!(
                    "DROP SCHEMA IF EXISTS bench_{}_{part} CASCADE",
                    std::process::id()
                );
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
            }
        }
    }

    fn push_copy_text(out: &mut Vec<u8>, v: &str) {
        for &b in v.as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b => out.push(b),
            }
        }
    }

    /// The same rows as text COPY data, encoded the way a hand-written loader would: fields
    /// borrowed from the records, one buffer for the batch.
    fn copy_rows(batch: &[AuditEvent]) -> Vec<u8> {
        let mut out = Vec::with_capacity(batch.len() * 768);
        for e in batch {
            let actor = e.actor();
            let ip = e.client_ip().map(|ip| ip.to_string());
            let meta = meta_json(e);
            let _ = write!(out, "{}\t{}\t", e.id(), e.occurred_at());
            let fields = [
                Some(e.action()),
                Some(e.outcome().as_str()),
                actor.map(|a| a.id.as_str()),
                actor.map(|a| a.kind.as_str()),
                None,
                None,
                e.session_id(),
                ip.as_deref(),
                e.user_agent(),
                e.resource(),
                e.operation(),
                e.reason(),
                e.span_id(),
                e.trace_id(),
                Some(meta.as_str()),
            ];
            for f in fields {
                match f {
                    Some(v) => push_copy_text(&mut out, v),
                    None => out.extend_from_slice(b"\\N"),
                }
                out.push(b'\t');
            }
            let _ = writeln!(out, "{}", e.schema_version());
        }
        out
    }

    async fn raw_copy(pool: &PgPool, table: &str, batch: &[AuditEvent]) {
        let mut conn = pool.acquire().await.expect("acquire");
        let data = copy_rows(batch);
        let mut copy = conn
            // The columns it fills, named as a hand-written loader would: the table also has
            // the live feed's columns (migration 2), which take their defaults.
            .copy_in_raw(&format!(
                "COPY {table} (event_id, occurred_at, action, outcome, actor_id, actor_type, \
                 target_id, target_type, session_id, client_ip, user_agent, resource, operation, \
                 reason, span_id, trace_id, metadata, schema_version) FROM STDIN (FORMAT text)"
            ))
            .await
            .expect("copy in");
        copy.send(data).await.expect("copy send");
        copy.finish().await.expect("copy finish");
    }

    pub(super) fn batch_group(
        c: &mut Criterion,
        rt: &Runtime,
        url: &str,
        d: &Durability,
        rows: &mut Vec<String>,
    ) {
        let setup = rt.block_on(async {
            let store = store(url, "batch", &[]).await?;
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
        // Each case starts right after a checkpoint: a background checkpoint (with fsync on,
        // and the full-page images that follow one) must not land on whichever case runs
        // first.
        rt.block_on(checkpoint(store.pool()));
        bench_batch_writer(&mut group, rt, &writer);
        rt.block_on(checkpoint(store.pool()));
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
        rt.block_on(checkpoint(store.pool()));
        let times = rt.block_on(paired(
            if quick() { 40 } else { 150 },
            |batch| {
                let writer = &writer;
                async move { writer.forward(&batch).await.expect("batch write") }
            },
            |batch| {
                let (pool, raw) = (store.pool().clone(), raw.clone());
                async move { raw_copy(&pool, &raw, &batch).await }
            },
        ));
        let cond = format!("{}; load1 {}", d.conditions, load_average());
        rows.push(paired_row(
            "sql_pg_batch/paired",
            "raw COPY of the same records",
            &times,
            &cond,
        ));
    }

    /// A hand-written single-row audit insert: the baseline of the in-transaction write.
    async fn raw_insert(
        conn: &mut sqlx::PgConnection,
        stmt: &str,
        e: &AuditEvent,
    ) -> Result<(), sqlx::Error> {
        let actor = e.actor();
        sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
            .bind(e.id().to_string())
            .bind(e.occurred_at().unix_micros())
            .bind(e.action())
            .bind(e.outcome().as_str())
            .bind(actor.map(|a| &a.id))
            .bind(actor.map(|a| &a.kind))
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(e.session_id())
            .bind(e.client_ip().map(|ip| ip.to_string()))
            .bind(e.user_agent())
            .bind(e.resource())
            .bind(e.operation())
            .bind(e.reason())
            .bind(e.span_id())
            .bind(e.trace_id())
            .bind(meta_json(e))
            .bind(i32::from(e.schema_version()))
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// p50/p99 of `begin` + audit row + its outbox entry + `commit`, against `begin` + a
    /// raw single-row audit insert + `commit`, alternated so both see the same load.
    pub(super) async fn tx_latency(
        url: &str,
        d: &Durability,
        rows: &mut Vec<String>,
    ) -> Result<(), authtel_sql::SqlError> {
        let store = store(url, "tx", &["kafka"]).await?;
        let schema = store.schema().unwrap_or("public");
        let insert = format!(
            "INSERT INTO \"{schema}\".audit_events (event_id, occurred_at, action, outcome, \
             actor_id, actor_type, target_id, target_type, session_id, client_ip, user_agent, \
             resource, operation, reason, span_id, trace_id, metadata, schema_version) \
             VALUES ($1::uuid, timestamptz 'epoch' + $2::int8 * interval '1 microsecond', $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        let n = if quick() { 600 } else { 1500 };
        let warm_up = 100;
        checkpoint(store.pool()).await;
        // [crate, raw] × [whole transaction, the write alone], in µs.
        let mut times: [[Vec<f64>; 2]; 2] = Default::default();
        for i in 0..n + warm_up {
            for crate_first in [i % 2 == 0, i % 2 != 0] {
                let e = record();
                let started = Instant::now();
                let mut tx = store.pool().begin().await.map_err(bench_err)?;
                let write_started = Instant::now();
                if crate_first {
                    store.record_in(&mut tx, &e).await?;
                } else {
                    raw_insert(&mut tx, &insert, &e).await.map_err(bench_err)?;
                }
                let write = write_started.elapsed().as_secs_f64() * 1e6;
                tx.commit().await.map_err(bench_err)?;
                let whole = started.elapsed().as_secs_f64() * 1e6;
                if i >= warm_up {
                    let side = &mut times[usize::from(!crate_first)];
                    side[0].push(whole);
                    side[1].push(write);
                }
            }
        }
        for side in &mut times {
            for t in side {
                t.sort_by(f64::total_cmp);
            }
        }
        let cond = format!(
            "{}; load1 {}; {n} alternated pairs",
            d.conditions,
            load_average()
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let [with, without] = &times;
        let baseline = "raw single audit insert in a transaction";
        for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
            rows.push(json_row(
                &format!("sql_pg_tx/record_with_outbox_{name}"),
                percentile(&with[0], p),
                "us",
                baseline,
                percentile(&without[0], p),
                &cond,
            ));
        }
        // The commit's WAL flush varies from about 0.5 to 4 ms on this machine's disk, so
        // the mean, and the write without its commit, are printed too.
        rows.push(json_row(
            "sql_pg_tx/record_with_outbox_mean",
            mean(&with[0]),
            "us",
            baseline,
            mean(&without[0]),
            &cond,
        ));
        rows.push(json_row(
            "sql_pg_tx/record_with_outbox_write_only_p50",
            percentile(&with[1], 0.5),
            "us",
            "raw single audit insert, without begin and commit",
            percentile(&without[1], 0.5),
            &cond,
        ));
        Ok(())
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
        d: &Durability,
        rows: &mut Vec<String>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let store = store(url, "relay", &["noop"]).await?;
        let n = if quick() { 20_000 } else { 50_000 };
        // Seed fast: the records through the batch writer, then one pending entry each.
        let writer = BatchWriter::new(&store);
        for _ in 0..n / BATCH {
            writer.forward(&batch()).await?;
        }
        let schema = store.schema().unwrap_or("public");
        let seed = format!(
            "INSERT INTO \"{schema}\".audit_outbox (event_id, forwarder, status, attempts, \
             next_attempt_at, created_at, updated_at) SELECT event_id, 'noop', 'pending', 0, \
             0, 0, 0 FROM \"{schema}\".audit_events"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(seed))
            .execute(store.pool())
            .await
            .map_err(bench_err)?;
        checkpoint(store.pool()).await;
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
        let cond = format!("{}; load1 {}", d.conditions, load_average());
        rows.push(json_row(
            "sql_pg_relay/entries_per_s",
            rate.round(),
            "entries/s",
            "target 20000",
            20_000.0,
            &cond,
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
    let mut rows = Vec::new();
    sqlite_batch(&mut c, &rt, &mut rows);
    #[cfg(feature = "postgres")]
    match std::env::var("DATABASE_URL") {
        Err(_) => eprintln!("sql bench: DATABASE_URL is not set; PostgreSQL cases skipped"),
        Ok(url) => match rt.block_on(pg::Durability::establish(&url)) {
            Err(e) => eprintln!("sql bench: PostgreSQL cases skipped: {e}"),
            Ok(durability) => {
                eprintln!("sql bench conditions: {}", durability.conditions);
                pg::batch_group(&mut c, &rt, &url, &durability, &mut rows);
                rt.block_on(async {
                    if let Err(e) = pg::tx_latency(&url, &durability, &mut rows).await {
                        eprintln!("sql_pg_tx skipped: {e}");
                    }
                    if let Err(e) = pg::relay_throughput(&url, &durability, &mut rows).await {
                        eprintln!("sql_pg_relay skipped: {e}");
                    }
                    pg::drop_schemas(&url).await;
                });
                drop(durability);
            }
        },
    }
    #[cfg(not(feature = "postgres"))]
    eprintln!("sql bench: built without feature `postgres`; PostgreSQL cases skipped");
    write_jsonl(&rows);
    c.final_summary();
}
