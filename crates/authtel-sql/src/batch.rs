//! The batch writer: a [`Forwarder`](authtel_core::forward::Forwarder) that stores records
//! arriving on the asynchronous path (not tied to an application transaction), many rows
//! per statement (or one `COPY` on PostgreSQL), idempotent on the event id.

use sqlx::Database;

use crate::AuditStore;

/// Writes batches of audit records into the store: one transaction of 500-row inserts on
/// SQLite; on PostgreSQL one `COPY` of the whole batch, and, when that meets an id already
/// stored (a redelivered batch), one idempotent `UNNEST … ON CONFLICT DO NOTHING` insert
/// instead. A record whose id is already stored is skipped, so redelivery is harmless.
/// Failures map to transient (database unreachable or busy) or permanent (bad record)
/// [`ForwardError`](authtel_core::forward::ForwardError)s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_core::{audit::AuditEvent, forward::Forwarder, Outcome};
/// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await?;
/// let store = authtel_sql::AuditStore::builder(pool).build();
/// store.migrate().await?;
/// let writer = authtel_sql::BatchWriter::new(&store);
/// let batch = vec![AuditEvent::new("auth.login.stop", Outcome::Success)];
/// writer.forward(&batch).await?;
/// writer.forward(&batch).await?; // the same batch again: still one row
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BatchWriter<DB: Database> {
    pub(crate) store: AuditStore<DB>,
}

impl<DB: Database> BatchWriter<DB> {
    /// A writer into `store`.
    pub fn new(store: &AuditStore<DB>) -> BatchWriter<DB> {
        BatchWriter {
            store: store.clone(),
        }
    }
}
