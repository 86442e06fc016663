//! What the Prometheus bench compares, shared with `tests/bench_baseline_series.rs`, which
//! checks that each authtel case and its baseline leave the same series with the same
//! values in the exposition.
//!
//! The baselines are the `metrics` macros as their docs write them: literal metric names
//! and literal label pairs, so the macro builds its `Key` in a `static`. The
//! `runtime_labels` variant (label values passed through `black_box`, so the macro builds
//! the key on every call) is the heavier style the bench compared against first.

#![allow(dead_code, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use authtel_core::catalogue::{self, Event, SpanDef};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use authtel_prometheus::names;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};

/// An application span, declared as applications declare theirs.
pub static REPORTS_EXPORT: SpanDef = SpanDef::new(
    "reports.export",
    "reports.export.start",
    "reports.export.stop",
    "reports.export.exception",
);

/// An application signal declared at run time (names read from configuration).
pub fn refund_issued() -> &'static Event {
    Event::declare("billing.refund.issued").expect("a valid application name")
}

/// The recorder both sides use: authtel's default buckets.
pub fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&names::DEFAULT_BUCKETS)
        .expect("valid buckets")
        .build_recorder()
}

/// The metadata every record carries.
pub fn metadata() -> Metadata<'static> {
    Metadata::new().user_id("u_1")
}

/// A span stop of 180 ms (or a signal when `event` is one), outcome success.
pub fn record<'a>(
    event: &'static Event,
    measurements: &'a Measurements,
    meta: &'a Metadata<'a>,
) -> EventRecord<'a> {
    let mut record = EventRecord::signal(event, SpanContext::child_of(None), measurements, meta);
    record.outcome = Some(Outcome::Success);
    record
}

/// The stop's measurements.
pub fn stop_measurements() -> Measurements {
    Measurements::new().duration(Duration::from_millis(180))
}

/// Baseline for a library span stop (`auth.login.stop`).
#[inline(always)]
pub fn macros_login_stop() {
    metrics::counter!("authtel_events_total", "event" => "auth.login.stop", "outcome" => "success")
        .increment(1);
    metrics::histogram!("authtel_span_duration_seconds", "span" => "auth.login", "outcome" => "success")
        .record(black_box(0.18));
}

/// Baseline for the application span's stop (`reports.export.stop`).
#[inline(always)]
pub fn macros_app_span_stop() {
    metrics::counter!("authtel_events_total", "event" => "reports.export.stop", "outcome" => "success")
        .increment(1);
    metrics::histogram!("authtel_span_duration_seconds", "span" => "reports.export", "outcome" => "success")
        .record(black_box(0.18));
}

/// Baseline for the declared signal: one counter.
#[inline(always)]
pub fn macro_refund_signal() {
    metrics::counter!("authtel_events_total", "event" => "billing.refund.issued", "outcome" => "success")
        .increment(1);
}

/// The heavier variant: label values built at run time, so each call builds its key.
#[inline(always)]
pub fn macros_login_stop_runtime_labels() {
    metrics::counter!(
        names::EVENTS_TOTAL,
        "event" => black_box("auth.login.stop"),
        "outcome" => "success"
    )
    .increment(1);
    metrics::histogram!(
        names::SPAN_DURATION_SECONDS,
        "span" => black_box("auth.login"),
        "outcome" => "success"
    )
    .record(black_box(0.18));
}

/// The library span the first pair uses.
pub fn login_stop() -> &'static Event {
    catalogue::AUTH_LOGIN.stop()
}
