//! PostgreSQL: what production runs. `occurred_at` is `timestamptz`, ids `uuid`; the tables
//! may live in their own schema; the relay claims with `FOR UPDATE SKIP LOCKED` so several
//! application instances share the outbox; the batch writer loads with `COPY` and falls back
//! to an idempotent `UNNEST` insert when a batch holds ids already stored.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};

use super::Dialect;
use crate::SqlError;
use crate::row::{EventRow, OPTIONAL_TEXT_COLUMNS};

type Db = Postgres;
type DbConnection = PgConnection;

#[path = "postgres_feed.rs"]
mod feed;
#[path = "postgres_partitions.rs"]
mod partitions;
pub use partitions::{MonthlyPartition, PartitionDrop};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "audit_events",
        include_str!("../../migrations/postgres/0001_audit_events.sql"),
    ),
    (
        2,
        "feed_positions",
        include_str!("../../migrations/postgres/0002_feed_positions.sql"),
    ),
    (
        3,
        "relay_status",
        include_str!("../../migrations/postgres/0003_relay_status.sql"),
    ),
    (
        4,
        "tenant",
        include_str!("../../migrations/postgres/0004_tenant.sql"),
    ),
];

const PARTITIONED_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "audit_events",
        include_str!("../../migrations/postgres_partitioned/0001_audit_events.sql"),
    ),
    (
        2,
        "feed_positions",
        include_str!("../../migrations/postgres_partitioned/0002_feed_positions.sql"),
    ),
    (
        3,
        "relay_status",
        include_str!("../../migrations/postgres_partitioned/0003_relay_status.sql"),
    ),
    (
        4,
        "tenant",
        include_str!("../../migrations/postgres_partitioned/0004_tenant.sql"),
    ),
];

fn migrations(partitioned: bool) -> &'static [(i64, &'static str, &'static str)] {
    if partitioned {
        PARTITIONED_MIGRATIONS
    } else {
        MIGRATIONS
    }
}

pub(crate) const DIALECT: Dialect = Dialect {
    select_columns: "event_id::text, (extract(epoch from occurred_at) * 1000000)::int8, action, \
         outcome, actor_id, actor_type, target_id, target_type, session_id, client_ip, \
         user_agent, resource, operation, reason, span_id, trace_id, tenant_id, metadata, \
         schema_version::int8",
    ts_in: exact_ts,
    ts_out: |e| format!("(extract(epoch from {e}) * 1000000)::int8"),
    id_in: |p| format!("({p})::uuid"),
    id_out: |e| format!("{e}::text"),
    id_in_list: |col, p| format!("{col} = ANY(({p})::uuid[])"),
    int_in_list: |col, p| format!("{col} = ANY({p})"),
    skip_locked: " FOR UPDATE SKIP LOCKED",
};

/// `"schema".` for a store in its own schema, else nothing.
fn schema_prefix(schema: Option<&str>) -> String {
    schema.map(|s| format!("\"{s}\".")).unwrap_or_default()
}

fn table_names(schema: Option<&str>) -> (String, String, String) {
    let prefix = schema_prefix(schema);
    (
        format!("{prefix}audit_events"),
        format!("{prefix}audit_outbox"),
        format!("{prefix}_sqlx_migrations"),
    )
}

/// The relay status table (`common_status.rs`).
fn status_table(schema: Option<&str>) -> String {
    format!("{}audit_relay_status", schema_prefix(schema))
}

fn id_list(ids: &[i64]) -> Vec<i64> {
    ids.to_vec()
}

/// The event columns for the relay's join, prefixed with the events alias `e`.
const JOINED_EVENT_COLUMNS: &str = "e.event_id::text, \
     (extract(epoch from e.occurred_at) * 1000000)::int8, e.action, e.outcome, e.actor_id, \
     e.actor_type, e.target_id, e.target_type, e.session_id, e.client_ip, e.user_agent, \
     e.resource, e.operation, e.reason, e.span_id, e.trace_id, e.tenant_id, e.metadata, \
     e.schema_version::int8";

/// Claims due entries with `FOR UPDATE SKIP LOCKED` and returns them joined with their
/// records, in one round trip.
async fn claim_batch(
    store: &crate::AuditStore<Db>,
    forwarder: &str,
    limit: u32,
    lease_until: i64,
    now: i64,
) -> Result<Vec<ClaimedEntry>, SqlError> {
    let stmt = match &store.inner.sql.claim_and_load {
        Some(stmt) => stmt.clone(),
        None => claim_and_load(&table_names(store.schema())),
    };
    let mut tx = bookkeeping_transaction(store)
        .await
        .map_err(SqlError::db("claim outbox entries"))?;
    let rows = sqlx::query(stmt)
        .bind(lease_until)
        .bind(now)
        .bind(forwarder)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(SqlError::db("claim outbox entries"))?;
    tx.commit()
        .await
        .map_err(SqlError::db("commit claimed outbox entries"))?;
    rows.iter()
        .map(|r| {
            let read = SqlError::db("read claimed outbox entries");
            let (entry, attempts, found): (i64, i64, Option<String>) =
                (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))().map_err(read)?;
            let event = match found {
                Some(_) => Some(
                    stored_row_at(r, 2)
                        .map_err(SqlError::db("read an audit row"))?
                        .into_event()?,
                ),
                None => None,
            };
            Ok(ClaimedEntry {
                entry,
                attempts,
                event,
            })
        })
        .collect()
}

