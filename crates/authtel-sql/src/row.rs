//! Between [`AuditEvent`] and a table row: the checks SQL text needs on the way in (records
//! are already screened by core's policy), parsing through core's policy
//! ([`AuditEventParts`]) on the way out. Backend-neutral: every column is text or a 64-bit integer here.

use std::borrow::Cow;

use authtel_core::audit::{AuditEvent, AuditEventParts, Party, Timestamp};
use authtel_core::outcome::Outcome;
use uuid::Uuid;

use crate::SqlError;

/// The largest metadata JSON a row may carry, in bytes: core's one limit
/// ([`authtel_core::policy::LIMITS`]), enforced when a record is made, so no larger record
/// reaches the store.
pub const MAX_METADATA_BYTES: usize = authtel_core::policy::LIMITS.metadata_bytes;

/// The longest text a single column may carry, in bytes.
pub const MAX_TEXT_BYTES: usize = 4 * 1024;

/// The columns in the order every statement of this crate lists them.
pub(crate) const COLUMNS: &str = "event_id, occurred_at, action, outcome, actor_id, actor_type, \
     target_id, target_type, session_id, client_ip, user_agent, resource, operation, reason, \
     span_id, trace_id, tenant_id, metadata, schema_version";

/// One audit record ready to bind: screened by core's policy when it was made, and
/// checked for what SQL text cannot hold. Text borrows from the record, so a batch costs no per-field copies.
#[derive(Debug, Clone)]
pub(crate) struct EventRow<'a> {
    pub(crate) event_id: String,
    pub(crate) occurred_at: i64,
    pub(crate) action: Cow<'a, str>,
    pub(crate) outcome: &'static str,
    pub(crate) actor_id: Option<Cow<'a, str>>,
    pub(crate) actor_type: Option<Cow<'a, str>>,
    pub(crate) target_id: Option<Cow<'a, str>>,
    pub(crate) target_type: Option<Cow<'a, str>>,
    pub(crate) session_id: Option<Cow<'a, str>>,
    pub(crate) client_ip: Option<String>,
    pub(crate) user_agent: Option<Cow<'a, str>>,
    pub(crate) resource: Option<Cow<'a, str>>,
    pub(crate) operation: Option<Cow<'a, str>>,
    pub(crate) reason: Option<Cow<'a, str>>,
    pub(crate) span_id: Option<Cow<'a, str>>,
    pub(crate) trace_id: Option<Cow<'a, str>>,
    pub(crate) tenant_id: Option<Cow<'a, str>>,
    pub(crate) metadata: String,
    pub(crate) schema_version: i64,
}

impl<'a> EventRow<'a> {
    pub(crate) fn from_event(e: &'a AuditEvent) -> Result<EventRow<'a>, SqlError> {
        let id = e.id();
        let text = |field: &'static str, v: &'a str| -> Result<Cow<'a, str>, SqlError> {
            check_text(id, field, v)?;
            Ok(Cow::Borrowed(v))
        };
        let opt = |field: &'static str, v: Option<&'a str>| v.map(|v| text(field, v)).transpose();
        if e.action().is_empty() || e.action().len() > 128 {
            return Err(invalid(id, "action", "must be 1-128 bytes long".into()));
        }
        let metadata = serde_json::to_string(&e.metadata())
            .map_err(|err| invalid(id, "metadata", format!("does not serialize: {err}")))?;
        // Its size is bounded by core's policy ([`MAX_METADATA_BYTES`]) when the record was made.
        // JSON escapes control characters, so only raw NULs in keys matter; PostgreSQL
        // text cannot hold \u0000 escapes either.
        if metadata.contains("\\u0000") {
            return Err(invalid(id, "metadata", "contains a NUL character".into()));
        }
        Ok(EventRow {
            event_id: id.hyphenated().to_string(),
            occurred_at: e.occurred_at().unix_micros(),
            action: text("action", e.action())?,
            outcome: e.outcome().as_str(),
            actor_id: opt("actor.id", e.actor().map(|p| p.id.as_str()))?,
            actor_type: opt("actor.type", e.actor().map(|p| p.kind.as_str()))?,
            target_id: opt("target.id", e.target().map(|p| p.id.as_str()))?,
            target_type: opt("target.type", e.target().map(|p| p.kind.as_str()))?,
            session_id: opt("session_id", e.session_id())?,
            client_ip: e.client_ip().map(|ip| ip.to_string()),
            user_agent: opt("user_agent", e.user_agent())?,
            resource: opt("resource", e.resource())?,
            operation: opt("operation", e.operation())?,
            reason: opt("reason", e.reason())?,
            span_id: opt("span_id", e.span_id())?,
            trace_id: opt("trace_id", e.trace_id())?,
            tenant_id: opt("tenant_id", e.tenant_id())?,
            metadata,
            schema_version: i64::from(e.schema_version()),
        })
    }
}

