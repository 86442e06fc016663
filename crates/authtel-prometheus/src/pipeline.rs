//! The pipeline's per-forwarder self-metrics as Prometheus series (feature `pipeline`).
//!
//! `Pipeline::metrics()` is a snapshot of plain counters; a collector copies it into
//! `metrics` counters (as absolute values) and gauges. The sink runs every registered
//! collector before [`PrometheusSink::render`] and, when it serves scrapes itself, every
//! [`COLLECT_INTERVAL`](crate::sink::COLLECT_INTERVAL) on the listener's thread.

use authtel_pipeline::{BreakerState, ForwarderMetrics, Pipeline};
use metrics::{Counter, Gauge, Label};

use crate::handler::Target;
use crate::names;
use crate::sink::PrometheusSink;

/// The series of one forwarder, resolved once.
struct ForwarderSeries {
    forwarder: String,
    records: [Counter; 8],
    faults: [Counter; 3],
    queue_depth: Gauge,
    spill_bytes: Gauge,
    breaker_open: Gauge,
}

impl ForwarderSeries {
    fn new(target: &Target, forwarder: &str) -> ForwarderSeries {
        let label = || Label::new("forwarder", forwarder.to_owned());
        let records = names::RECORD_STATE_LABELS.map(|state| {
            target.counter(
                names::PIPELINE_RECORDS_TOTAL,
                vec![label(), Label::from_static_parts("state", state)],
            )
        });
        let faults = names::FORWARDER_FAULT_LABELS.map(|kind| {
            target.counter(
                names::PIPELINE_FORWARDER_FAULTS_TOTAL,
                vec![label(), Label::from_static_parts("kind", kind)],
            )
        });
        ForwarderSeries {
            forwarder: forwarder.to_owned(),
            records,
            faults,
            queue_depth: target.gauge(names::PIPELINE_QUEUE_DEPTH, vec![label()]),
            spill_bytes: target.gauge(names::PIPELINE_SPILL_BYTES, vec![label()]),
            breaker_open: target.gauge(names::PIPELINE_BREAKER_OPEN, vec![label()]),
        }
    }

    fn publish(&self, m: &ForwarderMetrics) {
        let records = [
            m.published,
            m.delivered,
            m.retried,
            m.dropped,
            m.sampled_out,
            m.spilled,
            m.replayed,
            m.dead_lettered,
        ];
        for (counter, value) in self.records.iter().zip(records) {
            counter.absolute(value);
        }
        for (counter, value) in self
            .faults
            .iter()
            .zip([m.panics, m.timeouts, m.breaker_opens])
        {
            counter.absolute(value);
        }
        self.queue_depth.set(m.queue_depth as f64);
        self.spill_bytes.set(m.spill_bytes as f64);
        self.breaker_open.set(if m.breaker == BreakerState::Closed {
            0.0
        } else {
            1.0
        });
    }
}

/// Copies one pipeline's snapshot into its series.
pub(crate) fn collector(target: &Target, pipeline: Pipeline) -> impl Fn() + Send + Sync + use<> {
    // Forwarders are fixed when a pipeline is built, so the series are resolved here once.
    let series: Vec<ForwarderSeries> = pipeline
        .metrics()
        .iter()
        .map(|m| ForwarderSeries::new(target, &m.forwarder))
        .collect();
    move || {
        for m in pipeline.metrics() {
            if let Some(s) = series.iter().find(|s| s.forwarder == m.forwarder) {
                s.publish(&m);
            }
        }
    }
}

impl PrometheusSink {
    /// Publishes `pipeline`'s per-forwarder self-metrics: `authtel_pipeline_records_total`
    /// by forwarder and state, queue depth, spill bytes, breaker state and forwarder faults.
    /// They are refreshed before every [`render`](PrometheusSink::render) and, while the
    /// sink serves scrapes, every second.
    ///
    /// ```
    /// # use authtel_core::{audit::AuditEvent, forward::{Forwarder, ForwardFuture}, outcome::Outcome};
    /// # #[derive(Debug)] struct Store;
    /// # impl Forwarder for Store { fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> { Box::pin(async { Ok(()) }) } }
    /// use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
    /// let pipeline = Pipeline::builder()
    ///     .forwarder(ForwarderConfig::new("audit-store", Store).dispatch(Dispatch::Sync))
    ///     .build()?;
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// sink.register_pipeline_metrics(pipeline.clone());
    /// pipeline.publish(AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())?;
    /// assert!(sink.render().contains(
    ///     r#"authtel_pipeline_records_total{forwarder="audit-store",state="delivered"} 1"#));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn register_pipeline_metrics(&self, pipeline: Pipeline) {
        let collect = collector(self.target(), pipeline);
        collect();
        self.add_collector(Box::new(collect));
    }
}
