//! The SQL stores the projector writes into, one suite per backend.

use authtel_sql::AuditStore;
use authtel_sql::postgres::Postgres;
use authtel_sql::sqlite::Sqlite;
use authtel_sql::sqlx;

/// A migrated SQLite store in memory (one connection, shared by test and projector).
pub async fn sqlite() -> AuditStore<Sqlite> {
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .expect("open sqlite");
    let store = AuditStore::builder(pool).build();
    store.migrate().await.expect("migrate sqlite");
    store
}

/// A migrated PostgreSQL store in its own schema, or `None` (skipped) without a database.
pub async fn postgres(test: &str) -> Option<AuditStore<Postgres>> {
    let url = super::service_env("DATABASE_URL", test)?;
    let pool = authtel_sql::postgres::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("{test}: connect to {url}: {e}"));
    let schema = super::unique_topic("k").replace('-', "_");
    let store = AuditStore::builder(pool)
        .with_schema(&schema)
        .unwrap()
        .build();
    store.migrate().await.expect("migrate postgres");
    Some(store)
}

/// (rows, distinct event ids) in a store.
pub trait RowCount {
    fn rows(&self) -> impl std::future::Future<Output = (i64, i64)> + Send;
    /// The stored records of one actor, oldest first.
    fn actor_events(
        &self,
        actor: &str,
    ) -> impl std::future::Future<Output = Vec<authtel_core::audit::AuditEvent>> + Send;
}

impl RowCount for AuditStore<Sqlite> {
    async fn actor_events(&self, actor: &str) -> Vec<authtel_core::audit::AuditEvent> {
        let q = authtel_sql::AuditQuery::new().actor(actor).limit(1000);
        self.query(&q).await.expect("query").events
    }

    async fn rows(&self) -> (i64, i64) {
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM audit_events")
            .fetch_one(self.pool())
            .await
            .expect("count rows")
    }
}

impl RowCount for AuditStore<Postgres> {
    async fn actor_events(&self, actor: &str) -> Vec<authtel_core::audit::AuditEvent> {
        let q = authtel_sql::AuditQuery::new().actor(actor).limit(1000);
        self.query(&q).await.expect("query").events
    }

    async fn rows(&self) -> (i64, i64) {
        let schema = self.schema().unwrap();
        // The schema is a validated identifier made by this test.
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM \"{schema}\".audit_events"
        )))
        .fetch_one(self.pool())
        .await
        .expect("count rows")
    }
}