/// How many optional text columns a row has: `actor_id` through `tenant_id`.
pub(crate) const OPTIONAL_TEXT_COLUMNS: usize = 13;

impl EventRow<'_> {
    /// The optional text columns, `actor_id` through `tenant_id`, in [`COLUMNS`] order: the
    /// one list every encoder walks (statement binds, column arrays, COPY text).
    #[inline]
    pub(crate) fn optional_texts(&self) -> [Option<&str>; OPTIONAL_TEXT_COLUMNS] {
        [
            self.actor_id.as_deref(),
            self.actor_type.as_deref(),
            self.target_id.as_deref(),
            self.target_type.as_deref(),
            self.session_id.as_deref(),
            self.client_ip.as_deref(),
            self.user_agent.as_deref(),
            self.resource.as_deref(),
            self.operation.as_deref(),
            self.reason.as_deref(),
            self.span_id.as_deref(),
            self.trace_id.as_deref(),
            self.tenant_id.as_deref(),
        ]
    }
}

fn invalid(event_id: Uuid, field: &'static str, problem: String) -> SqlError {
    SqlError::InvalidEvent {
        event_id,
        field,
        problem,
    }
}

fn check_text(id: Uuid, field: &'static str, v: &str) -> Result<(), SqlError> {
    if v.contains('\0') {
        return Err(invalid(
            id,
            field,
            "contains a NUL byte, which SQL text cannot hold".into(),
        ));
    }
    if v.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            id,
            field,
            format!("is {} bytes, over the {MAX_TEXT_BYTES}-byte limit", v.len()),
        ));
    }
    Ok(())
}

/// A row as read back, before parsing: the columns of [`COLUMNS`] as text and integers.
#[derive(Debug, Default)]
pub(crate) struct StoredRow {
    pub(crate) event_id: String,
    pub(crate) occurred_at: i64,
    pub(crate) action: String,
    pub(crate) outcome: String,
    pub(crate) actor_id: Option<String>,
    pub(crate) actor_type: Option<String>,
    pub(crate) target_id: Option<String>,
    pub(crate) target_type: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) client_ip: Option<String>,
    pub(crate) user_agent: Option<String>,
    pub(crate) resource: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) span_id: Option<String>,
    pub(crate) trace_id: Option<String>,
    pub(crate) tenant_id: Option<String>,
    pub(crate) metadata: String,
    pub(crate) schema_version: i64,
}

