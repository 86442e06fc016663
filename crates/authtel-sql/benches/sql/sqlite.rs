//! `sql_sqlite_batch`: the batch writer against a raw 500-row `INSERT`, each into its own
//! database with the same schema, then the same two alternated.

use std::hint::black_box;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::Forwarder;
use authtel_sql::{AuditStore, BatchWriter};
use criterion::{BatchSize, Criterion};
use tokio::runtime::Runtime;

use crate::common::{batch, bench_batch_writer, meta_json, paired, quick, short};
use crate::rows::{load_average, paired_row};

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

pub(crate) fn sqlite_batch(c: &mut Criterion, rt: &Runtime, rows: &mut Vec<String>) {
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
