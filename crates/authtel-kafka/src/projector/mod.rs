//! [`Projector`]: a consumer-group member that writes the topic's audit records into a
//! [`ProjectionSink`] (the SQL audit store) exactly once in effect.
//!
//! The order of work per batch is the whole design: read → store in one transaction
//! (idempotent on the event id) → commit the offsets. A crash before the store commit
//! stores nothing; a crash between the two redelivers records the store already has, which
//! it skips. Offsets are never committed for records that are not stored or dead-lettered.
//!
//! A message that cannot be stored — not an audit record, or a record the store refuses
//! permanently (a NUL byte in an id) — is counted and produced to the dead-letter topic
//! (headers [`DEAD_LETTER_REASON`](crate::DEAD_LETTER_REASON) and
//! [`DEAD_LETTER_ORIGIN`](crate::DEAD_LETTER_ORIGIN)); then its offset is committed with its
//! neighbours', which are stored.
//!
//! The store is called through the pipeline's delivery engine ([`authtel_pipeline::Deliverer`]),
//! as the SQL outbox relay calls its forwarders: each call bounded by a timeout, a panic caught
//! as a transient failure, a circuit breaker, and a permanently refused batch split down to the
//! records refused alone. The projector is the source: it retries what is not stored yet, with
//! backoff, until it is stored or the projector is stopped.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::ForwardError;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use authtel_pipeline::{Deliverer, ForwarderMetrics, RetryPolicy};

use crate::cloudevents;
use crate::health::{Lag, PartitionLag, ProjectorCounters};
use crate::sink::ProjectionSink;

mod builder;
pub(crate) mod dead_letter;
mod store;

pub use builder::ProjectorBuilder;
use dead_letter::{DeadLetterTopic, Poison};

/// The pause after a read that returned only an error, so a failing broker is not spun on.
const READ_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Reads audit records from a topic as a member of a consumer group and stores them through
/// a [`ProjectionSink`]. Cheap to clone (clones share one consumer); run several instances
/// with the same group id to share the partitions.
///
/// ```no_run
/// use std::sync::Arc;
/// use authtel_kafka::{Projector, ProjectionSink};
/// # async fn demo(sink: Arc<dyn ProjectionSink>) -> Result<(), Box<dyn std::error::Error>> {
/// let projector = Projector::builder("127.0.0.1:9092", "authtel-projector", "auth-audit")
///     .build(sink)?;
/// let task = tokio::spawn({
///     let p = projector.clone();
///     async move { p.run().await }
/// });
/// // … later
/// projector.stop();
/// task.await??;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Projector {
    inner: Arc<Inner>,
}

struct Inner {
    consumer: Arc<StreamConsumer>,
    sink: Arc<dyn ProjectionSink>,
    /// The sink behind the pipeline's delivery rules (one call per round).
    deliverer: Deliverer,
    /// The wait between rounds of a batch not stored yet (only its backoff is used: the
    /// projector retries until the batch is stored or it is stopped).
    store_retry: RetryPolicy,
    topic: String,
    bootstrap: String,
    max_batch: usize,
    linger: Duration,
    stop: watch::Sender<bool>,
    state: AtomicU8,
    last_error: Mutex<Option<String>>,
    counters: Arc<Counters>,
    dead_letters: DeadLetterTopic,
    /// The last record this projector stored: storing it again (a duplicate, skipped) shows
    /// whether the store works when a whole batch is refused.
    canary: Mutex<Option<AuditEvent>>,
}

impl fmt::Debug for Projector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Projector")
            .field("bootstrap", &self.inner.bootstrap)
            .field("topic", &self.inner.topic)
            .field("sink", &self.inner.sink)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Counters {
    consumed: AtomicU64,
    projected: AtomicU64,
    duplicates: AtomicU64,
    decode_errors: AtomicU64,
    refused: AtomicU64,
    dead_lettered: AtomicU64,
    store_commits: AtomicU64,
    store_failures: AtomicU64,
    offset_commit_failures: AtomicU64,
}

/// What a projector is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProjectorState {
    /// Built, `run` not called yet.
    Idle,
    /// Reading and storing.
    Running,
    /// The store failed transiently; retrying the same batch with backoff.
    RetryingStore,
    /// `run` returned after `stop`.
    Stopped,
    /// `run` returned an error (the store is broken, or Kafka failed).
    Failed,
    /// A dead letter could not be produced; retrying it with backoff (offsets stay put).
    RetryingDeadLetter,
}

