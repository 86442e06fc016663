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

#[path = "sql/common.rs"]
mod common;
#[cfg(feature = "postgres")]
#[path = "sql/pg.rs"]
mod pg;
#[path = "sql/rows.rs"]
mod rows;
#[path = "sql/sqlite.rs"]
mod sqlite;

use criterion::Criterion;

use crate::rows::write_jsonl;
use crate::sqlite::sqlite_batch;

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
                pg::batch::batch_group(&mut c, &rt, &url, &durability, &mut rows);
                rt.block_on(async {
                    if let Err(e) = pg::tx::tx_latency(&url, &durability, &mut rows).await {
                        eprintln!("sql_pg_tx skipped: {e}");
                    }
                    if let Err(e) = pg::relay::relay_throughput(&url, &durability, &mut rows).await
                    {
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
