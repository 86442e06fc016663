//! With no endpoint or protocol in code, `OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL` and `OTEL_SERVICE_NAME` decide where and how data goes.
//! (The only test in this binary: it sets process environment variables.)

mod common;

use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::{catalogue, telemetry};
use authtel_otlp::OtlpSink;
use authtel_testing::otlp::{OtlpReceiver, Transport, attribute};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_protocol_and_service_name_come_from_the_environment() {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    // SAFETY: this binary holds this single test, so no other thread reads the environment.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint());
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        std::env::set_var("OTEL_SERVICE_NAME", "from-env");
    }
    let sink = Arc::new(OtlpSink::builder().build().expect("builds from env"));
    assert_eq!(sink.endpoint(), receiver.grpc_endpoint());
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        let _ = telemetry::span(&catalogue::AUTH_LOGOUT, Metadata::new(), || true);
    }
    common::flush(&sink).await;
    let arrived = receiver
        .wait_until(common::WAIT, |r| !r.spans().is_empty())
        .await;
    assert!(arrived);
    let (transport, request) = &receiver.trace_requests()[0];
    assert_eq!(*transport, Transport::Grpc);
    let resource = request.resource_spans[0].resource.as_ref().unwrap();
    assert_eq!(
        attribute(&resource.attributes, "service.name").as_deref(),
        Some("from-env")
    );
    common::shutdown(sink).await;
    receiver.stop().await;
}