/// A transaction for the relay's own bookkeeping (claims, done/retry/dead marks) that
/// commits without waiting for the WAL flush (`SET LOCAL synchronous_commit = off`; `BEGIN`
/// and the `SET` travel in one round trip). Safe because every such write may be lost without
/// losing a record: only a server crash loses the last few hundred milliseconds of them, and
/// then a claim or a mark is simply redone — the entry is delivered again, which at-least-once
/// delivery with deduplication by event id already allows. Audit rows and outbox entries
/// themselves are never written this way.
async fn bookkeeping_transaction(
    store: &crate::AuditStore<Db>,
) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    store
        .pool
        .begin_with(super::sql(
            "BEGIN; SET LOCAL synchronous_commit = off".to_owned(),
        ))
        .await
}

async fn execute_bookkeeping(
    store: &crate::AuditStore<Db>,
    statement: sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments>,
) -> Result<(), sqlx::Error> {
    let mut tx = bookkeeping_transaction(store).await?;
    statement.execute(&mut *tx).await?;
    tx.commit().await
}

fn claim_and_load((events, outbox, _): &(String, String, String)) -> sqlx::SqlStr {
    super::sql(format!(
        "WITH claimed AS (UPDATE {outbox} SET attempts = attempts + 1, next_attempt_at = $1, \
         updated_at = $2 WHERE id IN (SELECT id FROM {outbox} WHERE forwarder = $3 \
         AND status = 'pending' AND next_attempt_at <= $2 ORDER BY next_attempt_at, id \
         LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id, event_id, attempts) \
         SELECT c.id, c.attempts, {JOINED_EVENT_COLUMNS} FROM claimed c \
         LEFT JOIN {events} e ON e.event_id = c.event_id"
    ))
}

fn extra_statements(stmts: &mut super::Statements, events: &str, outbox: &str, fwd: &[String]) {
    stmts.insert_batch = Some(unnest_insert(events));
    stmts.copy_batch = Some(format!(
        "COPY {events} ({}) FROM STDIN",
        crate::row::COLUMNS
    ));
    stmts.claim_and_load = Some(claim_and_load(&(
        events.to_owned(),
        outbox.to_owned(),
        String::new(),
    )));
    if fwd.is_empty() {
        return;
    }
    let names: Vec<String> = fwd.iter().map(|f| format!("('{f}')")).collect();
    let cols = crate::row::COLUMNS;
    stmts.record_with_outbox = Some(super::sql(format!(
        "WITH ins AS (INSERT INTO {events} ({cols}) VALUES ($1::uuid, \
         {}, $3, $4, $5, $6, $7, $8, $9, \
         $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING RETURNING \
         event_id) INSERT INTO {outbox} (event_id, forwarder, status, attempts, next_attempt_at, \
         created_at, updated_at) SELECT ins.event_id, f.name, 'pending', 0, $20, $20, $20 FROM ins \
         CROSS JOIN (VALUES {}) AS f(name) ON CONFLICT DO NOTHING",
        exact_ts("$2"),
        names.join(", ")
    )));
}

/// Migrations set `search_path` to the store's schema, so they run on a connection that is
/// closed afterwards instead of going back to the pool.
const MIGRATE_ON_OWN_CONNECTION: bool = true;

async fn prepare_migration_connection(
    conn: &mut DbConnection,
    schema: Option<&str>,
) -> Result<(), SqlError> {
    if let Some(schema) = schema {
        // Validated identifier (see AuditStoreBuilder::with_schema).
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\"; SET search_path TO \"{schema}\""
        )))
        .execute(&mut *conn)
        .await
        .map_err(SqlError::db("create the audit schema"))?;
    }
    Ok(())
}

async fn record_rows_in(
    store: &crate::AuditStore<Db>,
    conn: &mut DbConnection,
    row: &EventRow<'_>,
    now: i64,
) -> Result<(), SqlError> {
    match &store.inner.sql.record_with_outbox {
        Some(stmt) => bind_event(sqlx::query(stmt.clone()), row)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(SqlError::db("insert audit event and outbox entries"))?,
        None => bind_event(sqlx::query(store.inner.sql.insert_event.clone()), row)
            .execute(&mut *conn)
            .await
            .map_err(SqlError::db("insert audit event"))?,
    };
    Ok(())
}

