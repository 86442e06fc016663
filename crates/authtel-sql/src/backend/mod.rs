//! Per-backend code. `common.rs` holds the operations both backends share; it is compiled
//! once per backend module with that module's `Db` type and SQL helpers in scope, so each
//! backend gets concrete, fully typed methods without a wall of generic sqlx bounds.

use sqlx::SqlStr;

#[cfg(feature = "postgres")]
mod copy_text;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// The statements of one store, built once with its table names.
#[derive(Debug)]
pub(crate) struct Statements {
    /// `SELECT <columns> FROM events` (dynamic filters are appended).
    pub(crate) select_events: String,
    pub(crate) insert_event: SqlStr,
    /// SQLite only: PostgreSQL writes the outbox entries with `record_with_outbox`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) insert_outbox: Option<SqlStr>,
    /// PostgreSQL: the event and its outbox entries in one statement (one round trip).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) record_with_outbox: Option<SqlStr>,
    /// PostgreSQL: the UNNEST batch insert.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) insert_batch: Option<SqlStr>,
    /// SQLite: the multi-row insert of one full chunk, built once.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) insert_chunk: Option<SqlStr>,
    /// PostgreSQL: `COPY <events> (<columns>) FROM STDIN`, the batch writer's fast path.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) copy_batch: Option<String>,
    /// SQLite: claim, then load the records (PostgreSQL uses `claim_and_load`).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) claim: SqlStr,
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) load_events: SqlStr,
    /// PostgreSQL: claim and load in one statement.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) claim_and_load: Option<SqlStr>,
    pub(crate) update_entries: SqlStr,
    pub(crate) delivery_state: SqlStr,
    pub(crate) dead_letters: SqlStr,
    pub(crate) requeue_dead: SqlStr,
    pub(crate) count_purge_events: SqlStr,
    pub(crate) purge_events: SqlStr,
    pub(crate) count_purge_outbox: SqlStr,
    pub(crate) purge_outbox: SqlStr,
    pub(crate) failed_login_bursts: SqlStr,
    pub(crate) first_seen_ips: SqlStr,
    pub(crate) migration_version: SqlStr,
}

pub(crate) fn sql(s: String) -> SqlStr {
    use sqlx::SqlSafeStr;
    // Built only from constants, validated identifiers (schema, forwarder ids) and column
    // lists: no caller text reaches a statement except through bind parameters.
    sqlx::AssertSqlSafe(s).into_sql_str()
}

/// The statements whose text is the same on both backends once the helpers for ids and
/// timestamps are applied.
pub(crate) struct Dialect {
    /// Selects the columns of `row::COLUMNS` as text/int8 in that order.
    pub(crate) select_columns: &'static str,
    pub(crate) ts_in: fn(&str) -> String,
    pub(crate) ts_out: fn(&str) -> String,
    pub(crate) id_in: fn(&str) -> String,
    pub(crate) id_out: fn(&str) -> String,
    /// `event_id IN <list>` for a bound list parameter.
    pub(crate) id_in_list: fn(&str, &str) -> String,
    /// `id IN <list>` for a bound list of outbox ids.
    pub(crate) int_in_list: fn(&str, &str) -> String,
    pub(crate) skip_locked: &'static str,
}

