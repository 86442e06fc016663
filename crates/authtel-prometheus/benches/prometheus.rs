//! The handler's cost per event against the `metrics` macros writing the same series, both
//! on a Prometheus recorder with authtel's buckets. The macros are written as their docs
//! write them (literal names and labels: the key is a `static`) and look the series up in
//! the recorder on every call; the handler resolved its handles once.
//! `tests/bench_baseline_series.rs` checks that each case and its baseline leave the same
//! series with the same values. Cases and baselines live in `common/mod.rs`.
//!
//! - `authtel_handler@metrics_macros`: a library span stop (`auth.login.stop`, 180 ms):
//!   one counter increment and one histogram sample, against `counter!` + `histogram!`.
//! - `authtel_handler_app_span@metrics_macros_app_span`: the same for an application span
//!   (`SpanDef::new` in a `static`).
//! - `authtel_handler_declared_signal@metrics_counter_macro`: an application signal from
//!   `Event::declare`: one counter increment, against one `counter!`.
//! - `baseline:metrics_macros_runtime_labels`: the library span stop's macros with label
//!   values built at run time (the style this bench first compared against); an extra
//!   row, paired with nothing.
//!
//! Target: ≤ 0.3x for every case.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::registry::Handler;
use authtel_prometheus::PrometheusHandler;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

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

/// Benches `f` under a fresh local recorder, upkeep between chunks.
fn macros(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, f: fn()) {
    let recorder = common::recorder();
    let handle = recorder.handle();
    metrics::with_local_recorder(&recorder, || {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| timed_in_chunks(iters, || handle.run_upkeep(), f))
        });
    });
}

fn span_stop(c: &mut Criterion) {
    let mut group = c.benchmark_group("prometheus_span_stop");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let handled = common::recorder();
    let handled_handle = handled.handle();
    let handler = PrometheusHandler::with_recorder(Arc::new(handled));
    let meta = common::metadata();
    let stop = common::stop_measurements();
    let signal = authtel_core::telemetry::Measurements::new();
    let cases = [
        (
            "authtel_handler@metrics_macros",
            common::record(common::login_stop(), &stop, &meta),
        ),
        (
            "authtel_handler_app_span@metrics_macros_app_span",
            common::record(common::REPORTS_EXPORT.stop(), &stop, &meta),
        ),
        (
            "authtel_handler_declared_signal@metrics_counter_macro",
            common::record(common::refund_issued(), &signal, &meta),
        ),
    ];
    macros(
        &mut group,
        "baseline:metrics_macros",
        common::macros_login_stop,
    );
    for (id, record) in &cases {
        group.bench_function(*id, |b| {
            b.iter_custom(|iters| {
                timed_in_chunks(
                    iters,
                    || handled_handle.run_upkeep(),
                    || handler.handle(black_box(record)),
                )
            })
        });
    }
    macros(
        &mut group,
        "baseline:metrics_macros_app_span",
        common::macros_app_span_stop,
    );
    macros(
        &mut group,
        "baseline:metrics_counter_macro",
        common::macro_refund_signal,
    );
    macros(
        &mut group,
        "baseline:metrics_macros_runtime_labels",
        common::macros_login_stop_runtime_labels,
    );
    group.finish();
}

criterion_group!(benches, span_stop);
criterion_main!(benches);
