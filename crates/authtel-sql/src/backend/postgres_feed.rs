//! The live feed on PostgreSQL: positions in an order no later commit can break.
//!
//! An id assigned at insert does not work: transactions commit out of order, so a reader
//! that passed id 11 would never see id 10 committed a moment later. Instead every row
//! carries the id of the transaction that inserted it (`feed_xid`, a column default), and a
//! reader first **stamps** positions from a sequence on the rows whose transaction id is
//! below the oldest transaction still running (`pg_snapshot_xmin`): those transactions have
//! all finished, so no row of theirs can appear later. Stamping runs under a transaction-level
//! advisory lock, so one stamping commits before the next one takes numbers: positions become
//! visible in increasing order, and a reader resuming after the last position it saw misses
//! nothing. The cost is latency: a record is not in the feed until every transaction that
//! began before its own has finished (a long-running transaction anywhere on the server,
//! in any database, holds the feed back).

use super::{DIALECT, Db, schema_prefix, table_names};
use crate::SqlError;

/// Rows stamped per statement; a reader keeps stamping until nothing is left.
const STAMP_BATCH: i64 = 10_000;

impl crate::AuditStore<Db> {
    /// Gives a feed position to every record whose transaction has finished, oldest
    /// transaction first.
    async fn stamp_feed(&self) -> Result<(), SqlError> {
        let (events, _, _) = table_names(self.schema());
        let prefix = schema_prefix(self.schema());
        let stamp = super::super::sql(format!(
            "WITH todo AS (SELECT event_id, occurred_at FROM {events} \
             WHERE feed_pos IS NULL AND feed_xid < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY feed_xid, event_id LIMIT {STAMP_BATCH}) \
             UPDATE {events} e SET feed_pos = nextval('{prefix}audit_feed_seq') FROM todo \
             WHERE e.event_id = todo.event_id AND e.occurred_at = todo.occurred_at"
        ));
        loop {
            let mut tx = self
                .pool
                .begin()
                .await
                .map_err(SqlError::db("begin stamping feed positions"))?;
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(&events)
                .execute(&mut *tx)
                .await
                .map_err(SqlError::db("lock the feed for stamping"))?;
            let stamped = sqlx::query(stamp.clone())
                .execute(&mut *tx)
                .await
                .map_err(SqlError::db("stamp feed positions"))?
                .rows_affected();
            tx.commit()
                .await
                .map_err(SqlError::db("commit stamped feed positions"))?;
            if stamped < STAMP_BATCH as u64 {
                return Ok(());
            }
        }
    }

    /// Up to `limit` records after feed position `after`, each with its position (0 is
    /// before the first record). A reader that resumes after the last position it saw gets
    /// exactly the records it has not seen, once each, in position order — including
    /// records whose transactions committed out of order — as long as they are stored. A
    /// record enters the feed once every transaction older than its own has finished. See
    /// [`feed_after`](crate::AuditStore::feed_after) on SQLite for the same contract there.
    pub async fn feed_after(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, authtel_core::audit::AuditEvent)>, SqlError> {
        self.stamp_feed().await?;
        let (events, _, _) = table_names(self.schema());
        let sql = super::super::sql(format!(
            "SELECT feed_pos, {} FROM {events} WHERE feed_pos > $1 ORDER BY feed_pos LIMIT $2",
            DIALECT.select_columns
        ));
        super::read_feed(self, sql, after, limit).await
    }

    /// The position of the newest record in the feed (0 when there is none): a live reader
    /// that wants only what comes next starts [`feed_after`](Self::feed_after) here.
    pub async fn feed_head(&self) -> Result<u64, SqlError> {
        self.stamp_feed().await?;
        let (events, _, _) = table_names(self.schema());
        let sql = super::super::sql(format!("SELECT MAX(feed_pos) FROM {events}"));
        super::read_feed_head(self, sql).await
    }
}
