//! A transaction that remembers the audit records written in it, so that commit can hand
//! them on (and wake the relay) only after the database has accepted them.

use authtel_core::audit::AuditEvent;
use sqlx::{Database, Transaction};

use crate::AuditStore;

/// Your transaction plus the audit records recorded in it.
///
/// Do your own SQL on [`AuditTx::conn`], record with [`AuditTx::record`], then
/// [`AuditTx::commit`] (or `commit_then`). Rolling back, or dropping it, discards the records
/// and their outbox entries with everything else: nothing is ever forwarded for a
/// transaction that did not commit.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_core::{audit::AuditEvent, Outcome};
/// let pool = authtel_sql::sqlite::connect("sqlite::memory:").await?;
/// let store = authtel_sql::AuditStore::builder(pool).build();
/// store.migrate().await?;
/// let mut tx = store.begin().await?;
/// sqlx::query("CREATE TABLE IF NOT EXISTS users (id TEXT)").execute(tx.conn()).await?;
/// tx.record(&AuditEvent::new("auth.register.stop", Outcome::Success).unwrap()).await?;
/// let committed = tx.commit().await?;
/// assert_eq!(committed.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "an AuditTx rolls back when dropped; call commit()"]
pub struct AuditTx<'c, DB: Database> {
    pub(crate) tx: Transaction<'c, DB>,
    pub(crate) store: AuditStore<DB>,
    pub(crate) recorded: Vec<AuditEvent>,
}

impl<'c, DB: Database> AuditTx<'c, DB> {
    /// Wraps a transaction you already began.
    pub fn wrap(store: &AuditStore<DB>, tx: Transaction<'c, DB>) -> AuditTx<'c, DB> {
        AuditTx {
            tx,
            store: store.clone(),
            recorded: Vec::new(),
        }
    }

    /// The connection of the transaction, for your own statements.
    pub fn conn(&mut self) -> &mut DB::Connection {
        &mut self.tx
    }

    /// The records written so far.
    pub fn recorded(&self) -> &[AuditEvent] {
        &self.recorded
    }
}
