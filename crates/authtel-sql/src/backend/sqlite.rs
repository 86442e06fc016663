//! SQLite: the embedded default. Times are INTEGER unix microseconds, ids TEXT; list
//! parameters travel as one JSON array read with `json_each`, so every statement is static.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool};

use super::Dialect;
use crate::SqlError;
use crate::row::EventRow;

type Db = Sqlite;
type DbConnection = SqliteConnection;

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "audit_events",
    include_str!("../../migrations/sqlite/0001_audit_events.sql"),
)];

fn migrations(_partitioned: bool) -> &'static [(i64, &'static str, &'static str)] {
    MIGRATIONS
}

pub(crate) const DIALECT: Dialect = Dialect {
    select_columns: crate::row::COLUMNS,
    ts_in: |p| p.to_owned(),
    ts_out: |e| e.to_owned(),
    id_in: |p| p.to_owned(),
    id_out: |e| e.to_owned(),
    id_in_list: |col, p| format!("{col} IN (SELECT value FROM json_each({p}))"),
    int_in_list: |col, p| format!("{col} IN (SELECT value FROM json_each({p}))"),
    skip_locked: "",
};

/// Rows per multi-row INSERT: 18 columns x 500 rows stays far below SQLite's 32766
/// bound-variable limit.
const CHUNK_ROWS: usize = 500;

fn table_names(_schema: Option<&str>) -> (String, String, String) {
    (
        "audit_events".to_owned(),
        "audit_outbox".to_owned(),
        "_sqlx_migrations".to_owned(),
    )
}

fn extra_statements(_: &mut super::Statements, _: &str, _: &str, _: &[String]) {}

fn id_list(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

fn uuid_list(ids: &[String]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned())
}

/// Claims due entries (one UPDATE … RETURNING under SQLite's single writer lock), then loads
/// their records.
async fn claim_batch(
    store: &crate::AuditStore<Db>,
    forwarder: &str,
    limit: u32,
    lease_until: i64,
    now: i64,
) -> Result<Vec<ClaimedEntry>, SqlError> {
    let rows = sqlx::query(store.inner.sql.claim.clone())
        .bind(lease_until)
        .bind(now)
        .bind(forwarder)
        .bind(i64::from(limit))
        .fetch_all(&store.pool)
        .await
        .map_err(SqlError::db("claim outbox entries"))?;
    let claimed: Vec<(i64, String, i64)> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(SqlError::db("read claimed outbox entries"))?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = claimed.iter().map(|c| c.1.clone()).collect();
    let rows = sqlx::query(store.inner.sql.load_events.clone())
        .bind(uuid_list(&ids))
        .fetch_all(&store.pool)
        .await
        .map_err(SqlError::db("load audit events for the relay"))?;
    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        let row = stored_row(r).map_err(SqlError::db("read an audit row"))?;
        by_id.insert(row.event_id.clone(), row.into_event()?);
    }
    Ok(claimed
        .into_iter()
        .map(|(entry, event_id, attempts)| ClaimedEntry {
            entry,
            attempts,
            event: by_id.remove(&event_id),
        })
        .collect())
}

/// Migrations run on a pooled connection: an in-memory database lives and dies with its
/// one connection, so it must not be detached and closed.
const MIGRATE_ON_OWN_CONNECTION: bool = false;

async fn prepare_migration_connection(
    _conn: &mut DbConnection,
    _schema: Option<&str>,
) -> Result<(), SqlError> {
    Ok(())
}

async fn record_rows_in(
    store: &crate::AuditStore<Db>,
    conn: &mut DbConnection,
    row: &EventRow<'_>,
    now: i64,
) -> Result<(), SqlError> {
    let inserted = bind_event(sqlx::query(store.inner.sql.insert_event.clone()), row)
        .execute(&mut *conn)
        .await
        .map_err(SqlError::db("insert audit event"))?
        .rows_affected();
    // A duplicate id was recorded earlier together with its outbox entries.
    if inserted == 1
        && let Some(insert_outbox) = &store.inner.sql.insert_outbox
    {
        sqlx::query(insert_outbox.clone())
            .bind(&row.event_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(SqlError::db("insert audit outbox entries"))?;
    }
    Ok(())
}

async fn insert_rows(
    store: &crate::AuditStore<Db>,
    conn: &mut DbConnection,
    rows: &[EventRow<'_>],
) -> Result<u64, SqlError> {
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK_ROWS) {
        let mut qb = sqlx::QueryBuilder::<Db>::new(format!(
            "INSERT INTO audit_events ({}) ",
            crate::row::COLUMNS
        ));
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.event_id)
                .push_bind(r.occurred_at)
                .push_bind(&r.action)
                .push_bind(r.outcome)
                .push_bind(&r.actor_id)
                .push_bind(&r.actor_type)
                .push_bind(&r.target_id)
                .push_bind(&r.target_type)
                .push_bind(&r.session_id)
                .push_bind(&r.client_ip)
                .push_bind(&r.user_agent)
                .push_bind(&r.resource)
                .push_bind(&r.operation)
                .push_bind(&r.reason)
                .push_bind(&r.span_id)
                .push_bind(&r.trace_id)
                .push_bind(&r.metadata)
                .push_bind(r.schema_version);
        });
        qb.push(" ON CONFLICT DO NOTHING");
        inserted += qb
            .build()
            .persistent(true)
            .execute(&mut *conn)
            .await
            .map_err(SqlError::db("insert audit event batch"))?
            .rows_affected();
    }
    let _ = store;
    Ok(inserted)
}

fn push_ts(qb: &mut sqlx::QueryBuilder<Db>, micros: i64) {
    qb.push_bind(micros);
}

fn push_id(qb: &mut sqlx::QueryBuilder<Db>, id: String) {
    qb.push_bind(id);
}

include!("common.rs");

/// Opens a SQLite pool the way the store expects: WAL journal, `synchronous = NORMAL`,
/// a 5 s busy timeout, the file created when missing. `url` is a path or a `sqlite:` URL;
/// `sqlite::memory:` gets a single connection (each connection would see its own database).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await.unwrap();
/// assert_eq!(pool.options().get_max_connections(), 1);
/// # }
/// ```
pub async fn connect(url: &str) -> Result<SqlitePool, SqlError> {
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let url = if url.starts_with("sqlite:") {
        url.to_owned()
    } else {
        format!("sqlite://{url}")
    };
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(SqlError::db("parse the SQLite URL"))?
        .create_if_missing(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    SqlitePoolOptions::new()
        .max_connections(if memory { 1 } else { 4 })
        .connect_with(options)
        .await
        .map_err(SqlError::db("open the SQLite database"))
}
