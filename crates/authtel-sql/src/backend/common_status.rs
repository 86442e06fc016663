// Part of the operations both backends share, `include!`d through `common.rs`: the relay's
// status rows (`audit_relay_status`) and the newest purge in the trail, for `authtel doctor`
// and the console.

/// Writes (inserts or replaces) one relay's row for one forwarder, then deletes rows whose
/// relay has not written for a week (relays that died without a clean stop).
async fn write_relay_status(
    store: &AuditStore<Db>,
    book: &crate::relay_status::StatusBook,
    row: &crate::relay_status::StatusRow,
    now: i64,
) -> Result<(), SqlError> {
    let table = status_table(store.schema());
    let upsert = crate::backend::sql(format!(
        "INSERT INTO {table} (relay, forwarder, breaker, breaker_since, last_error, \
         last_error_at, heartbeat_at, stale_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (relay, forwarder) DO UPDATE SET breaker = excluded.breaker, \
         breaker_since = excluded.breaker_since, last_error = excluded.last_error, \
         last_error_at = excluded.last_error_at, heartbeat_at = excluded.heartbeat_at, \
         stale_after = excluded.stale_after"
    ));
    let (error, error_at) = match &row.last_error {
        Some((e, at)) => (Some(e.as_str()), Some(*at)),
        None => (None, None),
    };
    let q = sqlx::query::<Db>(upsert)
        .bind(book.relay.as_str())
        .bind(row.forwarder.as_str())
        .bind(crate::relay_status::breaker_name(row.breaker))
        .bind(row.since)
        .bind(error)
        .bind(error_at)
        .bind(now)
        .bind(micros(book.stale_after));
    execute_bookkeeping(store, q)
        .await
        .map_err(SqlError::db("write the relay status"))?;
    const WEEK_MICROS: i64 = 7 * 86_400 * 1_000_000;
    let prune = crate::backend::sql(format!("DELETE FROM {table} WHERE heartbeat_at < $1"));
    execute_bookkeeping(store, sqlx::query::<Db>(prune).bind(now - WEEK_MICROS))
        .await
        .map_err(SqlError::db("prune abandoned relay status rows"))
}

/// Deletes the rows of relay `relay` (it is stopping).
async fn forget_relay_status(store: &AuditStore<Db>, relay: &str) -> Result<(), SqlError> {
    let table = status_table(store.schema());
    let delete = crate::backend::sql(format!("DELETE FROM {table} WHERE relay = $1"));
    execute_bookkeeping(store, sqlx::query::<Db>(delete).bind(relay))
        .await
        .map_err(SqlError::db("delete the relay status rows"))
}

impl AuditStore<Db> {
    /// What each running relay last reported per forwarder (breaker state, since when, the
    /// last failure, its heartbeat), ordered by forwarder and relay. Empty when no relay has
    /// reported (or every relay stopped cleanly). Check [`RelayStatus::is_stale`](crate::RelayStatus::is_stale)
    /// before trusting a row: a relay that died leaves its rows behind.
    pub async fn relay_status(&self) -> Result<Vec<crate::RelayStatus>, SqlError> {
        let table = status_table(self.schema());
        let select = crate::backend::sql(format!(
            "SELECT relay, forwarder, breaker, breaker_since, last_error, last_error_at, \
             heartbeat_at, stale_after FROM {table} ORDER BY forwarder, relay"
        ));
        type StatusTuple = (String, String, String, i64, Option<String>, Option<i64>, i64, i64);
        let rows: Vec<StatusTuple> = sqlx::query_as(select)
            .fetch_all(&self.pool)
            .await
            .map_err(SqlError::db("read the relay status"))?;
        Ok(rows
            .into_iter()
            .map(
                |(relay, forwarder, breaker, since, last_error, error_at, heartbeat, stale)| {
                    crate::RelayStatus {
                        relay,
                        forwarder,
                        breaker: crate::relay_status::breaker_of(&breaker),
                        since: Timestamp::from_unix_micros(since),
                        last_error,
                        last_error_at: error_at.map(Timestamp::from_unix_micros),
                        heartbeat_at: Timestamp::from_unix_micros(heartbeat),
                        stale_after: std::time::Duration::from_micros(stale.max(0) as u64),
                    }
                },
            )
            .collect())
    }

    /// The newest purge that deleted (not a dry run) recorded in this trail by `authtel
    /// purge` or the console ([`trail::PURGE`](crate::trail::PURGE)), or `None` when there
    /// was none (or it was itself purged).
    pub async fn last_purge(&self) -> Result<Option<crate::LastPurge>, SqlError> {
        let select = crate::backend::sql(format!(
            "{} WHERE action = $1 AND operation = $2 ORDER BY occurred_at DESC, event_id DESC \
             LIMIT 1",
            self.inner.sql.select_events
        ));
        let row = sqlx::query(select)
            .bind(crate::trail::PURGE)
            .bind(crate::trail::PURGE_DELETE)
            .fetch_optional(&self.pool)
            .await
            .map_err(SqlError::db("read the newest purge record"))?;
        match row {
            Some(r) => {
                let event = stored_row(&r)
                    .map_err(SqlError::db("read the newest purge record"))?
                    .into_event()?;
                Ok(Some(crate::LastPurge::from_record(&event)))
            }
            None => Ok(None),
        }
    }
}
