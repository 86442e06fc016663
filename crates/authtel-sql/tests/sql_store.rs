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
}

#[cfg(feature = "postgres")]
mod postgres_suite {
    use authtel_sql::AuditStore;
    use sqlx::Row;

    type Db = sqlx::Postgres;

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
}
