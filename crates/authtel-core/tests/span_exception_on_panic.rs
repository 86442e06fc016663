//! A panic inside a span emits the span's `exception` event (kind `panic`, with the message),
//! and then the panic continues to the caller.

use std::panic::{AssertUnwindSafe, catch_unwind, panic_any};

use authtel_core::catalogue::{self, EventKind};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, ExceptionKind, SpanContext};
use authtel_testing::Capture;

fn payload_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

#[test]
fn panic_emits_exception_with_message_and_keeps_unwinding() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        telemetry::span(
            &catalogue::OAUTH_CALLBACK,
            Metadata::new().provider("github"),
            || {
                if capture.names().len() == 1 {
                    panic!("state mismatch for provider github");
                }
                true
            },
        )
    }));

    let payload = caught.expect_err("the panic must reach the caller");
    assert_eq!(
        payload_text(&*payload),
        Some("state mismatch for provider github"),
        "the original payload continues unchanged"
    );

    capture.assert_emitted(&["oauth.callback.start", "oauth.callback.exception"]);
    let start = capture.single("oauth.callback.start");
    let exception = capture.single("oauth.callback.exception");
    assert_eq!(exception.kind, EventKind::SpanException);
    assert_eq!(exception.context, start.context);
    assert_eq!(exception.outcome, Some(Outcome::Error));
    assert_eq!(exception.error_type, Some("panic"));
    let details = exception.exception.expect("exception details");
    assert_eq!(details.kind, ExceptionKind::Panic);
    assert_eq!(
        details.reason.as_deref(),
        Some("state mismatch for provider github")
    );
    assert!(exception.measurements.duration.is_some());
    capture.assert_field("oauth.callback.exception", "provider", "github");
}

#[test]
fn static_str_and_non_string_payloads_are_described() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();
    let _ = catch_unwind(|| {
        telemetry::span(&catalogue::MFA_ENROLL, Metadata::new(), || -> bool {
            std::panic::resume_unwind(Box::new("static message"))
        })
    });
    let _ = catch_unwind(|| {
        telemetry::span(&catalogue::MFA_DISABLE, Metadata::new(), || -> bool {
            panic_any(42u32)
        })
    });
    let reason = |name| capture.single(name).exception.unwrap().reason.unwrap();
    assert_eq!(reason("mfa.enroll.exception"), "static message");
    assert_eq!(
        reason("mfa.disable.exception"),
        "panic with a non-string payload"
    );
}

#[test]
fn after_a_panic_the_current_span_is_restored() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let _ = catch_unwind(|| {
        telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || -> bool {
            panic!("boom")
        })
    });
    assert_eq!(
        SpanContext::current(),
        None,
        "a panicking span must not stay current on this thread"
    );
    // The next span is a root again, not a child of the dead one.
    telemetry::span(&catalogue::AUTH_LOGOUT, Metadata::new(), || true);
    let stop = capture.single("auth.logout.stop");
    assert_eq!(stop.context.parent_id, None);
}

#[test]
fn guard_dropped_while_unwinding_reports_a_panic() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _guard = telemetry::start(&catalogue::SESSION_CREATE, Metadata::new());
        panic!("database gone");
    }));
    assert!(caught.is_err());
    let exception = capture.single("session.create.exception");
    let details = exception.exception.unwrap();
    assert_eq!(details.kind, ExceptionKind::Panic);
    assert_eq!(
        details.reason.as_deref(),
        Some("panicked while the span was open")
    );
    assert_eq!(SpanContext::current(), None);
}
