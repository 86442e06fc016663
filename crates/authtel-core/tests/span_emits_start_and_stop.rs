//! `telemetry::span` emits `start`, then `stop` with an outcome derived from the closure's
//! return value, its duration covering the work.

use std::time::{Duration, Instant, SystemTime};

use authtel_core::catalogue::{self, EventKind};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::{Outcome, SpanOutcome};
use authtel_core::telemetry;
use authtel_testing::Capture;

/// Runs one span around `f` in a fresh capture and returns its stop event.
fn stop_of<R: SpanOutcome>(f: impl FnOnce() -> R) -> authtel_testing::CapturedEvent {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), f);
    capture.assert_emitted(&["auth.login.start", "auth.login.stop"]);
    capture.single("auth.login.stop")
}

#[test]
fn start_then_stop_with_the_same_context_and_metadata() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let value = telemetry::span(
        &catalogue::AUTH_LOGIN,
        Metadata::new().user_id("u_1").method("password"),
        || Ok::<u32, ()>(7),
    );
    assert_eq!(value, Ok(7), "span returns the closure's value untouched");

    capture.assert_emitted(&["auth.login.start", "auth.login.stop"]);
    let start = capture.single("auth.login.start");
    let stop = capture.single("auth.login.stop");
    assert_eq!(start.kind, EventKind::SpanStart);
    assert_eq!(stop.kind, EventKind::SpanStop);
    assert_eq!(start.context, stop.context);
    assert_eq!(start.context.parent_id, None);
    assert_eq!(start.context.root_id, start.context.span_id);
    assert_eq!(start.outcome, None);
    assert_eq!(stop.outcome, Some(Outcome::Success));
    assert_eq!(stop.error_type, None);
    assert_eq!(stop.exception, None);
    for name in ["auth.login.start", "auth.login.stop"] {
        capture.assert_field(name, "user_id", "u_1");
        capture.assert_field(name, "method", "password");
    }
}

#[test]
fn outcome_comes_from_result() {
    let ok = stop_of(|| Ok::<(), String>(()));
    assert_eq!(ok.outcome, Some(Outcome::Success));
    assert_eq!(ok.error_type, None);

    let err = stop_of(|| Err::<(), std::num::ParseIntError>("x".parse::<u8>().unwrap_err()));
    assert_eq!(err.outcome, Some(Outcome::Failure));
    assert_eq!(err.error_type, Some("core::num::error::ParseIntError"));
}

#[test]
fn outcome_comes_from_bool_option_unit_and_outcome() {
    assert_eq!(stop_of(|| true).outcome, Some(Outcome::Success));
    assert_eq!(stop_of(|| false).outcome, Some(Outcome::Failure));
    assert_eq!(stop_of(|| Some(1)).outcome, Some(Outcome::Success));
    assert_eq!(stop_of(|| None::<u8>).outcome, Some(Outcome::Failure));
    assert_eq!(stop_of(|| ()).outcome, Some(Outcome::Success));
    for outcome in Outcome::ALL {
        assert_eq!(stop_of(|| outcome).outcome, Some(outcome));
    }
}

#[derive(Debug)]
enum Decision {
    Allow,
    Deny,
}

impl SpanOutcome for Decision {
    fn outcome(&self) -> Outcome {
        match self {
            Decision::Allow => Outcome::Success,
            Decision::Deny => Outcome::Denied,
        }
    }

    fn error_type(&self) -> Option<&'static str> {
        match self {
            Decision::Allow => None,
            Decision::Deny => Some("policy_denied"),
        }
    }
}

#[test]
fn outcome_comes_from_a_custom_span_outcome() {
    let allow = stop_of(|| Decision::Allow);
    assert_eq!(allow.outcome, Some(Outcome::Success));
    assert_eq!(allow.error_type, None);
    let deny = stop_of(|| Decision::Deny);
    assert_eq!(deny.outcome, Some(Outcome::Denied));
    assert_eq!(deny.error_type, Some("policy_denied"));
}

