//! The request-context layer decides the recorded client address: a spoofed
//! `X-Forwarded-For` from an untrusted peer is ignored (the TCP peer is recorded), and the
//! same header from a configured trusted proxy is believed — in the events, the audit rows
//! and the detectors' keys alike.

mod support;

use authtel_testing::Capture;
use serde_json::json;
use support::http::Request;

const SPOOFED: &str = "198.51.100.77";

async fn login_with_forwarded_for(
    trusted: &[&str],
) -> (Option<String>, Option<String>, Option<String>) {
    let capture = Capture::new();
    let _scope = capture.enter();
    let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
    let service = support::Service::start(&capture, |c| c.trusted_proxies = trusted).await;
    let creds = json!({"email": "dan@example.com", "password": "dan's long passphrase"});
    let r = Request::post("/register", creds.clone())
        .send(service.addr)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = Request::post("/login", creds)
        .header("X-Forwarded-For", SPOOFED)
        .header("x-request-id", "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
        .send(service.addr)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let event = capture.single("auth.login.stop");
    let rows = service.audit_rows().await;
    let row = rows
        .iter()
        .find(|r| r.action() == "auth.login.stop")
        .expect("a login row");
    assert_eq!(
        event.field("request_id"),
        Some("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
    );
    assert_eq!(
        row.metadata()["request_id"],
        "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f"
    );
    (
        event.field("client_ip").map(str::to_owned),
        row.client_ip().map(|ip| ip.to_string()),
        event.field("user_agent").map(str::to_owned),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_not_the_client_ip() {
    let (event_ip, row_ip, agent) = login_with_forwarded_for(&[]).await;
    assert_eq!(event_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(row_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(agent.as_deref(), Some("authtel-example-tests/1.0"));
}

#[tokio::test(flavor = "current_thread")]
async fn a_trusted_proxy_s_forwarded_for_is_the_client_ip() {
    let (event_ip, row_ip, _) = login_with_forwarded_for(&["127.0.0.0/8"]).await;
    assert_eq!(event_ip.as_deref(), Some(SPOOFED));
    assert_eq!(row_ip.as_deref(), Some(SPOOFED));
}

#[tokio::test(flavor = "current_thread")]
async fn a_malformed_trusted_proxy_is_a_start_error_naming_it() {
    let config = authtel_axum_service::Config {
        trusted_proxies: vec!["10.0.0.0/40".into()],
        ..authtel_axum_service::Config::for_tests("sqlite::memory:")
    };
    let err = authtel_axum_service::App::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"10.0.0.0/40\""), "{err}");
}
