//! `attach_prometheus` installs the global recorder, serves scrapes and hears events
//! emitted to the global registry; a second install is a typed error.
//!
//! The only test in this binary: it owns the process-global recorder and registry.

mod common;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{self, Registry};
use authtel_core::telemetry::{self, Measurements};
use authtel_prometheus::{HANDLER_ID, PrometheusError, PrometheusSink, attach_prometheus};
use common::{http_get, sample};

#[test]
fn attach_prometheus_serves_global_events_and_refuses_a_second_install() {
    let sink = attach_prometheus(([127, 0, 0, 1], 0).into()).expect("first install works");
    assert!(
        registry::handlers().iter().any(|h| h.id == HANDLER_ID),
        "handler attached to the global registry"
    );

    telemetry::event(
        &catalogue::RESET_REQUESTED,
        Measurements::new(),
        Metadata::new().user_id("u_5"),
    );
    let _ = telemetry::span(&catalogue::JWT_REFRESH, Metadata::new(), || {
        Err::<(), _>("expired refresh token")
    });

    let (status, body) = http_get(sink.listen_address().unwrap(), "/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        sample(
            &body,
            r#"authtel_events_total{event="reset.requested",outcome="none"}"#
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            r#"authtel_events_total{event="jwt.refresh.stop",outcome="failure"}"#
        ),
        Some(1.0),
        "{body}"
    );
    // The handle renders the same recorder the listener serves.
    assert!(sink.render().contains(r#"event="reset.requested""#));

    let second = PrometheusSink::builder().install_recorder();
    assert!(
        matches!(second, Err(PrometheusError::RecorderAlreadyInstalled)),
        "{second:?}"
    );
    let message = second.unwrap_err().to_string();
    assert!(message.starts_with("a global metrics recorder is already installed"));

    Registry::global().detach(HANDLER_ID).unwrap();
}
