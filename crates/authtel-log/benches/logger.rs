//! The default logger against `tracing` itself: one span stop with six metadata fields,
//! formatted as JSON by `tracing_subscriber::fmt` into `io::sink()`.
//!
//! - `authtel_default_logger`: `telemetry::span` around a login (start skipped, stop logged).
//! - `authtel_default_logger_signal`: one signal with the same fields (`telemetry::event`).
//! - `baseline:tracing_fmt_json`: `tracing::info!` with the same fields, straight into the
//!   same subscriber.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use authtel_core::catalogue::{AUTH_LOGIN, SECURITY_SUSPICIOUS_LOGIN};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::Registry;
use authtel_core::telemetry::{self, Measurements};
use authtel_log::{Logger, LoggerOptions};
use criterion::{Criterion, criterion_group, criterion_main};

const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));

/// The fields every case logs (the baseline passes the same ones to `tracing::info!`),
/// built inside each iteration as an auth service builds them per request.
#[inline(always)]
fn login_metadata() -> Metadata<'static> {
    Metadata::new()
        .user_id("u_42")
        .session_id("s_9f2c")
        .client_ip(CLIENT_IP)
        .method("password")
        .provider("local")
        .with_extra("tenant", "acme")
}

fn json_to_sink() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_writer(std::io::sink)
            .finish(),
    )
}

fn logger_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("logger_json");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let dispatch = json_to_sink();

    let registry = Registry::new();
    Logger::build(LoggerOptions::new())
        .attach_to(&registry)
        .expect("fresh registry");
    tracing::dispatcher::with_default(&dispatch, || {
        let _scope = registry.enter();
        group.bench_function("authtel_default_logger", |b| {
            b.iter(|| {
                let meta = login_metadata();
                black_box(telemetry::span(&AUTH_LOGIN, meta, || {
                    Ok::<_, ()>(black_box(1))
                }))
            })
        });
        // One signal with the same fields: the logging alone, without a span's clocks.
        group.bench_function("authtel_default_logger_signal", |b| {
            b.iter(|| {
                let meta = login_metadata().outcome(Outcome::Success);
                telemetry::event(
                    black_box(&SECURITY_SUSPICIOUS_LOGIN),
                    Measurements::new(),
                    meta,
                );
            })
        });
    });

    tracing::dispatcher::with_default(&dispatch, || {
        group.bench_function("baseline:tracing_fmt_json", |b| {
            b.iter(|| {
                tracing::info!(
                    target: "authtel::auth",
                    event = "auth.login.stop",
                    outcome = "success",
                    duration_ms = black_box(0.0123_f64),
                    span_id = tracing::field::display(black_box("5f3a9c0d1e2b4a68")),
                    root_id = tracing::field::display("5f3a9c0d1e2b4a68"),
                    user_id = "u_42",
                    session_id = "s_9f2c",
                    client_ip = tracing::field::display(CLIENT_IP),
                    method = "password",
                    provider = "local",
                    extra = "tenant=acme",
                );
            })
        });
    });
    group.finish();
}

criterion_group!(benches, logger_json);
criterion_main!(benches);
