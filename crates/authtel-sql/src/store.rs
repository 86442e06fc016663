//! The store handle and its builder: which pool, which schema, which forwarders get an
//! outbox entry per record. The operations themselves live in `backend/common.rs`, compiled
//! once per enabled backend.

use std::marker::PhantomData;
use std::sync::Arc;

use sqlx::{Database, Pool};
use tokio::sync::Notify;

use crate::SqlError;

/// The SQL audit store on one database: writes rows (inside your transaction or in
/// batches), keeps the outbox, answers queries.
///
/// `DB` is `sqlx::Sqlite` (feature `sqlite`) or `sqlx::Postgres` (feature `postgres`).
/// Cloning is cheap and shares the pool.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_sql::{AuditStore, sqlite};
/// let pool = sqlite::connect("sqlite::memory:").await?;
/// let store = AuditStore::builder(pool).with_forwarder("kafka")?.build();
/// store.migrate().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AuditStore<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) inner: Arc<StoreInner>,
}

impl<DB: Database> Clone for AuditStore<DB> {
    fn clone(&self) -> Self {
        AuditStore {
            pool: self.pool.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<DB: Database> AuditStore<DB> {
    /// Starts configuring a store on `pool`.
    pub fn builder(pool: Pool<DB>) -> AuditStoreBuilder<DB> {
        AuditStoreBuilder {
            pool,
            schema: None,
            forwarders: Vec::new(),
            partitioned: false,
            _db: PhantomData,
        }
    }

    /// The pool the store writes through.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// The forwarder ids that get an outbox entry for every recorded event.
    pub fn forwarders(&self) -> &[String] {
        &self.inner.forwarders
    }

    /// Whether the store was built for monthly partitions (PostgreSQL's
    /// `with_monthly_partitions()`).
    pub fn monthly_partitions(&self) -> bool {
        self.inner.partitioned
    }

    /// The PostgreSQL schema holding the tables, if one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.inner.schema.as_deref()
    }
}

/// Configures an [`AuditStore`]. Options are checked when given, so `build` cannot fail.
#[derive(Debug)]
pub struct AuditStoreBuilder<DB: Database> {
    pub(crate) pool: Pool<DB>,
    pub(crate) schema: Option<String>,
    pub(crate) forwarders: Vec<String>,
    pub(crate) partitioned: bool,
    _db: PhantomData<DB>,
}

impl<DB: Database> AuditStoreBuilder<DB> {
    /// Adds a forwarder id: every recorded event gets one outbox entry for it, delivered by a
    /// relay that has a forwarder under the same id. Ids are 1-64 characters of `a-z`,
    /// `0-9`, `_`, `-`, `.`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await.unwrap();
    /// let b = authtel_sql::AuditStore::builder(pool);
    /// assert!(b.with_forwarder("Bad Id").is_err());
    /// # }
    /// ```
    pub fn with_forwarder(mut self, id: &str) -> Result<Self, SqlError> {
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.')
            });
        if !valid {
            return Err(SqlError::InvalidForwarderId(id.to_owned()));
        }
        if !self.forwarders.iter().any(|f| f == id) {
            self.forwarders.push(id.to_owned());
        }
        Ok(self)
    }
}

#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn check_schema_name(name: &str) -> Result<(), SqlError> {
    let b = name.as_bytes();
    let valid = !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
    if valid {
        Ok(())
    } else {
        Err(SqlError::InvalidSchemaName(name.to_owned()))
    }
}

/// Everything a store shares between its clones: names, statements, the relay wake-up.
#[derive(Debug)]
pub(crate) struct StoreInner {
    pub(crate) schema: Option<String>,
    pub(crate) forwarders: Vec<String>,
    pub(crate) sql: crate::backend::Statements,
    /// PostgreSQL: monthly range partitions (a different first migration).
    pub(crate) partitioned: bool,
    /// Woken after a commit that enqueued outbox entries, so a relay delivers at once
    /// instead of at its next poll.
    pub(crate) wake: Arc<Notify>,
}