async fn insert_rows(
    store: &crate::AuditStore<Db>,
    conn: &mut DbConnection,
    rows: &[EventRow<'_>],
) -> Result<u64, SqlError> {
    if rows.is_empty() {
        return Ok(0);
    }
    // Borrowed columns: one array per column, no per-field copies.
    let ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    let times: Vec<i64> = rows.iter().map(|r| r.occurred_at).collect();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_ref()).collect();
    let outcomes: Vec<&str> = rows.iter().map(|r| r.outcome).collect();
    let metadata: Vec<&str> = rows.iter().map(|r| r.metadata.as_str()).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.schema_version).collect();
    let stmt = match &store.inner.sql.insert_batch {
        Some(stmt) => stmt.clone(),
        None => unnest_insert(&table_names(store.schema()).0),
    };
    let mut texts: [Vec<Option<&str>>; OPTIONAL_TEXT_COLUMNS] =
        std::array::from_fn(|_| Vec::with_capacity(rows.len()));
    for r in rows {
        for (column, v) in texts.iter_mut().zip(r.optional_texts()) {
            column.push(v);
        }
    }
    let q = sqlx::query(stmt)
        .bind(ids)
        .bind(times)
        .bind(actions)
        .bind(outcomes);
    let result = texts
        .into_iter()
        .fold(q, |q, column| q.bind(column))
        .bind(metadata)
        .bind(versions)
        .execute(&mut *conn)
        .await
        .map_err(SqlError::db("insert audit event batch"))?;
    Ok(result.rows_affected())
}

/// The batch writer's path: one `COPY` of the whole batch, the cheapest way into PostgreSQL,
/// on its own (autocommit) so it is atomic. `COPY` cannot skip duplicates: a redelivered
/// batch fails with a unique violation (23505) and leaves nothing behind, and is then written
/// with the idempotent `UNNEST … ON CONFLICT DO NOTHING` insert. A value the text format
/// could not carry (a data exception, class 22: say a timestamp beyond year 9999) takes the
/// same second path, whose error, if any, is the one reported.
async fn write_batch(store: &crate::AuditStore<Db>, rows: &[EventRow<'_>]) -> Result<(), SqlError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut conn = store
        .pool
        .acquire()
        .await
        .map_err(SqlError::db("acquire a connection for an audit batch"))?;
    let Some(copy) = &store.inner.sql.copy_batch else {
        return insert_rows(store, &mut conn, rows).await.map(|_| ());
    };
    match copy_in(&mut conn, copy, super::copy_text::encode(rows)).await {
        Ok(()) => Ok(()),
        Err(sqlx::Error::Database(e))
            if e.code()
                .is_some_and(|c| c == "23505" || c.starts_with("22")) =>
        {
            insert_rows(store, &mut conn, rows).await.map(|_| ())
        }
        Err(e) => Err(SqlError::db("copy an audit batch")(e)),
    }
}

async fn copy_in(conn: &mut DbConnection, stmt: &str, data: Vec<u8>) -> Result<(), sqlx::Error> {
    let mut copy = conn.copy_in_raw(stmt).await?;
    copy.send(data).await?;
    copy.finish().await.map(|_| ())
}

pub(crate) fn unnest_insert(events: &str) -> sqlx::SqlStr {
    super::sql(format!(
        "INSERT INTO {events} ({}) SELECT id::uuid, {}, action, outcome, actor_id, actor_type, target_id, target_type, session_id, client_ip, \
         user_agent, resource, operation, reason, span_id, trace_id, tenant_id, metadata, sv::int4 \
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], \
         $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::int8[]) AS u(id, t, \
         action, outcome, actor_id, actor_type, target_id, target_type, session_id, client_ip, \
         user_agent, resource, operation, reason, span_id, trace_id, tenant_id, metadata, sv) \
         ON CONFLICT DO NOTHING",
        crate::row::COLUMNS,
        exact_ts("t")
    ))
}

/// PostgreSQL SQLSTATE classes that refuse a row: 22 (data exception: bad encoding, value
/// out of range) and 23 (integrity constraint violation).
fn is_data_error_code(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("22") || c.starts_with("23"))
}

/// `timestamptz` from unix microseconds in `p` (an int8 expression), exactly.
///
/// `int8 * interval` multiplies in float8, which has 53 bits: `n * interval '1 microsecond'`
/// rounded 2300-01-01T00:00:00.000001Z to .000000 and 9999-12-31T23:59:59.999999Z to year
/// 10000. Whole seconds times `interval '1 second'` (1e6 = 15625 * 2^6, so the product has
/// at most 53 significant bits for |seconds| < 5.7e11, past year 9999) plus the remaining
/// microseconds is exact; the store refuses times outside years 0000 to 9999 anyway.
fn exact_ts(p: &str) -> String {
    format!(
        "(timestamptz 'epoch' + ({p})::int8 / 1000000 * interval '1 second' \
         + ({p})::int8 % 1000000 * interval '1 microsecond')"
    )
}

