//! A burst of audited events, far above the SDK's default queue of 2,048: every log record
//! reaches the collector, and the sink's accounting is exact — after shutdown,
//! `logs_exported + logs_dropped == logs_emitted`, and the receiver holds `logs_exported`.
//! (The first version lost up to a third of such a burst with `logs_dropped: 0`.)

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::telemetry::{self, Measurements};
use authtel_otlp::{OtlpSink, Protocol};
use authtel_testing::otlp::OtlpReceiver;

const BURST: u64 = 30_000;

async fn burst_over(protocol: Protocol) {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = common::sink_for(&receiver, protocol);
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        for n in 0..BURST {
            let user = format!("u_{n}");
            telemetry::event(
                &catalogue::SECURITY_LOCKOUT,
                Measurements::new().count(1),
                Metadata::new()
                    .user_id(&user)
                    .client_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, (n % 250) as u8)))
                    .reason("too_many_failures"),
            );
        }
    }
    common::shutdown(sink.clone()).await;
    let stats = sink.stats();
    assert_eq!(stats.logs_emitted, BURST, "{stats:?}");
    assert_eq!(
        stats.logs_exported + stats.logs_dropped,
        stats.logs_emitted,
        "every record is exported or counted as dropped: {stats:?}"
    );
    assert_eq!(stats.logs_dropped, 0, "{stats:?}");
    let arrived = receiver
        .wait_until(common::WAIT, |r| r.log_records().len() as u64 >= BURST)
        .await;
    assert!(
        arrived,
        "{} of {BURST} arrived",
        receiver.log_records().len()
    );
    assert_eq!(receiver.log_records().len() as u64, stats.logs_exported);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_http_arrives_whole() {
    burst_over(Protocol::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_grpc_arrives_whole() {
    burst_over(Protocol::Grpc).await;
}

/// With the collector unreachable and a short retry window, nothing arrives, and the sink
/// says exactly how many records it lost (retry give-ups and queue drops together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_lost_to_a_dead_collector_are_all_counted() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = Arc::new(
        OtlpSink::builder()
            .with_protocol(Protocol::HttpProtobuf)
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_timeout(Duration::from_millis(200))
            .with_retry_window(Duration::from_millis(300))
            .build()
            .unwrap(),
    );
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        for n in 0..5_000u64 {
            let user = format!("u_{n}");
            telemetry::event(
                &catalogue::SECURITY_LOCKOUT,
                Measurements::new(),
                Metadata::new().user_id(&user),
            );
        }
    }
    let s = sink.clone();
    let result = tokio::task::spawn_blocking(move || s.shutdown(Instant::now() + common::WAIT))
        .await
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let stats = sink.stats();
    assert_eq!(stats.logs_emitted, 5_000);
    assert_eq!(stats.logs_exported, 0);
    assert_eq!(stats.logs_dropped, 5_000, "{stats:?}");
    assert!(stats.last_error.is_some());
}

/// A collector that stalls until the test has emitted everything: the queue fills and the
/// SDK drops. Those drops are invisible to the SDK's callers; the sink finds and counts them
/// at shutdown.
#[derive(Debug, Default)]
struct Stalled {
    exported: std::sync::atomic::AtomicU64,
}

static RELEASED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl opentelemetry_sdk::logs::LogExporter for Stalled {
    async fn export(
        &self,
        batch: opentelemetry_sdk::logs::LogBatch<'_>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        while !RELEASED.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.exported.fetch_add(
            batch.iter().count() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(())
    }
}

#[test]
fn queue_drops_are_counted_at_shutdown() {
    let total = authtel_otlp::LOG_QUEUE_CAPACITY as u64 + 20_000;
    let sink = OtlpSink::builder().build_with_exporters(
        opentelemetry_sdk::trace::InMemorySpanExporter::default(),
        Stalled::default(),
    );
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        for _ in 0..total {
            telemetry::event(
                &catalogue::SECURITY_LOCKOUT,
                Measurements::new(),
                Metadata::new(),
            );
        }
    }
    RELEASED.store(true, std::sync::atomic::Ordering::SeqCst);
    sink.shutdown(Instant::now() + Duration::from_secs(120))
        .expect("shutdown");
    let stats = sink.stats();
    assert_eq!(stats.logs_emitted, total);
    assert!(
        stats.logs_dropped > 0,
        "the queue must have overflowed: {stats:?}"
    );
    assert_eq!(stats.logs_exported + stats.logs_dropped, total, "{stats:?}");
    assert!(
        stats
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("dropped before export")),
        "{stats:?}"
    );
}
