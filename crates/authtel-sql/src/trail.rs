//! Operator actions in the audit trail: the one definition of the records the `authtel` CLI
//! and the web console write when someone purges or requeues, and of how `authtel doctor`
//! reads the newest purge back.
//!
//! A purge is [`PURGE`] with operation [`PURGE_DELETE`] (or [`PURGE_DRY_RUN`]), resource
//! `audit trail older than <cutoff>`, a reason in words and the counts as metadata
//! (`audit_rows`, `outbox_entries`, `partitions_dropped`); a requeue is [`REQUEUE`] with the
//! forwarder or record as resource and `requeued` as metadata. The actor is whoever did it:
//! a console reader, or the operating-system user running the CLI ([`OS_USER_TYPE`]).
//!
//! ```
//! use authtel_core::audit::{Party, Timestamp};
//! use authtel_sql::{LastPurge, PurgeAction, PurgeReport, trail};
//! let done = PurgeAction {
//!     cutoff: Timestamp::from_unix_micros(0),
//!     dry_run: false,
//!     result: Ok(PurgeReport { events: 120, outbox: 7 }),
//!     partitions_dropped: vec!["audit_events_p202401".into()],
//! };
//! let record = trail::purge_record(Party::new("alice", trail::OS_USER_TYPE), &done)?;
//! assert_eq!(record.action(), trail::PURGE);
//! let last = LastPurge::from_record(&record);
//! assert_eq!(last.audit_rows, Some(120));
//! assert_eq!(last.partitions_dropped, Some(1));
//! assert_eq!(last.actor.unwrap().id, "alice");
//! # Ok::<(), authtel_core::audit::AuditError>(())
//! ```

use authtel_core::audit::{AuditError, AuditEvent, Party, Timestamp};
use authtel_core::outcome::Outcome;
use uuid::Uuid;

use crate::PurgeReport;

/// The action of an audit history read (the console records one per page served).
pub const HISTORY_READ: &str = "audit.history.read";
/// The action of a requeue of dead-lettered outbox entries.
pub const REQUEUE: &str = "audit.requeue";
/// The action of a retention purge (or a purge dry run).
pub const PURGE: &str = "audit.purge";
/// The operation of a purge that deleted.
pub const PURGE_DELETE: &str = "delete";
/// The operation of a purge dry run (counted only).
pub const PURGE_DRY_RUN: &str = "dry_run";
/// The actor type of the operating-system user running the `authtel` CLI.
pub const OS_USER_TYPE: &str = "os_user";

/// One purge, as [`purge_record`] records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeAction {
    /// Rows older than this were purged (or counted).
    pub cutoff: Timestamp,
    /// Only counted.
    pub dry_run: bool,
    /// What was deleted (or would be; partition rows included), or why it failed.
    pub result: Result<PurgeReport, String>,
    /// Monthly partitions dropped whole (PostgreSQL), by name.
    pub partitions_dropped: Vec<String>,
}

/// The record of a purge by `actor`: [`PURGE`], outcome success or error.
pub fn purge_record(actor: Party, purge: &PurgeAction) -> Result<AuditEvent, AuditError> {
    let outcome = if purge.result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Error
    };
    let e = AuditEvent::new(PURGE, outcome)?
        .with_actor(actor)
        .with_resource(format!("audit trail older than {}", purge.cutoff))
        .with_operation(if purge.dry_run {
            PURGE_DRY_RUN
        } else {
            PURGE_DELETE
        });
    match &purge.result {
        Ok(r) => {
            let mut reason = format!("{} audit rows, {} outbox entries", r.events, r.outbox);
            if !purge.partitions_dropped.is_empty() {
                reason.push_str(&format!(
                    " ({} partitions dropped: {})",
                    purge.partitions_dropped.len(),
                    purge.partitions_dropped.join(", ")
                ));
            }
            e.with_reason(reason)
                .with_metadata("audit_rows", r.events)?
                .with_metadata("outbox_entries", r.outbox)?
                .with_metadata("partitions_dropped", purge.partitions_dropped.len() as u64)
        }
        Err(why) => Ok(e.with_reason(format!("failed: {why}"))),
    }
}

