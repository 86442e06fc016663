//! Delivery bookkeeping: librdkafka calls back once per record (on its polling thread);
//! these types turn those callbacks into one result per batch and into counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::ProducerContext;
use tokio::sync::Notify;

use crate::cloudevents;
use crate::error::{DeliveryError, needs_new_producer};
use crate::health::ProducerCounters;

/// One record's failure, classified.
#[derive(Debug)]
pub(crate) struct Failure {
    error: DeliveryError,
    transient: bool,
    producer_broken: bool,
}

impl From<DeliveryError> for Failure {
    fn from(error: DeliveryError) -> Failure {
        Failure {
            transient: error.is_transient(),
            // A timed-out record leaves the idempotent producer's sequence state in doubt:
            // a broker restarted without its producer state answers UNKNOWN_PRODUCER_ID to
            // every retry, and librdkafka keeps retrying that identity until each record
            // times out (seen with tansu after a SIGKILL). A fresh identity ends the loop.
            producer_broken: matches!(&error, DeliveryError::TimedOut { .. })
                || matches!(&error, DeliveryError::Refused { code, .. } if needs_new_producer(*code)),
            error,
        }
    }
}

/// What went wrong in a batch: how many records, whether any may succeed on retry, and the
/// first error (the others are usually the same).
#[derive(Debug)]
pub(crate) struct FailureSummary {
    pub(crate) count: usize,
    pub(crate) any_transient: bool,
    pub(crate) producer_broken: bool,
    pub(crate) first: DeliveryError,
}

/// Counts a batch's outstanding delivery reports; wakes the batch's task at zero.
#[derive(Debug)]
pub(crate) struct BatchTracker {
    pending: AtomicUsize,
    failures: Mutex<Option<FailureSummary>>,
    done: Notify,
}

impl BatchTracker {
    pub(crate) fn new(records: usize) -> BatchTracker {
        BatchTracker {
            pending: AtomicUsize::new(records),
            failures: Mutex::new(None),
            done: Notify::new(),
        }
    }

    /// A record is settled successfully.
    fn settled(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }

    /// A record is settled with `failure`.
    pub(crate) fn record(&self, failure: Failure) {
        {
            let mut summary = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
            match summary.as_mut() {
                Some(s) => {
                    s.count += 1;
                    s.any_transient |= failure.transient;
                    s.producer_broken |= failure.producer_broken;
                }
                None => {
                    *summary = Some(FailureSummary {
                        count: 1,
                        any_transient: failure.transient,
                        producer_broken: failure.producer_broken,
                        first: failure.error,
                    });
                }
            }
        }
        self.settled();
    }

    /// Waits until every record is settled. `notify_one` keeps a permit, so a report that
    /// lands between the check and the await is not missed.
    pub(crate) async fn wait(&self) {
        while self.pending.load(Ordering::Acquire) > 0 {
            self.done.notified().await;
        }
    }

    /// The failures, once [`wait`](Self::wait) returned.
    pub(crate) fn failures(&self) -> Option<FailureSummary> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Producer-wide counters and health, shared by the forwarder and librdkafka's callbacks.
#[derive(Debug, Default)]
pub(crate) struct ProducerStats {
    enqueued: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    batches_ok: AtomicU64,
    batches_failed: AtomicU64,
    queue_full_waits: AtomicU64,
    broker_errors: AtomicU64,
    producer_resets: AtomicU64,
    errors_since_ack: AtomicU64,
    last_error: Mutex<Option<(String, Instant)>>,
    queue_waiters: AtomicUsize,
    space_freed: Notify,
}

impl ProducerStats {
    pub(crate) fn snapshot(&self) -> ProducerCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProducerCounters {
            records_enqueued: get(&self.enqueued),
            records_acked: get(&self.acked),
            records_failed: get(&self.failed),
            batches_delivered: get(&self.batches_ok),
            batches_failed: get(&self.batches_failed),
            queue_full_waits: get(&self.queue_full_waits),
            broker_errors: get(&self.broker_errors),
            producer_resets: get(&self.producer_resets),
        }
    }

