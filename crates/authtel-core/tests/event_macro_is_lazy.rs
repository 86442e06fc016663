//! `event!` builds its arguments only when a handler could hear the event, and then emits
//! exactly what `telemetry::event` would.
//!
//! One test in this file on purpose: "nothing attached" is a process-wide fact, and nextest
//! runs each test in its own process.

use std::cell::Cell;

use authtel_core::catalogue;
use authtel_core::event;
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, Measurements};
use authtel_testing::Capture;

#[test]
fn arguments_are_built_only_when_someone_listens() {
    let built = Cell::new(0u32);
    let metadata = || {
        built.set(built.get() + 1);
        Metadata::new()
            .user_id("u_lazy")
            .reason("too_many_attempts")
    };

    assert!(
        !telemetry::is_active(),
        "this test needs a process where nothing is attached (nextest runs one test per process)"
    );
    event!(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new().count(1),
        metadata()
    );
    assert_eq!(
        built.get(),
        0,
        "nothing attached: arguments must not be built"
    );

    let capture = Capture::new();
    let _scope = capture.enter();
    event!(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new().count(2),
        metadata(),
    );
    assert_eq!(built.get(), 1, "someone listens: arguments built once");
    let lockout = capture.single("security.lockout");
    assert_eq!(lockout.field("user_id"), Some("u_lazy"));
    assert_eq!(lockout.field("reason"), Some("too_many_attempts"));
    assert_eq!(lockout.measurements.count, Some(2));

    // Also reachable through the telemetry module, next to the function form.
    telemetry::event!(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new(),
        metadata()
    );
    assert_eq!(capture.events_named("security.lockout").len(), 2);
}
