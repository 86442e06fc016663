//! The projector's dead letters: a message it cannot store — not an audit record, or a record
//! the store refuses permanently — is produced to a dead-letter topic (by default
//! `<topic>.dead-letters`) before its offset is committed, so skipping it never loses it.
//!
//! A dead letter keeps the original key, and the original payload and headers when the
//! message did not decode (a refused record is written as its CloudEvents JSON); two headers
//! say why and where from: [`REASON`] and [`ORIGIN`] (`<topic>/<partition>/<offset>`).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use authtel_core::audit::AuditEvent;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::cloudevents;

/// Header of a dead letter: why the projector could not store it.
///
/// ```
/// assert_eq!(authtel_kafka::DEAD_LETTER_REASON, "authtel_dead_letter_reason");
/// ```
pub const REASON: &str = "authtel_dead_letter_reason";

/// Header of a dead letter: where it was read, `<topic>/<partition>/<offset>`.
///
/// ```
/// assert_eq!(authtel_kafka::DEAD_LETTER_ORIGIN, "authtel_dead_letter_origin");
/// ```
pub const ORIGIN: &str = "authtel_dead_letter_origin";

/// The longest reason written into a dead letter's header, in bytes.
const MAX_REASON: usize = 1000;

/// One message to dead-letter.
pub(super) struct Poison {
    pub(super) partition: i32,
    pub(super) offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: OwnedHeaders,
    pub(super) reason: String,
}

impl Poison {
    /// A message that did not decode, kept byte for byte.
    pub(super) fn undecodable(message: &BorrowedMessage<'_>, reason: String) -> Poison {
        Poison {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers: message.headers().map(|h| h.detach()).unwrap_or_default(),
            reason,
        }
    }

    /// A record the store refused, as CloudEvents JSON keyed by its actor like the producer.
    pub(super) fn refused(
        event: &AuditEvent,
        (partition, offset): (i32, i64),
        reason: String,
    ) -> Poison {
        Poison {
            partition,
            offset,
            key: event.actor().map(|a| a.id.clone().into_bytes()),
            payload: serde_json::to_vec(event).ok(),
            headers: cloudevents::headers_for(event, "authtel://authtel-kafka-projector"),
            reason,
        }
    }
}

/// Produces dead letters (idempotent producer, `acks=all`), created on the first dead letter:
/// a projector that never meets a poison message opens no producer connection.
pub(super) struct DeadLetterTopic {
    config: ClientConfig,
    producer: OnceLock<FutureProducer>,
    pub(super) topic: String,
    bootstrap: String,
    /// Whether the topic was created (or found) before the first dead letter.
    ensured: AtomicBool,
}

impl DeadLetterTopic {
    /// A producer for `topic` with the projector's settings (security settings apply to both).
    pub(super) fn new(
        bootstrap: &str,
        topic: String,
        settings: &[(String, String)],
    ) -> Result<DeadLetterTopic, KafkaError> {
        let mut cfg = ClientConfig::new();
        for (key, value) in settings {
            // Consumer-only settings would make librdkafka log warnings for the producer.
            if !CONSUMER_ONLY.contains(&key.as_str()) {
                cfg.set(key, value);
            }
        }
        cfg.set("bootstrap.servers", bootstrap)
            .set("client.id", "authtel-kafka-projector-dead-letters")
            .set("enable.idempotence", "true")
            .set("acks", "all");
        Ok(DeadLetterTopic {
            config: cfg,
            producer: OnceLock::new(),
            topic,
            bootstrap: bootstrap.to_owned(),
            ensured: AtomicBool::new(false),
        })
    }

    /// Creates the topic (one partition) before the first dead letter, as Kafka Connect does
    /// for its dead-letter queues; an existing topic is fine. A failure (no permission) is
    /// returned for the health report; producing is tried anyway.
    pub(super) async fn ensure_topic(&self) -> Result<(), String> {
        if self.ensured.load(Ordering::Acquire) {
            return Ok(());
        }
        crate::create_topic(&self.bootstrap, &self.topic, 1, Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        self.ensured.store(true, Ordering::Release);
        Ok(())
    }

    /// Produces one dead letter and waits for the broker's acknowledgement.
    pub(super) async fn send(&self, source_topic: &str, poison: &Poison) -> Result<(), KafkaError> {
        let origin = format!("{source_topic}/{}/{}", poison.partition, poison.offset);
        let reason = authtel_core::metadata::truncate(&poison.reason, MAX_REASON);
        let headers = poison
            .headers
            .clone()
            .insert(Header {
                key: REASON,
                value: Some(reason),
            })
            .insert(Header {
                key: ORIGIN,
                value: Some(origin.as_str()),
            });
        if self.producer.get().is_none() {
            let producer: FutureProducer = self.config.create()?;
            let _ = self.producer.set(producer);
        }
        let producer = self.producer.get().ok_or(KafkaError::Canceled)?;
        let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic).headers(headers);
        if let Some(key) = &poison.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &poison.payload {
            record = record.payload(payload.as_slice());
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

/// Settings of `ProjectorBuilder::with_config` that only a consumer understands.
const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.partition.eof",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "max.partition.fetch.bytes",
    "partition.assignment.strategy",
    "isolation.level",
    "check.crcs",
    "enable.auto.offset.store",
];
