//! Shared helpers of the integration tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_otlp::{OtlpSink, Protocol};
use authtel_testing::otlp::OtlpReceiver;

/// Generous: a loaded two-core machine.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn endpoint(receiver: &OtlpReceiver, protocol: Protocol) -> String {
    match protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        _ => receiver.http_endpoint(),
    }
}

pub fn sink_for(receiver: &OtlpReceiver, protocol: Protocol) -> Arc<OtlpSink> {
    Arc::new(
        OtlpSink::builder()
            .with_protocol(protocol)
            .with_endpoint(endpoint(receiver, protocol))
            .with_timeout(Duration::from_secs(5))
            .with_service_name("authtel-otlp-tests")
            .with_service_version("9.9.9")
            .build()
            .expect("sink builds"),
    )
}

/// Flushes off the async worker threads, as the SDK's blocking flush requires.
pub async fn flush(sink: &Arc<OtlpSink>) {
    let sink = sink.clone();
    tokio::task::spawn_blocking(move || sink.flush(Instant::now() + WAIT))
        .await
        .expect("flush task")
        .expect("flush succeeds");
}

pub async fn shutdown(sink: Arc<OtlpSink>) {
    tokio::task::spawn_blocking(move || sink.shutdown(Instant::now() + WAIT))
        .await
        .expect("shutdown task")
        .expect("shutdown succeeds");
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
