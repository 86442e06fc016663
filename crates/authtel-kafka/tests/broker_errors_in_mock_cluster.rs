//! Broker-side errors tansu cannot be made to return, injected with librdkafka's in-process
//! mock cluster (in addition to the real-broker tests, never instead of them): retriable
//! errors are absorbed by librdkafka's own retries without duplicates; authorization errors
//! fail the batch as permanent with the code named.

use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::{ErrorKind, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_kafka::{DeliveryError, KafkaForwarder};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

fn batch(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("mfa.verify.stop", Outcome::Success).unwrap();
            e = e.with_actor(Party::new(format!("u_{i}"), "user"));
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_broker_errors_are_absorbed_by_librdkafka() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 1, 1).unwrap();
    let kafka = KafkaForwarder::builder(cluster.bootstrap_servers(), "audit")
        .with_message_timeout(Duration::from_secs(30))
        .with_config("retry.backoff.ms", "10")
        .build()
        .unwrap();
    kafka.forward(&batch(1)).await.expect("warm-up");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS; 3],
    );
    kafka
        .forward(&batch(20))
        .await
        .expect("retried until acknowledged");
    let c = kafka.counters();
    assert_eq!(c.records_acked, 21, "{c:?}");
    assert_eq!(c.records_failed, 0, "{c:?}");
    assert_eq!(c.batches_failed, 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_failure_is_permanent_and_names_the_code() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("audit", 1, 1).unwrap();
    let kafka = KafkaForwarder::builder(cluster.bootstrap_servers(), "audit")
        .with_message_timeout(Duration::from_secs(30))
        .with_config("topic.metadata.refresh.interval.ms", "500")
        .build()
        .unwrap();
    kafka.forward(&batch(1)).await.expect("warm-up");
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED],
    );
    let err = kafka.forward(&batch(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Permanent, "{err}");
    let cause = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<DeliveryError>())
        .expect("typed cause");
    assert!(
        matches!(
            cause,
            DeliveryError::Refused {
                code: RDKafkaErrorCode::TopicAuthorizationFailed,
                ..
            }
        ),
        "{cause}"
    );
    // librdkafka remembers the topic's error until its next metadata refresh; once the
    // permission is back (the mock returned the error once), the same forwarder delivers.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while let Err(e) = kafka.forward(&batch(1)).await {
        assert!(std::time::Instant::now() < deadline, "never recovered: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
