//! The completeness kit's verdicts: each kind of mistake is reported with the flow, the
//! event and the field, and a correct flow passes.

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::{Outcome, catalogue, metadata::Metadata, telemetry};
use authtel_testing::Capture;
use authtel_testing::flows::{Expect, Field, Flow, FlowSuite, Observation, Problem};

fn login(meta: Metadata<'_>, ok: bool) {
    let _ = telemetry::span(&catalogue::AUTH_LOGIN, meta, || {
        if ok { Ok(()) } else { Err(()) }
    });
}

fn row(action: &str, outcome: Outcome, with_context: bool) -> AuditEvent {
    let mut r = AuditEvent::new(action, outcome).unwrap();
    r = r.with_actor(Party::new("u_1", "user"));
    if with_context {
        r = r.with_client_ip("203.0.113.9".parse().unwrap());
        r = r.with_user_agent("curl/8");
    }
    r
}

fn flow() -> Flow {
    Flow::new("login ok").with_request_context().expect(
        Expect::stop(&catalogue::AUTH_LOGIN, Outcome::Success)
            .field(Field::UserId)
            .audited(),
    )
}

#[test]
fn a_complete_flow_passes_and_counts_for_coverage() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let mut suite = FlowSuite::new();
    let ip = "203.0.113.9".parse().unwrap();
    login(
        Metadata::new()
            .user_id("u_1")
            .client_ip(ip)
            .user_agent("curl/8"),
        true,
    );
    let seen = Observation::new(capture.events_since(0)).with_audit(vec![row(
        "auth.login.stop",
        Outcome::Success,
        true,
    )]);
    assert_eq!(suite.check(&flow(), &seen), Ok(()));
    assert_eq!(suite.coverage().emitted(), ["auth.login.stop"]);
}

#[test]
fn a_wrong_outcome_is_named_with_the_outcome_seen() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let ip = "203.0.113.9".parse().unwrap();
    login(
        Metadata::new()
            .user_id("u_1")
            .client_ip(ip)
            .user_agent("curl/8"),
        false,
    );
    let seen = Observation::new(capture.events()).with_audit(vec![row(
        "auth.login.stop",
        Outcome::Success,
        true,
    )]);
    let err = FlowSuite::new().check(&flow(), &seen).unwrap_err();
    assert_eq!(
        err.problems,
        [Problem::Count {
            event: "auth.login.stop",
            outcome: Some(Outcome::Success),
            emitted: 0,
            other_outcomes: vec![Outcome::Failure],
        }]
    );
    assert!(
        err.to_string()
            .contains("(emitted with outcome failure instead)"),
        "{err}"
    );
}

#[test]
fn a_record_without_the_request_context_is_named() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let ip = "203.0.113.9".parse().unwrap();
    login(
        Metadata::new()
            .user_id("u_1")
            .client_ip(ip)
            .user_agent("curl/8"),
        true,
    );
    let seen = Observation::new(capture.events()).with_audit(vec![row(
        "auth.login.stop",
        Outcome::Success,
        false,
    )]);
    let err = FlowSuite::new()
        .check(&flow(), &seen)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#"flow "login ok": the audit record of auth.login.stop is missing field client_ip; the audit record of auth.login.stop is missing field user_agent"#
    );
}

#[test]
fn a_missing_or_duplicated_record_is_named() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let ip = "203.0.113.9".parse().unwrap();
    login(
        Metadata::new()
            .user_id("u_1")
            .client_ip(ip)
            .user_agent("curl/8"),
        true,
    );
    let events = capture.events();
    let none = FlowSuite::new()
        .check(&flow(), &Observation::new(events.clone()))
        .unwrap_err();
    assert!(
        none.to_string()
            .contains("auth.login.stop expected one committed audit record, found 0"),
        "{none}"
    );
    let twice = vec![row("auth.login.stop", Outcome::Success, true); 2];
    let err = FlowSuite::new()
        .check(&flow(), &Observation::new(events).with_audit(twice))
        .unwrap_err();
    assert!(err.to_string().contains("found 2"), "{err}");
}

#[test]
fn a_rolled_back_flow_with_a_record_fails() {
    let flow = Flow::new("duplicate registration").rolled_back();
    let seen =
        Observation::default().with_audit(vec![row("auth.register.stop", Outcome::Success, true)]);
    let err = FlowSuite::new()
        .check(&flow, &seen)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#"flow "duplicate registration": the transaction rolled back but left 1 audit record(s): auth.register.stop"#
    );
}

#[test]
fn strict_flows_name_unexpected_events_and_relaxed_ones_allow_them() {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new().user_id("u_1"),
    );
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new().user_id("u_1"),
    );
    let seen = Observation::new(capture.events());
    let err = FlowSuite::new()
        .check(&Flow::new("quiet"), &seen)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        r#"flow "quiet": security.lockout was not expected, emitted 2 times"#
    );
    assert_eq!(
        FlowSuite::new().check(&Flow::new("quiet").allow_other_events(), &seen),
        Ok(())
    );
}

#[test]
fn coverage_lists_stops_and_signals_never_emitted() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let mut suite = FlowSuite::new();
    login(Metadata::new().user_id("u_1"), true);
    let _ = suite.check(
        &Flow::new("any").allow_other_events(),
        &Observation::new(capture.events()),
    );
    let coverage = suite.coverage();
    assert!(!coverage.never_emitted().contains(&"auth.login.stop"));
    assert!(coverage.never_emitted().contains(&"security.lockout"));
    assert!(
        !coverage
            .never_emitted()
            .iter()
            .any(|n| n.ends_with(".start") || n.ends_with(".exception"))
    );
    let report = coverage.to_string();
    assert!(report.contains("\n  security.lockout\n"), "{report}");
}