impl ProjectorState {
    fn from_u8(v: u8) -> ProjectorState {
        match v {
            1 => ProjectorState::Running,
            2 => ProjectorState::RetryingStore,
            3 => ProjectorState::Stopped,
            4 => ProjectorState::Failed,
            5 => ProjectorState::RetryingDeadLetter,
            _ => ProjectorState::Idle,
        }
    }
}

/// The projector's health, from [`Projector::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectorHealth {
    /// What it is doing.
    pub state: ProjectorState,
    /// The last store or Kafka error, if any.
    pub last_error: Option<String>,
}

/// Why [`Projector::run`] stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectorError {
    /// The store refused every record of a batch permanently and also a record it had
    /// stored before, so the store, not the records, is broken (or `stop` came while a
    /// transient failure was being retried); the offsets were not committed, so a fixed
    /// projector resumes with that batch.
    #[error(
        "the store refused a batch of {records} records from topic {topic:?}; offsets were not committed: fix the store and restart the projector"
    )]
    Store {
        /// The topic.
        topic: String,
        /// The batch size.
        records: usize,
        /// The store's error.
        #[source]
        source: ForwardError,
    },
    /// Subscribing or reading failed.
    #[error(
        "kafka consumer for topic {topic:?} on {bootstrap} failed: check the broker and the group id"
    )]
    Kafka {
        /// The topic.
        topic: String,
        /// The brokers.
        bootstrap: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// A dead letter could not be produced before `stop`; the batch's offsets were not
    /// committed, so it is read again.
    #[error(
        "could not produce a dead letter to topic {dead_letter_topic:?}: create that topic (or name another with ProjectorBuilder::with_dead_letter_topic)"
    )]
    DeadLetter {
        /// The dead-letter topic.
        dead_letter_topic: String,
        /// librdkafka's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// `run` was called while another `run` of the same projector is active or after it
    /// stopped.
    #[error("projector for topic {topic:?} is {state:?}: build a new projector to run again")]
    NotRunnable {
        /// The topic.
        topic: String,
        /// Its state.
        state: ProjectorState,
    },
}

/// Why [`Projector::lag`] could not be computed.
#[derive(Debug, thiserror::Error)]
#[error(
    "kafka lag of topic {topic:?} on {bootstrap} could not be read: check that the broker is up"
)]
pub struct LagError {
    topic: String,
    bootstrap: String,
    #[source]
    source: Box<KafkaError>,
}

/// One batch read from Kafka: the decodable records and the offsets to commit once they
/// are stored and the bad messages dead-lettered (never retried forever).
#[derive(Default)]
struct Batch {
    events: Vec<AuditEvent>,
    /// Partition and offset of each record in `events`.
    origins: Vec<(i32, i64)>,
    /// Messages to dead-letter before the offsets are committed.
    poison: Vec<Poison>,
    ids: HashSet<uuid::Uuid>,
    in_batch_duplicates: u64,
    next_offsets: BTreeMap<i32, i64>,
}

impl Projector {
    /// Starts configuring a projector reading `topic` in consumer group `group_id`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # #[derive(Debug)] struct Nowhere;
    /// # impl authtel_kafka::ProjectionSink for Nowhere {
    /// #     fn project<'a>(&'a self, b: &'a [authtel_core::audit::AuditEvent]) -> authtel_kafka::ProjectFuture<'a> {
    /// #         Box::pin(async move { Ok(b.len() as u64) })
    /// #     }
    /// # }
    /// use authtel_kafka::{Projector, ProjectorState};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let projector = Projector::builder("127.0.0.1:9092", "authtel-projector", "auth-audit")
    ///     .with_config("session.timeout.ms", "6000")
    ///     .build(Arc::new(Nowhere))
    ///     .unwrap();
    /// assert_eq!(projector.health().state, ProjectorState::Idle);
    /// # }
    /// ```
    pub fn builder(
        bootstrap: impl Into<String>,
        group_id: impl Into<String>,
        topic: impl Into<String>,
    ) -> ProjectorBuilder {
        ProjectorBuilder {
            bootstrap: bootstrap.into(),
            group_id: group_id.into(),
            topic: topic.into(),
            max_batch: 500,
            linger: Duration::from_millis(50),
            settings: Vec::new(),
            dead_letter_topic: None,
            store_retry: RetryPolicy::new(1, Duration::from_millis(100), Duration::from_secs(5)),
            store_timeout: Duration::from_secs(30),
            breaker: authtel_pipeline::BreakerConfig::default(),
        }
    }