#[test]
fn metadata_outcome_overrides_the_derived_one() {
    let capture = Capture::new();
    let _scope = capture.enter();
    // The call "succeeded" technically, but the application says it was denied.
    let _ = telemetry::span(
        &catalogue::AUTH_LOGIN,
        Metadata::new().outcome(Outcome::Denied),
        || Ok::<(), ()>(()),
    );
    let stop = capture.single("auth.login.stop");
    assert_eq!(stop.outcome, Some(Outcome::Denied));
    capture.assert_field("auth.login.stop", "outcome", "denied");
}

#[test]
fn metadata_success_override_drops_the_error_type() {
    let capture = Capture::new();
    let _scope = capture.enter();
    // An `Err` the application declares a success (e.g. "already logged out"): a stop
    // with outcome success must not carry an error type.
    let _ = telemetry::span(
        &catalogue::AUTH_LOGOUT,
        Metadata::new().outcome(Outcome::Success),
        || Err::<(), &str>("already_logged_out"),
    );
    let stop = capture.single("auth.logout.stop");
    assert_eq!(stop.outcome, Some(Outcome::Success));
    assert_eq!(stop.error_type, None);
}

#[test]
fn duration_covers_the_work_and_clocks_are_consistent() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let work = Duration::from_millis(20);
    let outer_start = Instant::now();
    telemetry::span(&catalogue::TOKEN_VERIFY, Metadata::new(), || {
        // Busy work with a deadline, not a sleep: the span must measure at least this.
        let begun = Instant::now();
        while begun.elapsed() < work {
            std::hint::spin_loop();
        }
        true
    });
    let outer = outer_start.elapsed();

    let start = capture.single("token.verify.start");
    let stop = capture.single("token.verify.stop");
    let duration = stop.measurements.duration.expect("stop carries a duration");
    assert!(duration >= work, "duration {duration:?} < work {work:?}");
    assert!(duration <= outer, "duration {duration:?} > wall {outer:?}");
    assert_eq!(start.measurements.duration, None);

    let (t0, t1) = (
        start.measurements.monotonic_time.unwrap(),
        stop.measurements.monotonic_time.unwrap(),
    );
    assert_eq!(t1 - t0, duration);
    let (w0, w1) = (
        start.measurements.system_time.unwrap(),
        stop.measurements.system_time.unwrap(),
    );
    assert_eq!(w1.duration_since(w0).unwrap(), duration);
}

#[test]
fn nothing_attached_runs_the_closure_and_emits_nothing() {
    // A capture that only listens to MFA events: an auth span is not wanted.
    let capture = Capture::with_selection(catalogue::mfa_events());
    let _scope = capture.enter();
    let mut ran = false;
    let out = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        ran = true;
        assert!(
            telemetry::SpanContext::current().is_none(),
            "an unheard span does not become current"
        );
        Some(5u8)
    });
    assert!(ran);
    assert_eq!(out, Some(5));
    assert!(capture.names().is_empty(), "{:?}", capture.names());
}

#[test]
fn span_wall_times_match_the_system_clock() {
    let capture = Capture::new();
    let _scope = capture.enter();
    // Several spans spread over more than the wall-clock anchor's lifetime (100 ms), so
    // both the derived and the re-anchored paths are checked.
    let tolerance = Duration::from_millis(5);
    for _ in 0..6 {
        let before = SystemTime::now();
        telemetry::span(&catalogue::TOKEN_VERIFY, Metadata::new(), || true);
        let after = SystemTime::now();
        let start = capture
            .events_named("token.verify.start")
            .pop()
            .expect("start");
        let wall = start
            .measurements
            .system_time
            .expect("start carries wall time");
        assert!(
            wall + tolerance >= before && wall <= after + tolerance,
            "span start {wall:?} outside [{before:?}, {after:?}] ± {tolerance:?}"
        );
        let begun = Instant::now();
        while begun.elapsed() < Duration::from_millis(30) {
            std::hint::spin_loop();
        }
    }
}
