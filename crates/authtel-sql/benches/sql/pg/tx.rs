//! `sql_pg_tx`: `begin` + the in-transaction write (audit row + outbox entry) + `commit`,
//! against `begin` + a raw single-row audit insert + `commit`, alternated.

use std::time::Instant;

use authtel_core::audit::AuditEvent;

use super::{Durability, checkpoint, store};
use crate::common::{bench_err, meta_json, quick, record};
use crate::rows::{json_row, load_average, percentile};

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
pub(crate) async fn tx_latency(
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
