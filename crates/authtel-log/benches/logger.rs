//! The default logger against `tracing` itself, both formatted as JSON by
//! `tracing_subscriber::fmt` (fields flattened) into `io::sink()`. Each authtel case and
//! its baseline write the same line (timestamp and ids aside); `tests/bench_baseline_lines.rs`
//! checks that byte for byte. The cases and baselines live in `common/mod.rs`.
//!
//! - `authtel_default_logger_signal@tracing_fmt_json`: one signal with six metadata fields
//!   (`telemetry::event`) against `tracing::warn!` writing the same ten fields as plain
//!   `&str` values. Target: ≤ 1.0x.
//! - `authtel_default_logger_span@tracing_fmt_json_span_stop`: a login span (start skipped,
//!   stop logged with its duration) against `tracing::info!` writing the stop line. The
//!   authtel case also pays the span (ids, clocks, start dispatch).
//! - `baseline:tracing_fmt_json_display_fields`: the signal's line with ids and the
//!   address passed through `tracing::field::display` (the style this bench first
//!   compared against); an extra row, paired with nothing.

mod common;

use std::hint::black_box;
use std::time::Duration;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::registry::Registry;
use authtel_core::telemetry;
use authtel_log::{Logger, LoggerOptions};
use criterion::{Criterion, criterion_group, criterion_main};

fn logger_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("logger_json");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let dispatch = common::json_subscriber(std::io::sink, true);

    let registry = Registry::new();
    Logger::build(LoggerOptions::new())
        .attach_to(&registry)
        .expect("fresh registry");
    tracing::dispatcher::with_default(&dispatch, || {
        // Baseline and case alternate in one process, so both see the same machine state.
        group.bench_function("baseline:tracing_fmt_json", |b| {
            b.iter(common::tracing_signal)
        });
        {
            let _scope = registry.enter();
            group.bench_function("authtel_default_logger_signal@tracing_fmt_json", |b| {
                b.iter(common::authtel_signal)
            });
            group.bench_function(
                "authtel_default_logger_span@tracing_fmt_json_span_stop",
                |b| {
                    b.iter(|| {
                        let meta = common::login_metadata();
                        black_box(telemetry::span(&AUTH_LOGIN, meta, || {
                            Ok::<_, ()>(black_box(1))
                        }))
                    })
                },
            );
        }
        group.bench_function("baseline:tracing_fmt_json_span_stop", |b| {
            b.iter(|| common::tracing_span_stop(black_box(0.0123)))
        });
        group.bench_function("baseline:tracing_fmt_json_display_fields", |b| {
            b.iter(common::tracing_signal_display_fields)
        });
    });
    group.finish();
}

criterion_group!(benches, logger_json);
criterion_main!(benches);
