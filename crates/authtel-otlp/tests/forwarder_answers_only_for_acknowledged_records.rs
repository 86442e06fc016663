//! `OtlpForwarder`: audit records reach the collector as log records, screened by core's
//! policy, and `forward` returns `Ok` only once the collector acknowledged all of them — so
//! the pipeline or the outbox relay retries, spills or dead-letters the rest.

use std::collections::BTreeSet;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_otlp::{OtlpSink, Protocol};
use authtel_testing::otlp::{OtlpReceiver, any_value_text, attribute};

fn records(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
            e = e.with_actor(Party::new(format!("u_{i}"), "user"));
            e = e.with_reason(if i == 0 {
                "password=hunter2".to_owned()
            } else {
                "invalid_password".to_owned()
            });
            e = e.with_client_ip(std::net::IpAddr::from([203, 0, 113, 9]));
            e = e.with_metadata("attempt", i as u64).unwrap();
            e
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_arrive_whole_and_screened() {
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let receiver = OtlpReceiver::start().await.expect("receiver starts");
        let endpoint = match protocol {
            Protocol::Grpc => receiver.grpc_endpoint(),
            _ => receiver.http_endpoint(),
        };
        let forwarder = OtlpSink::builder()
            .with_protocol(protocol)
            .with_endpoint(endpoint)
            .with_service_name("authtel-otlp-forwarder-test")
            .build_forwarder()
            .expect("builds");
        let batch = records(1_000);
        for chunk in batch.chunks(250) {
            forwarder.forward(chunk).await.expect("acknowledged");
        }
        let logs = receiver.log_records();
        let ids: BTreeSet<String> = logs
            .iter()
            .filter_map(|l| attribute(&l.attributes, "audit.id"))
            .collect();
        assert_eq!(ids.len(), 1_000, "{protocol:?}");
        let wanted: BTreeSet<String> = batch.iter().map(|e| e.id().to_string()).collect();
        assert_eq!(ids, wanted);
        let first = logs
            .iter()
            .find(|l| {
                attribute(&l.attributes, "audit.id").as_deref() == Some(&batch[0].id().to_string())
            })
            .unwrap();
        assert_eq!(
            attribute(&first.attributes, "user.id").as_deref(),
            Some("u_0")
        );
        assert_eq!(
            attribute(&first.attributes, "client.address").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(
            attribute(&first.attributes, "auth.extra.attempt").as_deref(),
            Some("0")
        );
        assert_eq!(
            first.body.as_ref().and_then(any_value_text).as_deref(),
            Some("auth.login.stop")
        );
        assert!(
            !receiver.dump().contains("hunter2"),
            "a secret in a hand-built record reached the collector"
        );
        assert_eq!(forwarder.stats().logs_exported, 1_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_a_transient_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forwarder = OtlpSink::builder()
        .with_protocol(Protocol::HttpProtobuf)
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_timeout(Duration::from_millis(200))
        .with_retry_window(Duration::from_millis(300))
        .build_forwarder()
        .expect("builds");
    let err = forwarder
        .forward(&records(10))
        .await
        .expect_err("nobody listens");
    assert!(err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("acknowledged 0 of 10"), "{text}");
}
