//! Typed errors, one enum per operation family (build, deliver, probe, admin, decode).
//!
//! Delivery failures reach the pipeline as [`ForwardError`](authtel_core::forward::ForwardError)
//! with a [`DeliveryError`] as their source, so operators see the Kafka detail and the pipeline
//! sees only transient or permanent.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why a [`KafkaForwarder`](crate::KafkaForwarder) or [`Projector`](crate::Projector) could not
/// be built.
///
/// ```
/// use authtel_kafka::{BuildError, KafkaForwarder};
/// let err = KafkaForwarder::builder("", "audit").build().unwrap_err();
/// assert!(matches!(err, BuildError::EmptyBootstrap));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No broker address was given.
    #[error("kafka bootstrap address is empty: pass host:port, e.g. \"127.0.0.1:9092\"")]
    EmptyBootstrap,
    /// A broker address is not `host:port`.
    #[error(
        "kafka bootstrap address {entry:?} is not host:port: write it like \"broker-1:9092\" (several separated by commas)"
    )]
    InvalidBootstrap {
        /// The offending comma-separated entry.
        entry: String,
    },
    /// The topic name is not a legal Kafka topic name.
    #[error(
        "kafka topic name {name:?} is invalid: {why}; use 1-249 characters from a-z A-Z 0-9 . _ -"
    )]
    InvalidTopic {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The CloudEvents `source` attribute is empty or has control characters.
    #[error(
        "cloudevents source {source_attr:?} is invalid: it must be a non-empty URI reference without control characters, e.g. \"authtel://login-service\""
    )]
    InvalidSource {
        /// The rejected value.
        source_attr: String,
    },
    /// The consumer group id is empty.
    #[error(
        "kafka consumer group id is empty: pass a stable name shared by all projector instances, e.g. \"authtel-projector\""
    )]
    EmptyGroupId,
    /// A setting would break the delivery guarantee this crate promises.
    #[error(
        "kafka setting {key}={value:?} is refused: {why}; remove it from the forwarder configuration"
    )]
    RefusedSetting {
        /// The librdkafka key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        why: &'static str,
    },
    /// A projector was built outside a tokio runtime.
    #[error(
        "the kafka projector must be built inside a tokio runtime: call build() from async code or within Runtime::enter()"
    )]
    NoRuntime,
    /// librdkafka rejected the configuration (unknown key, bad value, feature not compiled in).
    #[error(
        "librdkafka rejected the kafka client configuration; check the keys and values passed with with_config"
    )]
    Client(#[source] KafkaError),
    /// The projector's store settings are out of range (a zero timeout, a breaker that never
    /// opens).
    #[error(
        "the kafka projector's store settings are invalid; check with_store_timeout and with_breaker"
    )]
    Delivery(#[source] Box<authtel_pipeline::BuildError>),
}

/// Why records of a batch were not acknowledged by the broker. Carried as the source of the
/// [`ForwardError`](authtel_core::forward::ForwardError) the forwarder returns.
///
/// ```
/// use authtel_kafka::DeliveryError;
/// let e = DeliveryError::ShutDown { topic: "audit".into() };
/// assert_eq!(e.to_string(), "the kafka forwarder for topic \"audit\" is shut down: build a new one to send again");
/// assert!(!e.is_transient());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The record is larger than the producer's `message.max.bytes`.
    #[error(
        "audit record {event_id} is {size} bytes, above the producer's message.max.bytes: raise message.max.bytes on the producer (with_config) and the broker, or keep fewer metadata fields"
    )]
    TooLarge {
        /// The record's event id.
        event_id: String,
        /// The serialized record's size.
        size: usize,
    },
    /// The topic does not exist and the broker will not create it.
    #[error(
        "kafka topic {topic:?} does not exist on {bootstrap}: create it (e.g. with authtel_kafka::create_topic) or fix the topic name"
    )]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// The brokers asked.
        bootstrap: String,
    },
    /// No acknowledgement came within `message.timeout.ms`.
    #[error(
        "no acknowledgement from kafka at {bootstrap} within message.timeout.ms: the broker is down, unreachable or the address is wrong ({detail}); check bootstrap.servers and the broker"
    )]
    TimedOut {
        /// The brokers asked.
        bootstrap: String,
        /// librdkafka's last reported broker problem and its age, if any.
        detail: String,
    },
    /// The broker or librdkafka refused the record for another reason.
    #[error("kafka refused audit record {event_id}: {code} ({code:?})")]
    Refused {
        /// The record's event id, when known.
        event_id: String,
        /// librdkafka's error code.
        code: RDKafkaErrorCode,
    },
    /// The record could not be serialized to JSON.
    #[error("audit record {event_id} could not be serialized to json: {reason}")]
    Serialize {
        /// The record's event id.
        event_id: String,
        /// serde_json's explanation.
        reason: String,
    },
    /// `forward` was called after `shutdown`.
    #[error("the kafka forwarder for topic {topic:?} is shut down: build a new one to send again")]
    ShutDown {
        /// The forwarder's topic.
        topic: String,
    },
    /// The producer did not drain within the flush or shutdown deadline.
    #[error(
        "{pending} kafka records still unacknowledged at the flush deadline on {bootstrap}: the broker is slow or down; they stay queued in librdkafka until message.timeout.ms"
    )]
    FlushTimedOut {
        /// Records still in flight.
        pending: i32,
        /// The brokers.
        bootstrap: String,
    },
}

