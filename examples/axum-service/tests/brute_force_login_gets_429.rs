//! The detectors' verdict gates login: quick repeated failures on one account get
//! `429 Too Many Requests` with `Retry-After`, the refusal is a `security.rate_limited`
//! signal with its audit row, and the password is not even checked.

mod support;

use authtel_testing::Capture;
use serde_json::json;
use support::http::Request;

#[tokio::test(flavor = "current_thread")]
async fn brute_force_login_gets_429_with_retry_after() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let service = support::Service::start(&capture, |_| {}).await;
    let creds = |pw: &str| json!({"email": "bob@example.com", "password": pw});
    let r = Request::post("/register", creds("bob's real password"))
        .send(service.addr)
        .await;
    assert_eq!(r.status, 201, "{}", r.body);

    // Keycloak's quick-login check (on by default): two failures under a second apart make
    // the account wait a minute.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..4 {
        let r = Request::post("/login", creds(&format!("guess {i}")))
            .send(service.addr)
            .await;
        statuses.push(r.status);
        if r.status == 429 {
            retry_after = r.header("retry-after").map(str::to_owned);
        }
    }
    assert_eq!(statuses[..2], [401, 401], "{statuses:?}");
    assert_eq!(statuses[2..], [429, 429], "{statuses:?}");
    let secs: u64 = retry_after
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");

    // Even the right password is refused while the penalty runs.
    let r = Request::post("/login", creds("bob's real password"))
        .send(service.addr)
        .await;
    assert_eq!(r.status, 429);

    let limited = capture.events_named("security.rate_limited");
    assert_eq!(limited.len(), 3, "one signal per refused attempt");
    assert!(
        limited
            .iter()
            .all(|e| e.field("client_ip") == Some("127.0.0.1"))
    );
    // The refused attempts never reached the password check: two login spans in all.
    assert_eq!(capture.events_named("auth.login.stop").len(), 2);
    let rows = service.audit_rows().await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.action() == "security.rate_limited")
            .count(),
        3
    );
    let metrics = Request::get("/metrics").send(service.addr).await.body;
    let line = r#"authtel_security_signals_total{signal="security.rate_limited"} 3"#;
    assert!(metrics.contains(line), "{metrics}");
}