    /// The topic dead letters go to.
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
    ///     .build(std::sync::Arc::new(Nowhere))
    ///     .unwrap();
    /// assert_eq!(projector.dead_letter_topic(), "auth-audit.dead-letters");
    /// # }
    /// ```
    pub fn dead_letter_topic(&self) -> &str {
        &self.inner.dead_letters.topic
    }

    /// A snapshot of the counters, for the pipeline's self-metrics.
    pub fn counters(&self) -> ProjectorCounters {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProjectorCounters {
            consumed: get(&c.consumed),
            projected: get(&c.projected),
            duplicates: get(&c.duplicates),
            decode_errors: get(&c.decode_errors),
            refused: get(&c.refused),
            dead_lettered: get(&c.dead_lettered),
            store_commits: get(&c.store_commits),
            store_failures: get(&c.store_failures),
            offset_commit_failures: get(&c.offset_commit_failures),
        }
    }

    /// The store's delivery counters as the pipeline's engine keeps them: calls that timed
    /// out or panicked, retries, and the circuit breaker's state (`forwarder` is
    /// `"projector"`).
    pub fn store_metrics(&self) -> ForwarderMetrics {
        self.inner.deliverer.metrics()
    }

    /// What the projector is doing and its last error.
    pub fn health(&self) -> ProjectorHealth {
        ProjectorHealth {
            state: self.state(),
            last_error: self
                .inner
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    fn state(&self) -> ProjectorState {
        ProjectorState::from_u8(self.inner.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: ProjectorState) {
        self.inner.state.store(state as u8, Ordering::Release);
    }

    fn note_error(&self, text: String) {
        *self
            .inner
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(text);
    }

    /// Asks [`run`](Self::run) to return after the batch in hand is stored and committed.
    pub fn stop(&self) {
        self.inner.stop.send_replace(true);
    }

    /// How far behind the group's committed offsets are, per partition assigned to this
    /// instance. Offsets count records on Apache Kafka and record batches on tansu.
    pub async fn lag(&self, timeout: Duration) -> Result<Lag, LagError> {
        let inner = Arc::clone(&self.inner);
        let joined = tokio::task::spawn_blocking(move || read_lag(&inner, timeout)).await;
        joined.unwrap_or_else(|_| {
            Err(LagError {
                topic: self.inner.topic.clone(),
                bootstrap: self.inner.bootstrap.clone(),
                source: Box::new(KafkaError::Canceled),
            })
        })
    }

    /// Subscribes and projects until [`stop`](Self::stop). Transient store failures,
    /// timeouts and panics are retried with backoff (offsets stay put; while the breaker is
    /// open the store is not called); records the store refuses permanently are
    /// dead-lettered and their neighbours stored. The run ends with an error only when the
    /// store itself is broken (it refuses a whole batch and a record it stored before) or
    /// Kafka fails fatally.
    pub async fn run(&self) -> Result<(), ProjectorError> {
        if self
            .inner
            .state
            .compare_exchange(
                0,
                ProjectorState::Running as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return Err(ProjectorError::NotRunnable {
                topic: self.inner.topic.clone(),
                state: self.state(),
            });
        }
        let result = self.run_loop().await;
        self.set_state(if result.is_ok() {
            ProjectorState::Stopped
        } else {
            ProjectorState::Failed
        });
        if let Err(e) = &result {
            // With its causes: `ProjectorError`s keep them in `source()`.
            self.note_error(store::error_chain(e));
        }
        result
    }

    async fn run_loop(&self) -> Result<(), ProjectorError> {
        let inner = &self.inner;
        inner
            .consumer
            .subscribe(&[&inner.topic])
            .map_err(|e| self.kafka_error(e))?;
        let mut stop = inner.stop.subscribe();
        loop {
            let Some(mut batch) = self.read_batch(&mut stop).await? else {
                return Ok(());
            };
            self.store(&mut batch, &mut stop).await?;
            self.dead_letter(&batch, &mut stop).await?;
            self.commit(&batch).await;
            if *stop.borrow() {
                return Ok(());
            }
        }
    }

    /// Waits for a first message (or stop), then gathers more for up to `linger`.
    async fn read_batch(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<Batch>, ProjectorError> {
        let inner = &self.inner;
        let mut batch = Batch::default();
        let first = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return Ok(None),
            m = inner.consumer.recv() => m,
        };
        self.take(first, &mut batch)?;
        let deadline = tokio::time::Instant::now() + inner.linger;
        if batch.next_offsets.is_empty() {
            // The first read was an error: pause briefly instead of spinning on it.
            tokio::select! {
                _ = tokio::time::sleep(READ_ERROR_PAUSE) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
            return Ok(Some(batch));
        }
        while self.batch_len(&batch) < inner.max_batch {
            match tokio::time::timeout_at(deadline, inner.consumer.recv()).await {
                Ok(m) => self.take(m, &mut batch)?,
                Err(_) => break,
            }
        }
        Ok(Some(batch))
    }

    fn batch_len(&self, batch: &Batch) -> usize {
        batch.events.len() + batch.in_batch_duplicates as usize
    }

    /// Adds one message to the batch; a message that is not an audit record is counted and
    /// skipped (its offset still advances).
    fn take(
        &self,
        message: Result<BorrowedMessage<'_>, KafkaError>,
        batch: &mut Batch,
    ) -> Result<(), ProjectorError> {
        let c = &self.inner.counters;
        let message = match message {
            Ok(m) => m,
            // Broker hiccups surface here; librdkafka reconnects by itself.
            Err(e) if !is_fatal(&e) => {
                self.note_error(format!("kafka consumer: {e}"));
                return Ok(());
            }
            Err(e) => return Err(self.kafka_error(e)),
        };
        c.consumed.fetch_add(1, Ordering::Relaxed);
        batch
            .next_offsets
            .insert(message.partition(), message.offset() + 1);
        match cloudevents::decode(message.payload(), message.headers()) {
            Ok(event) => {
                if batch.ids.insert(event.id()) {
                    batch.origins.push((message.partition(), message.offset()));
                    batch.events.push(event);
                } else {
                    batch.in_batch_duplicates += 1;
                }
            }
            Err(e) => {
                c.decode_errors.fetch_add(1, Ordering::Relaxed);
                let reason = format!("not an audit record: {e}");
                self.note_error(format!(
                    "dead-lettering message at partition {} offset {}: {reason}",
                    message.partition(),
                    message.offset()
                ));
                batch.poison.push(Poison::undecodable(&message, reason));
            }
        }
        Ok(())
    }

    /// Commits the batch's offsets (synchronously, off the async workers). A failed commit
    /// is counted: the records will be redelivered and skipped by the store.
    async fn commit(&self, batch: &Batch) {
        if batch.next_offsets.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, next) in &batch.next_offsets {
            if tpl
                .add_partition_offset(&self.inner.topic, *partition, Offset::Offset(*next))
                .is_err()
            {
                continue;
            }
        }
        let consumer = Arc::clone(&self.inner.consumer);
        let result =
            tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(text) = failure {
            self.inner
                .counters
                .offset_commit_failures
                .fetch_add(1, Ordering::Relaxed);
            self.note_error(format!(
                "offset commit failed (records will be redelivered and deduplicated): {text}"
            ));
        }
    }

    fn kafka_error(&self, e: KafkaError) -> ProjectorError {
        ProjectorError::Kafka {
            topic: self.inner.topic.clone(),
            bootstrap: self.inner.bootstrap.clone(),
            source: Box::new(e),
        }
    }
}

/// Errors from `recv` that librdkafka will not recover from by itself.
fn is_fatal(e: &KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::Fatal
                | C::GroupAuthorizationFailed
                | C::TopicAuthorizationFailed
                | C::InvalidGroupId
        )
    )
}

fn read_lag(inner: &Inner, timeout: Duration) -> Result<Lag, LagError> {
    let err = |e: KafkaError| LagError {
        topic: inner.topic.clone(),
        bootstrap: inner.bootstrap.clone(),
        source: Box::new(e),
    };
    let started = Instant::now();
    let assignment = inner.consumer.assignment().map_err(err)?;
    let committed = inner
        .consumer
        .committed_offsets(assignment.clone(), timeout)
        .map_err(err)?;
    let mut partitions = Vec::new();
    for elem in assignment.elements_for_topic(&inner.topic) {
        let remaining = timeout.saturating_sub(started.elapsed());
        let (low, high) = inner
            .consumer
            .fetch_watermarks(&inner.topic, elem.partition(), remaining)
            .map_err(err)?;
        let committed_offset = committed
            .find_partition(&inner.topic, elem.partition())
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let from = committed_offset.unwrap_or(low);
        partitions.push(PartitionLag {
            partition: elem.partition(),
            high_watermark: high,
            committed: committed_offset,
            lag: (high - from).max(0),
        });
    }
    Ok(Lag { partitions })
}
