//! A panicking handler is isolated: the emitter and the other handlers are unaffected, the
//! failure is counted and reported as `pipeline.handler.failure`, and the handler stays
//! attached — unless its `FailurePolicy` detaches it after N consecutive panics, which is
//! reported as `pipeline.handler.detached`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use authtel_core::catalogue::{self, EventKind};
use authtel_core::metadata::Metadata;
use authtel_core::registry::{FailurePolicy, Selection, handler_fn};
use authtel_core::telemetry;
use authtel_testing::Capture;

fn lockout() {
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        telemetry::Measurements::new().count(1),
        Metadata::new().user_id("u_5"),
    );
}

fn failures_of(capture: &Capture, id: &str) -> Option<u64> {
    capture
        .registry()
        .handlers()
        .into_iter()
        .find(|h| h.id == id)
        .map(|h| h.failures)
}

#[test]
fn other_handlers_still_get_the_event_and_the_failure_is_reported() {
    let capture = Capture::new();
    let after = Arc::new(AtomicUsize::new(0));
    capture
        .registry()
        .attach(
            "exploding",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|_| panic!("sink misconfigured")),
        )
        .unwrap();
    let seen = after.clone();
    capture
        .registry()
        .attach(
            "attached-after",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    let _scope = capture.enter();

    let emitted = catch_unwind(lockout);
    assert!(
        emitted.is_ok(),
        "a handler's panic never reaches the emitter"
    );
    assert_eq!(
        after.load(Ordering::Relaxed),
        1,
        "a handler attached after the panicking one still runs"
    );

    capture.assert_emitted(&["security.lockout", "pipeline.handler.failure"]);
    let event = capture.single("security.lockout");
    let failure = capture.single("pipeline.handler.failure");
    assert_eq!(failure.kind, EventKind::Signal);
    assert_eq!(failure.measurements.count, Some(1));
    assert_eq!(failure.context.parent_id, Some(event.context.span_id));
    capture.assert_field("pipeline.handler.failure", "handler", "exploding");
    capture.assert_field("pipeline.handler.failure", "event", "security.lockout");
    // Panic messages are not exported unless the application opts in.
    capture.assert_field("pipeline.handler.failure", "reason", "handler_panicked");
    assert!(
        failure.field("panic_message").is_none(),
        "no panic message by default"
    );
    capture.assert_field("pipeline.handler.failure", "consecutive_failures", "1");

    assert_eq!(failures_of(&capture, "exploding"), Some(1));
    lockout();
    assert_eq!(
        failures_of(&capture, "exploding"),
        Some(2),
        "still attached, still counted"
    );
    assert_eq!(after.load(Ordering::Relaxed), 2);
    assert_eq!(capture.events_named("pipeline.handler.failure").len(), 2);
    capture.assert_field("pipeline.handler.failure", "consecutive_failures", "2");
}

#[test]
fn a_panicking_span_handler_does_not_break_the_span() {
    let capture = Capture::new();
    capture
        .registry()
        .attach(
            "bad-start",
            catalogue::AUTH_LOGIN.start(),
            handler_fn(|_| panic!("start handler bug")),
        )
        .unwrap();
    let _scope = capture.enter();
    let result = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || Ok::<u8, ()>(3));
    assert_eq!(result, Ok(3));
    capture.assert_emitted(&[
        "auth.login.start",
        "pipeline.handler.failure",
        "auth.login.stop",
    ]);
}

#[test]
fn detach_after_three_consecutive_panics() {
    let capture = Capture::new();
    capture
        .registry()
        .attach_with_policy(
            "flaky",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|_| panic!("still broken")),
            FailurePolicy::detach_after(3),
        )
        .unwrap();
    let _scope = capture.enter();

    lockout();
    lockout();
    assert_eq!(failures_of(&capture, "flaky"), Some(2));
    assert!(capture.events_named("pipeline.handler.detached").is_empty());
    lockout();
    assert_eq!(
        failures_of(&capture, "flaky"),
        None,
        "detached after the third"
    );
    let detached = capture.single("pipeline.handler.detached");
    assert_eq!(detached.field("handler"), Some("flaky"));
    assert_eq!(detached.field("consecutive_failures"), Some("3"));
    assert_eq!(capture.events_named("pipeline.handler.failure").len(), 3);

    capture.clear();
    lockout();
    capture.assert_emitted(&["security.lockout"]);
    // The id is free again: a fixed handler can be attached under it.
    capture
        .registry()
        .attach("flaky", Selection::All, handler_fn(|_| {}))
        .unwrap();
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let capture = Capture::new();
    let fail_next = Arc::new(AtomicBool::new(true));
    let toggle = fail_next.clone();
    capture
        .registry()
        .attach_with_policy(
            "alternating",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(move |_| {
                // Fails every other call: never twice in a row.
                if toggle.fetch_xor(true, Ordering::Relaxed) {
                    panic!("every other call");
                }
            }),
            FailurePolicy::detach_after(2),
        )
        .unwrap();
    let _scope = capture.enter();
    for _ in 0..6 {
        lockout();
    }
    assert_eq!(
        failures_of(&capture, "alternating"),
        Some(3),
        "attached, 3 failures"
    );
    assert!(capture.events_named("pipeline.handler.detached").is_empty());
    for failure in capture.events_named("pipeline.handler.failure") {
        assert_eq!(failure.field("consecutive_failures"), Some("1"));
    }
}

#[test]
fn a_handler_that_panics_on_everything_cannot_loop() {
    let capture = Capture::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    // Selected for everything, so it also receives (and panics on) its own failure report.
    capture
        .registry()
        .attach(
            "always",
            Selection::All,
            handler_fn(move |_| {
                counted.fetch_add(1, Ordering::Relaxed);
                panic!("always");
            }),
        )
        .unwrap();
    let _scope = capture.enter();
    lockout();
    // One call for the event, one for the failure report; the panic on the report is
    // counted but not reported again.
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(failures_of(&capture, "always"), Some(2));
    capture.assert_emitted(&["security.lockout", "pipeline.handler.failure"]);
}

#[test]
fn failures_reported_while_reporting_still_detach() {
    let capture = Capture::new();
    // Panics only on failure reports, and must go after one such panic.
    capture
        .registry()
        .attach_with_policy(
            "report-hater",
            &catalogue::PIPELINE_HANDLER_FAILURE,
            handler_fn(|_| panic!("cannot handle reports")),
            FailurePolicy::detach_after(1),
        )
        .unwrap();
    capture
        .registry()
        .attach(
            "exploding",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|_| panic!("sink misconfigured")),
        )
        .unwrap();
    let _scope = capture.enter();
    lockout();
    assert_eq!(
        failures_of(&capture, "report-hater"),
        None,
        "its policy says detach after one panic, even one during a report"
    );
    capture.assert_field("pipeline.handler.detached", "handler", "report-hater");
}

#[test]
fn detach_with_policy_on_a_panicking_everything_handler() {
    let capture = Capture::new();
    capture
        .registry()
        .attach_with_policy(
            "always",
            Selection::All,
            handler_fn(|_| panic!("always")),
            FailurePolicy::detach_after(3),
        )
        .unwrap();
    let _scope = capture.enter();
    let emitted = catch_unwind(AssertUnwindSafe(|| {
        for _ in 0..5 {
            lockout();
        }
    }));
    assert!(emitted.is_ok());
    assert_eq!(failures_of(&capture, "always"), None, "detached");
    assert_eq!(capture.events_named("pipeline.handler.detached").len(), 1);
    assert_eq!(capture.events_named("security.lockout").len(), 5);
}
