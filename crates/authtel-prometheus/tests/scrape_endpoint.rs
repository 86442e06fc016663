//! The real HTTP endpoint serves what the handler recorded, as histograms with HELP lines,
//! and `promtool check metrics` accepts it.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection};
use authtel_core::telemetry::{self, Measurements};
use authtel_prometheus::PrometheusSink;
use common::{http_get, promtool, promtool_check_metrics, sample};

fn emit_traffic() {
    for i in 0..3 {
        let user = format!("u_{i}");
        let _ = telemetry::span(
            &catalogue::AUTH_LOGIN,
            Metadata::new().user_id(&user),
            || Ok::<_, ()>(()),
        );
    }
    for _ in 0..2 {
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
            Err::<(), _>("invalid password")
        });
        telemetry::event(
            &catalogue::SECURITY_INVALID_CREDENTIALS,
            Measurements::new(),
            Metadata::new().client_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7))),
        );
    }
    telemetry::event(
        &catalogue::MFA_LOCKOUT,
        Measurements::new(),
        Metadata::new().user_id("u_1"),
    );
    telemetry::event(
        &catalogue::AUTHORIZATION_DENIED,
        Measurements::new(),
        Metadata::new()
            .operation("publish")
            .outcome(Outcome::Denied),
    );
    telemetry::event(
        &catalogue::PIPELINE_RECORDS_DROPPED,
        Measurements::new().count(7),
        Metadata::new(),
    );
    let guard = telemetry::start(&catalogue::JWT_REFRESH, Metadata::new());
    guard.exception("signing key unavailable");
    let caught = std::panic::catch_unwind(|| {
        telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || -> bool {
            panic!("totp backend down")
        })
    });
    assert!(caught.is_err());
}

#[test]
fn scraped_endpoint_serves_recorded_values_and_passes_promtool() {
    let sink = PrometheusSink::builder()
        .with_listen_address(([127, 0, 0, 1], 0))
        .build()
        .expect("listener starts on a free loopback port");
    let address = sink.listen_address().expect("a listener runs");
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    {
        let _scope = registry.enter();
        emit_traffic();
    }

    let (status, body) = http_get(address, "/metrics");
    assert!(status.contains("200"), "status {status:?}");

    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&body, series), Some(value), "{series} in:\n{body}");
    };
    expect(
        r#"authtel_events_total{event="auth.login.stop",outcome="success"}"#,
        3.0,
    );
    expect(
        r#"authtel_events_total{event="auth.login.stop",outcome="failure"}"#,
        2.0,
    );
    expect(
        r#"authtel_security_signals_total{signal="security.invalid_credentials"}"#,
        2.0,
    );
    expect(
        r#"authtel_security_signals_total{signal="mfa.lockout"}"#,
        1.0,
    );
    expect(
        r#"authtel_authorization_decisions_total{operation="publish",result="denied"}"#,
        1.0,
    );
    expect("authtel_pipeline_dropped_records_total", 7.0);
    expect(
        r#"authtel_span_exceptions_total{span="jwt.refresh",kind="error"}"#,
        1.0,
    );
    expect(
        r#"authtel_span_exceptions_total{span="mfa.verify",kind="panic"}"#,
        1.0,
    );
    // Durations are histograms with our buckets, not summaries.
    expect(
        r#"authtel_span_duration_seconds_count{span="auth.login",outcome="success"}"#,
        3.0,
    );
    expect(
        r#"authtel_span_duration_seconds_bucket{span="auth.login",outcome="success",le="10"}"#,
        3.0,
    );
    expect(
        r#"authtel_span_duration_seconds_bucket{span="auth.login",outcome="success",le="+Inf"}"#,
        3.0,
    );
    assert!(body.contains("# TYPE authtel_span_duration_seconds histogram"));
    assert!(!body.contains("quantile="), "no summaries:\n{body}");
    for name in [
        "authtel_events_total",
        "authtel_span_duration_seconds",
        "authtel_span_exceptions_total",
        "authtel_security_signals_total",
        "authtel_authorization_decisions_total",
        "authtel_pipeline_dropped_records_total",
    ] {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "HELP for {name}:\n{body}"
        );
    }
    // Span starts are not counted.
    assert!(!body.contains(".start\""));

    if let Some(promtool) = promtool("scraped_endpoint_serves_recorded_values_and_passes_promtool")
    {
        let (ok, output) = promtool_check_metrics(&promtool, &body);
        assert!(ok, "promtool check metrics failed: {output}\n{body}");
    }
}

#[test]
fn duration_lands_in_the_right_bucket() {
    let sink = PrometheusSink::builder()
        .with_buckets(&[0.1, 0.5, 1.0])
        .build()
        .unwrap();
    let handler = sink.handler();
    let meta = Metadata::new();
    // A synthetic stop record: 300 ms, success.
    let measurements = Measurements::new().duration(Duration::from_millis(300));
    let mut record = telemetry::EventRecord::signal(
        catalogue::AUTH_LOGIN.stop(),
        telemetry::SpanContext::child_of(None),
        &measurements,
        &meta,
    );
    record.outcome = Some(Outcome::Success);
    authtel_core::registry::Handler::handle(&handler, &record);
    let text = sink.render();
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(
                r#"authtel_span_duration_seconds_bucket{{span="auth.login",outcome="success",le="{le}"}}"#
            ),
        )
    };
    assert_eq!(bucket("0.1"), Some(0.0), "{text}");
    assert_eq!(bucket("0.5"), Some(1.0), "{text}");
    assert_eq!(bucket("1"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            r#"authtel_span_duration_seconds_sum{span="auth.login",outcome="success"}"#
        ),
        Some(0.3)
    );
}

#[test]
fn dropping_the_sink_stops_the_listener() {
    let sink = PrometheusSink::builder()
        .with_listen_address(([127, 0, 0, 1], 0))
        .build()
        .unwrap();
    let address = sink.listen_address().unwrap();
    let (status, _) = http_get(address, "/metrics");
    assert!(status.contains("200"));
    drop(sink);
    let refused = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5));
    assert!(refused.is_err(), "the port still accepts after drop");
}
