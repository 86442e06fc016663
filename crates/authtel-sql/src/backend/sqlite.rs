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

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "audit_events",
        include_str!("../../migrations/sqlite/0001_audit_events.sql"),
    ),
    (
        2,
        "relay_status",
        include_str!("../../migrations/sqlite/0002_relay_status.sql"),
    ),
    (
        3,
        "tenant",
        include_str!("../../migrations/sqlite/0003_tenant.sql"),
    ),
];

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

/// Rows per multi-row INSERT: 19 columns x 500 rows stays far below SQLite's 32766
/// bound-variable limit.
const CHUNK_ROWS: usize = 500;

fn table_names(_schema: Option<&str>) -> (String, String, String) {
    (
        "audit_events".to_owned(),
        "audit_outbox".to_owned(),
        "_sqlx_migrations".to_owned(),
    )
}

/// The relay status table (`common_status.rs`).
fn status_table(_schema: Option<&str>) -> String {
    "audit_relay_status".to_owned()
}

fn extra_statements(stmts: &mut super::Statements, events: &str, _: &str, _: &[String]) {
    stmts.insert_chunk = Some(multirow_insert(events, CHUNK_ROWS));
}

/// An insert of `rows` rows with positional parameters in `bind_event` order, skipping ids
/// already stored (`ON CONFLICT DO NOTHING` ignores only the unique key, unlike `OR IGNORE`).
fn multirow_insert(events: &str, rows: usize) -> sqlx::SqlStr {
    let columns = crate::row::COLUMNS.split(',').count();
    let row = format!("({})", vec!["?"; columns].join(", "));
    super::sql(format!(
        "INSERT INTO {events} ({}) VALUES {} ON CONFLICT DO NOTHING",
        crate::row::COLUMNS,
        vec![row.as_str(); rows].join(", ")
    ))
}

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

/// The relay's bookkeeping statements run on their own: SQLite syncs WAL commits only at
/// checkpoints with `synchronous = NORMAL` anyway.
async fn execute_bookkeeping(
    store: &crate::AuditStore<Db>,
    statement: sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments>,
) -> Result<(), sqlx::Error> {
    statement.execute(&store.pool).await.map(|_| ())
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
        // Full chunks reuse one statement text (prepared once per connection, cached by
        // sqlx); only a batch's last, shorter chunk needs its own.
        let stmt = match &store.inner.sql.insert_chunk {
            Some(full) if chunk.len() == CHUNK_ROWS => full.clone(),
            _ => multirow_insert(&table_names(None).0, chunk.len()),
        };
        let query = chunk
            .iter()
            .fold(sqlx::query(stmt), |q, row| bind_shared(q, row));
        inserted += query
            .execute(&mut *conn)
            .await
            .map_err(SqlError::db("insert audit event batch"))?
            .rows_affected();
    }
    Ok(inserted)
}

/// Binds `r` like `bind_event`, with text as `Arc<str>`, which sqlx hands to SQLite without
/// another copy: one allocation per value where `&str` costs two (a `String`, then its `Arc`).
fn bind_shared<'q>(
    q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    r: &EventRow<'_>,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    use std::sync::Arc;
    let text = |v: &str| -> Arc<str> { Arc::from(v) };
    let q = q
        .bind(text(&r.event_id))
        .bind(r.occurred_at)
        .bind(text(&r.action))
        .bind(text(r.outcome));
    r.optional_texts()
        .into_iter()
        .fold(q, |q, v| q.bind(v.map(text)))
        .bind(text(&r.metadata))
        .bind(r.schema_version)
}

