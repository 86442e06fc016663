//! The PostgreSQL groups' server: the durability settings the run turns on and puts back,
//! checkpoints, the per-group schemas; the groups themselves in `pg/batch.rs` (`sql_pg_batch`),
//! `pg/tx.rs` (`sql_pg_tx`) and `pg/relay.rs` (`sql_pg_relay`).

use std::time::{Duration, Instant};

use authtel_sql::AuditStore;
use sqlx::{Connection as _, PgPool};

#[path = "pg/batch.rs"]
pub(super) mod batch;
#[path = "pg/relay.rs"]
pub(super) mod relay;
#[path = "pg/tx.rs"]
pub(super) mod tx;

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