impl DeliveryError {
    /// Whether retrying the same record can succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            DeliveryError::TimedOut { .. } | DeliveryError::FlushTimedOut { .. } => true,
            DeliveryError::Refused { code, .. } => is_transient_code(*code),
            DeliveryError::TooLarge { .. }
            | DeliveryError::UnknownTopic { .. }
            | DeliveryError::Serialize { .. }
            | DeliveryError::ShutDown { .. } => false,
        }
    }
}

/// Whether a librdkafka error code can go away by itself (broker restart, leader election,
/// network, a producer identity the forwarder replaces). Codes that need an operator (size
/// limits, missing topics, authorization, bad configuration) are permanent: retrying them
/// would only loop.
pub(crate) fn is_transient_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    !matches!(
        code,
        C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::BadMessage
            | C::InvalidRecord
            | C::MessageBatchTooLarge
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::UnknownPartition
            | C::InvalidTopic
            | C::TopicAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
            | C::SaslAuthenticationFailed
            | C::Authentication
            | C::InvalidRequiredAcks
            | C::UnsupportedVersion
            | C::UnsupportedCompressionType
            | C::UnsupportedFeature
            | C::InvalidArgument
            | C::InvalidConfig
    )
}

/// Codes after which the idempotent producer's identity (producer id and epoch) is unusable:
/// the forwarder replaces its producer so the pipeline's retry starts a fresh identity.
/// Seen with tansu after a broker freeze (every send then fails with `ProducerFenced`).
pub(crate) fn needs_new_producer(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::Fatal
            | C::ProducerFenced
            | C::InvalidProducerEpoch
            | C::OutOfOrderSequenceNumber
            | C::UnknownProducerId
            | C::InvalidProducerIdMapping
    )
}

/// Why [`KafkaForwarder::probe`](crate::KafkaForwarder::probe) found the destination unusable.
///
/// ```
/// use authtel_kafka::ProbeError;
/// let e = ProbeError::UnknownTopic { topic: "audit".into(), bootstrap: "127.0.0.1:9092".into() };
/// assert!(e.to_string().contains("does not exist"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No broker answered the metadata request.
    #[error(
        "no kafka broker answered at {bootstrap} within {timeout_ms} ms: check the address and that the broker is up"
    )]
    Unreachable {
        /// The brokers asked.
        bootstrap: String,
        /// The probe's timeout.
        timeout_ms: u128,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The brokers answered but do not have the topic.
    #[error("kafka topic {topic:?} does not exist on {bootstrap}: create it or fix the topic name")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// The brokers asked.
        bootstrap: String,
    },
}

/// Why a topic could not be created by [`create_topic`](crate::create_topic).
///
/// ```
/// use authtel_kafka::AdminError;
/// let e = AdminError::Rejected { topic: "t".into(), code: rdkafka::types::RDKafkaErrorCode::InvalidPartitions };
/// assert!(e.to_string().starts_with("kafka refused to create topic \"t\""));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The admin client could not be built.
    #[error("kafka admin client for {bootstrap} could not be configured")]
    Client {
        /// The brokers.
        bootstrap: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The request failed (broker unreachable, timeout).
    #[error("create topic {topic:?} on {bootstrap} failed: check that the broker is up")]
    Request {
        /// The topic.
        topic: String,
        /// The brokers.
        bootstrap: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused the topic.
    #[error("kafka refused to create topic {topic:?}: {code}")]
    Rejected {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
}

/// Why a Kafka message could not be turned back into an [`AuditEvent`](authtel_core::audit::AuditEvent).
///
/// ```
/// use authtel_kafka::cloudevents::decode;
/// let err = decode(Some(b"not json"), None::<&rdkafka::message::OwnedHeaders>).unwrap_err();
/// assert!(err.to_string().contains("not an authtel audit record"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message has no value.
    #[error("kafka message has no value: expected an authtel audit record as JSON")]
    EmptyPayload,
    /// The value is not an audit record.
    #[error("kafka message value is not an authtel audit record: {reason}")]
    NotAuditRecord {
        /// serde_json's explanation.
        reason: String,
    },
    /// The `ce_id` header disagrees with the record's id.
    #[error("kafka message header ce_id {header:?} does not match the record's id {record}")]
    IdMismatch {
        /// The header value.
        header: String,
        /// The record's id.
        record: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_for_the_pipeline() {
        use RDKafkaErrorCode as C;
        for transient in [
            C::MessageTimedOut,
            C::NotEnoughReplicas,
            C::NotLeaderForPartition,
            C::BrokerTransportFailure,
            C::AllBrokersDown,
            C::QueueFull,
            C::ProducerFenced,
        ] {
            assert!(is_transient_code(transient), "{transient:?}");
        }
        for permanent in [
            C::MessageSizeTooLarge,
            C::UnknownTopicOrPartition,
            C::UnknownTopic,
            C::TopicAuthorizationFailed,
            C::InvalidConfig,
        ] {
            assert!(!is_transient_code(permanent), "{permanent:?}");
        }
        assert!(needs_new_producer(C::ProducerFenced));
        assert!(needs_new_producer(C::Fatal));
        assert!(!needs_new_producer(C::MessageTimedOut));
    }

    #[test]
    fn messages_name_the_value_and_the_fix() {
        let e = DeliveryError::TooLarge {
            event_id: "0193".into(),
            size: 2_000_000,
        };
        let text = e.to_string();
        assert!(
            text.contains("0193") && text.contains("2000000 bytes"),
            "{text}"
        );
        assert!(text.contains("raise message.max.bytes"), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        let e = BuildError::InvalidBootstrap {
            entry: "broker".into(),
        };
        assert!(e.to_string().contains("\"broker\""));
    }
}
