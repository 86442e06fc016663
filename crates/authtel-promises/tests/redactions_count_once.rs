//! The redaction counter counts a record once, however many sinks read it: one span with
//! five redacted values seen by eight handlers (the logger, the recent store, OTLP,
//! Prometheus, the pipeline feeding SQLite, PostgreSQL, Kafka, spill and dead-letter
//! forwarders, two plain readers and an invariant check) adds five, not forty; a hand-built record with
//! three redacted values published to every forwarder adds three. Its own binary: the
//! counters are process-global.

mod support;

use authtel_core::audit::AuditEvent;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Selection, handler_fn};
use authtel_core::{catalogue, policy, telemetry};
use support::sinks::Sinks;

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzEifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_counted_once_not_once_per_sink() {
    let sinks = Sinks::start("counters").await;
    for i in 0..2 {
        sinks
            .registry
            .attach(
                &format!("reader{i}"),
                Selection::All,
                handler_fn(|r| r.metadata.for_each_field(|_, v| drop(v.to_string()))),
            )
            .unwrap();
    }
    let handlers = sinks.registry.handlers().len();
    assert_eq!(handlers, 8, "{:?}", sinks.registry.handlers());
    // Everything the harness set up has settled, so the counters move only for us.
    sinks.settle().await;
    let (redacted, refused) = (policy::redaction_count(), policy::refusal_count());
    {
        let _scope = sinks.registry.enter();
        let m = Metadata::new()
            .user_id("alice@example.com")
            .reason("password=hunter2")
            .user_agent("Authorization: Bearer 8fK2xQ9aB7mZ4pL1vN6c")
            .with_extra("pw", "hunter2")
            .with_extra("pin", 4321u32)
            .with_extra("note", JWT);
        tokio::task::block_in_place(|| {
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                Err::<(), _>("invalid_password")
            });
        });
    }
    sinks.settle().await;
    let span_redacted = policy::redaction_count() - redacted;
    let span_refused = policy::refusal_count() - refused;
    println!(
        "one span, {handlers} handlers: redaction_count +{span_redacted} (5 planted), refusal_count +{span_refused} (1 planted)"
    );
    assert_eq!(span_redacted, 5);
    assert_eq!(span_refused, 1);

    let before = policy::redaction_count();
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    e = e.with_reason("verify failed for password Tr0ub4dor42");
    e = e.with_metadata("otp", "492817").unwrap();
    e = e
        .with_metadata(
            "oauth",
            serde_json::json!({"client_secret": "cs_Q7wE9rT2yU"}),
        )
        .unwrap();
    let forwarders = sinks.pipeline.metrics().len();
    tokio::task::block_in_place(|| sinks.pipeline.publish(e)).unwrap();
    sinks.settle().await;
    let record_redacted = policy::redaction_count() - before;
    println!(
        "one published record, {forwarders} forwarders: redaction_count +{record_redacted} (3 planted)"
    );
    assert!(forwarders >= 3);
    assert_eq!(record_redacted, 3);
}