fn push_ts(qb: &mut sqlx::QueryBuilder<Db>, micros: i64) {
    qb.push("(timestamptz 'epoch' + ");
    qb.push_bind(micros);
    qb.push("::int8 / 1000000 * interval '1 second' + ");
    qb.push_bind(micros);
    qb.push("::int8 % 1000000 * interval '1 microsecond')");
}

fn push_id(qb: &mut sqlx::QueryBuilder<Db>, id: String) {
    qb.push_bind(id);
    qb.push("::uuid");
}

include!("common.rs");

impl crate::AuditStoreBuilder<Db> {
    /// Keeps the tables in their own PostgreSQL schema (created by `migrate()`), away from
    /// the application's hot tables. Statements name it explicitly, so the caller's own
    /// transactions need no `search_path`.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = authtel_sql::postgres::connect("postgres://postgres@127.0.0.1:54329/postgres").await?;
    /// let store = authtel_sql::AuditStore::builder(pool).with_schema("audit")?.build();
    /// store.migrate().await?;
    /// # Ok(()) }
    /// ```
    pub fn with_schema(mut self, schema: &str) -> Result<Self, SqlError> {
        crate::store::check_schema_name(schema)?;
        self.schema = Some(schema.to_owned());
        Ok(self)
    }
}

impl crate::AuditStoreBuilder<Db> {
    /// Partitions `audit_events` by month of `occurred_at` (PostgreSQL range partitioning),
    /// so retention drops whole partitions instead of deleting rows. Decide before the first
    /// `migrate()`: the schema is created one way or the other, and switching later makes
    /// `migrate()` fail with a checksum mismatch. The primary key becomes
    /// `(event_id, occurred_at)` (see `docs/sql.md`).
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = authtel_sql::postgres::connect("postgres://postgres@127.0.0.1:54329/postgres").await?;
    /// let store = authtel_sql::AuditStore::builder(pool).with_schema("audit")?.with_monthly_partitions().build();
    /// store.migrate().await?;
    /// store.create_partitions(3).await?; // this month and the next three
    /// # Ok(()) }
    /// ```
    pub fn with_monthly_partitions(mut self) -> Self {
        self.partitioned = true;
        self
    }
}

/// Opens a PostgreSQL pool (at most 8 connections, 10 s acquire timeout).
///
/// The first connection is opened directly, so a refused port, an unknown host or a refused
/// login fails at once with [`SqlError::Connect`] naming `host:port`, database and user (never
/// the password) and the driver's reason, instead of the pool retrying until it times out. A
/// URL that is not `postgres://` or `postgresql://` is [`SqlError::InvalidUrl`], and so is
/// `sslmode=require` (or `verify-ca`, `verify-full`) without the `postgres-tls` feature; the
/// default `sslmode=prefer` connects in plain text when TLS is not compiled in.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = authtel_sql::postgres::connect("postgres://postgres@127.0.0.1:54329/postgres").await.unwrap();
/// # }
/// ```
pub async fn connect(url: &str) -> Result<PgPool, SqlError> {
    use sqlx::ConnectOptions;
    let invalid = |problem: String| SqlError::InvalidUrl {
        backend: "PostgreSQL",
        url: crate::error::redact_url(url),
        problem,
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(invalid(
            "it must start with postgres:// or postgresql://".to_owned(),
        ));
    }
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| invalid(e.to_string()))?;
    #[cfg(not(feature = "postgres-tls"))]
    if matches!(
        options.get_ssl_mode(),
        sqlx::postgres::PgSslMode::Require
            | sqlx::postgres::PgSslMode::VerifyCa
            | sqlx::postgres::PgSslMode::VerifyFull
    ) {
        return Err(invalid(
            "its sslmode needs TLS, which authtel-sql is built without: enable its \
             `postgres-tls` feature"
                .to_owned(),
        ));
    }
    let target = match options.get_socket() {
        Some(socket) => format!("socket {}", socket.display()),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    let target = format!(
        "{target} (database {}, user {})",
        options.get_database().unwrap_or(options.get_username()),
        options.get_username()
    );
    let connect_error = |cause| SqlError::Connect {
        backend: "PostgreSQL",
        target: target.clone(),
        cause,
    };
    let first = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            )))
        })
        .map_err(connect_error)?;
    drop(first);
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(connect_error)
}

/// How long `connect` waits for the server, and the pool's acquire timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
