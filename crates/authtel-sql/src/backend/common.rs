// The operations both backends share. This file is `include!`d by `sqlite.rs` and
// `postgres.rs`; each provides `Db`, `DbConnection`, `DIALECT`, `migrations`,
// `table_names`, `extra_statements`, `id_list`, `claim_batch`, `record_rows_in`,
// `insert_rows`, `write_batch`, `execute_bookkeeping`, `push_ts`, `push_id`, `prepare_migration_connection` and
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
        metadata: row.try_get(base + 16)?,
        schema_version: row.try_get(base + 17)?,
    })
}

/// Parses a `client_ip` read back by an aggregate query (no single event id to name).
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
    if !(Timestamp::MIN..=Timestamp::MAX).contains(&event.occurred_at) {
        return Err(SqlError::InvalidEvent {
            event_id: event.id,
            field: "occurred_at",
            problem: format!(
                "({} µs since the epoch) is outside years 0000 to 9999 UTC",
                event.occurred_at.unix_micros()
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
        let event = crate::row::screen(event)?;
        let row = row_of(&event)?;
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
        let events = crate::row::screen_all(events)?;
        let rows = events
            .iter()
            .map(|e| row_of(e))
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

    /// One page of records matching `q`, oldest first, and the cursor of the next page.
    pub async fn query(&self, q: &AuditQuery) -> Result<Page, SqlError> {
        let mut qb = sqlx::QueryBuilder::<Db>::new(self.inner.sql.select_events.clone());
        qb.push(" WHERE 1 = 1");
        if let Some(actor) = &q.actor_id {
            qb.push(" AND actor_id = ").push_bind(actor.clone());
        }
        if let Some(ip) = q.client_ip {
            qb.push(" AND client_ip = ").push_bind(ip.to_string());
        }
        if let Some(action) = &q.action {
            qb.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(outcome) = q.outcome {
            qb.push(" AND outcome = ").push_bind(outcome.as_str());
        }
        if let Some(from) = q.from {
            qb.push(" AND occurred_at >= ");
            push_ts(&mut qb, from.unix_micros());
        }
        if let Some(until) = q.until {
            qb.push(" AND occurred_at < ");
            push_ts(&mut qb, until.unix_micros());
        }
        if let Some(after) = q.after {
            qb.push(" AND (occurred_at, event_id) > (");
            push_ts(&mut qb, after.occurred_at);
            qb.push(", ");
            push_id(&mut qb, after.event_id.hyphenated().to_string());
            qb.push(")");
        }
        let limit = q.page_size();
        qb.push(" ORDER BY occurred_at, event_id LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb
            .build()
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query audit events"))?;
        let events = rows
            .iter()
            .map(|r| {
                stored_row(r)
                    .map_err(SqlError::db("read an audit row"))?
                    .into_event()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = (events.len() == limit as usize)
            .then(|| events.last().map(Cursor::after_event))
            .flatten();
        Ok(Page { events, next })
    }

    /// Every record matching `q` (its cursor and limit are the starting point and page
    /// size), one JSON object per line, paging through the table so memory stays bounded.
    /// Returns the number of records written.
    pub async fn export_ndjson<W: std::io::Write>(
        &self,
        q: &AuditQuery,
        mut out: W,
    ) -> Result<u64, SqlError> {
        let mut q = q.clone();
        if q.limit.is_none() {
            q.limit = Some(1000);
        }
        let mut written = 0u64;
        loop {
            let page = self.query(&q).await?;
            for e in &page.events {
                let io = |cause| SqlError::Export { written, cause };
                serde_json::to_writer(&mut out, e).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
                written += 1;
            }
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        out.flush()
            .map_err(|cause| SqlError::Export { written, cause })?;
        Ok(written)
    }

    /// Client IPs with at least `min_failures` failed logins
    /// ([`FAILED_LOGIN_ACTIONS`](crate::detect::FAILED_LOGIN_ACTIONS)) since `since`, most
    /// failures first.
    pub async fn failed_login_bursts(
        &self,
        since: Timestamp,
        min_failures: u64,
    ) -> Result<Vec<FailedLoginBurst>, SqlError> {
        let rows = sqlx::query(self.inner.sql.failed_login_bursts.clone())
            .bind(since.unix_micros())
            .bind(i64::try_from(min_failures).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query failed-login bursts"))?;
        rows.iter()
            .map(|r| {
                let read = SqlError::db("read a failed-login burst");
                let (ip, n, first, last): (String, i64, i64, i64) =
                    (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))()
                        .map_err(read)?;
                Ok(FailedLoginBurst {
                    client_ip: parse_ip(ip)?,
                    failures: n.max(0) as u64,
                    first_at: Timestamp::from_unix_micros(first),
                    last_at: Timestamp::from_unix_micros(last),
                })
            })
            .collect()
    }

    /// Successful logins from an IP the user had never logged in from before `since`
    /// (run with `since` = now minus one day for "first-seen IPs in the last day").
    pub async fn first_seen_ips(&self, since: Timestamp) -> Result<Vec<FirstSeenIp>, SqlError> {
        let rows = sqlx::query(self.inner.sql.first_seen_ips.clone())
            .bind(since.unix_micros())
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query first-seen IPs"))?;
        rows.iter()
            .map(|r| {
                let (actor, ip, first): (String, String, i64) =
                    (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))()
                        .map_err(SqlError::db("read a first-seen IP"))?;
                Ok(FirstSeenIp {
                    actor_id: actor,
                    client_ip: parse_ip(ip)?,
                    first_seen: Timestamp::from_unix_micros(first),
                })
            })
            .collect()
    }

    /// Successful MFA disables since `since`, oldest first.
    pub async fn mfa_disables(&self, since: Timestamp) -> Result<Vec<AuditEvent>, SqlError> {
        self.collect(
            AuditQuery::new()
                .action(crate::detect::MFA_DISABLE_ACTION)
                .outcome(authtel_core::Outcome::Success)
                .from(since),
        )
        .await
    }

    /// Lockouts ([`LOCKOUT_ACTIONS`](crate::detect::LOCKOUT_ACTIONS)) since `since`, oldest
    /// first.
    pub async fn lockouts(&self, since: Timestamp) -> Result<Vec<AuditEvent>, SqlError> {
        let mut all = Vec::new();
        for action in crate::detect::LOCKOUT_ACTIONS {
            all.extend(self.collect(AuditQuery::new().action(action).from(since)).await?);
        }
        all.sort_by_key(|e| (e.occurred_at, e.id));
        Ok(all)
    }

    async fn collect(&self, mut q: AuditQuery) -> Result<Vec<AuditEvent>, SqlError> {
        q.limit = Some(crate::query::MAX_PAGE);
        let mut all = Vec::new();
        loop {
            let page = self.query(&q).await?;
            all.extend(page.events);
            match page.next {
                Some(c) => q.after = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Per-forwarder delivery state: pending, dead-lettered, done, and lag (age of the
    /// oldest pending entry).
    pub async fn delivery_state(&self) -> Result<Vec<ForwarderState>, SqlError> {
        let rows = sqlx::query(self.inner.sql.delivery_state.clone())
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query outbox delivery state"))?;
        let now = now_micros();
        rows.iter()
            .map(|r| {
                let (forwarder, pending, dead, done, oldest): (String, i64, i64, i64, Option<i64>) =
                    (|| {
                        Ok((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            r.try_get(3)?,
                            r.try_get(4)?,
                        ))
                    })()
                    .map_err(SqlError::db("read outbox delivery state"))?;
                let lag = oldest.map_or(0, |t| (now - t).max(0)) as u64;
                Ok(ForwarderState {
                    forwarder,
                    pending: pending as u64,
                    dead: dead as u64,
                    done: done as u64,
                    lag: std::time::Duration::from_micros(lag),
                })
            })
            .collect()
    }

    /// Dead-lettered entries of `forwarder`, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        forwarder: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, SqlError> {
        let rows = sqlx::query(self.inner.sql.dead_letters.clone())
            .bind(forwarder)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("query dead letters"))?;
        rows.iter()
            .map(|r| {
                let (id, forwarder, attempts, reason, at): (String, String, i64, String, i64) =
                    (|| {
                        Ok((
                            r.try_get(0)?,
                            r.try_get(1)?,
                            r.try_get(2)?,
                            r.try_get(3)?,
                            r.try_get(4)?,
                        ))
                    })()
                    .map_err(SqlError::db("read a dead letter"))?;
                Ok(DeadLetter {
                    event_id: id.parse().map_err(|e| SqlError::CorruptRow {
                        event_id: id.clone(),
                        problem: format!("outbox event_id is not a UUID: {e}"),
                    })?,
                    forwarder,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    reason,
                    at: Timestamp::from_unix_micros(at),
                })
            })
            .collect()
    }

    /// Puts every dead-lettered entry of `forwarder` back in the queue with a fresh attempt
    /// budget (after fixing the destination). Returns how many.
    pub async fn requeue_dead(&self, forwarder: &str) -> Result<u64, SqlError> {
        sqlx::query(self.inner.sql.requeue_dead.clone())
            .bind(forwarder)
            .bind(now_micros())
            .execute(&self.pool)
            .await
            .map(|r| r.rows_affected())
            .map_err(SqlError::db("requeue dead letters"))
    }

    /// Deletes audit rows older than `cutoff` (skipping rows still pending delivery) and
    /// finished outbox entries last touched before it, `batch` rows per statement so writers
    /// are never blocked for long. With `dry_run`, only counts.
    pub async fn purge_older_than(
        &self,
        cutoff: Timestamp,
        batch: u32,
        dry_run: bool,
    ) -> Result<PurgeReport, SqlError> {
        let t = cutoff.unix_micros();
        let count = |stmt: &sqlx::SqlStr| {
            let stmt = stmt.clone();
            async move {
                sqlx::query_scalar::<Db, i64>(stmt)
                    .bind(t)
                    .fetch_one(&self.pool)
                    .await
                    .map(|n| n.max(0) as u64)
                    .map_err(SqlError::db("count rows to purge"))
            }
        };
        if dry_run {
            return Ok(PurgeReport {
                events: count(&self.inner.sql.count_purge_events).await?,
                outbox: count(&self.inner.sql.count_purge_outbox).await?,
            });
        }
        let batch = i64::from(batch.max(1));
        let mut report = PurgeReport::default();
        for (stmt, total) in [
            (&self.inner.sql.purge_outbox, &mut report.outbox),
            (&self.inner.sql.purge_events, &mut report.events),
        ] {
            loop {
                let n = sqlx::query(stmt.clone())
                    .bind(t)
                    .bind(batch)
                    .execute(&self.pool)
                    .await
                    .map_err(SqlError::db("purge old audit rows"))?
                    .rows_affected();
                *total += n;
                if n < batch as u64 {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Whether the database answers and every forwarder's lag is under `max_lag`.
    pub async fn health(&self, max_lag: std::time::Duration) -> Result<Health, SqlError> {
        let states = self.delivery_state().await?;
        let lag = states.iter().map(|s| s.lag).max().unwrap_or_default();
        Ok(Health {
            max_lag: lag,
            dead: states.iter().map(|s| s.dead).sum(),
            ok: lag <= max_lag,
        })
    }

    async fn update_entries(
        &self,
        ids: &[i64],
        status: &str,
        next_attempt_at: i64,
        error: Option<&str>,
    ) -> Result<(), SqlError> {
        if ids.is_empty() {
            return Ok(());
        }
        let update = sqlx::query(self.inner.sql.update_entries.clone())
            .bind(status)
            .bind(next_attempt_at)
            .bind(error)
            .bind(now_micros())
            .bind(id_list(ids));
        execute_bookkeeping(self, update)
            .await
            .map_err(SqlError::db("update outbox entries"))
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

impl Relay<Db> {
    /// One pass: for each forwarder, claim up to a batch of due entries, deliver them, and
    /// record the result. Returns what it did.
    pub async fn run_once(&self) -> Result<RelayPass, SqlError> {
        let mut total = RelayPass::default();
        for (id, forwarder) in &self.forwarders {
            total.add(self.deliver_batch(id, forwarder.as_ref()).await?);
        }
        let stats = &self.stats;
        stats.delivered.fetch_add(total.delivered, AtomicOrdering::Relaxed);
        stats.retried.fetch_add(total.retried, AtomicOrdering::Relaxed);
        stats.dead.fetch_add(total.dead, AtomicOrdering::Relaxed);
        Ok(total)
    }

    async fn deliver_batch(
        &self,
        id: &str,
        forwarder: &dyn Forwarder,
    ) -> Result<RelayPass, SqlError> {
        let store = &self.store;
        let now = now_micros();
        let claimed = claim_batch(
            store,
            id,
            self.config.batch_size,
            now + micros(self.config.lease),
            now,
        )
        .await?;
        let mut pass = RelayPass {
            claimed: claimed.len() as u64,
            ..RelayPass::default()
        };
        let mut batch = Vec::with_capacity(claimed.len());
        let mut entries = Vec::with_capacity(claimed.len());
        let mut orphans = Vec::new();
        for c in claimed {
            match c.event {
                Some(event) => {
                    batch.push(event);
                    entries.push((c.entry, c.attempts));
                }
                None => orphans.push(c.entry),
            }
        }
        if !orphans.is_empty() {
            store
                .update_entries(&orphans, "dead", now, Some("the audit row is missing (purged?)"))
                .await?;
            pass.dead += orphans.len() as u64;
        }
        if batch.is_empty() {
            return Ok(pass);
        }
        let result = crate::relay::forward_catching(
            id,
            forwarder,
            &batch,
            self.config.forward_timeout,
            &self.stats,
        )
        .await;
        let done_at = now_micros();
        match result {
            Ok(()) => {
                let ids: Vec<i64> = entries.iter().map(|e| e.0).collect();
                store.update_entries(&ids, "done", done_at, None).await?;
                pass.delivered += ids.len() as u64;
            }
            Err(e) => {
                let reason = error_chain(&e);
                let max = i64::from(self.config.retry.max_attempts());
                let mut dead = Vec::new();
                let mut retry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                for (entry, attempts) in entries {
                    if !e.is_transient() || attempts >= max {
                        dead.push(entry);
                    } else {
                        retry.entry(attempts).or_default().push(entry);
                    }
                }
                let dead_reason = if e.is_transient() {
                    format!("gave up after {max} attempts: {reason}")
                } else {
                    reason.clone()
                };
                store
                    .update_entries(&dead, "dead", done_at, Some(&dead_reason))
                    .await?;
                pass.dead += dead.len() as u64;
                for (attempts, ids) in retry {
                    let delay = self.config.retry.delay_after(attempts.clamp(1, 64) as u32);
                    store
                        .update_entries(&ids, "pending", done_at + micros(delay), Some(&reason))
                        .await?;
                    pass.retried += ids.len() as u64;
                }
                tracing::warn!(
                    forwarder = id,
                    error = %reason,
                    retried = pass.retried,
                    dead = pass.dead,
                    "audit outbox delivery failed"
                );
            }
        }
        Ok(pass)
    }

    /// Runs the relay on the current tokio runtime until [`RelayHandle::shutdown`]. It
    /// passes again at once while there is work, waits for a commit on the same store or
    /// the poll interval when idle, and logs and counts database errors without stopping.
    pub fn spawn(self) -> RelayHandle {
        let stop = CommonArc::new(tokio::sync::Notify::new());
        let wake = self.store.inner.wake.clone();
        let stats = self.stats.clone();
        let task_stop = stop.clone();
        let task_wake = wake.clone();
        let task = tokio::spawn(async move {
            loop {
                // Forwarder panics are caught per call; this catches any other panic in a
                // pass, so the task never dies silently.
                let pass = crate::relay::CatchUnwind(Box::pin(self.run_once())).await;
                let busy = match pass {
                    Ok(Ok(pass)) => pass.claimed > 0,
                    Ok(Err(e)) => {
                        self.stats.errors.fetch_add(1, AtomicOrdering::Relaxed);
                        tracing::warn!(error = %error_chain(&e), "audit outbox relay pass failed");
                        false
                    }
                    Err(payload) => {
                        self.stats.panics.fetch_add(1, AtomicOrdering::Relaxed);
                        tracing::error!(
                            reason = crate::relay::panic_text(&*payload),
                            "audit outbox relay pass panicked; the relay keeps going"
                        );
                        false
                    }
                };
                if busy {
                    // Still yield a stop request promptly.
                    if tokio::time::timeout(std::time::Duration::ZERO, task_stop.notified())
                        .await
                        .is_ok()
                    {
                        break;
                    }
                    continue;
                }
                tokio::select! {
                    _ = task_stop.notified() => break,
                    _ = task_wake.notified() => {}
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        });
        RelayHandle {
            task: Some(task),
            stop,
            wake,
            stats,
        }
    }
}

impl BatchWriter<Db> {
    /// Stores `batch`, skipping ids already stored. Records that fail validation or that the
    /// database refuses (a constraint or data error) are refused alone — the batch is split
    /// in halves until they stand alone — and every other record is stored. A transient
    /// failure (database unreachable or busy) is an `Err`, and retrying the same batch is
    /// safe: what was stored is skipped.
    pub async fn write(&self, batch: &[AuditEvent]) -> Result<crate::BatchOutcome, SqlError> {
        let mut refused = Vec::new();
        let mut rows = Vec::with_capacity(batch.len());
        let mut positions = Vec::with_capacity(batch.len());
        // Core's one policy first: records over its bounds are refused alone too.
        let mut screened = Vec::with_capacity(batch.len());
        for (index, event) in batch.iter().enumerate() {
            match crate::row::screen(event) {
                Ok(event) => screened.push((index, event)),
                Err(error) => refused.push(crate::RefusedRecord {
                    index,
                    event_id: event.id,
                    error,
                }),
            }
        }
        for (index, event) in &screened {
            let index = *index;
            match row_of(event) {
                Ok(row) => {
                    rows.push(row);
                    positions.push(index);
                }
                Err(error) => refused.push(crate::RefusedRecord {
                    index,
                    event_id: event.id,
                    error,
                }),
            }
        }
        let mut pending = Vec::new();
        pending.push(0..rows.len());
        // Each split halves a range and stops at one row: at most 2n - 1 statements, and
        // only when the database refused something.
        while let Some(range) = pending.pop() {
            if range.is_empty() {
                continue;
            }
            match write_batch(&self.store, &rows[range.clone()]).await {
                Ok(()) => {}
                Err(error) if !refuses_a_record(&error) => return Err(error),
                Err(error) if range.len() == 1 => {
                    let index = positions[range.start];
                    refused.push(crate::RefusedRecord {
                        index,
                        event_id: batch[index].id,
                        error,
                    });
                }
                Err(_) => {
                    let mid = range.start + range.len() / 2;
                    pending.push(mid..range.end);
                    pending.push(range.start..mid);
                }
            }
        }
        refused.sort_by_key(|r| r.index);
        Ok(crate::BatchOutcome {
            stored: (batch.len() - refused.len()) as u64,
            refused,
        })
    }
}

/// Whether the database refused a row (a constraint or a data error) rather than the
/// statement or the connection: only then is a batch split to find the row.
fn refuses_a_record(error: &SqlError) -> bool {
    match error {
        SqlError::Database {
            cause: sqlx::Error::Database(db),
            ..
        } => {
            use sqlx::error::ErrorKind as K;
            matches!(
                db.kind(),
                K::UniqueViolation | K::ForeignKeyViolation | K::NotNullViolation | K::CheckViolation
            ) || is_data_error_code(db.code().as_deref())
        }
        SqlError::Database {
            cause: sqlx::Error::Encode(_),
            ..
        }
        | SqlError::InvalidEvent { .. } => true,
        _ => false,
    }
}

impl Forwarder for BatchWriter<Db> {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move {
            let outcome = self.write(batch).await?;
            let Some(first) = outcome.refused.first() else {
                return Ok(());
            };
            let ids: Vec<String> = outcome
                .refused
                .iter()
                .take(10)
                .map(|r| r.event_id.to_string())
                .collect();
            let context = format!(
                "the SQL store refused {} of {} audit records (the other {} are stored): {}{}; first refusal",
                outcome.refused.len(),
                batch.len(),
                outcome.stored,
                ids.join(", "),
                if outcome.refused.len() > ids.len() { ", …" } else { "" },
            );
            Err(ForwardError::permanent(context, first.error.to_string()))
        })
    }
}
