// The operations both backends share. This file is `include!`d by `sqlite.rs` and
// `postgres.rs` and includes the rest (`common_reads.rs`, `common_outbox.rs`,
// `common_relay.rs`, `common_batch.rs`, `common_status.rs`); each backend provides `Db`, `DbConnection`, `DIALECT`, `migrations`,
// `table_names`, `extra_statements`, `id_list`, `claim_batch`, `record_rows_in`,
// `insert_rows`, `write_batch`, `execute_bookkeeping`, `status_table`, `push_ts`, `push_id`, `prepare_migration_connection` and
// `MIGRATE_ON_OWN_CONNECTION`.

use std::sync::Arc as CommonArc;
use std::sync::atomic::Ordering as AtomicOrdering;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::forward::{ForwardError, ForwardFuture, Forwarder};
use sqlx::Row as _;

use crate::detect::{FailedLoginBurst, FirstSeenIp};
use crate::outbox::{DeadLetter, ForwarderState, Health, PurgeReport, RelayPass};
use crate::query::{AuditQuery, Cursor, Page};
use crate::row::StoredRow;
use crate::store::{AuditStore, AuditStoreBuilder, StoreInner};
use crate::{AuditTx, BatchWriter, Relay, RelayHandle};

/// An outbox entry claimed by the relay, with its record (`None` when the row is gone).
struct ClaimedEntry {
    entry: i64,
    attempts: i64,
    event: Option<AuditEvent>,
}

fn now_micros() -> i64 {
    Timestamp::now().unix_micros()
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn bind_event<'q>(
    q: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
    r: &'q EventRow<'_>,
) -> sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments> {
    let q = q
        .bind(&r.event_id)
        .bind(r.occurred_at)
        .bind(&r.action)
        .bind(r.outcome);
    r.optional_texts()
        .into_iter()
        .fold(q, |q, v| q.bind(v))
        .bind(&r.metadata)
        .bind(r.schema_version)
}

fn stored_row(row: &<Db as sqlx::Database>::Row) -> Result<StoredRow, sqlx::Error> {
    stored_row_at(row, 0)
}

/// The event columns of `row` starting at column `base`.
fn stored_row_at(row: &<Db as sqlx::Database>::Row, base: usize) -> Result<StoredRow, sqlx::Error> {
    Ok(StoredRow {
        event_id: row.try_get(base)?,
        occurred_at: row.try_get(base + 1)?,
        action: row.try_get(base + 2)?,
        outcome: row.try_get(base + 3)?,
        actor_id: row.try_get(base + 4)?,
        actor_type: row.try_get(base + 5)?,
        target_id: row.try_get(base + 6)?,
        target_type: row.try_get(base + 7)?,
        session_id: row.try_get(base + 8)?,
        client_ip: row.try_get(base + 9)?,
        user_agent: row.try_get(base + 10)?,
        resource: row.try_get(base + 11)?,
        operation: row.try_get(base + 12)?,
        reason: row.try_get(base + 13)?,
        span_id: row.try_get(base + 14)?,
        trace_id: row.try_get(base + 15)?,
        tenant_id: row.try_get(base + 16)?,
        metadata: row.try_get(base + 17)?,
        schema_version: row.try_get(base + 18)?,
    })
}

/// Parses a `client_ip` read back by an aggregate query (no single event id to name).
/// Runs a feed statement — `SELECT <position>, <event columns> … WHERE <position> > $1 …
/// LIMIT $2` — and reads its rows as (position, record): the part of `feed_after` both
/// backends share; each backend says what its position is.
async fn read_feed(
    store: &AuditStore<Db>,
    statement: sqlx::SqlStr,
    after: u64,
    limit: u32,
) -> Result<Vec<(u64, AuditEvent)>, SqlError> {
    let rows = sqlx::query(statement)
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit.clamp(1, crate::MAX_PAGE)))
        .fetch_all(&store.pool)
        .await
        .map_err(SqlError::db("read the audit feed"))?;
    rows.iter()
        .map(|r| {
            let pos: i64 = r.try_get(0).map_err(SqlError::db("read a feed position"))?;
            let event = stored_row_at(r, 1)
                .map_err(SqlError::db("read an audit row"))?
                .into_event()?;
            Ok((pos.max(0) as u64, event))
        })
        .collect()
}

