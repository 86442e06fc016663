//! [`ProjectorBuilder`]: validates the configuration and creates the consumer and the
//! dead-letter producer.

use std::fmt;
use std::sync::atomic::AtomicU8;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authtel_pipeline::{BreakerConfig, Deliverer, ForwarderConfig, RetryPolicy};
use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use tokio::sync::watch;

use super::dead_letter::DeadLetterTopic;
use super::store::SinkCall;
use super::{Counters, Inner, Projector};
use crate::config;
use crate::error::BuildError;
use crate::sink::ProjectionSink;

/// Configures a [`Projector`]; see [`Projector::builder`].
#[derive(Clone)]
pub struct ProjectorBuilder {
    pub(super) bootstrap: String,
    pub(super) group_id: String,
    pub(super) topic: String,
    pub(super) max_batch: usize,
    pub(super) linger: Duration,
    pub(super) settings: Vec<(String, String)>,
    pub(super) dead_letter_topic: Option<String>,
    pub(super) store_retry: RetryPolicy,
    pub(super) store_timeout: Duration,
    pub(super) breaker: BreakerConfig,
}

impl fmt::Debug for ProjectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.settings.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("ProjectorBuilder")
            .field("bootstrap", &self.bootstrap)
            .field("group_id", &self.group_id)
            .field("topic", &self.topic)
            .field("max_batch", &self.max_batch)
            .field("linger", &self.linger)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .field("store_retry", &self.store_retry)
            .field("store_timeout", &self.store_timeout)
            .field("breaker", &self.breaker)
            // Values may be credentials (sasl.password, ssl.key.password): keys only.
            .field("settings", &keys)
            .finish()
    }
}

impl ProjectorBuilder {
    /// Where messages that cannot be stored go (default `<topic>.dead-letters`). The
    /// projector creates it (one partition) before its first dead letter if it does not
    /// exist; create it yourself where clients may not create topics. Until it accepts a dead
    /// letter the projector retries it and commits no offsets
    /// (`ProjectorState::RetryingDeadLetter`, reason in `health()`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # #[derive(Debug)] struct Nowhere;
    /// # impl authtel_kafka::ProjectionSink for Nowhere {
    /// #     fn project<'a>(&'a self, b: &'a [authtel_core::audit::AuditEvent]) -> authtel_kafka::ProjectFuture<'a> {
    /// #         Box::pin(async move { Ok(b.len() as u64) })
    /// #     }
    /// # }
    /// let projector = authtel_kafka::Projector::builder("127.0.0.1:9092", "g", "auth-audit")
    ///     .with_dead_letter_topic("auth-audit-poison")
    ///     .build(std::sync::Arc::new(Nowhere))
    ///     .unwrap();
    /// assert_eq!(projector.dead_letter_topic(), "auth-audit-poison");
    /// # }
    /// ```
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// The most records stored in one transaction (default 500).
    pub fn with_max_batch(mut self, records: usize) -> Self {
        self.max_batch = records.max(1);
        self
    }

    /// How long to wait for more records before storing a partial batch (default 50 ms).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// The wait between attempts to store a batch that is not stored yet: `base`, doubling
    /// up to `max` (default 100 ms up to 5 s). There is no last attempt: the projector
    /// retries until the batch is stored or it is stopped, and commits no offsets meanwhile.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # #[derive(Debug)] struct Nowhere;
    /// # impl authtel_kafka::ProjectionSink for Nowhere {
    /// #     fn project<'a>(&'a self, b: &'a [authtel_core::audit::AuditEvent]) -> authtel_kafka::ProjectFuture<'a> {
    /// #         Box::pin(async move { Ok(b.len() as u64) })
    /// #     }
    /// # }
    /// use std::time::Duration;
    /// use authtel_pipeline::BreakerConfig;
    /// let projector = authtel_kafka::Projector::builder("127.0.0.1:9092", "g", "auth-audit")
    ///     .with_store_retry(Duration::from_millis(50), Duration::from_secs(2))
    ///     .with_store_timeout(Duration::from_secs(10))
    ///     .with_breaker(BreakerConfig { failure_threshold: 3, open_for: Duration::from_secs(1) })
    ///     .build(std::sync::Arc::new(Nowhere))
    ///     .unwrap();
    /// assert_eq!(projector.store_metrics().forwarder, "projector");
    /// # }
    /// ```
    pub fn with_store_retry(mut self, base: Duration, max: Duration) -> Self {
        self.store_retry = RetryPolicy::new(1, base, max);
        self
    }

