//! Monthly partitions on PostgreSQL: creating them ahead, listing the ones a retention cutoff
//! covers (with their rows and the outbox entries still pending for them), and dropping one
//! only when nothing in it still waits for delivery.
//!
//! Dropping a partition is instant, but it takes the audit table's `ACCESS EXCLUSIVE` lock,
//! and writers queue behind a waiting lock request: the drop waits at most
//! [`DROP_LOCK_TIMEOUT`] for it and then gives up with an error, so logins are held up for
//! at most that long.

use authtel_core::audit::Timestamp;

use super::{Db, schema_prefix, table_names};
use crate::SqlError;

/// How long a partition drop waits for the audit table's lock before giving up.
pub(crate) const DROP_LOCK_TIMEOUT: &str = "2s";

/// One monthly partition (`audit_events_pYYYYMM`) of a partitioned store, as
/// [`AuditStore::partitions_older_than`](crate::AuditStore) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthlyPartition {
    /// The table name, `audit_events_pYYYYMM`.
    pub name: String,
    /// The first instant of its month (UTC).
    pub from: Timestamp,
    /// The first instant of the next month: every row in it is older than this.
    pub until: Timestamp,
    /// Rows in it when listed.
    pub rows: u64,
    /// Outbox entries still pending delivery for records in it. A partition with any is
    /// never dropped: its records would be lost to their forwarders.
    pub pending: u64,
}

/// What [`AuditStore::drop_partition`](crate::AuditStore) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionDrop {
    /// The partition and its rows are gone.
    Dropped,
    /// Kept: this many outbox entries of its records are still pending delivery.
    KeptPending(u64),
    /// There was no such partition (already dropped, or never created).
    Missing,
}

/// Whether `name` is a monthly partition name (the only names that reach DDL here).
fn is_partition_name(name: &str) -> bool {
    name.strip_prefix("audit_events_p")
        .is_some_and(|d| d.len() == 6 && d.bytes().all(|b| b.is_ascii_digit()))
}

impl crate::AuditStore<Db> {
    fn require_partitions(&self) -> Result<(), SqlError> {
        if self.inner.partitioned {
            Ok(())
        } else {
            Err(SqlError::NotPartitioned)
        }
    }