/// Runs `SELECT MAX(<position>) …`: the newest feed position, 0 when there is none.
async fn read_feed_head(store: &AuditStore<Db>, statement: sqlx::SqlStr) -> Result<u64, SqlError> {
    sqlx::query_scalar::<Db, Option<i64>>(statement)
        .fetch_one(&store.pool)
        .await
        .map(|n| n.unwrap_or(0).max(0) as u64)
        .map_err(SqlError::db("read the audit feed head"))
}

fn parse_ip(text: String) -> Result<std::net::IpAddr, SqlError> {
    text.parse().map_err(|e| SqlError::CorruptRow {
        event_id: "(grouped rows)".to_owned(),
        problem: format!("client_ip {text:?} does not parse: {e}"),
    })
}

/// The row for `event`: validated and scrubbed (`EventRow::from_event`), with `occurred_at`
/// inside the years 0000 to 9999 that RFC 3339 (the JSON and Kafka form) can carry, so what
/// is stored reads back and exports exactly on both backends.
fn row_of(event: &AuditEvent) -> Result<EventRow<'_>, SqlError> {
    if !(Timestamp::MIN..=Timestamp::MAX).contains(&event.occurred_at()) {
        return Err(SqlError::InvalidEvent {
            event_id: event.id(),
            field: "occurred_at",
            problem: format!(
                "({} µs since the epoch) is outside years 0000 to 9999 UTC",
                event.occurred_at().unix_micros()
            ),
        });
    }
    EventRow::from_event(event)
}

/// The full text of an error and its causes, for the outbox's `last_error`.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    authtel_core::metadata::truncate(&text, 1000).to_owned()
}

impl AuditStoreBuilder<Db> {
    /// The store. Call [`AuditStore::migrate`] once at startup before using it.
    pub fn build(self) -> AuditStore<Db> {
        let (events, outbox, migrations) = table_names(self.schema.as_deref());
        let mut sql = DIALECT.statements(&events, &outbox, &migrations, &self.forwarders);
        extra_statements(&mut sql, &events, &outbox, &self.forwarders);
        AuditStore {
            pool: self.pool,
            inner: CommonArc::new(StoreInner {
                schema: self.schema,
                forwarders: self.forwarders,
                sql,
                partitioned: self.partitioned,
                wake: CommonArc::default(),
            }),
        }
    }
}

impl AuditStore<Db> {
    /// Creates or upgrades the tables (idempotent; safe to run from several instances at
    /// once: sqlx takes a lock). Call it once at startup.
    pub async fn migrate(&self) -> Result<(), SqlError> {
        let migrations = migrations(self.inner.partitioned)
            .iter()
            .map(|(version, description, text)| {
                sqlx::migrate::Migration::new(
                    *version,
                    (*description).into(),
                    sqlx::migrate::MigrationType::Simple,
                    sqlx::SqlSafeStr::into_sql_str(*text),
                    false,
                )
            })
            .collect();
        let migrator = sqlx::migrate::Migrator::with_migrations(migrations);
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(SqlError::db("acquire a connection for migrations"))?;
        // `run_direct` takes the connection itself: `Migrator::run`'s `Acquire<'a>` bound makes
        // this future fail `tokio::spawn`'s Send check with a higher-ranked lifetime error
        // ("implementation of `Acquire` is not general enough"); sqlx keeps `run_direct`
        // public for exactly this. Same migrations, locking and checksum validation.
        if !MIGRATE_ON_OWN_CONNECTION {
            return migrator
                .run_direct(None, &mut *conn, false)
                .await
                .map_err(SqlError::Migrate);
        }
        // A connection of its own: the schema's search_path must not leak into the pool.
        let mut conn = conn.detach();
        prepare_migration_connection(&mut conn, self.schema()).await?;
        let result = migrator
            .run_direct(None, &mut conn, false)
            .await
            .map_err(SqlError::Migrate);
        let _ = sqlx::Connection::close(conn).await;
        result
    }