    /// The longest one store call may take (default 30 s); a call cut off counts as a
    /// transient failure and the records are stored again (the sink skips ids it has).
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// The store's circuit breaker (default: the pipeline's, open 5 s after 5 failures in a
    /// row). While it is open the store is not called; the batch waits.
    pub fn with_breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// Sets any librdkafka consumer setting, e.g. `session.timeout.ms`. Defaults:
    /// `auto.offset.reset=earliest`, `fetch.wait.max.ms=100`. `enable.auto.commit` is
    /// always `false`: offsets are committed only after the store commit.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// Like [`build`](Self::build), writing through any [`Forwarder`](authtel_core::forward::Forwarder)
    /// (wrapped in a [`ForwarderSink`](crate::ForwarderSink)): the SQL store's
    /// `authtel_sql::BatchWriter`, or any sink the pipeline can deliver to.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
    /// # #[derive(Debug)] struct Nowhere;
    /// # impl Forwarder for Nowhere {
    /// #     fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) }
    /// # }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let projector = authtel_kafka::Projector::builder("127.0.0.1:9092", "g", "auth-audit")
    ///     .build_forwarding(Arc::new(Nowhere))
    ///     .unwrap();
    /// # }
    /// ```
    pub fn build_forwarding(
        self,
        forwarder: Arc<dyn authtel_core::forward::Forwarder>,
    ) -> Result<Projector, BuildError> {
        self.build(Arc::new(crate::ForwarderSink::new(forwarder)))
    }

    /// Validates the configuration and creates the consumer (it subscribes in
    /// [`Projector::run`]). Call it inside a tokio runtime.
    pub fn build(self, sink: Arc<dyn ProjectionSink>) -> Result<Projector, BuildError> {
        config::validate_bootstrap(&self.bootstrap)?;
        config::validate_topic(&self.topic)?;
        let dead_letter_topic = self
            .dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dead-letters", self.topic));
        config::validate_topic(&dead_letter_topic)?;
        if self.group_id.trim().is_empty() {
            return Err(BuildError::EmptyGroupId);
        }
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.bootstrap)
            .set("group.id", &self.group_id)
            .set("client.id", "authtel-kafka-projector")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // librdkafka's 500 ms default long-poll dominated emit-to-row latency in the
            // bench (p50 136 ms → 12 ms at 10 ms); 100 ms keeps idle fetches cheap.
            .set("fetch.wait.max.ms", "100");
        for (key, value) in &self.settings {
            cfg.set(key, value);
        }
        // Set last: committing before the store commit would lose records on a crash.
        cfg.set("enable.auto.commit", "false");
        // rdkafka's stream consumer spawns a tokio task when created.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BuildError::NoRuntime);
        }
        let consumer: StreamConsumer = cfg.create().map_err(BuildError::Client)?;
        let dead_letters = DeadLetterTopic::new(&self.bootstrap, dead_letter_topic, &self.settings)
            .map_err(BuildError::Client)?;
        let counters = Arc::new(Counters::default());
        // One call per round: the retries are the projector's, which never gives up.
        let once = RetryPolicy::new(1, Duration::ZERO, Duration::ZERO);
        let store_call = SinkCall {
            sink: Arc::clone(&sink),
            counters: Arc::clone(&counters),
        };
        let deliverer = Deliverer::new(
            ForwarderConfig::new("projector", store_call)
                .retry(once)
                .call_timeout(self.store_timeout)
                .breaker(self.breaker),
        )
        .map_err(|e| BuildError::Delivery(Box::new(e)))?;
        let (stop, _) = watch::channel(false);
        Ok(Projector {
            inner: Arc::new(Inner {
                consumer: Arc::new(consumer),
                sink,
                deliverer,
                store_retry: self.store_retry,
                topic: self.topic,
                bootstrap: self.bootstrap,
                max_batch: self.max_batch,
                linger: self.linger,
                stop,
                state: AtomicU8::new(0),
                last_error: Mutex::new(None),
                counters,
                dead_letters,
                canary: Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KafkaForwarder, Projector};

    #[test]
    fn builder_debug_output_never_shows_setting_values() {
        let producer = KafkaForwarder::builder("broker:9092", "auth-audit")
            .with_config("sasl.username", "svc-auth")
            .with_config("sasl.password", "hunter2-producer");
        let projector = Projector::builder("broker:9092", "g", "auth-audit")
            .with_config("sasl.password", "hunter2-consumer")
            .with_config("ssl.key.password", "hunter2-key");
        for shown in [format!("{producer:?}"), format!("{projector:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("svc-auth"), "{shown}");
            assert!(
                shown.contains("sasl.password"),
                "keys stay visible: {shown}"
            );
            assert!(shown.contains("auth-audit"), "{shown}");
        }
    }
}
