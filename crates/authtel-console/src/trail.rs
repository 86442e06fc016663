//! The console's own audit trail: every page an admitted reader opens is recorded as
//! [`HISTORY_READ`], every requeue as [`REQUEUE`] and every purge (dry runs included) as
//! [`PURGE`], in the store being read, with the reader as actor. A read that cannot be
//! recorded is not served (503): reading the audit history is itself audited.
//!
//! On by default; [`ConsoleBuilder::with_self_audit`](crate::ConsoleBuilder::with_self_audit)
//! turns it off (for an application that records console access itself).

use authtel_audit::Reader;
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;
use axum::http::StatusCode;

use crate::Shared;
use crate::error::PageError;

/// The action of a console page read (defined with the other operator actions in
/// [`authtel_sql::trail`]).
pub use authtel_sql::trail::HISTORY_READ;
/// The action of a purge (or purge dry run) from the console or the CLI.
pub use authtel_sql::trail::PURGE;
/// The action of a requeue from the console or the CLI.
pub use authtel_sql::trail::REQUEUE;

/// The actor type of console readers.
pub const READER_TYPE: &str = "console_reader";

/// What the console records about one page read.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) action: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) resource: String,
    pub(crate) operation: &'a str,
    pub(crate) reason: Option<String>,
}

/// The party a console reader acts as.
pub(crate) fn reader_party(reader: &Reader) -> Party {
    Party::new(reader.id(), READER_TYPE)
}

/// A record the console could not even build.
pub(crate) fn refused(err: authtel_core::audit::AuditError) -> PageError {
    PageError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the console's own audit record was refused: {err}"),
        "this is a bug in authtel-console: report it with this message",
    )
}

impl Shared {
    /// Records `entry` for `reader`, unless self-audit is off.
    pub(crate) async fn audit(&self, reader: &Reader, entry: Entry<'_>) -> Result<(), PageError> {
        if !self.self_audit {
            return Ok(());
        }
        let mut e = AuditEvent::new(entry.action, entry.outcome)
            .map_err(refused)?
            .with_actor(reader_party(reader))
            .with_resource(entry.resource)
            .with_operation(entry.operation);
        if let Some(reason) = entry.reason {
            e = e.with_reason(reason);
        }
        self.record(e).await
    }

    /// Records an operator action built by [`authtel_sql::trail`], unless self-audit is off.
    pub(crate) async fn record_action(&self, e: AuditEvent) -> Result<(), PageError> {
        if !self.self_audit {
            return Ok(());
        }
        self.record(e).await
    }

    async fn record(&self, e: AuditEvent) -> Result<(), PageError> {
        let action = e.action().to_owned();
        self.store.record(&e).await.map_err(|err| {
            tracing::warn!(error = %err, action, "authtel console: recording the console's own audit record failed");
            PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("recording this {action} in the audit trail failed: {err}"),
                "the console serves nothing it cannot record; check that the database accepts writes, then retry",
            )
        })
    }
}
