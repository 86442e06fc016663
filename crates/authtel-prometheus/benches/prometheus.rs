//! The handler's cost per span stop (one counter increment and one histogram sample)
//! against the same two `metrics` macros with the same labels, both on a Prometheus
//! recorder. The macros look the series up on every call; the handler resolved its
//! handles once.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use authtel_prometheus::{PrometheusHandler, names};
use criterion::{Criterion, criterion_group, criterion_main};
use metrics_exporter_prometheus::PrometheusBuilder;

/// Histogram samples are buffered until upkeep folds them; doing that every chunk (outside
/// the timing) keeps memory flat and both cases measuring the steady state.
const CHUNK: u64 = 50_000;

fn timed_in_chunks(iters: u64, upkeep: impl Fn(), mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        total += start.elapsed();
        upkeep();
        left -= n;
    }
    total
}

fn recorder() -> metrics_exporter_prometheus::PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&names::DEFAULT_BUCKETS)
        .expect("valid buckets")
        .build_recorder()
}

fn span_stop(c: &mut Criterion) {
    let mut group = c.benchmark_group("prometheus_span_stop");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let handled = recorder();
    let handled_handle = handled.handle();
    let handler = PrometheusHandler::with_recorder(Arc::new(handled));
    let meta = Metadata::new().user_id("u_1");
    let measurements = Measurements::new().duration(Duration::from_millis(180));
    let mut record = EventRecord::signal(
        catalogue::AUTH_LOGIN.stop(),
        SpanContext::child_of(None),
        &measurements,
        &meta,
    );
    record.outcome = Some(Outcome::Success);
    group.bench_function("authtel_handler", |b| {
        b.iter_custom(|iters| {
            timed_in_chunks(
                iters,
                || handled_handle.run_upkeep(),
                || handler.handle(black_box(&record)),
            )
        })
    });

    let baseline = recorder();
    let baseline_handle = baseline.handle();
    metrics::with_local_recorder(&baseline, || {
        group.bench_function("baseline:counter_and_histogram_macros", |b| {
            b.iter_custom(|iters| {
                timed_in_chunks(
                    iters,
                    || baseline_handle.run_upkeep(),
                    || {
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
                    },
                )
            })
        });
    });
    group.finish();
}

criterion_group!(benches, span_stop);
criterion_main!(benches);
