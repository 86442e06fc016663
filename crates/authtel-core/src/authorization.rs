//! Authorization audit: one call per decision says who asked to do what to which resource,
//! and how it was decided.
//!
//! [`log_authorized`], [`log_denied`] and [`log_error`] emit the catalogue's
//! [`AUTHORIZATION_ALLOWED`], [`AUTHORIZATION_DENIED`] and [`AUTHORIZATION_ERROR`] signals
//! with the metadata fields `operation`, `caller`, `resource`, `reason` and `outcome`
//! (`success`, `denied`, `error`). Every audit sink turns them into an
//! [`AuditEvent`](crate::audit::AuditEvent) through
//! [`AuditEvent::from_record`](crate::audit::AuditEvent::from_record): the caller becomes the
//! actor (type `caller`), and operation, resource, reason and outcome carry over.
//!
//! Like every emitter, these cost one atomic load when nothing is attached.
//!
//! ```
//! use authtel_core::authorization::{log_authorized, log_denied, DenyReason, Operation};
//! log_authorized(Operation::Call, "did:key:z6Mk1", "energy.home.get_status");
//! log_denied(Operation::Publish, "did:key:z6Mk2", "energy.grid.prices", DenyReason::NamespaceMismatch);
//! ```

use std::fmt;

use crate::catalogue::{AUTHORIZATION_ALLOWED, AUTHORIZATION_DENIED, AUTHORIZATION_ERROR};
use crate::metadata::Metadata;
use crate::outcome::Outcome;
use crate::registry;
use crate::telemetry::{self, Measurements};

/// What the caller asked to do.
///
/// ```
/// use authtel_core::authorization::Operation;
/// assert_eq!(Operation::Subscribe.as_str(), "subscribe");
/// assert_eq!(Operation::Custom("rotate_keys").as_str(), "rotate_keys");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation<'a> {
    /// Call a procedure.
    Call,
    /// Publish to a topic.
    Publish,
    /// Subscribe to a topic.
    Subscribe,
    /// Announce (register) a procedure or service.
    Announce,
    /// An application-defined operation; keep the set of names small (it becomes a label).
    Custom(&'a str),
}

impl<'a> Operation<'a> {
    /// The lowercase name recorded in the `operation` field.
    pub const fn as_str(&self) -> &'a str {
        match self {
            Operation::Call => "call",
            Operation::Publish => "publish",
            Operation::Subscribe => "subscribe",
            Operation::Announce => "announce",
            Operation::Custom(name) => name,
        }
    }
}

impl fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an operation was denied.
///
/// ```
/// use authtel_core::authorization::DenyReason;
/// assert_eq!(DenyReason::ExpiredCredential.as_str(), "expired_credential");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason<'a> {
    /// No rule grants the operation.
    Unauthorized,
    /// The credential (capability token, certificate) is malformed or its signature fails.
    InvalidCredential,
    /// The credential has expired.
    ExpiredCredential,
    /// The credential was revoked.
    RevokedCredential,
    /// The credential is valid but does not grant this operation on this resource.
    InsufficientCapability,
    /// The caller's identity is malformed or unknown.
    InvalidCaller,
    /// The resource lies outside the caller's namespace.
    NamespaceMismatch,
    /// An application-defined reason; keep the set of names small.
    Custom(&'a str),
}

impl<'a> DenyReason<'a> {
    /// The lowercase name recorded in the `reason` field.
    pub const fn as_str(&self) -> &'a str {
        match self {
            DenyReason::Unauthorized => "unauthorized",
            DenyReason::InvalidCredential => "invalid_credential",
            DenyReason::ExpiredCredential => "expired_credential",
            DenyReason::RevokedCredential => "revoked_credential",
            DenyReason::InsufficientCapability => "insufficient_capability",
            DenyReason::InvalidCaller => "invalid_caller",
            DenyReason::NamespaceMismatch => "namespace_mismatch",
            DenyReason::Custom(name) => name,
        }
    }
}

impl fmt::Display for DenyReason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Records that `caller` was allowed to perform `operation` on `resource`.
///
/// `caller` is an opaque id (a service id, a DID); an email is refused by the metadata
/// policy and the record then has no actor.
///
/// ```
/// use authtel_core::authorization::{log_authorized, Operation};
/// log_authorized(Operation::Call, "svc_billing", "invoices.create");
/// ```
#[inline]
pub fn log_authorized(operation: Operation<'_>, caller: &str, resource: &str) {
    if !registry::is_active() {
        return;
    }
    emit(
        &AUTHORIZATION_ALLOWED,
        operation,
        caller,
        resource,
        None,
        Outcome::Success,
    );
}

