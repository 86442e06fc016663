//! `sql_pg_batch`: the batch writer against a raw text `COPY` of the same rows into a table
//! with the same keys and indexes, then the same two alternated.

use std::hint::black_box;
use std::io::Write as _;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::Forwarder;
use authtel_sql::BatchWriter;
use criterion::{BatchSize, Criterion};
use sqlx::PgPool;
use tokio::runtime::Runtime;

use super::{Durability, checkpoint, store};
use crate::common::{batch, bench_batch_writer, bench_err, meta_json, paired, quick, short};
use crate::rows::{load_average, paired_row};

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

pub(crate) fn batch_group(
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
