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

/// The action of a console page read.
pub const HISTORY_READ: &str = "audit.history.read";
/// The action of a requeue from the console.
pub const REQUEUE: &str = "audit.requeue";
/// The action of a purge (or purge dry run) from the console.
pub const PURGE: &str = "audit.purge";

/// The actor type of console readers.
pub const READER_TYPE: &str = "console_reader";

/// What the console records about one request.
#[derive(Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) action: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) resource: String,
    pub(crate) operation: &'a str,
    pub(crate) reason: Option<String>,
}

impl Shared {
    /// Records `entry` for `reader`, unless self-audit is off.
    pub(crate) async fn audit(&self, reader: &Reader, entry: Entry<'_>) -> Result<(), PageError> {
        if !self.self_audit {
            return Ok(());
        }
        let mut e = AuditEvent::new(entry.action, entry.outcome)
            .map_err(|err| {
                PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("the console's own audit record was refused: {err}"),
                    "this is a bug in authtel-console: report it with this message",
                )
            })?
            .with_actor(Party::new(reader.id(), READER_TYPE))
            .with_resource(entry.resource)
            .with_operation(entry.operation);
        if let Some(reason) = entry.reason {
            e = e.with_reason(reason);
        }
        self.store.record(&e).await.map_err(|err| {
            tracing::warn!(error = %err, action = entry.action, "authtel console: recording the console's own audit record failed");
            PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("recording this {} in the audit trail failed: {err}", entry.action),
                "the console serves nothing it cannot record; check that the database accepts writes, then retry",
            )
        })
    }
}