impl Dialect {
    pub(crate) fn statements(
        &self,
        events: &str,
        outbox: &str,
        migrations: &str,
        forwarders: &[String],
    ) -> Statements {
        let ts = self.ts_in;
        let id = self.id_in;
        let cols = crate::row::COLUMNS;
        let insert_event = format!(
            "INSERT INTO {events} ({cols}) VALUES ({}, {}, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT DO NOTHING",
            id("$1"),
            ts("$2")
        );
        let insert_outbox = (!forwarders.is_empty()).then(|| {
            let values: Vec<String> = forwarders
                .iter()
                .map(|f| format!("({}, '{f}', 'pending', 0, $2, $2, $2)", id("$1")))
                .collect();
            sql(format!(
                "INSERT INTO {outbox} (event_id, forwarder, status, attempts, next_attempt_at, \
                 created_at, updated_at) VALUES {} ON CONFLICT DO NOTHING",
                values.join(", ")
            ))
        });
        let failed_actions = "((action = 'auth.login.stop' AND outcome = 'failure') \
                              OR action = 'security.invalid_credentials')";
        Statements {
            select_events: format!("SELECT {} FROM {events}", self.select_columns),
            insert_event: sql(insert_event),
            insert_outbox,
            record_with_outbox: None,
            insert_batch: None,
            copy_batch: None,
            insert_chunk: None,
            claim_and_load: None,
            claim: sql(format!(
                "UPDATE {outbox} SET attempts = attempts + 1, next_attempt_at = $1, updated_at = $2 \
                 WHERE id IN (SELECT id FROM {outbox} WHERE forwarder = $3 AND status = 'pending' \
                 AND next_attempt_at <= $2 ORDER BY next_attempt_at, id LIMIT $4{}) \
                 RETURNING id, {}, attempts",
                self.skip_locked,
                (self.id_out)("event_id")
            )),
            load_events: sql(format!(
                "SELECT {} FROM {events} WHERE {}",
                self.select_columns,
                (self.id_in_list)("event_id", "$1")
            )),
            update_entries: sql(format!(
                "UPDATE {outbox} SET status = $1, next_attempt_at = $2, last_error = $3, \
                 updated_at = $4 WHERE {}",
                (self.int_in_list)("id", "$5")
            )),
            delivery_state: sql(format!(
                "SELECT forwarder, COUNT(CASE WHEN status = 'pending' THEN 1 END), \
                 COUNT(CASE WHEN status = 'dead' THEN 1 END), \
                 COUNT(CASE WHEN status = 'done' THEN 1 END), \
                 MIN(CASE WHEN status = 'pending' THEN created_at END) \
                 FROM {outbox} GROUP BY forwarder ORDER BY forwarder"
            )),
            dead_letters: sql(format!(
                "SELECT {}, forwarder, attempts, COALESCE(last_error, ''), updated_at FROM {outbox} \
                 WHERE status = 'dead' AND forwarder = $1 ORDER BY id LIMIT $2",
                (self.id_out)("event_id")
            )),
            requeue_dead: sql(format!(
                "UPDATE {outbox} SET status = 'pending', attempts = 0, next_attempt_at = $2, \
                 updated_at = $2 WHERE status = 'dead' AND forwarder = $1"
            )),
            count_purge_events: sql(format!(
                "SELECT COUNT(*) FROM {events} e WHERE e.occurred_at < {} AND NOT EXISTS \
                 (SELECT 1 FROM {outbox} o WHERE o.event_id = e.event_id AND o.status = 'pending')",
                ts("$1")
            )),
            purge_events: sql(format!(
                "DELETE FROM {events} WHERE event_id IN (SELECT e.event_id FROM {events} e \
                 WHERE e.occurred_at < {} AND NOT EXISTS (SELECT 1 FROM {outbox} o \
                 WHERE o.event_id = e.event_id AND o.status = 'pending') LIMIT $2)",
                ts("$1")
            )),
            count_purge_outbox: sql(format!(
                "SELECT COUNT(*) FROM {outbox} WHERE status <> 'pending' AND updated_at < $1"
            )),
            purge_outbox: sql(format!(
                "DELETE FROM {outbox} WHERE id IN (SELECT id FROM {outbox} \
                 WHERE status <> 'pending' AND updated_at < $1 LIMIT $2)"
            )),
            failed_login_bursts: sql(format!(
                "SELECT client_ip, COUNT(*), {}, {} FROM {events} \
                 WHERE occurred_at >= {} AND client_ip IS NOT NULL AND {failed_actions} \
                 GROUP BY client_ip HAVING COUNT(*) >= $2 ORDER BY COUNT(*) DESC, client_ip",
                (self.ts_out)("MIN(occurred_at)"),
                (self.ts_out)("MAX(occurred_at)"),
                ts("$1")
            )),
            first_seen_ips: sql(format!(
                "SELECT actor_id, client_ip, {} FROM {events} \
                 WHERE action = 'auth.login.stop' AND outcome = 'success' \
                 AND actor_id IS NOT NULL AND client_ip IS NOT NULL \
                 GROUP BY actor_id, client_ip HAVING MIN(occurred_at) >= {} \
                 ORDER BY MIN(occurred_at), actor_id, client_ip",
                (self.ts_out)("MIN(occurred_at)"),
                ts("$1")
            )),
            migration_version: sql(format!(
                "SELECT COALESCE(MAX(version), 0) FROM {migrations} WHERE success"
            )),
        }
    }
}
