//! `sql_pg_relay`: outbox entries per second through the relay to a no-op forwarder.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_sql::{BatchWriter, Relay, RelayConfig};

use super::{Durability, checkpoint, store};
use crate::common::{BATCH, batch, bench_err, quick};
use crate::rows::{json_row, load_average};

#[derive(Debug)]
struct Noop;
impl Forwarder for Noop {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        black_box(batch);
        Box::pin(async { Ok(()) })
    }
}

pub(crate) async fn relay_throughput(
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
