// Part of the operations both backends share, `include!`d through `common.rs`.

impl AuditStore<Db> {
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
