//! Plain snapshot structs for the pipeline's self-metrics: copy them out, never lock.

/// How the producer is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthState {
    /// The last thing the brokers did was acknowledge a record (or nothing happened yet).
    Healthy,
    /// librdkafka reported broker errors since the last acknowledgement: records queue
    /// and will time out after `message.timeout.ms` unless the brokers come back.
    Degraded,
    /// `shutdown` was called.
    ShutDown,
}

/// The producer's health, from [`KafkaForwarder::health`](crate::KafkaForwarder::health).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerHealth {
    /// The overall state.
    pub state: HealthState,
    /// Broker errors reported since the last acknowledged record.
    pub consecutive_broker_errors: u64,
    /// librdkafka's last error report (connection refused, all brokers down, …).
    pub last_error: Option<String>,
    /// Records handed to librdkafka and not yet settled.
    pub in_flight: u64,
}

/// Cumulative producer counters, from [`KafkaForwarder::counters`](crate::KafkaForwarder::counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProducerCounters {
    /// Records handed to librdkafka.
    pub records_enqueued: u64,
    /// Records the brokers acknowledged (`acks=all`).
    pub records_acked: u64,
    /// Records that failed (timed out, refused, too large); their batch failed.
    pub records_failed: u64,
    /// Batches fully acknowledged.
    pub batches_delivered: u64,
    /// Batches with at least one failed record (handed back to the pipeline).
    pub batches_failed: u64,
    /// Times a send waited for librdkafka's queue to drain.
    pub queue_full_waits: u64,
    /// Errors librdkafka reported about brokers (connection refused, all brokers down).
    pub broker_errors: u64,
    /// Times the producer was replaced because its idempotent identity became unusable
    /// (fenced, fatal error); the failed batch was handed back for retry.
    pub producer_resets: u64,
}

/// Cumulative projector counters, from [`Projector::counters`](crate::Projector::counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProjectorCounters {
    /// Messages read from the topic.
    pub consumed: u64,
    /// Records newly written to the store.
    pub projected: u64,
    /// Records the store already had (a redelivery or a producer retry).
    pub duplicates: u64,
    /// Messages that were not audit records; counted and dead-lettered.
    pub decode_errors: u64,
    /// Records the store refused permanently (its batch neighbours were stored); counted and
    /// dead-lettered.
    pub refused: u64,
    /// Messages produced to the dead-letter topic (`decode_errors + refused` once delivered).
    pub dead_lettered: u64,
    /// Store transactions committed.
    pub store_commits: u64,
    /// Store transactions that failed (the batch is retried, offsets stay put).
    pub store_failures: u64,
    /// Offset commits that failed after a store commit (the batch will be redelivered and
    /// deduplicated).
    pub offset_commit_failures: u64,
}

/// One partition's lag, from [`Projector::lag`](crate::Projector::lag).
///
/// Offsets are the broker's: on Apache Kafka they count records; on tansu they count record
/// batches. Treat lag as "how far behind", not as a record count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The partition's high watermark (next offset to be written).
    pub high_watermark: i64,
    /// The group's committed offset (`None`: nothing committed yet, lag counts from the
    /// low watermark).
    pub committed: Option<i64>,
    /// `high_watermark - committed` (or `- low watermark`).
    pub lag: i64,
}

/// The projector's lag over the partitions it is assigned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Per assigned partition.
    pub partitions: Vec<PartitionLag>,
}

impl Lag {
    /// The sum over partitions.
    ///
    /// ```
    /// use authtel_kafka::{Lag, PartitionLag};
    /// let lag = Lag { partitions: vec![PartitionLag { partition: 0, high_watermark: 10, committed: Some(7), lag: 3 }] };
    /// assert_eq!(lag.total(), 3);
    /// ```
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}
