//! The authtel-sql suite, run once per backend: `sqlite_suite::*` on a temporary SQLite
//! file, `postgres_suite::*` on `DATABASE_URL` (each test in its own schema).

mod support {
    #![allow(dead_code)]
    include!("suite/support.rs");
}

#[cfg(feature = "sqlite")]
mod sqlite_suite {
    use authtel_sql::AuditStore;
    use sqlx::Row;

    type Db = sqlx::Sqlite;
    /// The newest migration: 2 adds the relays' status, 3 the tenant column.
    const SCHEMA_VERSION: i64 = 3;

    fn temp_path(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join("authtel-sql-tests");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(format!("{name}-{}.db", uuid::Uuid::now_v7().simple()))
    }

    async fn fresh_store(name: &str, forwarders: &[&str]) -> Option<AuditStore<Db>> {
        let pool = authtel_sql::sqlite::connect(temp_path(name).to_str().unwrap())
            .await
            .unwrap();
        let mut b = AuditStore::builder(pool);
        for f in forwarders {
            b = b.with_forwarder(f).unwrap();
        }
        Some(b.build())
    }

    async fn store(name: &str, forwarders: &[&str]) -> Option<AuditStore<Db>> {
        let s = fresh_store(name, forwarders).await?;
        s.migrate().await.unwrap();
        Some(s)
    }

