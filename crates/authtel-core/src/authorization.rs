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
use crate::vocabulary::Reason;
pub use crate::vocabulary::{DenyReason, Operation};

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
pub fn log_authorized(operation: Operation, caller: &str, resource: &str) {
    if !registry::is_active() {
        return;
    }
    emit(
        &AUTHORIZATION_ALLOWED,
        operation,
        caller,
        resource,
        None,
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
pub fn log_denied(operation: Operation, caller: &str, resource: &str, reason: DenyReason) {
    if !registry::is_active() {
        return;
    }
    emit(
        &AUTHORIZATION_DENIED,
        operation,
        caller,
        resource,
        Some(reason.into()),
        None,
        Outcome::Denied,
    );
}

/// Records that the authorization check itself failed (a policy store unreachable, a
/// malformed policy). The `reason` is the code
/// [`Reason::AuthorizerError`]; the error's text
/// goes in the extra field `error`, screened by the metadata policy (credential-looking text
/// is redacted) and truncated. The text is formatted only when something is attached.
///
/// ```
/// use authtel_core::authorization::{log_error, Operation};
/// let err = std::io::Error::from(std::io::ErrorKind::TimedOut);
/// log_error(Operation::Announce, "svc_mesh", "energy.home", &err);
/// ```
#[inline]
pub fn log_error(
    operation: Operation,
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
        Some(Reason::AuthorizerError),
        Some(&text),
        Outcome::Error,
    );
}

#[inline(never)]
fn emit(
    event: &'static crate::catalogue::Event,
    operation: Operation,
    caller: &str,
    resource: &str,
    reason: Option<Reason>,
    error: Option<&str>,
    outcome: Outcome,
) {
    let mut metadata = Metadata::new()
        .operation(operation)
        .caller(caller)
        .resource(resource)
        .outcome(outcome)
        .with_extra("error", error);
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
        assert_eq!(records[0].reason(), Some("authorizer_error"));
        assert_eq!(records[0].metadata()["error"], "policy store timed out");
        assert_eq!(records[1].reason(), Some("authorizer_error"));
        assert_eq!(records[1].metadata()["error"], crate::metadata::REDACTED);
    }
}
