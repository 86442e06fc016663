//! Seeding the operator bench's table: `n` login records generated inside the database (a
//! recursive CTE on SQLite, `generate_series` on PostgreSQL) in one statement, into the table
//! `AuditStore::migrate` created. The secondary indexes are dropped before the load and
//! recreated afterwards from their own definitions (read back from the catalogue), so the
//! table ends with exactly the migration's indexes. [`check_shape`] then proves the
//! generated rows are the rows the store itself writes: the same records, written by the
//! store's `BatchWriter` into a second store, must read back column for column identical.

use authtel_core::audit::{AuditEvent, Party, Timestamp};
use authtel_core::outcome::Outcome;
use authtel_sql::AuditStore;
use authtel_sql::sqlx::{self, AssertSqlSafe, Row};

/// The first record's time: one record every 10 ms from here.
pub(crate) const START_MICROS: i64 = 1_700_000_000_000_000;
/// Microseconds between two records.
const STEP_MICROS: i64 = 10_000;
/// Distinct actors: record `i` belongs to `u_{i % ACTORS}`.
pub(crate) const ACTORS: u64 = 1000;

const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";
const SPAN_ID: &str = "a3ce929d0e0e4736";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The metadata as the store serializes it (keys sorted).
const METADATA: &str =
    r#"{"method":"password","provider":"local","tenant":"acme-corporation-eu-west"}"#;

/// The columns in the store's order (authtel-sql's `row::COLUMNS`).
const COLUMNS: &str = "event_id, occurred_at, action, outcome, actor_id, actor_type, target_id, \
     target_type, session_id, client_ip, user_agent, resource, operation, reason, span_id, \
     trace_id, metadata, schema_version";

/// Record `i` of the generated table, built the way an application builds it.
pub(crate) fn record(i: u64) -> AuditEvent {
    let outcome = if i.is_multiple_of(10) {
        Outcome::Failure
    } else {
        Outcome::Success
    };
    let e = AuditEvent::new("auth.login.stop", outcome).expect("a catalogue action");
    fill(e, i)
}

/// Every field of the bench's records, in one place.
fn fill(e: AuditEvent, i: u64) -> AuditEvent {
    let id = uuid::Uuid::parse_str(&format!("00000000-0000-7000-8000-{i:012x}")).expect("uuid");
    let mut e = e
        .with_id(id)
        .with_occurred_at(Timestamp::from_unix_micros(
            START_MICROS + i as i64 * STEP_MICROS,
        ))
        .with_actor(Party::new(format!("u_{}", i % ACTORS), "user"))
        .with_session_id(format!("s_{i}"))
        .with_client_ip(std::net::Ipv4Addr::new(203, 0, 113, (i % 250) as u8).into())
        .with_user_agent(USER_AGENT);
    if i.is_multiple_of(10) {
        e = e.with_reason("invalid_credentials");
    }
    e.with_span_id(SPAN_ID)
        .with_trace_id(TRACE_ID)
        .with_metadata("method", "password")
        .and_then(|e| e.with_metadata("provider", "local"))
        .and_then(|e| e.with_metadata("tenant", "acme-corporation-eu-west"))
        .expect("small metadata")
}

/// The SELECT list that generates row `i` from an integer column `i`; `id` and `ts` turn it
/// into the backend's id and time columns.
fn generated_columns(id: &str, ts: &str) -> String {
    format!(
        "{id}, {ts}, 'auth.login.stop', \
         CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END, \
         'u_' || (i % {ACTORS}), 'user', NULL, NULL, 's_' || i, '203.0.113.' || (i % 250), \
         '{USER_AGENT}', NULL, NULL, CASE WHEN i % 10 = 0 THEN 'invalid_credentials' END, \
         '{SPAN_ID}', '{TRACE_ID}', '{METADATA}', 1"
    )
}