/// Records that `caller` was denied `operation` on `resource`, and why.
///
/// ```
/// use authtel_core::authorization::{log_denied, DenyReason, Operation};
/// log_denied(Operation::Subscribe, "svc_reports", "payroll.updates", DenyReason::InsufficientCapability);
/// ```
#[inline]
pub fn log_denied(operation: Operation<'_>, caller: &str, resource: &str, reason: DenyReason<'_>) {
    if !registry::is_active() {
        return;
    }
    emit(
        &AUTHORIZATION_DENIED,
        operation,
        caller,
        resource,
        Some(reason.as_str()),
        Outcome::Denied,
    );
}

/// Records that the authorization check itself failed (a policy store unreachable, a
/// malformed policy). The error's text becomes the `reason`, screened by the metadata
/// policy (credential-looking text is redacted) and truncated; it must not contain
/// secrets. The text is formatted only when something is attached.
///
/// ```
/// use authtel_core::authorization::{log_error, Operation};
/// let err = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// log_error(Operation::Announce, "svc_mesh", "energy.home", &err);
/// ```
#[inline]
pub fn log_error(
    operation: Operation<'_>,
    caller: &str,
    resource: &str,
    error: &(dyn fmt::Display + '_),
) {
    if !registry::is_active() {
        return;
    }
    let text = error.to_string();
    emit(
        &AUTHORIZATION_ERROR,
        operation,
        caller,
        resource,
        Some(&text),
        Outcome::Error,
    );
}

#[inline(never)]
fn emit(
    event: &'static crate::catalogue::Event,
    operation: Operation<'_>,
    caller: &str,
    resource: &str,
    reason: Option<&str>,
    outcome: Outcome,
) {
    let mut metadata = Metadata::new()
        .operation(operation.as_str())
        .caller(caller)
        .resource(resource)
        .outcome(outcome);
    if let Some(reason) = reason {
        metadata = metadata.reason(reason);
    }
    telemetry::event(event, Measurements::new(), metadata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditEvent;
    use crate::registry::{Registry, Selection, handler_fn};
    use std::sync::{Arc, Mutex};

    fn capture(f: impl FnOnce()) -> Vec<AuditEvent> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let registry = Registry::new();
        let sink = seen.clone();
        registry
            .attach(
                "capture",
                Selection::All,
                handler_fn(move |r| {
                    if let Some(a) = AuditEvent::from_record(r) {
                        sink.lock().unwrap().push(a);
                    }
                }),
            )
            .unwrap();
        let scope = registry.enter();
        f();
        drop(scope);
        seen.lock().unwrap().clone()
    }

    #[test]
    fn allowed_decision_becomes_a_success_record_with_caller_as_actor() {
        let records = capture(|| log_authorized(Operation::Call, "did:key:z6Mk1", "home.status"));
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(r.action(), "authorization.allowed");
        assert_eq!(r.outcome(), Outcome::Success);
        let actor = r.actor().unwrap();
        assert_eq!(
            (actor.id.as_str(), actor.kind.as_str()),
            ("did:key:z6Mk1", "caller")
        );
        assert_eq!(r.operation(), Some("call"));
        assert_eq!(r.resource(), Some("home.status"));
        assert_eq!(r.reason(), None);
    }

    #[test]
    fn denied_decision_carries_reason_and_denied_outcome() {
        let records = capture(|| {
            log_denied(
                Operation::Custom("rotate_keys"),
                "svc_a",
                "keys.main",
                DenyReason::RevokedCredential,
            )
        });
        let r = &records[0];
        assert_eq!(r.action(), "authorization.denied");
        assert_eq!(r.outcome(), Outcome::Denied);
        assert_eq!(r.operation(), Some("rotate_keys"));
        assert_eq!(r.reason(), Some("revoked_credential"));
        assert_eq!(r.actor().unwrap().id, "svc_a");
    }

    #[test]
    fn error_decision_carries_screened_error_text_and_error_outcome() {
        let records = capture(|| {
            log_error(
                Operation::Publish,
                "svc_b",
                "grid.prices",
                &"policy store timed out",
            );
            log_error(
                Operation::Publish,
                "svc_b",
                "grid.prices",
                &"Bearer abc.def.ghi rejected",
            );
        });
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].action(), "authorization.error");
        assert_eq!(records[0].outcome(), Outcome::Error);
        assert_eq!(records[0].reason(), Some("policy store timed out"));
        assert_eq!(records[1].reason(), Some(crate::metadata::REDACTED));
    }

    #[test]
    fn every_deny_reason_has_a_distinct_snake_case_name() {
        let reasons = [
            DenyReason::Unauthorized,
            DenyReason::InvalidCredential,
            DenyReason::ExpiredCredential,
            DenyReason::RevokedCredential,
            DenyReason::InsufficientCapability,
            DenyReason::InvalidCaller,
            DenyReason::NamespaceMismatch,
        ];
        let mut names: Vec<&str> = reasons.iter().map(DenyReason::as_str).collect();
        assert!(
            names
                .iter()
                .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), reasons.len());
    }
}
