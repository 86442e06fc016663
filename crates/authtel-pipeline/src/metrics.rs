//! Self-metrics: plain counters per forwarder, read as a [`ForwarderMetrics`] snapshot.
//!
//! Dependency-free on purpose: the Prometheus sink (or anything else) reads
//! [`Pipeline::metrics`](crate::Pipeline::metrics) and exports what it wants.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the delivery latency histogram buckets.
pub const LATENCY_BUCKETS: [Duration; 8] = [
    Duration::from_micros(100),
    Duration::from_millis(1),
    Duration::from_millis(5),
    Duration::from_millis(25),
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
    Duration::from_secs(10),
];

/// Delivery latency of successful forwarder calls (one per batch).
///
/// ```
/// use authtel_pipeline::Latency;
/// let l = Latency::default();
/// assert_eq!(l.count, 0);
/// assert_eq!(l.buckets.len(), authtel_pipeline::LATENCY_BUCKETS.len());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Latency {
    /// Successful calls.
    pub count: u64,
    /// Their total duration.
    pub sum: Duration,
    /// The slowest.
    pub max: Duration,
    /// Cumulative counts per [`LATENCY_BUCKETS`] bound (Prometheus `le` semantics); calls
    /// slower than the last bound are only in `count`.
    pub buckets: Vec<u64>,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            count: 0,
            sum: Duration::ZERO,
            max: Duration::ZERO,
            buckets: vec![0; LATENCY_BUCKETS.len()],
        }
    }
}

/// The circuit breaker's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    #[default]
    Closed,
    /// Calls are skipped; records spill or wait.
    Open,
    /// One probe call is deciding.
    HalfOpen,
}

/// One forwarder's counters. Counts are records, not batches, unless named otherwise.
///
/// ```
/// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}};
/// # #[derive(Debug)] struct Noop;
/// # impl Forwarder for Noop { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
/// use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
/// use authtel_core::outcome::Outcome;
/// let p = Pipeline::builder().forwarder(ForwarderConfig::new("noop", Noop).dispatch(Dispatch::Sync)).build().unwrap();
/// p.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()).unwrap();
/// let m = &p.metrics()[0];
/// assert_eq!((m.forwarder.as_str(), m.published, m.delivered), ("noop", 1, 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwarderMetrics {
    /// The forwarder id.
    pub forwarder: String,
    /// Whether delivery is asynchronous (the resolved dispatch mode).
    pub asynchronous: bool,
    /// Records accepted by `publish` (after sampling and rate limiting).
    pub published: u64,
    /// Records the destination acknowledged (replayed ones included).
    pub delivered: u64,
    /// Records sent again after a transient failure (per retry).
    pub retried: u64,
    /// Records dropped by backpressure, rate limit or a full spill directory.
    pub dropped: u64,
    /// Telemetry records left out by sampling (intentional, not a loss).
    pub sampled_out: u64,
    /// Records written to the spill directory.
    pub spilled: u64,
    /// Records read back from the spill directory and delivered.
    pub replayed: u64,
    /// Records written to the dead-letter file.
    pub dead_lettered: u64,
    /// Spill lines skipped as garbage, truncated or oversized.
    pub corrupt_spill_lines: u64,
    /// Forwarder calls that panicked.
    pub panics: u64,
    /// Forwarder calls that exceeded `call_timeout`.
    pub timeouts: u64,
    /// Times the breaker opened.
    pub breaker_opens: u64,
    /// The breaker now.
    pub breaker: BreakerState,
    /// Records waiting in memory.
    pub queue_depth: u64,
    /// Bytes in the spill directory.
    pub spill_bytes: u64,
    /// Delivery latency.
    pub latency: Latency,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) sampled_out: AtomicU64,
    pub(crate) spilled: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) corrupt_spill_lines: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) breaker_opens: AtomicU64,
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    latency_max_ns: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn record_latency(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_sum_ns.fetch_add(ns, Relaxed);
        self.latency_max_ns.fetch_max(ns, Relaxed);
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| d <= *b) {
            self.latency_buckets[i].fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, forwarder: &str) -> ForwarderMetrics {
        let mut cumulative = 0;
        let buckets = self
            .latency_buckets
            .iter()
            .map(|b| {
                cumulative += b.load(Relaxed);
                cumulative
            })
            .collect();
        ForwarderMetrics {
            forwarder: forwarder.to_owned(),
            published: self.published.load(Relaxed),
            delivered: self.delivered.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            sampled_out: self.sampled_out.load(Relaxed),
            spilled: self.spilled.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            corrupt_spill_lines: self.corrupt_spill_lines.load(Relaxed),
            panics: self.panics.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            breaker_opens: self.breaker_opens.load(Relaxed),
            latency: Latency {
                count: self.latency_count.load(Relaxed),
                sum: Duration::from_nanos(self.latency_sum_ns.load(Relaxed)),
                max: Duration::from_nanos(self.latency_max_ns.load(Relaxed)),
                buckets,
            },
            ..ForwarderMetrics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_cumulative() {
        let c = Counters::default();
        c.record_latency(Duration::from_micros(50));
        c.record_latency(Duration::from_millis(3));
        c.record_latency(Duration::from_secs(60));
        let l = c.snapshot("x").latency;
        assert_eq!(l.count, 3);
        assert_eq!(l.max, Duration::from_secs(60));
        assert_eq!(&l.buckets[..3], &[1, 1, 2]);
        assert_eq!(*l.buckets.last().unwrap(), 2);
    }
}