    /// Whether this database's `audit_events` (in the store's schema, or the first schema of
    /// the search path) is a partitioned table (`pg_class.relkind = 'p'`), whatever the
    /// builder said. The `authtel` CLI uses it to pick the partition-aware purge.
    pub async fn events_table_is_partitioned(&self) -> Result<bool, SqlError> {
        sqlx::query_scalar::<Db, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relname = 'audit_events' AND c.relkind = 'p' \
             AND n.nspname = COALESCE($1, current_schema()))",
        )
        .bind(self.schema())
        .fetch_one(&self.pool)
        .await
        .map_err(SqlError::db("look up whether audit_events is partitioned"))
    }

    /// Creates the monthly partitions (`audit_events_pYYYYMM`, UTC months) for the current
    /// month and the next `months_ahead`, if missing; returns the names created or already
    /// there. Run it from a daily job: rows for a month without a partition land in
    /// `audit_events_default`, and a month's partition cannot be created once the default
    /// partition holds rows of that month.
    pub async fn create_partitions(&self, months_ahead: u32) -> Result<Vec<String>, SqlError> {
        self.require_partitions()?;
        let months: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT to_char(m, 'YYYYMM'), to_char(m, 'YYYY-MM-DD'), \
             to_char(m + interval '1 month', 'YYYY-MM-DD') FROM generate_series(\
             date_trunc('month', now() AT TIME ZONE 'UTC'), \
             date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => $1), \
             interval '1 month') AS m",
        )
        .bind(i32::try_from(months_ahead.min(120)).unwrap_or(120))
        .fetch_all(&self.pool)
        .await
        .map_err(SqlError::db("list the months to partition"))?;
        let (events, _, _) = table_names(self.schema());
        let prefix = schema_prefix(self.schema());
        let mut names = Vec::with_capacity(months.len());
        for (month, from, to) in months {
            // Only digits and dashes from PostgreSQL's own to_char reach the DDL.
            let name = format!("audit_events_p{month}");
            let ddl = format!(
                "CREATE TABLE IF NOT EXISTS {prefix}{name} PARTITION OF {events} \
                 FOR VALUES FROM ('{from} 00:00:00+00') TO ('{to} 00:00:00+00')"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
                .execute(&self.pool)
                .await
                .map_err(SqlError::db("create a monthly audit partition"))?;
            names.push(name);
        }
        Ok(names)
    }

    /// The monthly partitions whose whole month ends at or before `cutoff`, oldest first,
    /// each with its row count and the outbox entries still pending for its records
    /// (counting reads every row of each: expect seconds on partitions of millions).
    pub async fn partitions_older_than(
        &self,
        cutoff: Timestamp,
    ) -> Result<Vec<MonthlyPartition>, SqlError> {
        self.require_partitions()?;
        let (events, outbox, _) = table_names(self.schema());
        let months: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT name, (extract(epoch from m AT TIME ZONE 'UTC') * 1000000)::int8, \
             (extract(epoch from (m + interval '1 month') AT TIME ZONE 'UTC') * 1000000)::int8 \
             FROM (SELECT c.relname::text AS name, \
             to_date(substr(c.relname, 15), 'YYYYMM')::timestamp AS m \
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::regclass AND c.relname ~ '^audit_events_p[0-9]{6}$') p \
             WHERE (extract(epoch from (m + interval '1 month') AT TIME ZONE 'UTC') * 1000000)::int8 \
             <= $2 ORDER BY m",
        )
        .bind(&events)
        .bind(cutoff.unix_micros())
        .fetch_all(&self.pool)
        .await
        .map_err(SqlError::db("list monthly audit partitions"))?;
        let prefix = schema_prefix(self.schema());
        let mut out = Vec::with_capacity(months.len());
        for (name, from, until) in months {
            // Names matched ^audit_events_p[0-9]{6}$ above.
            let counts = super::super::sql(format!(
                "SELECT (SELECT COUNT(*) FROM {prefix}{name}), (SELECT COUNT(*) FROM {outbox} o \
                 WHERE o.status = 'pending' AND EXISTS (SELECT 1 FROM {prefix}{name} e \
                 WHERE e.event_id = o.event_id))"
            ));
            let (rows, pending): (i64, i64) = sqlx::query_as(counts)
                .fetch_one(&self.pool)
                .await
                .map_err(SqlError::db("count the rows of a monthly audit partition"))?;
            out.push(MonthlyPartition {
                name,
                from: Timestamp::from_unix_micros(from),
                until: Timestamp::from_unix_micros(until),
                rows: rows.max(0) as u64,
                pending: pending.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// Drops the monthly partition `name` unless outbox entries of its records are still
    /// pending delivery. In one transaction: lock the audit table (waiting at most 2 s;
    /// writers queue behind the lock meanwhile, and inserts into the partition are held off
    /// until the drop commits), check the partition is attached and count its pending
    /// entries, then drop it. A record requeued from the dead letters during the drop may
    /// still lose its row, as with `purge_older_than`: only pending entries are protected.
    pub async fn drop_partition(&self, name: &str) -> Result<PartitionDrop, SqlError> {
        self.require_partitions()?;
        if !is_partition_name(name) {
            return Ok(PartitionDrop::Missing);
        }
        let (events, outbox, _) = table_names(self.schema());
        let prefix = schema_prefix(self.schema());
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(SqlError::db("begin a partition drop"))?;
        let lock = format!(
            "SET LOCAL lock_timeout = '{DROP_LOCK_TIMEOUT}'; LOCK TABLE {events} IN ACCESS EXCLUSIVE MODE"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(lock))
            .execute(&mut *tx)
            .await
            .map_err(SqlError::db(
                "lock the audit table to drop a partition (busy for over 2 s: retry when writers are quieter)",
            ))?;
        let attached: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::regclass AND c.relname = $2)",
        )
        .bind(&events)
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(SqlError::db("look up a monthly audit partition"))?;
        if !attached {
            return Ok(PartitionDrop::Missing);
        }
        let pending: i64 = sqlx::query_scalar(super::super::sql(format!(
            "SELECT COUNT(*) FROM {outbox} o WHERE o.status = 'pending' AND EXISTS \
             (SELECT 1 FROM {prefix}{name} e WHERE e.event_id = o.event_id)"
        )))
        .fetch_one(&mut *tx)
        .await
        .map_err(SqlError::db("count pending outbox entries of a partition"))?;
        if pending > 0 {
            return Ok(PartitionDrop::KeptPending(pending as u64));
        }
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {prefix}{name}")))
            .execute(&mut *tx)
            .await
            .map_err(SqlError::db("drop a monthly audit partition"))?;
        tx.commit()
            .await
            .map_err(SqlError::db("commit a partition drop"))?;
        Ok(PartitionDrop::Dropped)
    }

    /// Drops every monthly partition whose whole month ends at or before `cutoff` and holds
    /// no record still pending delivery, and returns the names dropped. Instant, and leaves
    /// no bloat; records in the default partition, and partitions kept for pending entries,
    /// are left for `purge_older_than` (which also keeps pending records).
    pub async fn drop_partitions_older_than(
        &self,
        cutoff: Timestamp,
    ) -> Result<Vec<String>, SqlError> {
        let mut dropped = Vec::new();
        for p in self.partitions_older_than(cutoff).await? {
            match self.drop_partition(&p.name).await? {
                PartitionDrop::Dropped => dropped.push(p.name),
                PartitionDrop::KeptPending(n) => tracing::warn!(
                    partition = p.name,
                    pending = n,
                    "audit partition kept: outbox entries of its records are still pending delivery"
                ),
                PartitionDrop::Missing => {}
            }
        }
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_monthly_partition_names_reach_ddl() {
        assert!(super::is_partition_name("audit_events_p202601"));
        assert!(!super::is_partition_name("audit_events_default"));
        assert!(!super::is_partition_name("audit_events_p2026011"));
        assert!(!super::is_partition_name("audit_events_p2026\"1"));
    }
}
