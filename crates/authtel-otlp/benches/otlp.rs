//! Emit-path cost of one exported span, before batching: an authtel span through the
//! `OtlpHandler` vs a bare `tracing` span through `tracing-opentelemetry`, both into a
//! batch span processor whose exporter discards everything.

use std::hint::black_box;
use std::time::Duration;

use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::{catalogue, telemetry};
use authtel_otlp::OtlpSink;
use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing_subscriber::layer::SubscriberExt as _;

/// Discards every batch.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        black_box(batch);
        Ok(())
    }
}

impl LogExporter for Discard {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        black_box(batch.iter().count());
        Ok(())
    }
}

fn otlp_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("otlp_span");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let sink = OtlpSink::builder()
        .with_audit_logs(false)
        .build_with_exporters(Discard, Discard);
    let registry = Registry::new();
    sink.attach_to(&registry).expect("attach");
    {
        let _scope = registry.enter();
        group.bench_function("authtel_span_to_otel", |b| {
            b.iter(|| {
                telemetry::span(
                    &catalogue::AUTH_LOGIN,
                    Metadata::new().user_id("u_1").method("password"),
                    || black_box(Ok::<u32, ()>(1)),
                )
            })
        });
    }
    drop(sink);

    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(Discard).build())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("baseline:tracing_opentelemetry_span", |b| {
            b.iter(|| {
                tracing::info_span!("auth.login", user.id = "u_1", auth.method = "password")
                    .in_scope(|| black_box(1))
            })
        });
    });
    let _ = provider.shutdown();
    group.finish();
}

criterion_group!(benches, otlp_span);
criterion_main!(benches);
