//! Metric names, label values and descriptions: the one place the exposition is defined.
//!
//! Every label value comes from a closed set — catalogue event names, outcomes, exception
//! kinds, authorization operations — so the number of series does not grow with users,
//! addresses or sessions. `docs/ops/metrics.md` documents the same table for operators.

use metrics::Unit;

/// Events handled, by event name and outcome (span stops, span exceptions, signals).
///
/// ```
/// assert_eq!(authtel_prometheus::names::EVENTS_TOTAL, "authtel_events_total");
/// ```
pub const EVENTS_TOTAL: &str = "authtel_events_total";
/// Span durations in seconds, by span name and outcome (a histogram).
pub const SPAN_DURATION_SECONDS: &str = "authtel_span_duration_seconds";
/// Span exceptions (panics, cancellations, reported errors), by span name and kind.
pub const SPAN_EXCEPTIONS_TOTAL: &str = "authtel_span_exceptions_total";
/// Security signals (lockouts, rate limits, invalid credentials, denials …), by signal.
pub const SECURITY_SIGNALS_TOTAL: &str = "authtel_security_signals_total";
/// Authorization decisions, by operation and result.
pub const AUTHORIZATION_DECISIONS_TOTAL: &str = "authtel_authorization_decisions_total";
/// Panics caught in attached authtel handlers.
pub const HANDLER_FAILURES_TOTAL: &str = "authtel_handler_failures_total";
/// Handlers detached by their failure policy.
pub const HANDLERS_DETACHED_TOTAL: &str = "authtel_handlers_detached_total";
/// Batches a forwarder gave up on after its last attempt (dead-lettered).
pub const PIPELINE_FORWARD_ERRORS_TOTAL: &str = "authtel_pipeline_forward_errors_total";
/// Records dropped by a configured drop policy.
pub const PIPELINE_DROPPED_RECORDS_TOTAL: &str = "authtel_pipeline_dropped_records_total";
/// Pipeline records per forwarder and state (feature `pipeline`).
pub const PIPELINE_RECORDS_TOTAL: &str = "authtel_pipeline_records_total";
/// Records waiting in a forwarder's memory queue (feature `pipeline`).
pub const PIPELINE_QUEUE_DEPTH: &str = "authtel_pipeline_queue_depth";
/// Bytes in a forwarder's spill directory (feature `pipeline`).
pub const PIPELINE_SPILL_BYTES: &str = "authtel_pipeline_spill_bytes";
/// 1 while a forwarder's circuit breaker is open or half-open, else 0 (feature `pipeline`).
pub const PIPELINE_BREAKER_OPEN: &str = "authtel_pipeline_breaker_open";
/// Forwarder calls that panicked or timed out, and breaker openings (feature `pipeline`).
pub const PIPELINE_FORWARDER_FAULTS_TOTAL: &str = "authtel_pipeline_forwarder_faults_total";

/// Values core's secret policy redacted, counted once per record (`policy::redaction_count`).
pub const POLICY_REDACTIONS_TOTAL: &str = "authtel_policy_redactions_total";
/// Values core's secret policy refused (emails or credentials as identifiers, invalid keys,
/// fields over a limit), counted once per record (`policy::refusal_count`).
pub const POLICY_REFUSALS_TOTAL: &str = "authtel_policy_refusals_total";

/// The `state` label values of [`PIPELINE_RECORDS_TOTAL`].
pub const RECORD_STATE_LABELS: [&str; 8] = [
    "published",
    "delivered",
    "retried",
    "dropped",
    "sampled_out",
    "spilled",
    "replayed",
    "dead_lettered",
];
/// The `kind` label values of [`PIPELINE_FORWARDER_FAULTS_TOTAL`].
pub const FORWARDER_FAULT_LABELS: [&str; 3] = ["panic", "timeout", "breaker_opened"];

/// The `outcome` label values: the four outcomes, then `none` for signals without one.
pub const OUTCOME_LABELS: [&str; 5] = ["success", "failure", "denied", "error", "none"];
/// The `kind` label values of [`SPAN_EXCEPTIONS_TOTAL`].
pub const EXCEPTION_KIND_LABELS: [&str; 3] = ["panic", "cancelled", "error"];
/// The `operation` label values of [`AUTHORIZATION_DECISIONS_TOTAL`]; anything else (or
/// nothing) is counted as `custom`.
pub const OPERATION_LABELS: [&str; 5] = ["call", "publish", "subscribe", "announce", "custom"];
/// The `event`/`span` label for application events beyond [`MAX_CUSTOM_EVENTS`].
pub const OVERFLOW_LABEL: &str = "other";
/// How many distinct application-declared events get their own label value; later ones
/// share [`OVERFLOW_LABEL`], so a runaway `Event::declare` cannot explode cardinality.
pub const MAX_CUSTOM_EVENTS: usize = 64;