/// A batch that fits one statement runs it on its own: a single statement is atomic and
/// commits by itself, which spares the `BEGIN` and `COMMIT` trips to the connection's worker
/// thread. Longer batches take one transaction, so they too are all or nothing and SQLite
/// syncs once.
async fn write_batch(store: &crate::AuditStore<Db>, rows: &[EventRow<'_>]) -> Result<(), SqlError> {
    if rows.len() <= CHUNK_ROWS {
        let mut conn = store
            .pool
            .acquire()
            .await
            .map_err(SqlError::db("acquire a connection for an audit batch"))?;
        return insert_rows(store, &mut conn, rows).await.map(|_| ());
    }
    let mut tx = store
        .pool
        .begin()
        .await
        .map_err(SqlError::db("begin a batch transaction"))?;
    insert_rows(store, &mut tx, rows).await?;
    tx.commit()
        .await
        .map_err(SqlError::db("commit an audit batch"))
}

/// SQLite result codes (primary part) that refuse a row: SQLITE_TOOBIG (18),
/// SQLITE_CONSTRAINT (19, triggers' RAISE included), SQLITE_MISMATCH (20).
fn is_data_error_code(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| matches!(c & 0xff, 18..=20))
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
/// An empty path is [`SqlError::InvalidUrl`]; a file that cannot be opened or created is
/// [`SqlError::Connect`] naming the path.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await.unwrap();
/// assert_eq!(pool.options().get_max_connections(), 1);
/// assert!(authtel_sql::sqlite::connect("").await.is_err());
/// # }
/// ```
pub async fn connect(url: &str) -> Result<SqlitePool, SqlError> {
    let invalid = |problem: &str| SqlError::InvalidUrl {
        backend: "SQLite",
        url: url.to_owned(),
        problem: problem.to_owned(),
    };
    let memory = url.contains(":memory:") || url.contains("mode=memory");
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = path.split('?').next().unwrap_or_default();
    if !memory && path.trim().is_empty() {
        return Err(invalid(
            "the path is empty; pass a file path, a sqlite: URL or sqlite::memory:",
        ));
    }
    let url = if url.starts_with("sqlite:") {
        url.to_owned()
    } else {
        format!("sqlite://{url}")
    };
    let options = SqliteConnectOptions::from_str(&url)
        .map_err(|e| invalid(&e.to_string()))?
        .create_if_missing(true)
        .journal_mode(if memory {
            SqliteJournalMode::Memory
        } else {
            SqliteJournalMode::Wal
        })
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let target = if memory {
        "an in-memory database".to_owned()
    } else {
        format!("{:?}", options.get_filename())
    };
    SqlitePoolOptions::new()
        .max_connections(if memory { 1 } else { 4 })
        .connect_with(options)
        .await
        .map_err(|cause| SqlError::Connect {
            backend: "SQLite",
            target,
            cause,
        })
}

impl crate::AuditStore<Db> {
    /// Up to `limit` records stored after position `after`, in the order they were
    /// committed, each with its position (SQLite's `rowid`; 0 is before the first record).
    ///
    /// SQLite has one writer at a time and assigns the rowid inside the writing transaction,
    /// so positions grow in commit order: a reader that resumes after the last position it
    /// saw gets exactly the records it has not seen — no gaps, no repeats — for as long as
    /// they are stored. This is what a live stream resumes on (the console's SSE event ids).
    /// Two caveats: purging the newest record lets SQLite hand its rowid out again, and
    /// `VACUUM` may renumber rows (after either, a resuming reader may see a repeat or miss a
    /// record; a purge never deletes the newest rows in practice).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use authtel_core::{audit::AuditEvent, Outcome};
    /// let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await?).build();
    /// store.migrate().await?;
    /// assert_eq!(store.feed_head().await?, 0);
    /// let mut tx = store.begin().await?;
    /// tx.record(&AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()).await?;
    /// tx.commit().await?;
    /// let head = store.feed_head().await?;
    /// let seen = store.feed_after(0, 10).await?;
    /// assert_eq!(seen.len(), 1);
    /// assert_eq!(seen[0].0, head);
    /// assert!(store.feed_after(head, 10).await?.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn feed_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, authtel_core::audit::AuditEvent)>, SqlError> {
        let sql = super::sql(format!(
            "SELECT rowid, {} FROM audit_events WHERE rowid > ? ORDER BY rowid LIMIT ?",
            crate::row::COLUMNS
        ));
        read_feed(self, sql, after, limit).await
    }

    /// The position of the newest stored record (0 when there is none): a live reader that
    /// wants only what comes next starts [`feed_after`](Self::feed_after) here.
    pub async fn feed_head(&self) -> Result<u64, SqlError> {
        let sql = super::sql("SELECT MAX(rowid) FROM audit_events".to_owned());
        read_feed_head(self, sql).await
    }
}
