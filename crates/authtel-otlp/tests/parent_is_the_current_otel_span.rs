//! An authtel span emitted inside an OpenTelemetry span — a `tracing` span bridged by
//! tracing-opentelemetry, or an attached OpenTelemetry `Context` — has that span as parent;
//! nested authtel spans keep their own parent; audit records carry the trace ids.

mod common;

use std::sync::{Arc, Mutex};

use authtel_core::audit::AuditEvent;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::{catalogue, telemetry};
use authtel_otlp::Protocol;
use authtel_testing::otlp::OtlpReceiver;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt as _;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authtel_spans_are_children_of_the_current_otel_span() {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = common::sink_for(&receiver, Protocol::Grpc);
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    // Another sink's handler stamping audit records, as the SQL or Kafka sinks would.
    let audits: Arc<Mutex<Vec<AuditEvent>>> = Arc::default();
    let kept = audits.clone();
    registry
        .attach(
            "audit-stamp",
            Selection::All,
            handler_fn(move |record| {
                if let Some(audit) = AuditEvent::from_record(record) {
                    let audit = authtel_otlp::stamp_trace_ids(audit, record);
                    kept.lock().unwrap().push(audit);
                }
            }),
        )
        .unwrap();

    let app_provider = SdkTracerProvider::builder()
        .with_simple_exporter(InMemorySpanExporter::default())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(app_provider.tracer("app")));

    // 1. A tracing span bridged to OpenTelemetry.
    let (request_trace, request_span, current_ids) =
        tracing::subscriber::with_default(subscriber, || {
            let _scope = registry.enter();
            let request = tracing::info_span!("http.request");
            let _entered = request.enter();
            let sc = request.context().span().span_context().clone();
            let mut ids = None;
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
                ids = authtel_otlp::current_trace_ids();
                telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || true)
            });
            (sc.trace_id(), sc.span_id(), ids)
        });

    // 2. An OpenTelemetry Context attached directly, no tracing involved.
    let tracer = app_provider.tracer("app");
    let (ctx_trace, ctx_span) = {
        let _scope = registry.enter();
        let parent = tracer.start("rpc.handle");
        let cx = opentelemetry::Context::current_with_span(parent);
        let sc = cx.span().span_context().clone();
        let _attached = cx.attach();
        let _ = telemetry::span(&catalogue::SESSION_CREATE, Metadata::new(), || true);
        (sc.trace_id(), sc.span_id())
    };

    common::flush(&sink).await;
    let arrived = receiver
        .wait_until(common::WAIT, |r| r.spans().len() >= 3)
        .await;
    assert!(arrived, "spans: {:?}", receiver.spans());
    let spans = receiver.spans();
    let find = |n: &str| spans.iter().find(|s| s.name == n).unwrap().clone();
    let login = find("auth.login");
    let mfa = find("mfa.verify");
    let session = find("session.create");

    assert_eq!(login.trace_id, request_trace.to_bytes().to_vec());
    assert_eq!(login.parent_span_id, request_span.to_bytes().to_vec());
    assert_eq!(mfa.trace_id, login.trace_id);
    assert_eq!(
        mfa.parent_span_id, login.span_id,
        "nested authtel spans keep their parent"
    );
    assert_eq!(session.trace_id, ctx_trace.to_bytes().to_vec());
    assert_eq!(session.parent_span_id, ctx_span.to_bytes().to_vec());

    let ids = current_ids.expect("ids inside the login span");
    assert_eq!(ids.trace_id, request_trace.to_string());
    assert_eq!(ids.span_id, common::hex(&login.span_id));

    let audits = audits.lock().unwrap().clone();
    let mfa_audit = audits
        .iter()
        .find(|a| a.action() == "mfa.verify.stop")
        .unwrap();
    assert_eq!(
        mfa_audit.trace_id(),
        Some(request_trace.to_string().as_str())
    );
    assert_eq!(
        mfa_audit.span_id(),
        Some(common::hex(&mfa.span_id).as_str())
    );
    let login_audit = audits
        .iter()
        .find(|a| a.action() == "auth.login.stop")
        .unwrap();
    assert_eq!(
        login_audit.trace_id(),
        Some(request_trace.to_string().as_str())
    );

    common::shutdown(sink).await;
    let _ = app_provider.shutdown();
    receiver.stop().await;
}
