//! The guard form, `telemetry::start`: `stop`, `stop_with`, `exception`, metadata added
//! before the end, and a guard dropped without ending it.

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, ExceptionKind, SpanContext};
use authtel_testing::Capture;

#[test]
fn stop_emits_stop_with_the_given_outcome() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let guard = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new().user_id("u_3"));
    let context = guard
        .context()
        .expect("someone listens, so the span is live");
    assert_eq!(
        SpanContext::current(),
        Some(context),
        "the guard is current"
    );
    guard.stop(Outcome::Denied);
    assert_eq!(
        SpanContext::current(),
        None,
        "stop restores the previous span"
    );

    capture.assert_emitted(&["mfa.verify.start", "mfa.verify.stop"]);
    let stop = capture.single("mfa.verify.stop");
    assert_eq!(stop.context, context);
    assert_eq!(stop.outcome, Some(Outcome::Denied));
    assert!(stop.measurements.duration.is_some());
}

#[test]
fn metadata_added_before_stop_is_on_the_stop_only() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let mut guard = telemetry::start(
        &catalogue::MFA_VERIFY,
        Metadata::new().user_id("u_3").method("totp"),
    );
    guard
        .metadata_mut()
        .try_extra("attempt", 2u32)
        .expect("a valid extra field");
    *guard.metadata_mut() = guard.metadata_mut().clone().attempts_remaining(1);
    guard.stop(Outcome::Failure);

    let start = capture.single("mfa.verify.start");
    assert_eq!(start.field("attempts_remaining"), None);
    assert_eq!(start.field("attempt"), None);
    capture.assert_field("mfa.verify.stop", "attempts_remaining", "1");
    capture.assert_field("mfa.verify.stop", "attempt", "2");
    capture.assert_field("mfa.verify.stop", "method", "totp");
}

#[test]
fn stop_with_reads_the_outcome_and_error_type() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let guard = telemetry::start(&catalogue::JWT_VERIFY, Metadata::new());
    let result: Result<u32, std::fmt::Error> = Err(std::fmt::Error);
    guard.stop_with(&result);
    let stop = capture.single("jwt.verify.stop");
    assert_eq!(stop.outcome, Some(Outcome::Failure));
    assert_eq!(stop.error_type, Some("core::fmt::Error"));
}

#[test]
fn exception_reports_kind_error_with_reason() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();
    let guard = telemetry::start(&catalogue::API_TOKEN_USE, Metadata::new());
    guard.exception("token store unreachable");
    capture.assert_emitted(&["api_token.use.start", "api_token.use.exception"]);
    let exception = capture.single("api_token.use.exception");
    assert_eq!(exception.outcome, Some(Outcome::Error));
    assert_eq!(exception.error_type, Some("error"));
    let details = exception.exception.unwrap();
    assert_eq!(details.kind, ExceptionKind::Error);
    assert_eq!(details.reason.as_deref(), Some("token store unreachable"));
}

#[test]
fn guard_dropped_without_stop_is_cancelled() {
    let capture = Capture::new();
    let _scope = capture.enter();
    {
        let _guard = telemetry::start(&catalogue::ACCOUNT_DELETE, Metadata::new());
    }
    capture.assert_emitted(&["account.delete.start", "account.delete.exception"]);
    let details = capture
        .single("account.delete.exception")
        .exception
        .unwrap();
    assert_eq!(details.kind, ExceptionKind::Cancelled);
    assert_eq!(SpanContext::current(), None);
}

#[test]
fn signals_inside_a_guard_are_its_children() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let guard = telemetry::start(&catalogue::AUTH_LOGIN, Metadata::new());
    telemetry::event(
        &catalogue::SECURITY_INVALID_CREDENTIALS,
        Default::default(),
        Metadata::new(),
    );
    let span = guard.context().unwrap();
    guard.stop(Outcome::Failure);
    let signal = capture.single("security.invalid_credentials");
    assert_eq!(signal.context.parent_id, Some(span.span_id));
    assert_eq!(signal.context.root_id, span.root_id);
}

#[test]
fn unheard_guard_is_inert() {
    let capture = Capture::with_selection(catalogue::security_events());
    let _scope = capture.enter();
    let guard = telemetry::start(&catalogue::AUTH_LOGIN, Metadata::new());
    assert_eq!(guard.context(), None);
    assert_eq!(SpanContext::current(), None);
    drop(guard);
    assert!(capture.names().is_empty(), "{:?}", capture.names());
}

#[test]
fn guards_stopped_out_of_order_never_leave_an_ended_span_current() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let outer = telemetry::start(&catalogue::AUTH_LOGIN, Metadata::new());
    let middle = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new());
    let inner = telemetry::start(&catalogue::JWT_ISSUE, Metadata::new());
    let (outer_ctx, middle_ctx, inner_ctx) = (
        outer.context().expect("live"),
        middle.context().expect("live"),
        inner.context().expect("live"),
    );

    // The middle span ends first: the innermost stays current.
    middle.stop(Outcome::Success);
    assert_eq!(SpanContext::current(), Some(inner_ctx));

    // When the innermost ends, the ended middle span must be skipped.
    inner.stop(Outcome::Success);
    assert_eq!(
        SpanContext::current(),
        Some(outer_ctx),
        "the span the ended middle span had replaced is current again"
    );
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new(),
    );
    let lockout = capture.single("security.lockout");
    assert_eq!(lockout.context.parent_id, Some(outer_ctx.span_id));
    assert_ne!(lockout.context.parent_id, Some(middle_ctx.span_id));

    outer.stop(Outcome::Success);
    assert_eq!(SpanContext::current(), None);
}

#[test]
fn outer_guard_stopped_first_restores_nothing_when_the_inner_one_ends() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let outer = telemetry::start(&catalogue::AUTH_LOGIN, Metadata::new());
    let inner = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new());
    outer.stop(Outcome::Success);
    inner.stop(Outcome::Success);
    assert_eq!(
        SpanContext::current(),
        None,
        "both spans ended: no span is current"
    );
    assert_eq!(
        capture.names(),
        [
            "auth.login.start",
            "mfa.verify.start",
            "auth.login.stop",
            "mfa.verify.stop"
        ]
    );
}