impl StoredRow {
    pub(crate) fn into_event(self) -> Result<AuditEvent, SqlError> {
        let corrupt = |problem: String| SqlError::CorruptRow {
            event_id: self.event_id.clone(),
            problem,
        };
        let id: Uuid = self
            .event_id
            .parse()
            .map_err(|e| corrupt(format!("event_id is not a UUID: {e}")))?;
        let outcome = match self.outcome.as_str() {
            "success" => Outcome::Success,
            "failure" => Outcome::Failure,
            "denied" => Outcome::Denied,
            "error" => Outcome::Error,
            other => return Err(corrupt(format!("unknown outcome {other:?}"))),
        };
        let client_ip = self
            .client_ip
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| corrupt(format!("client_ip does not parse: {e}")))?;
        let metadata = serde_json::from_str(&self.metadata)
            .map_err(|e| corrupt(format!("metadata is not a JSON object: {e}")))?;
        let schema_version = u16::try_from(self.schema_version).map_err(|_| {
            corrupt(format!(
                "schema_version {} out of range",
                self.schema_version
            ))
        })?;
        let party = |id: Option<String>, kind: Option<String>| {
            id.map(|id| Party::new(id, kind.unwrap_or_default()))
        };
        // The one way in for decoded records: core's policy, as for every other source.
        let parts = AuditEventParts {
            schema_version,
            actor: party(self.actor_id, self.actor_type),
            target: party(self.target_id, self.target_type),
            session_id: self.session_id,
            client_ip,
            user_agent: self.user_agent,
            resource: self.resource,
            operation: self.operation,
            reason: self.reason,
            span_id: self.span_id,
            trace_id: self.trace_id,
            tenant_id: self.tenant_id,
            metadata,
            ..AuditEventParts::new(
                id,
                Timestamp::from_unix_micros(self.occurred_at),
                self.action,
                outcome,
            )
        };
        AuditEvent::try_from(parts).map_err(|e| corrupt(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::metadata::REDACTED;

    #[test]
    fn records_reach_rows_screened() {
        let e = AuditEvent::new("auth.login.stop", Outcome::Failure)
            .unwrap()
            .with_metadata("password", "hunter2")
            .and_then(|e| {
                e.with_metadata(
                    "nested",
                    serde_json::json!({"refresh_token": "r1", "list": ["Bearer abc"]}),
                )
            })
            .unwrap()
            .with_reason("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl");
        let row = EventRow::from_event(&e).unwrap();
        assert!(!row.metadata.contains("hunter2"));
        assert!(!row.metadata.contains("r1"));
        assert!(!row.metadata.contains("Bearer"));
        assert_eq!(row.reason.as_deref(), Some(REDACTED));
    }

    #[test]
    fn rows_read_back_pass_the_policy() {
        let e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
        let row = StoredRow {
            event_id: e.id().to_string(),
            occurred_at: e.occurred_at().unix_micros(),
            action: e.action().to_owned(),
            outcome: "failure".into(),
            actor_id: Some("alice@example.com".into()),
            actor_type: Some("user".into()),
            session_id: Some("alice@example.com".into()),
            reason: Some("verify failed: password=hunter2".into()),
            metadata: r#"{"pw":"hunter2","note":"Authorization: Bearer abc8fK2xQ9aB7mN3pL5"}"#
                .into(),
            schema_version: 1,
            ..StoredRow::default()
        };
        let back = row.into_event().unwrap();
        let json = serde_json::to_string(&back).unwrap();
        for leaked in ["hunter2", "alice@", "abc8fK2xQ9aB7mN3pL5"] {
            assert!(!json.contains(leaked), "{leaked}: {json}");
        }
        let bad = StoredRow {
            event_id: e.id().to_string(),
            action: "Not A Name".into(),
            outcome: "failure".into(),
            metadata: "{}".into(),
            schema_version: 1,
            ..StoredRow::default()
        };
        assert!(matches!(bad.into_event(), Err(SqlError::CorruptRow { .. })));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        let e = AuditEvent::new("auth.login.stop", Outcome::Failure)
            .unwrap()
            .with_reason("a\0b");
        assert!(matches!(
            EventRow::from_event(&e),
            Err(SqlError::InvalidEvent {
                field: "reason",
                ..
            })
        ));
        // Over core's bound: refused when the record is made, before any store sees it.
        let mut e = Ok(AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap());
        for i in 0..64 {
            e = e.and_then(|e| e.with_metadata(format!("blob{i}"), "x".repeat(200)));
        }
        assert!(matches!(
            e,
            Err(authtel_core::audit::AuditError::MetadataTooLarge { .. })
        ));
        assert!(AuditEvent::new("", Outcome::Failure).is_err());
    }
}