/// Every column of the rows of `$table` whose ids are `$ids`, as text, ordered by id.
macro_rules! rows_as_text {
    ($pool:expr, $table:expr, $ids:expr, $text:expr) => {{
        let list: Vec<String> = $ids.iter().map(|id| format!("'{id}'")).collect();
        let select = format!(
            "SELECT {} FROM {} WHERE event_id IN ({}) ORDER BY event_id",
            COLUMNS
                .split(", ")
                .map($text)
                .collect::<Vec<_>>()
                .join(", "),
            $table,
            list.join(", ")
        );
        let rows = sqlx::query(AssertSqlSafe(select))
            .fetch_all($pool)
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                (0..18)
                    .map(|c| r.try_get::<Option<String>, _>(c).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    }};
}

/// Record ids of the sample rows [`check_shape`] compares.
fn sample(n: u64) -> Vec<u64> {
    let mut s = vec![0, 1, 7, 10, 999, n / 2, n - 1];
    s.retain(|&i| i < n);
    s.sort_unstable();
    s.dedup();
    s
}

/// Writes `sample` with the store's own batch writer into `check` (a second, empty store).
async fn write_sample<F: authtel_core::forward::Forwarder>(writer: F, n: u64) -> Vec<String> {
    let records: Vec<AuditEvent> = sample(n).into_iter().map(record).collect();
    writer
        .forward(&records)
        .await
        .expect("the store writes the sample");
    records.iter().map(|e| e.id().to_string()).collect()
}

/// Checks that migration 1's four secondary indexes are among `indexes` (name, definition).
fn assert_has_migration_indexes(indexes: &[(String, String)]) {
    for name in [
        "audit_events_time",
        "audit_events_actor_time",
        "audit_events_ip_time",
        "audit_events_action_time",
    ] {
        assert!(
            indexes.iter().any(|(n, _)| n == name),
            "migration 1's index {name} is missing: {indexes:?}"
        );
    }
}

/// Seeds `n` rows into the migrated SQLite `store` and checks their shape.
pub(crate) async fn sqlite(store: &AuditStore<authtel_sql::sqlite::Sqlite>, n: u64) {
    let mut conn = store.pool().acquire().await.unwrap();
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    // Every secondary index the migrations made (migration 1's four on SQLite) is dropped
    // for the load and rebuilt from its own definition, so the bench queries the schema
    // `migrate()` builds.
    assert_has_migration_indexes(&indexes);
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (name, _) in &indexes {
        sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let cols = generated_columns(
        "printf('00000000-0000-7000-8000-%012x', i)",
        &format!("{START_MICROS} + i * {STEP_MICROS}"),
    );
    let insert = format!(
        "INSERT INTO audit_events ({COLUMNS}) WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL \
         SELECT i + 1 FROM n WHERE i < {}) SELECT {cols} FROM n",
        n - 1
    );
    let done = sqlx::query(AssertSqlSafe(insert))
        .execute(&mut *conn)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), n);
    for (_, sql) in &indexes {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await
        .unwrap();
    // Back to the pool's own cache size for the measured queries.
    drop(conn.detach());

    let check = AuditStore::builder(
        authtel_sql::sqlite::connect("sqlite::memory:")
            .await
            .unwrap(),
    )
    .build();
    check.migrate().await.unwrap();
    let ids = write_sample(authtel_sql::BatchWriter::new(&check), n).await;
    let text = |c: &str| format!("CAST({c} AS TEXT)");
    let stored = rows_as_text!(check.pool(), "audit_events", ids, text);
    let generated = rows_as_text!(store.pool(), "audit_events", ids, text);
    assert_eq!(stored.len(), ids.len());
    assert_eq!(
        generated, stored,
        "the generated rows differ from what the store writes"
    );
}

/// Seeds `n` rows into the migrated PostgreSQL `store` (in the `public` schema of its own
/// database), checks their shape against a store in schema `shape_check`, and runs
/// `ANALYZE` (as autovacuum does soon after a bulk load).
pub(crate) async fn postgres(store: &AuditStore<authtel_sql::postgres::Postgres>, n: u64) {
    let pool = store.pool();
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public' \
         AND tablename = 'audit_events' AND indexname <> 'audit_events_pkey' ORDER BY indexname",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    // Every secondary index the migrations made (the four of migration 1 at least; the
    // live feed's of migration 2 too) is dropped for the load and rebuilt from its own
    // definition, so the bench queries the schema `migrate()` builds.
    assert_has_migration_indexes(&indexes);
    for (name, _) in &indexes {
        sqlx::query(AssertSqlSafe(format!("DROP INDEX {name}")))
            .execute(pool)
            .await
            .unwrap();
    }
    let cols = generated_columns(
        "('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid",
        &format!(
            "timestamptz 'epoch' + ({START_MICROS} + i * {STEP_MICROS}) * interval '1 microsecond'"
        ),
    );
    let insert = format!(
        "INSERT INTO audit_events ({COLUMNS}) SELECT {cols} FROM generate_series(0::int8, {}) AS i",
        n - 1
    );
    let done = sqlx::query(AssertSqlSafe(insert))
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), n);
    for (_, sql) in &indexes {
        sqlx::query(AssertSqlSafe(sql.clone()))
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("ANALYZE audit_events")
        .execute(pool)
        .await
        .unwrap();

    let check = AuditStore::builder(pool.clone())
        .with_schema("shape_check")
        .unwrap()
        .build();
    check.migrate().await.unwrap();
    let ids = write_sample(authtel_sql::BatchWriter::new(&check), n).await;
    let text = |c: &str| format!("({c})::text");
    let stored = rows_as_text!(pool, "shape_check.audit_events", ids, text);
    let generated = rows_as_text!(pool, "public.audit_events", ids, text);
    assert_eq!(stored.len(), ids.len());
    assert_eq!(
        generated, stored,
        "the generated rows differ from what the store writes"
    );
    sqlx::query("DROP SCHEMA shape_check CASCADE")
        .execute(pool)
        .await
        .unwrap();
}
