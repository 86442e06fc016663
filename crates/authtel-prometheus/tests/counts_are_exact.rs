//! Counts are exact under concurrent emitters, application spans get their own labels, and a
//! panicking neighbour handler is counted by `authtel_handler_failures_total`.

mod common;

use std::sync::Arc;

use authtel_core::catalogue::{self, SpanDef};
use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};
use authtel_prometheus::PrometheusSink;
use common::sample;

const THREADS: usize = 4;
const PER_THREAD: usize = 5_000;

#[test]
fn counts_are_exact_under_concurrent_emitters() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    let registry = Arc::new(registry);
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                let _scope = registry.enter();
                for i in 0..PER_THREAD {
                    let ok = (t + i) % 2 == 0;
                    let _ = telemetry::span(&catalogue::API_TOKEN_USE, Metadata::new(), || ok);
                    telemetry::event(
                        &catalogue::SECURITY_RATE_LIMITED,
                        Measurements::new().count(2),
                        Metadata::new(),
                    );
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("emitter thread finishes");
    }
    let text = sink.render();
    let total = (THREADS * PER_THREAD) as f64;
    let value = |s: &str| sample(&text, s).unwrap_or_else(|| panic!("{s} missing:\n{text}"));
    assert_eq!(
        value(r#"authtel_events_total{event="api_token.use.stop",outcome="success"}"#)
            + value(r#"authtel_events_total{event="api_token.use.stop",outcome="failure"}"#),
        total
    );
    assert_eq!(
        value(r#"authtel_span_duration_seconds_count{span="api_token.use",outcome="success"}"#),
        total / 2.0
    );
    // Signals count by their `count` measurement.
    assert_eq!(
        value(r#"authtel_security_signals_total{signal="security.rate_limited"}"#),
        2.0 * total
    );
}

static EXPORT: SpanDef = SpanDef::new(
    "reports.export",
    "reports.export.start",
    "reports.export.stop",
    "reports.export.exception",
);

#[test]
fn application_spans_get_their_own_span_label() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    let _scope = registry.enter();
    let _ = telemetry::span(&EXPORT, Metadata::new(), || Err::<(), _>("disk full"));
    let text = sink.render();
    assert_eq!(
        sample(
            &text,
            r#"authtel_events_total{event="reports.export.stop",outcome="failure"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"authtel_span_duration_seconds_count{span="reports.export",outcome="failure"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[test]
fn a_panicking_neighbour_handler_is_counted() {
    let sink = PrometheusSink::builder().build().unwrap();
    let registry = Registry::new();
    registry
        .attach("prometheus", Selection::All, sink.handler())
        .unwrap();
    registry
        .attach(
            "broken",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|_| panic!("broken handler")),
        )
        .unwrap();
    let _scope = registry.enter();
    for _ in 0..3 {
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Measurements::new(),
            Metadata::new(),
        );
    }
    let text = sink.render();
    assert_eq!(
        sample(&text, "authtel_handler_failures_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"authtel_security_signals_total{signal="security.lockout"}"#
        ),
        Some(3.0),
        "the lockouts themselves still count:\n{text}"
    );
}
