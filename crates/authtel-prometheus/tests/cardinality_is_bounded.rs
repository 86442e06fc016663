//! The number of series does not depend on how many users, addresses or sessions there are.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use authtel_core::catalogue::{self, Event};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection};
use authtel_core::telemetry::{self, Measurements};
use authtel_prometheus::{PrometheusSink, names};
use common::series;

/// One round of traffic per user: logins (success and failure), MFA, a lockout, an
/// authorization decision with a caller-chosen operation, all with per-user metadata.
fn traffic_for_users(range: std::ops::Range<u32>) {
    for i in range {
        let user = format!("u_{i}");
        let session = format!("s_{i:08x}");
        let email = format!("user{i}@example.com");
        let ip = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
        let meta = || {
            Metadata::new()
                .user_id(&user)
                .session_id(&session)
                .client_ip(ip)
                .with_extra("email", email.as_str())
        };
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, meta(), || i % 3 != 0);
        let _ = telemetry::span(&catalogue::MFA_VERIFY, meta(), || Ok::<_, ()>(()));
        telemetry::event(
            &catalogue::SECURITY_RATE_LIMITED,
            Measurements::new(),
            meta(),
        );
        // Operations are `'static` codes, so a per-user operation takes a deliberate leak;
        // the label stays bounded even then.
        let operation: &'static str = Box::leak(format!("op_for_{user}").into_boxed_str());
        telemetry::event(
            &catalogue::AUTHORIZATION_DENIED,
            Measurements::new(),
            meta().operation(operation).outcome(Outcome::Denied),
        );
    }
}

#[test]
fn series_count_is_independent_of_the_number_of_users() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    let _scope = registry.enter();

    traffic_for_users(0..10);
    let after_ten = sink.render();
    traffic_for_users(10..10_000);
    let after_ten_thousand = sink.render();

    assert_eq!(
        series(&after_ten).len(),
        series(&after_ten_thousand).len(),
        "series grew with users:\n{after_ten_thousand}"
    );
    // The traffic really was counted: 10 000 users, one third of logins failed.
    assert!(
        after_ten_thousand
            .contains(r#"authtel_events_total{event="auth.login.stop",outcome="success"} 6666"#)
    );
    assert!(after_ten_thousand.contains(
        r#"authtel_authorization_decisions_total{operation="custom",result="denied"} 10000"#
    ));
    for leaked in [
        "u_9999",
        "s_0000270f",
        "user9999@example.com",
        "10.0.39.15",
        "op_for_",
    ] {
        assert!(
            !after_ten_thousand.contains(leaked),
            "{leaked} became a label:\n{after_ten_thousand}"
        );
    }
}

#[test]
fn runaway_application_events_share_one_overflow_label() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    let _scope = registry.enter();

    let declared = names::MAX_CUSTOM_EVENTS + 40;
    for i in 0..declared {
        let event: &'static Event =
            Event::declare(&format!("cardtest.runaway.e{i}")).expect("a valid application name");
        telemetry::event(event, Measurements::new(), Metadata::new());
    }
    let text = sink.render();
    let own_labels = series(&text)
        .iter()
        .filter(|l| l.contains("event=\"cardtest.runaway."))
        .count();
    assert_eq!(own_labels, names::MAX_CUSTOM_EVENTS, "{text}");
    assert!(
        text.contains(r#"authtel_events_total{event="other",outcome="none"} 40"#),
        "{text}"
    );
}