/// Histogram bounds for auth latencies, in seconds: from a 5 ms cache hit to a 10 s
/// argon2 login under contention, dense around the hundreds of milliseconds hashing takes.
pub const DEFAULT_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 3.0, 5.0, 10.0,
];

/// What kind of metric a name is, for describing it to the recorder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric of the table: name, kind, unit, HELP text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Description {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) unit: Option<Unit>,
    pub(crate) help: &'static str,
}

/// Every metric the handler emits.
pub(crate) const HANDLER_METRICS: &[Description] = &[
    Description {
        name: EVENTS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "authtel events handled (span stops, span exceptions, signals) by event and outcome",
    },
    Description {
        name: SPAN_DURATION_SECONDS,
        kind: Kind::Histogram,
        unit: Some(Unit::Seconds),
        help: "duration of authtel spans in seconds by span and outcome",
    },
    Description {
        name: SPAN_EXCEPTIONS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "authtel spans that ended by a panic, a cancellation or a reported error, by span and kind",
    },
    Description {
        name: SECURITY_SIGNALS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "security signals (lockouts, rate limits, invalid credentials, denials) by signal",
    },
    Description {
        name: AUTHORIZATION_DECISIONS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "authorization decisions by operation and result",
    },
    Description {
        name: HANDLER_FAILURES_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "panics caught in attached authtel handlers",
    },
    Description {
        name: HANDLERS_DETACHED_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "authtel handlers detached by their failure policy",
    },
    Description {
        name: PIPELINE_FORWARD_ERRORS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "audit batches a forwarder gave up on after its last attempt (dead-lettered)",
    },
    Description {
        name: PIPELINE_DROPPED_RECORDS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "audit records dropped by a configured drop policy",
    },
];

/// Core's secret-policy counters, published by every sink.
pub(crate) const POLICY_METRICS: &[Description] = &[
    Description {
        name: POLICY_REDACTIONS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "values the secret policy redacted (credentials in text, secret-named fields), once per record",
    },
    Description {
        name: POLICY_REFUSALS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "values the secret policy refused (emails or credentials as identifiers, invalid keys, fields over a limit), once per record",
    },
];

/// The pipeline's per-forwarder self-metrics, published by the `pipeline` feature.
pub(crate) const PIPELINE_METRICS: &[Description] = &[
    Description {
        name: PIPELINE_RECORDS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "audit records per forwarder by state (published, delivered, retried, dropped, sampled_out, spilled, replayed, dead_lettered)",
    },
    Description {
        name: PIPELINE_QUEUE_DEPTH,
        kind: Kind::Gauge,
        unit: None,
        help: "audit records waiting in a forwarder's memory queue",
    },
    Description {
        name: PIPELINE_SPILL_BYTES,
        kind: Kind::Gauge,
        unit: Some(Unit::Bytes),
        help: "bytes in a forwarder's spill directory",
    },
    Description {
        name: PIPELINE_BREAKER_OPEN,
        kind: Kind::Gauge,
        unit: None,
        help: "1 while a forwarder's circuit breaker is open or half-open, else 0",
    },
    Description {
        name: PIPELINE_FORWARDER_FAULTS_TOTAL,
        kind: Kind::Counter,
        unit: None,
        help: "forwarder calls that panicked or timed out, and circuit breaker openings, per forwarder",
    },
];

/// Every metric name this crate exposes (histograms by their base name).
///
/// ```
/// assert!(authtel_prometheus::names::metric_names().any(|n| n == "authtel_span_duration_seconds"));
/// ```
pub fn metric_names() -> impl Iterator<Item = &'static str> {
    all_descriptions().map(|d| d.name)
}

/// The description of `name`, if it is one of ours.
pub(crate) fn describe(name: &str) -> Option<&'static Description> {
    all_descriptions().find(|d| d.name == name)
}

fn all_descriptions() -> impl Iterator<Item = &'static Description> {
    HANDLER_METRICS
        .iter()
        .chain(POLICY_METRICS)
        .chain(PIPELINE_METRICS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for d in all_descriptions() {
            assert!(d.name.starts_with("authtel_"), "{}", d.name);
            assert!(
                d.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{} is not snake_case",
                d.name
            );
            match d.kind {
                Kind::Counter => assert!(d.name.ends_with("_total"), "{}", d.name),
                Kind::Histogram => assert!(d.name.ends_with("_seconds"), "{}", d.name),
                Kind::Gauge => assert!(!d.name.ends_with("_total"), "{}", d.name),
            }
        }
    }

    #[test]
    fn default_buckets_are_strictly_increasing_and_cover_slow_logins() {
        assert!(DEFAULT_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(DEFAULT_BUCKETS.contains(&0.5));
        assert!(*DEFAULT_BUCKETS.last().unwrap() >= 10.0);
    }
}
