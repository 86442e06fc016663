//! Oversized records, unknown topics and wrong broker addresses fail with typed errors that
//! say what to do, classified for the pipeline, and nothing else stops.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::{ErrorKind, ForwardError, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_kafka::{BuildError, DeliveryError, HealthState, KafkaForwarder, ProbeError};

fn event(user: &str) -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
    e = e.with_actor(Party::new(user, "user"));
    e
}

fn delivery_error(err: &ForwardError) -> &DeliveryError {
    std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<DeliveryError>())
        .unwrap_or_else(|| panic!("source of {err} is a DeliveryError"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_record_fails_permanently_and_its_neighbours_are_delivered() {
    let Some(bootstrap) = common::bootstrap("oversized_record") else {
        return;
    };
    let topic = common::unique_topic("oversized");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic)
        .with_config("message.max.bytes", "2000")
        .build()
        .unwrap();
    // Within core's bounds (texts of 200 bytes, 4 KiB of metadata), over the producer's.
    let mut big = event("u_big");
    for i in 0..20 {
        big = big
            .with_metadata(format!("blob{i}"), "x".repeat(200))
            .unwrap();
    }

    let err = kafka
        .forward(&[event("u_1"), big.clone(), event("u_2")])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    let text = format!("{err}: {}", delivery_error(&err));
    assert!(text.contains("1 of 3 records"), "{text}");
    assert!(
        matches!(delivery_error(&err), DeliveryError::TooLarge { event_id, size } if *event_id == big.id().to_string() && *size > 4_000),
        "{text}"
    );
    assert!(
        text.contains("message.max.bytes"),
        "says what to raise: {text}"
    );

    // The same forwarder keeps working, and the two neighbours did arrive.
    kafka.forward(&[event("u_3")]).await.expect("next batch");
    let (b, t) = (bootstrap.clone(), topic.clone());
    let got = tokio::task::spawn_blocking(move || common::consume(&b, &t, 1, 3))
        .await
        .unwrap();
    let keys: Vec<_> = got.iter().filter_map(|m| m.key.clone()).collect();
    assert_eq!(keys, ["u_1", "u_2", "u_3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_fails_permanently_with_the_topic_named() {
    let Some(bootstrap) = common::bootstrap("unknown_topic") else {
        return;
    };
    let missing = common::unique_topic("missing");
    let kafka = KafkaForwarder::builder(&bootstrap, &missing)
        .with_config("allow.auto.create.topics", "false")
        .with_config("topic.metadata.propagation.max.ms", "2000")
        .with_message_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let probe = tokio::task::block_in_place(|| kafka.probe(Duration::from_secs(20)));
    assert!(
        matches!(&probe, Err(ProbeError::UnknownTopic { topic, .. }) if *topic == missing),
        "{probe:?}"
    );
    let err = kafka.forward(&[event("u_1")]).await.unwrap_err();
    let cause = delivery_error(&err);
    assert!(
        matches!(cause, DeliveryError::UnknownTopic { topic, .. } if *topic == missing),
        "{err}: {cause}"
    );
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(cause.to_string().contains("create it"), "{cause}");

    // Another forwarder on the same broker is unaffected.
    let topic = common::unique_topic("present");
    common::create_topic(&bootstrap, &topic, 1).await;
    let ok = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    ok.forward(&[event("u_2")]).await.expect("delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_broker_address_times_out_as_transient_and_names_the_address() {
    // A loopback port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let wrong = format!("127.0.0.1:{port}");
    let kafka = KafkaForwarder::builder(&wrong, "auth-audit")
        .with_message_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = kafka.forward(&[event("u_1")]).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(err.kind(), ErrorKind::Transient, "{err}");
    let cause = delivery_error(&err);
    assert!(matches!(cause, DeliveryError::TimedOut { .. }), "{cause}");
    let text = cause.to_string();
    assert!(text.contains(&wrong), "{text}");
    assert!(text.contains("check bootstrap.servers"), "{text}");
    assert_eq!(kafka.health().state, HealthState::Degraded);
    assert!(kafka.counters().broker_errors > 0);
    assert_eq!(kafka.counters().records_failed, 1);

    let probe = tokio::task::block_in_place(|| kafka.probe(Duration::from_millis(500)));
    assert!(
        matches!(&probe, Err(ProbeError::Unreachable { bootstrap, .. }) if *bootstrap == wrong),
        "{probe:?}"
    );
}

#[test]
fn malformed_configuration_is_a_typed_build_error() {
    let err = KafkaForwarder::builder("localhost", "t")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidBootstrap { .. }), "{err}");
    let err = KafkaForwarder::builder("127.0.0.1:9092", "bad topic")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidTopic { .. }), "{err}");
    let err = KafkaForwarder::builder("127.0.0.1:9092", "t")
        .with_config("acks", "1")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::RefusedSetting { .. }), "{err}");
    let err = KafkaForwarder::builder("127.0.0.1:9092", "t")
        .with_config("no.such.setting", "1")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Client(_)), "{err}");
    let err = KafkaForwarder::builder("127.0.0.1:9092", "t")
        .with_source("")
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::InvalidSource { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_after_shutdown_is_refused_permanently() {
    let kafka = KafkaForwarder::builder("127.0.0.1:9", "t").build().unwrap();
    kafka
        .shutdown(Instant::now() + Duration::from_secs(1))
        .expect("nothing queued");
    kafka
        .shutdown(Instant::now() + Duration::from_secs(1))
        .expect("idempotent");
    let err = kafka.forward(&[event("u_1")]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent);
    assert!(matches!(
        delivery_error(&err),
        DeliveryError::ShutDown { .. }
    ));
    assert_eq!(kafka.health().state, HealthState::ShutDown);
}

#[test]
fn projector_outside_a_runtime_or_without_group_is_a_typed_build_error() {
    #[derive(Debug)]
    struct Nowhere;
    impl authtel_kafka::ProjectionSink for Nowhere {
        fn project<'a>(&'a self, b: &'a [AuditEvent]) -> authtel_kafka::ProjectFuture<'a> {
            Box::pin(async move { Ok(b.len() as u64) })
        }
    }
    let build = |group: &str| {
        authtel_kafka::Projector::builder("127.0.0.1:9092", group, "auth-audit")
            .build(std::sync::Arc::new(Nowhere))
    };
    assert!(matches!(build("g"), Err(BuildError::NoRuntime)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = rt.enter();
    assert!(matches!(build("  "), Err(BuildError::EmptyGroupId)));
    assert!(build("g").is_ok());
}
