//! Receiver down: export failures are counted and reported, the emitting thread is
//! unaffected, and data is delivered once the receiver returns within the retry window —
//! or dropped and counted when it does not.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::{catalogue, telemetry};
use authtel_otlp::{OtlpSink, Protocol};
use authtel_testing::otlp::OtlpReceiver;

fn emit_logins(registry: &Registry, n: usize) {
    let _scope = registry.enter();
    for _ in 0..n {
        let r = telemetry::span(
            &catalogue::AUTH_LOGIN,
            Metadata::new().user_id("u_7"),
            || Ok::<_, ()>(7),
        );
        assert_eq!(r, Ok(7), "the application's result is untouched");
    }
}

async fn delivered_after_receiver_returns(protocol: Protocol) {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = Arc::new(
        OtlpSink::builder()
            .with_protocol(protocol)
            .with_endpoint(common::endpoint(&receiver, protocol))
            .with_timeout(Duration::from_secs(3))
            .with_retry_window(Duration::from_secs(120))
            .with_audit_logs(false)
            .build()
            .unwrap(),
    );
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    receiver.stop().await;

    emit_logins(&registry, 3);
    // The flush blocks on the retrying export: run it in the background.
    let flushing = {
        let sink = sink.clone();
        tokio::task::spawn_blocking(move || sink.flush(Instant::now() + common::WAIT * 2))
    };
    let deadline = Instant::now() + common::WAIT;
    while sink.stats().export_failures < 2 {
        assert!(
            Instant::now() < deadline,
            "no failure counted: {:?}",
            sink.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sink.stats();
    assert!(
        stats.last_error.as_deref().unwrap().contains("failed"),
        "{stats:?}"
    );
    assert_eq!(stats.spans_exported, 0);
    // While exports fail, emitting goes on as usual.
    emit_logins(&registry, 2);

    receiver
        .restart()
        .await
        .expect("receiver restarts on the same ports");
    let arrived = receiver
        .wait_until(common::WAIT, |r| r.spans().len() >= 3)
        .await;
    assert!(arrived, "spans after restart: {}", receiver.spans().len());
    flushing
        .await
        .unwrap()
        .expect("flush completes once the receiver is back");
    common::flush(&sink).await;
    let all = receiver
        .wait_until(common::WAIT, |r| r.spans().len() >= 5)
        .await;
    assert!(all, "spans: {}", receiver.spans().len());
    let stats = sink.stats();
    assert_eq!(stats.spans_dropped, 0, "{stats:?}");
    assert!(stats.spans_exported >= 5, "{stats:?}");
    common::shutdown(sink).await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_delivers_after_receiver_returns() {
    delivered_after_receiver_returns(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_delivers_after_receiver_returns() {
    delivered_after_receiver_returns(Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_past_the_retry_window_are_dropped_and_counted() {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = Arc::new(
        OtlpSink::builder()
            .with_protocol(Protocol::HttpProtobuf)
            .with_endpoint(receiver.http_endpoint())
            .with_timeout(Duration::from_secs(2))
            .with_retry_window(Duration::from_millis(300))
            .with_audit_logs(false)
            .build()
            .unwrap(),
    );
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    receiver.stop().await;
    emit_logins(&registry, 4);
    {
        let sink = sink.clone();
        // The flush itself may report the export error; the counters are what we check.
        let _ = tokio::task::spawn_blocking(move || sink.flush(Instant::now() + common::WAIT))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + common::WAIT;
    while sink.stats().spans_dropped < 4 {
        assert!(
            Instant::now() < deadline,
            "nothing dropped: {:?}",
            sink.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sink.stats();
    assert_eq!(stats.spans_dropped, 4, "{stats:?}");
    assert!(stats.export_failures >= 1, "{stats:?}");
    assert!(receiver.spans().is_empty());
    common::shutdown(sink).await;
}
