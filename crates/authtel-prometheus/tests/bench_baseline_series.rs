//! The Prometheus bench compares like with like: each authtel case leaves the same series,
//! with the same values, as its `metrics` baseline (benches/common/mod.rs). Compared on the
//! exposition's sample lines (HELP and TYPE lines come from describing, done once).

#[path = "../benches/common/mod.rs"]
mod common;

use std::sync::Arc;

use authtel_core::catalogue::Event;
use authtel_core::registry::Handler;
use authtel_core::telemetry::Measurements;
use authtel_prometheus::PrometheusHandler;

const TIMES: usize = 3;

/// The sample lines, sorted (series order in the exposition is not part of the contract).
fn samples(exposition: &str) -> Vec<String> {
    let mut lines: Vec<String> = exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn handler_samples(event: &'static Event, measurements: &Measurements) -> Vec<String> {
    let recorder = common::recorder();
    let handle = recorder.handle();
    let handler = PrometheusHandler::with_recorder(Arc::new(recorder));
    let meta = common::metadata();
    let record = common::record(event, measurements, &meta);
    for _ in 0..TIMES {
        handler.handle(&record);
    }
    samples(&handle.render())
}

fn macro_samples(f: fn()) -> Vec<String> {
    let recorder = common::recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..TIMES {
            f();
        }
    });
    samples(&handle.render())
}

#[test]
fn library_span_stop_leaves_the_same_series_as_the_macros() {
    let ours = handler_samples(common::login_stop(), &common::stop_measurements());
    assert_eq!(ours, macro_samples(common::macros_login_stop));
    assert!(
        ours.contains(
            &r#"authtel_events_total{event="auth.login.stop",outcome="success"} 3"#.to_owned()
        ),
        "{ours:#?}"
    );
    assert!(
        ours.iter()
            .any(|l| l.starts_with("authtel_span_duration_seconds_count") && l.ends_with(" 3")),
        "{ours:#?}"
    );
    assert_eq!(
        ours,
        macro_samples(common::macros_login_stop_runtime_labels),
        "the runtime-labels variant writes the same series"
    );
}

#[test]
fn application_span_stop_leaves_the_same_series_as_the_macros() {
    let ours = handler_samples(common::REPORTS_EXPORT.stop(), &common::stop_measurements());
    assert_eq!(ours, macro_samples(common::macros_app_span_stop));
    assert!(
        ours.iter().any(|l| l.contains(r#"span="reports.export""#)),
        "{ours:#?}"
    );
}

#[test]
fn declared_signal_leaves_the_same_series_as_the_counter_macro() {
    let ours = handler_samples(common::refund_issued(), &Measurements::new());
    assert_eq!(ours, macro_samples(common::macro_refund_signal));
    assert_eq!(
        ours,
        [r#"authtel_events_total{event="billing.refund.issued",outcome="success"} 3"#]
    );
}