/// The record of a requeue by `actor` of the dead entries of `forwarder`, of record
/// `event`, or of both together: [`REQUEUE`], with how many moved or why it failed.
pub fn requeue_record(
    actor: Party,
    forwarder: Option<&str>,
    event: Option<Uuid>,
    result: Result<u64, String>,
) -> Result<AuditEvent, AuditError> {
    let resource = match (forwarder, event) {
        (Some(f), Some(e)) => format!("outbox/forwarder {f}/record {e}"),
        (Some(f), None) => format!("outbox/forwarder {f}"),
        (None, Some(e)) => format!("outbox/record {e}"),
        (None, None) => "outbox".to_owned(),
    };
    let outcome = if result.is_ok() {
        Outcome::Success
    } else {
        Outcome::Error
    };
    let e = AuditEvent::new(REQUEUE, outcome)?
        .with_actor(actor)
        .with_resource(resource)
        .with_operation("requeue");
    match result {
        Ok(n) => e
            .with_reason(format!("requeued {n} dead entries"))
            .with_metadata("requeued", n),
        Err(why) => Ok(e.with_reason(format!("failed: {why}"))),
    }
}

/// The newest purge as [`AuditStore::last_purge`](crate::AuditStore) reads it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastPurge {
    /// When it was recorded (just after it finished).
    pub at: Timestamp,
    /// Who purged.
    pub actor: Option<Party>,
    /// Whether it worked.
    pub outcome: Outcome,
    /// `audit trail older than <cutoff>`.
    pub resource: Option<String>,
    /// Audit rows deleted (records written before the counts were metadata: `None`).
    pub audit_rows: Option<u64>,
    /// Finished outbox entries deleted.
    pub outbox_entries: Option<u64>,
    /// Monthly partitions dropped whole.
    pub partitions_dropped: Option<u64>,
    /// The reason in words (the counts, or why it failed).
    pub reason: Option<String>,
}

impl LastPurge {
    /// Reads a [`PURGE`] record.
    pub fn from_record(e: &AuditEvent) -> LastPurge {
        let count = |key: &str| e.metadata().get(key).and_then(serde_json::Value::as_u64);
        LastPurge {
            at: e.occurred_at(),
            actor: e.actor().cloned(),
            outcome: e.outcome(),
            resource: e.resource().map(str::to_owned),
            audit_rows: count("audit_rows"),
            outbox_entries: count("outbox_entries"),
            partitions_dropped: count("partitions_dropped"),
            reason: e.reason().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_purge_is_recorded_as_an_error_without_counts() {
        let failed = PurgeAction {
            cutoff: Timestamp::from_unix_micros(0),
            dry_run: false,
            result: Err("database is locked".into()),
            partitions_dropped: Vec::new(),
        };
        let e = purge_record(Party::new("alice", OS_USER_TYPE), &failed).unwrap();
        assert_eq!(e.outcome(), Outcome::Error);
        assert_eq!(e.operation(), Some(PURGE_DELETE));
        assert_eq!(e.reason(), Some("failed: database is locked"));
        assert_eq!(LastPurge::from_record(&e).audit_rows, None);
    }

    #[test]
    fn a_requeue_names_what_it_moved() {
        let id = Uuid::now_v7();
        let e = requeue_record(
            Party::new("bob", OS_USER_TYPE),
            Some("siem"),
            Some(id),
            Ok(2),
        )
        .unwrap();
        assert_eq!(e.action(), REQUEUE);
        assert_eq!(
            e.resource(),
            Some(format!("outbox/forwarder siem/record {id}").as_str())
        );
        assert_eq!(e.metadata()["requeued"], 2);
    }
}
