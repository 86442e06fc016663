//! Secrets planted through the public API (metadata fields, panic messages, exception
//! reasons) appear nowhere in what the receiver got: decoded requests and raw bytes.

mod common;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::Registry;
use authtel_core::telemetry::{self, Measurements};
use authtel_otlp::Protocol;
use authtel_testing::otlp::OtlpReceiver;

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtdXNlciJ9.c2VjcmV0LXNpZ25hdHVyZQ";
const SECRETS: [&str; 9] = [
    "hunter2-Pa55",
    "refresh-9f8e7d",
    "654321",
    "sid=cookie-c0ffee",
    "eyJhbGciOiJIUzI1NiJ9",
    "bearer-xyz-123",
    "panic-pw-0xdead",
    "oauth-secret-4242",
    "basic-dXNlcjpwYXNz",
];

async fn no_secret_reaches_the_collector_over(protocol: Protocol) {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let sink = common::sink_for(&receiver, protocol);
    let registry = Registry::new();
    sink.attach_to(&registry).unwrap();
    {
        let _scope = registry.enter();
        let meta = Metadata::new()
            .user_id("u_1")
            .session_id("Bearer bearer-xyz-123")
            .user_agent(JWT)
            .reason("password=hunter2-Pa55")
            .with_extra("password", "hunter2-Pa55")
            .with_extra("refresh_token", "refresh-9f8e7d")
            .with_extra("totp_code", "654321")
            .with_extra("cookie", "sid=cookie-c0ffee")
            .with_extra("client_secret", "oauth-secret-4242")
            .with_extra("note", "Basic basic-dXNlcjpwYXNz")
            .with_extra("header", JWT);
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, meta.clone(), || Err::<(), _>(()));
        telemetry::event(
            &catalogue::SECURITY_INVALID_CREDENTIALS,
            Measurements::new(),
            meta,
        );
        let _ = std::panic::catch_unwind(|| {
            telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || -> bool {
                panic!("password panic-pw-0xdead rejected, totp 654321")
            })
        });
        let _ = std::panic::catch_unwind(|| {
            telemetry::span(&catalogue::JWT_VERIFY, Metadata::new(), || -> bool {
                panic!("{JWT}")
            })
        });
        telemetry::start(&catalogue::OAUTH_CALLBACK, Metadata::new())
            .exception("client_secret: oauth-secret-4242");
    }
    common::flush(&sink).await;
    let arrived = receiver
        .wait_until(common::WAIT, |r| {
            r.spans().len() >= 4 && r.log_records().len() >= 5
        })
        .await;
    assert!(
        arrived,
        "spans {} logs {}",
        receiver.spans().len(),
        receiver.log_records().len()
    );

    let dump = receiver.dump();
    assert!(
        dump.contains("auth.login") && dump.contains("u_1"),
        "the search sees the data"
    );
    assert!(dump.contains("[REDACTED]"));
    for secret in SECRETS {
        assert!(!dump.contains(secret), "{secret} reached the collector");
        for raw in receiver.raw_requests() {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in raw bytes"
            );
        }
    }
    common::shutdown(sink).await;
    receiver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_collector_over_grpc() {
    no_secret_reaches_the_collector_over(Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_collector_over_http() {
    no_secret_reaches_the_collector_over(Protocol::HttpProtobuf).await;
}
