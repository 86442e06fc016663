//! The forwarder's messages on a real broker: CloudEvents binary-mode headers, the key
//! that orders each user's records (behind its tenant, when it has one), the record itself
//! as the value, and no secrets.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::catalogue;
use authtel_core::forward::Forwarder;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use authtel_kafka::{HealthState, KafkaForwarder, cloudevents};

fn event_for(user: Option<&str>, ip: Option<IpAddr>) -> AuditEvent {
    event_in(None, user, ip)
}

fn event_in(tenant: Option<&str>, user: Option<&str>, ip: Option<IpAddr>) -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
    if let Some(t) = tenant {
        e = e.with_tenant_id(t);
    }
    if let Some(u) = user {
        e = e.with_actor(Party::new(u, "user"));
    }
    if let Some(ip) = ip {
        e = e.with_client_ip(ip);
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_key_and_value_follow_cloudevents_binary_mode() {
    let Some(bootstrap) = common::bootstrap("headers_key_and_value_follow_cloudevents_binary_mode")
    else {
        return;
    };
    let topic = common::unique_topic("ce");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic)
        .with_source("authtel://login-service")
        .build()
        .unwrap();
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    let batch = vec![
        event_for(Some("u_1"), Some(ip)),
        event_for(None, Some(ip)),
        event_for(None, None),
        // The same account id in two tenants: two keys, so two tenants never share one.
        event_in(Some("acme"), Some("u_1"), Some(ip)),
        event_in(Some("globex"), Some("u_1"), None),
        event_in(Some("acme"), None, Some(ip)),
    ];
    kafka.forward(&batch).await.expect("batch acknowledged");
    assert_eq!(kafka.counters().records_acked, 6);
    assert_eq!(kafka.counters().batches_delivered, 1);
    assert_eq!(kafka.health().state, HealthState::Healthy);

    let (b, t) = (bootstrap.clone(), topic.clone());
    let got = tokio::task::spawn_blocking(move || common::consume(&b, &t, 1, 6))
        .await
        .unwrap();
    assert_eq!(got.len(), 6, "all six records arrive");
    let keys: Vec<_> = got.iter().map(|m| m.key.clone().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "u_1",
            "203.0.113.7",
            "anonymous",
            "acme/u_1",
            "globex/u_1",
            "acme/203.0.113.7"
        ]
    );
    for (m, sent) in got.iter().zip(&batch) {
        assert_eq!(m.header(cloudevents::SPECVERSION), Some("1.0"));
        assert_eq!(
            m.header(cloudevents::ID),
            Some(sent.id().to_string().as_str())
        );
        assert_eq!(
            m.header(cloudevents::SOURCE),
            Some("authtel://login-service")
        );
        assert_eq!(m.header(cloudevents::TYPE), Some("auth.login.stop"));
        assert_eq!(
            m.header(cloudevents::TIME),
            Some(sent.occurred_at().to_string().as_str())
        );
        assert_eq!(
            m.header(cloudevents::CONTENT_TYPE),
            Some("application/json")
        );
        let back: AuditEvent = serde_json::from_slice(&m.value).unwrap();
        assert_eq!(&back, sent);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_never_reach_the_topic() {
    let Some(bootstrap) = common::bootstrap("planted_secrets_never_reach_the_topic") else {
        return;
    };
    let topic = common::unique_topic("secrets");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzEifQ.c2lnbmF0dXJlLXNlY3JldA";
    // Through the public emit path: core's metadata policy redacts at the source.
    let meta = Metadata::new()
        .user_id("u_42")
        .with_extra("password", "hunter2-PLANTED")
        .with_extra("refresh_token", "rt-PLANTED")
        .with_extra("note", JWT);
    let measurements = Measurements::new();
    let record = EventRecord::signal(
        &catalogue::SECURITY_LOCKOUT,
        SpanContext::child_of(None),
        &measurements,
        &meta,
    );
    let from_emit = AuditEvent::from_record(&record).unwrap();
    // Built by hand, bypassing the event metadata policy: the record's setters screen it.
    let mut by_hand = AuditEvent::new("jwt.refresh.stop", Outcome::Failure).unwrap();
    by_hand = by_hand.with_actor(Party::new("u_42", "user"));
    by_hand = by_hand
        .with_metadata("totp_code", "123456-PLANTED")
        .unwrap();
    by_hand = by_hand
        .with_metadata("oauth_client_secret", "cs-PLANTED")
        .unwrap();
    by_hand = by_hand.with_metadata("cookie", "sid=PLANTED").unwrap();
    by_hand = by_hand.with_reason(format!("Bearer {JWT}"));
    by_hand = by_hand.with_user_agent(format!("curl token={JWT}"));
    assert_eq!(by_hand.reason(), Some("[REDACTED]"), "screened when set");
    kafka.forward(&[from_emit, by_hand]).await.unwrap();

    let (b, t) = (bootstrap.clone(), topic.clone());
    let got = tokio::task::spawn_blocking(move || common::consume(&b, &t, 1, 2))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let mut everything = Vec::new();
    for m in &got {
        everything.extend_from_slice(m.key.as_deref().unwrap_or_default().as_bytes());
        everything.extend_from_slice(&m.value);
        for (k, v) in &m.headers {
            everything.extend_from_slice(k.as_bytes());
            everything.extend_from_slice(v.as_bytes());
        }
    }
    let text = String::from_utf8_lossy(&everything);
    for secret in ["PLANTED", "hunter2", JWT, "eyJhbGci", "Bearer"] {
        assert!(
            !text.contains(secret),
            "{secret:?} leaked into kafka: {text}"
        );
    }
    assert!(text.contains("u_42"), "the record itself did arrive");
}