    async fn count_rows(store: &AuditStore<Db>) -> (i64, i64) {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM audit_events), (SELECT COUNT(*) FROM audit_outbox)",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        (row.get(0), row.get(1))
    }

    async fn delete_event(store: &AuditStore<Db>, id: uuid::Uuid) {
        sqlx::query("DELETE FROM audit_events WHERE event_id = $1")
            .bind(id.to_string())
            .execute(store.pool())
            .await
            .unwrap();
    }

    async fn dump_tables(store: &AuditStore<Db>) -> String {
        let mut out = String::new();
        for table in ["audit_events", "audit_outbox"] {
            let sql = format!("SELECT * FROM {table}");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(store.pool())
                .await
                .unwrap();
            for r in rows {
                for i in 0..r.len() {
                    match r.try_get::<Option<String>, _>(i) {
                        Ok(v) => out.push_str(&v.unwrap_or_default()),
                        Err(_) => out.push_str(&r.get::<i64, _>(i).to_string()),
                    }
                    out.push('|');
                }
                out.push('\n');
            }
        }
        out
    }

    include!("suite/cases.rs");
    include!("suite/relay_delivery.rs");
    include!("suite/queries.rs");
    include!("suite/edge_cases.rs");
    include!("suite/relay_engine.rs");
    include!("suite/relay_status.rs");

    /// A trigger refuses rows of `actor` (SQLite cannot add a CHECK to an existing table).
    async fn refuse_actor_in_db(store: &AuditStore<Db>, actor: &str) {
        let sql = format!(
            "CREATE TRIGGER refuse_{actor} BEFORE INSERT ON audit_events \
             WHEN NEW.actor_id = '{actor}' BEGIN SELECT RAISE(ABORT, 'actor {actor} refused'); END"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invalid_utf8_in_a_stored_row_is_a_typed_error() {
        let store = store("utf8", &[]).await.unwrap();
        let good = crate::support::event("auth.login.stop", Outcome::Success);
        BatchWriter::new(&store).forward(&[good]).await.unwrap();
        sqlx::query("UPDATE audit_events SET reason = CAST(x'ff00fe' AS TEXT)")
            .execute(store.pool())
            .await
            .unwrap();
        let err = store.query(&AuditQuery::new()).await.unwrap_err();
        assert!(matches!(err, SqlError::Database { .. }), "{err}");
        let mut out = Vec::new();
        assert!(
            store
                .export_ndjson(&AuditQuery::new(), &mut out)
                .await
                .is_err()
        );
        assert!(out.is_empty());
    }
}

#[cfg(feature = "postgres")]
mod postgres_suite {
    use authtel_sql::AuditStore;
    use sqlx::Row;

    type Db = sqlx::Postgres;
    /// The newest migration: 2 adds the live feed's positions, 3 the relays' status, 4 the
    /// tenant column.
    const SCHEMA_VERSION: i64 = 4;

    async fn fresh_store(name: &str, forwarders: &[&str]) -> Option<AuditStore<Db>> {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            assert!(
                !crate::support::services_required(),
                "DATABASE_URL is not set but CI/AUTHTEL_REQUIRE_SERVICES requires PostgreSQL; \
                 run `eval $(cargo xtask services start)`"
            );
            eprintln!("skipping postgres_suite::{name}: DATABASE_URL is not set");
            return None;
        };
        let pool = authtel_sql::postgres::connect(&url).await.unwrap();
        let schema = format!(
            "t_{name}_{}",
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let mut b = AuditStore::builder(pool).with_schema(&schema).unwrap();
        for f in forwarders {
            b = b.with_forwarder(f).unwrap();
        }
        Some(b.build())
    }

    async fn store(name: &str, forwarders: &[&str]) -> Option<AuditStore<Db>> {
        let s = fresh_store(name, forwarders).await?;
        s.migrate().await.unwrap();
        Some(s)
    }

    async fn count_rows(store: &AuditStore<Db>) -> (i64, i64) {
        let s = store.schema().unwrap();
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM \"{s}\".audit_events), (SELECT COUNT(*) FROM \"{s}\".audit_outbox)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_one(store.pool())
            .await
            .unwrap();
        (row.get(0), row.get(1))
    }

    async fn delete_event(store: &AuditStore<Db>, id: uuid::Uuid) {
        let s = store.schema().unwrap();
        let sql = format!("DELETE FROM \"{s}\".audit_events WHERE event_id = $1::uuid");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .execute(store.pool())
            .await
            .unwrap();
    }

    async fn dump_tables(store: &AuditStore<Db>) -> String {
        let s = store.schema().unwrap();
        let mut out = String::new();
        for table in ["audit_events", "audit_outbox"] {
            let sql = format!("SELECT row_to_json(t)::text FROM \"{s}\".{table} t");
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_all(store.pool())
                .await
                .unwrap();
            out.extend(rows.into_iter().map(|r| r + "\n"));
        }
        out
    }

    include!("suite/cases.rs");
    include!("suite/relay_delivery.rs");
    include!("suite/queries.rs");
    include!("suite/edge_cases.rs");
    include!("suite/relay_engine.rs");
    include!("suite/relay_status.rs");
    include!("suite/postgres_feed.rs");

    /// A CHECK constraint refuses rows of `actor`.
    async fn refuse_actor_in_db(store: &AuditStore<Db>, actor: &str) {
        let s = store.schema().unwrap();
        let sql = format!(
            "ALTER TABLE \"{s}\".audit_events ADD CONSTRAINT refuse_{actor} \
             CHECK (actor_id IS DISTINCT FROM '{actor}') NOT VALID"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn monthly_partitions_route_dedupe_and_drop() {
        let Some(plain) = fresh_store("parts", &["kafka"]).await else {
            return;
        };
        let schema = plain.schema().unwrap().to_owned();
        let store = AuditStore::builder(plain.pool().clone())
            .with_schema(&schema)
            .unwrap()
            .with_monthly_partitions()
            .with_forwarder("kafka")
            .unwrap()
            .build();
        assert!(matches!(
            plain.create_partitions(1).await,
            Err(authtel_sql::SqlError::NotPartitioned)
        ));
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        // The same schema with the other first migration: a typed error, nothing changed.
        let err = plain.migrate().await.unwrap_err();
        assert!(matches!(err, authtel_sql::SqlError::Migrate(_)), "{err}");
        let created = store.create_partitions(2).await.unwrap();
        assert_eq!(created.len(), 3, "{created:?}");
        assert_eq!(
            store.create_partitions(2).await.unwrap(),
            created,
            "idempotent"
        );

        let now = event("auth.login.stop", Outcome::Success);
        let old = at(
            event("auth.login.stop", Outcome::Success),
            minutes_ago(200 * 24 * 60),
        );
        let mut tx = store.begin().await.unwrap();
        tx.record(&now).await.unwrap();
        tx.record(&now).await.unwrap();
        tx.commit().await.unwrap();
        let writer = BatchWriter::new(&store);
        writer.forward(&[old.clone(), now.clone()]).await.unwrap();
        writer.forward(std::slice::from_ref(&old)).await.unwrap();
        assert_eq!(
            count_rows(&store).await,
            (2, 1),
            "deduplicated across paths"
        );

        let sql = format!(
            "SELECT tableoid::regclass::text, event_id::text FROM \"{schema}\".audit_events ORDER BY occurred_at"
        );
        let placed: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert!(placed[0].0.ends_with("audit_events_default"), "{placed:?}");
        assert!(placed[1].0.ends_with(&created[0]), "{placed:?}");

        let recording = shared(Recording::default());
        let relay = Relay::new(&store, RelayConfig::default())
            .with_forwarder("kafka", recording.clone())
            .unwrap();
        relay.run_once().await.unwrap();
        assert_eq!(recording.ids(), [now.id()]);

        let cutoff =
            Timestamp::from_unix_micros(Timestamp::now().unix_micros() + 32 * 86_400_000_000);
        let dropped = store.drop_partitions_older_than(cutoff).await.unwrap();
        assert!(dropped.contains(&created[0]), "{dropped:?}");
        assert!(!dropped.contains(&created[2]), "{dropped:?}");
        let left = store.query(&AuditQuery::new()).await.unwrap().events;
        assert_eq!(left.iter().map(|e| e.id()).collect::<Vec<_>>(), [old.id()]);
    }
}
