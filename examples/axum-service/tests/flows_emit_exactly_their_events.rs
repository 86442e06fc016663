//! Every flow of the service, driven over HTTP on loopback, emits exactly its expected
//! events with their required fields, commits exactly its audit rows (none for the
//! rolled-back registration), counts in the metrics, and leaks no secret anywhere.

mod support;

use authtel_testing::Capture;

#[tokio::test(flavor = "current_thread")]
async fn every_flow_emits_exactly_its_events_rows_and_metrics() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let run = support::suite::run(&capture, |_| {}).await;
    assert!(
        run.failures.is_empty(),
        "the completeness kit found:\n{}",
        run.report()
    );

    // Coverage: what the flows exercised, and what the catalogue has that they never do.
    let coverage = &run.coverage;
    println!("{coverage}");
    for name in [
        "auth.login.stop",
        "auth.logout.stop",
        "jwt.refresh.stop",
        "security.lockout",
        "mfa.verify.stop",
    ] {
        assert!(
            coverage.emitted().contains(&name),
            "{name} not covered:\n{coverage}"
        );
    }
    assert!(
        coverage.never_emitted().contains(&"oauth.callback.stop"),
        "{coverage}"
    );

    // Rows: every committed row has its outbox entry, and the rolled-back registration none.
    // The detectors' signals follow a committed change, so they go through the batch
    // writer instead: in the trail, without outbox entries.
    run.service.app.flush_signals().await;
    let rows = run.service.audit_rows().await;
    let registers = rows
        .iter()
        .filter(|r| r.action() == "auth.register.stop")
        .count();
    assert_eq!(
        registers, 1,
        "one registration committed, the duplicate rolled back"
    );
    let detector_rows: Vec<&str> = rows
        .iter()
        .filter(|r| r.metadata().contains_key("detector"))
        .map(|r| r.action())
        .collect();
    assert_eq!(
        detector_rows,
        ["security.refresh_token_reuse"],
        "the detectors' signals"
    );
    let transactional = rows.len() - detector_rows.len();
    assert_eq!(run.service.outbox_entries().await, transactional as i64);
    assert_eq!(run.service.app.signals_dropped(), 0);
    assert!(
        rows.iter().all(|r| r.client_ip().is_some()),
        "every row names the client"
    );

    // Metrics: the /metrics route renders what the handler counted.
    let metrics = support::http::Request::get("/metrics")
        .send(run.service.addr)
        .await;
    assert_eq!(metrics.status, 200);
    for line in [
        r#"authtel_events_total{event="auth.login.stop",outcome="success"} 3"#,
        r#"authtel_events_total{event="auth.register.stop",outcome="failure"} 1"#,
        r#"authtel_events_total{event="jwt.refresh.stop",outcome="success"} 1"#,
        r#"authtel_security_signals_total{signal="security.refresh_token_reuse"} 1"#,
        r#"authtel_security_signals_total{signal="security.lockout"} 1"#,
        r#"authtel_security_signals_total{signal="authorization.denied"} 1"#,
    ] {
        assert!(
            metrics.body.contains(line),
            "missing {line} in:\n{}",
            metrics.body
        );
    }

    // No secret in any event or row.
    let secrets: Vec<&str> = run.secrets.iter().map(String::as_str).collect();
    capture.assert_no_secret(&secrets);
    for event in capture.events() {
        assert!(
            event.fields.iter().all(|(_, v)| v != "[REDACTED]"),
            "the policy had to redact an event: {event:?}"
        );
    }
    let dump = serde_json::to_string(&rows).expect("rows serialize");
    for row in &rows {
        let text = serde_json::to_string(row).unwrap();
        assert!(
            !text.contains("[REDACTED]"),
            "the policy had to redact a row: {text}"
        );
    }
    for secret in &secrets {
        assert!(!dump.contains(secret), "a secret reached the audit trail");
    }
}
