//! The mutation check: the same flow suite, run against a service broken on purpose
//! (`Config::mutations`), fails with a message naming the flow, the event and the field.
//! If the kit could not see these mistakes, these tests would fail.

mod support;

use authtel_testing::Capture;

#[tokio::test(flavor = "current_thread")]
async fn a_removed_emit_call_fails_the_suite_naming_the_event() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let run = support::suite::run(&capture, |c| c.mutations.skip_logout_event = true).await;
    let report = run.report();
    assert_eq!(run.failures.len(), 1, "only logout is broken:\n{report}");
    assert!(
        report.contains(
            r#"flow "logout": auth.logout.stop (success) expected exactly once, emitted 0 times"#
        ),
        "{report}"
    );
    assert!(run.coverage.never_emitted().contains(&"auth.logout.stop"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_request_context_fails_the_suite_naming_event_and_field() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let run = support::suite::run(&capture, |c| c.mutations.drop_request_context = true).await;
    let report = run.report();
    for needle in [
        r#"flow "login ok": auth.login.stop is missing field client_ip"#,
        "auth.login.stop is missing field user_agent",
        "the audit record of auth.login.stop is missing field client_ip",
        r#"flow "logout": auth.logout.stop is missing field client_ip"#,
    ] {
        assert!(report.contains(needle), "missing {needle:?} in:\n{report}");
    }
}