    pub(crate) fn count_enqueued(&self) {
        self.enqueued.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_producer_reset(&self) {
        self.producer_resets.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_batch(&self, ok: bool) {
        let counter = if ok {
            &self.batches_ok
        } else {
            &self.batches_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn errors_since_ack(&self) -> u64 {
        self.errors_since_ack.load(Ordering::Relaxed)
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(error, _)| error.clone())
    }

    /// The last broker error and how long ago it was reported: an old one did not cause a
    /// timeout that happened now.
    fn last_error_with_age(&self) -> String {
        match &*self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            Some((error, at)) => format!(
                "last broker error {:.0} s ago: {error}",
                at.elapsed().as_secs_f64()
            ),
            None => "librdkafka reported no broker error".to_owned(),
        }
    }

    /// Waits until a delivery report frees queue space, or `recheck` passes.
    pub(crate) async fn wait_for_queue_space(&self, recheck: Duration) {
        self.queue_full_waits.fetch_add(1, Ordering::Relaxed);
        self.queue_waiters.fetch_add(1, Ordering::AcqRel);
        let _ = tokio::time::timeout(recheck, self.space_freed.notified()).await;
        self.queue_waiters.fetch_sub(1, Ordering::AcqRel);
    }

    /// Turns a librdkafka error for one record into the typed [`DeliveryError`].
    pub(crate) fn classify(
        &self,
        err: &KafkaError,
        event_id: &str,
        size: usize,
        (bootstrap, topic): (&str, &str),
    ) -> DeliveryError {
        let code = err.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Fail);
        match code {
            RDKafkaErrorCode::MessageSizeTooLarge | RDKafkaErrorCode::InvalidMessageSize => {
                DeliveryError::TooLarge {
                    event_id: event_id.to_owned(),
                    size,
                }
            }
            RDKafkaErrorCode::UnknownTopic | RDKafkaErrorCode::UnknownTopicOrPartition => {
                DeliveryError::UnknownTopic {
                    topic: topic.to_owned(),
                    bootstrap: bootstrap.to_owned(),
                }
            }
            RDKafkaErrorCode::MessageTimedOut => DeliveryError::TimedOut {
                bootstrap: bootstrap.to_owned(),
                detail: self.last_error_with_age(),
            },
            code => DeliveryError::Refused {
                event_id: event_id.to_owned(),
                code,
            },
        }
    }

    fn on_delivery(&self, ok: bool) {
        if ok {
            self.acked.fetch_add(1, Ordering::Relaxed);
            if self.errors_since_ack.load(Ordering::Relaxed) != 0 {
                self.errors_since_ack.store(0, Ordering::Relaxed);
            }
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if self.queue_waiters.load(Ordering::Acquire) > 0 {
            self.space_freed.notify_waiters();
        }
    }
}

/// The librdkafka client context: routes delivery reports to batch trackers and broker
/// errors to the health snapshot.
#[derive(Debug)]
pub(crate) struct DeliveryContext {
    stats: Arc<ProducerStats>,
    bootstrap: String,
    topic: String,
}

impl DeliveryContext {
    pub(crate) fn new(stats: Arc<ProducerStats>, bootstrap: String, topic: String) -> Self {
        DeliveryContext {
            stats,
            bootstrap,
            topic,
        }
    }
}

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.stats.broker_errors.fetch_add(1, Ordering::Relaxed);
        self.stats.errors_since_ack.fetch_add(1, Ordering::Relaxed);
        *self
            .stats
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            Some((format!("{error}: {reason}"), Instant::now()));
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<BatchTracker>;

    fn delivery(&self, result: &DeliveryResult<'_>, tracker: Arc<BatchTracker>) {
        match result {
            Ok(_) => {
                self.stats.on_delivery(true);
                tracker.settled();
            }
            Err((err, message)) => {
                self.stats.on_delivery(false);
                let id = message
                    .headers()
                    .and_then(|h| cloudevents::header_str(h, cloudevents::ID))
                    .unwrap_or("(unknown id)");
                let size = message.payload_len();
                let error = self
                    .stats
                    .classify(err, id, size, (&self.bootstrap, &self.topic));
                tracker.record(Failure::from(error));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_settles_when_every_record_reported() {
        let tracker = Arc::new(BatchTracker::new(3));
        let waiter = tokio::spawn({
            let t = Arc::clone(&tracker);
            async move {
                t.wait().await;
                t.failures()
            }
        });
        tracker.settled();
        tracker.record(Failure::from(DeliveryError::TooLarge {
            event_id: "a".into(),
            size: 1,
        }));
        tracker.record(Failure::from(DeliveryError::Refused {
            event_id: "b".into(),
            code: RDKafkaErrorCode::ProducerFenced,
        }));
        let summary = waiter.await.unwrap().expect("two failures");
        assert_eq!(summary.count, 2);
        assert!(summary.any_transient, "the fenced record can be retried");
        assert!(summary.producer_broken);
        assert!(matches!(summary.first, DeliveryError::TooLarge { .. }));
    }

    #[test]
    fn a_timed_out_record_asks_for_a_fresh_producer_identity() {
        let timed_out = Failure::from(DeliveryError::TimedOut {
            bootstrap: "127.0.0.1:9092".into(),
            detail: "librdkafka reported no broker error".into(),
        });
        assert!(timed_out.transient);
        assert!(timed_out.producer_broken);
        let too_large = Failure::from(DeliveryError::TooLarge {
            event_id: "a".into(),
            size: 1,
        });
        assert!(!too_large.producer_broken);
    }

    #[test]
    fn a_timeout_names_the_age_of_the_last_broker_error() {
        let stats = ProducerStats::default();
        let err = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        let fresh = stats.classify(&err, "id", 10, ("127.0.0.1:9092", "t"));
        assert!(
            fresh
                .to_string()
                .contains("librdkafka reported no broker error"),
            "{fresh}"
        );
        *stats.last_error.lock().unwrap() = Some((
            "BrokerTransportFailure: connection refused".into(),
            Instant::now() - Duration::from_secs(42),
        ));
        let stale = stats.classify(&err, "id", 10, ("127.0.0.1:9092", "t"));
        assert!(
            stale
                .to_string()
                .contains("last broker error 42 s ago: BrokerTransportFailure"),
            "{stale}"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_clean_batch_has_no_failures() {
        let tracker = BatchTracker::new(2);
        tracker.settled();
        tracker.settled();
        tracker.wait().await;
        assert!(tracker.failures().is_none());
    }
}