    /// Checks that `migrate()` has run: [`SqlError::SchemaOutdated`] when the tables are
    /// missing or older than this library.
    pub async fn check_schema(&self) -> Result<(), SqlError> {
        let expected = migrations(self.inner.partitioned).last().map_or(0, |m| m.0);
        let found: i64 = sqlx::query_scalar(self.inner.sql.migration_version.clone())
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0);
        if found < expected {
            return Err(SqlError::SchemaOutdated { found, expected });
        }
        Ok(())
    }

    /// Writes `event` and one outbox entry per configured forwarder inside your
    /// transaction: they commit or roll back with it. Pass `&mut tx` (or any connection).
    /// Recording the same event id twice is a no-op.
    pub async fn record_in(
        &self,
        conn: &mut DbConnection,
        event: &AuditEvent,
    ) -> Result<(), SqlError> {
        let row = row_of(event)?;
        record_rows_in(self, conn, &row, now_micros()).await
    }

    /// Inserts `events` (no outbox entries), skipping ids already stored, and returns how
    /// many were new. For projectors that commit their own offsets after the database
    /// commit: run it inside your transaction.
    pub async fn upsert_batch_in(
        &self,
        conn: &mut DbConnection,
        events: &[AuditEvent],
    ) -> Result<u64, SqlError> {
        let rows = events
            .iter()
            .map(row_of)
            .collect::<Result<Vec<_>, _>>()?;
        insert_rows(self, conn, &rows).await
    }

    /// Begins a transaction on the store's pool that remembers what it records.
    pub async fn begin(&self) -> Result<AuditTx<'static, Db>, SqlError> {
        let tx = self
            .pool
            .begin()
            .await
            .map_err(SqlError::db("begin a transaction"))?;
        Ok(AuditTx::wrap(self, tx))
    }
}

impl AuditTx<'_, Db> {
    /// Records `event` (row + outbox entries) in this transaction.
    pub async fn record(&mut self, event: &AuditEvent) -> Result<(), SqlError> {
        self.store.record_in(&mut self.tx, event).await?;
        self.recorded.push(event.clone());
        Ok(())
    }

    /// Commits, then wakes a relay on this store, and returns the committed records. If
    /// the commit fails, nothing is handed on.
    pub async fn commit(self) -> Result<Vec<AuditEvent>, SqlError> {
        self.commit_then(|_| ()).await
    }

    /// Commits, then calls `then` with the committed records (hand them to a pipeline,
    /// a cache, …) and wakes a relay on this store. `then` never runs when the commit fails.
    pub async fn commit_then<F: FnOnce(&[AuditEvent])>(
        self,
        then: F,
    ) -> Result<Vec<AuditEvent>, SqlError> {
        let AuditTx {
            tx,
            store,
            recorded,
        } = self;
        tx.commit()
            .await
            .map_err(SqlError::db("commit the transaction"))?;
        then(&recorded);
        if !recorded.is_empty() && !store.forwarders().is_empty() {
            store.inner.wake.notify_one();
        }
        Ok(recorded)
    }

    /// Rolls back: the records and their outbox entries are gone with the rest.
    pub async fn rollback(self) -> Result<(), SqlError> {
        self.tx
            .rollback()
            .await
            .map_err(SqlError::db("roll back the transaction"))
    }
}

// The rest, one file per responsibility.
include!("common_reads.rs");
include!("common_outbox.rs");
include!("common_relay.rs");
include!("common_batch.rs");
include!("common_status.rs");
