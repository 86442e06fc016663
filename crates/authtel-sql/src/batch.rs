//! The batch writer: a [`Forwarder`](authtel_core::forward::Forwarder) that stores records
//! arriving on the asynchronous path (not tied to an application transaction), many rows
//! per statement (or one `COPY` on PostgreSQL), idempotent on the event id.
//!
//! One bad record never takes its neighbours with it: a record that fails validation, or
//! that the database refuses (a constraint or data error), is refused alone — the batch is
//! split in halves until the refused records stand alone — and the rest is stored.

use sqlx::Database;

use crate::{AuditStore, SqlError};

/// Writes batches of audit records into the store: one transaction of 500-row inserts on
/// SQLite; on PostgreSQL one `COPY` of the whole batch, and, when that meets an id already
/// stored (a redelivered batch), one idempotent `UNNEST … ON CONFLICT DO NOTHING` insert
/// instead. A record whose id is already stored is skipped, so redelivery is harmless.
/// Failures map to transient (database unreachable or busy) or permanent (bad record)
/// [`ForwardError`](authtel_core::forward::ForwardError)s.
///
/// Records the store refuses are refused alone: [`write`](BatchWriter::write) stores every
/// other record of the batch and returns the refused ones with their errors; `forward` does
/// the same, then returns a permanent error naming the refused records (so a caller that
/// retries smaller batches finds them stored as duplicates, which are skipped).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_core::{audit::AuditEvent, forward::Forwarder, Outcome};
/// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await?;
/// let store = authtel_sql::AuditStore::builder(pool).build();
/// store.migrate().await?;
/// let writer = authtel_sql::BatchWriter::new(&store);
/// let batch = vec![AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()];
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

/// What [`BatchWriter::write`] did with a batch.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_core::audit::AuditEvent;
/// use authtel_core::Outcome;
/// let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await?).build();
/// store.migrate().await?;
/// // SQL text cannot hold a NUL byte. (In an identifier, core's policy redacts the id
/// // first, and the record is stored.)
/// let mut bad = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
/// bad = bad.with_reason("bad\0reason");
/// let batch = vec![AuditEvent::new("auth.login.stop", Outcome::Success).unwrap(), bad];
/// let outcome = authtel_sql::BatchWriter::new(&store).write(&batch).await?;
/// assert_eq!(outcome.stored, 1);
/// assert_eq!(outcome.refused[0].index, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BatchOutcome {
    /// Records stored, or already stored before (idempotent redelivery).
    pub stored: u64,
    /// Records refused permanently, in batch order; none of them was stored.
    pub refused: Vec<RefusedRecord>,
}

/// One record of a batch that the store refused permanently.
#[derive(Debug)]
pub struct RefusedRecord {
    /// Its position in the batch.
    pub index: usize,
    /// Its id.
    pub event_id: uuid::Uuid,
    /// Why: [`SqlError::InvalidEvent`] from validation, or the database's refusal.
    pub error: SqlError,
}
