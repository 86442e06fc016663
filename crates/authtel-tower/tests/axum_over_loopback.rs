//! An axum router behind the layer, driven over real loopback HTTP: what its handlers emit
//! carries the client address (spoof-proof behind untrusted peers, honoured behind trusted
//! proxies), the user agent (screened), the request id (read or generated) and the trace.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authtel_core::audit::AuditEvent;
use authtel_core::context::{REQUEST_ID_KEY, RequestContext};
use authtel_core::metadata::{Metadata, REDACTED};
use authtel_core::registry::{Selection, handler_fn};
use authtel_core::{catalogue, telemetry};
use authtel_testing::{CaptureHandler, CapturedEvent};
use authtel_tower::{ForwardedHeader, RequestContextLayer};
use axum::Router;
use axum::routing::get;

/// A login handler the way an application writes one: a span around the work, a signal
/// from a helper that knows nothing about the request, awaits in between.
async fn login() -> String {
    let result = telemetry::span_async(
        &catalogue::AUTH_LOGIN,
        Metadata::new().user_id("u_1"),
        async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            helper_without_request();
            tokio::task::yield_now().await;
            Ok::<_, ()>(())
        },
    )
    .await;
    let seen = RequestContext::current().and_then(|c| c.request_id().map(str::to_owned));
    format!("{result:?} {}", seen.unwrap_or_default())
}

fn helper_without_request() {
    telemetry::event(
        &catalogue::SECURITY_RATE_LIMITED,
        Default::default(),
        Metadata::new().rate_limit_key("user:u_1"),
    );
}

fn app(layer: RequestContextLayer) -> Router {
    Router::new().route("/login", get(login)).layer(layer)
}

/// Runs `requests` against a server with `layer` and returns what was captured.
fn run(layer: RequestContextLayer, requests: &[&[(&str, &str)]]) -> Vec<CapturedEvent> {
    let (registry, capture): (_, CaptureHandler) = support::capture();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    rt.block_on(async {
        let addr = support::serve(app(layer)).await;
        for headers in requests {
            let (status, body) = support::request(addr, "/login", headers).await;
            assert_eq!(status, 200, "{body}");
            assert!(body.starts_with("Ok(())"), "{body}");
        }
    });
    capture.events()
}

/// Every event that belongs to a request: span start, stop and the helper's signal.
fn request_events(events: &[CapturedEvent]) -> Vec<&CapturedEvent> {
    let events: Vec<_> = events
        .iter()
        .filter(|e| e.name.starts_with("auth.login") || e.name == "security.rate_limited")
        .collect();
    assert!(!events.is_empty());
    events
}

#[test]
fn handlers_events_carry_peer_address_user_agent_and_request_id() {
    let events = run(
        RequestContextLayer::new(),
        &[&[
            ("User-Agent", "Mozilla/5.0 (X11)"),
            ("X-Request-Id", "req-42"),
        ]],
    );
    let events = request_events(&events);
    assert_eq!(events.len(), 3, "start, signal, stop");
    for e in events {
        assert_eq!(e.field("client_ip"), Some("127.0.0.1"), "{}", e.name);
        assert_eq!(
            e.field("user_agent"),
            Some("Mozilla/5.0 (X11)"),
            "{}",
            e.name
        );
        assert_eq!(e.field(REQUEST_ID_KEY), Some("req-42"), "{}", e.name);
    }
}

#[test]
fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_not_recorded() {
    // Default layer: no proxy trusted.
    let spoof: &[(&str, &str)] = &[
        ("X-Forwarded-For", "198.51.100.66"),
        ("Forwarded", "for=198.51.100.67"),
    ];
    let events = run(RequestContextLayer::new(), &[spoof]);
    for e in request_events(&events) {
        assert_eq!(e.field("client_ip"), Some("127.0.0.1"), "{}", e.name);
    }
    // Trusting some other network does not make loopback a trusted peer either.
    let layer = RequestContextLayer::new()
        .trusted_proxies(["10.0.0.0/8"])
        .unwrap();
    let events = run(layer, &[spoof]);
    for e in request_events(&events) {
        assert_eq!(e.field("client_ip"), Some("127.0.0.1"), "{}", e.name);
    }
}

#[test]
fn a_trusted_proxy_chain_is_honoured_right_to_left() {
    let layer = RequestContextLayer::new()
        .trusted_proxies(["127.0.0.0/8", "10.0.0.0/8", "2001:db8:ffff::/48"])
        .unwrap();
    let events = run(
        layer.clone(),
        &[
            // The client forged the leftmost entry; 203.0.113.5 is what the outer proxy saw.
            &[
                ("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 10.1.1.1"),
                ("X-Request-Id", "a"),
            ],
            &[
                ("X-Forwarded-For", "2001:db8::9, 2001:db8:ffff::1"),
                ("X-Request-Id", "b"),
            ],
            &[("X-Forwarded-For", "not-an-ip"), ("X-Request-Id", "c")],
        ],
    );
    let ip_of = |id: &str| -> Vec<String> {
        request_events(&events)
            .into_iter()
            .filter(|e| e.field(REQUEST_ID_KEY) == Some(id))
            .map(|e| e.field("client_ip").unwrap_or("-").to_owned())
            .collect()
    };
    assert_eq!(ip_of("a"), ["203.0.113.5"; 3]);
    assert_eq!(ip_of("b"), ["2001:db8::9"; 3]);
    // Malformed: ignored, the peer stays the client.
    assert_eq!(ip_of("c"), ["127.0.0.1"; 3]);

    let events = run(
        layer.forwarded_header(ForwardedHeader::Forwarded),
        &[&[
            (
                "Forwarded",
                r#"for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#,
            ),
            ("X-Forwarded-For", "198.51.100.1"),
        ]],
    );
    for e in request_events(&events) {
        assert_eq!(e.field("client_ip"), Some("2001:db8:cafe::17"));
    }
}

#[test]
fn an_oversized_or_credential_bearing_user_agent_is_screened() {
    let huge = format!("Mozilla/5.0 {}", "A".repeat(6000));
    let token = "curl/8 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    let events = run(
        RequestContextLayer::new(),
        &[
            &[("User-Agent", &huge), ("X-Request-Id", "big")],
            &[("User-Agent", token), ("X-Request-Id", "tok")],
        ],
    );
    for e in request_events(&events) {
        let ua = e.field("user_agent").unwrap();
        match e.field(REQUEST_ID_KEY) {
            Some("big") => assert!(ua.len() <= 256 && ua.starts_with("Mozilla/5.0 AAA")),
            Some("tok") => assert_eq!(ua, REDACTED),
            other => panic!("unexpected request id {other:?}"),
        }
        assert!(!e.texts().any(|t| t.contains("eyJ")));
    }
}

#[test]
fn a_request_id_is_generated_when_asked_and_absent() {
    let events = run(
        RequestContextLayer::new().generate_request_id(true),
        &[&[], &[("X-Request-Id", "given")]],
    );
    let ids: std::collections::BTreeSet<_> = request_events(&events)
        .into_iter()
        .map(|e| e.field(REQUEST_ID_KEY).unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains("given"));
    let generated = ids.iter().find(|id| *id != "given").unwrap();
    let parsed = uuid::Uuid::parse_str(generated).expect("a generated id is a UUID");
    assert_eq!(parsed.get_version_num(), 7, "{generated}");
    // Without generation, no request id.
    let events = run(RequestContextLayer::new(), &[&[]]);
    assert!(
        request_events(&events)
            .iter()
            .all(|e| e.field(REQUEST_ID_KEY).is_none())
    );
}

#[test]
fn audit_records_carry_the_traceparent_trace_id_and_the_client() {
    let (registry, _capture) = support::capture();
    let audits = Arc::new(Mutex::new(Vec::new()));
    let sink = audits.clone();
    registry
        .attach(
            "audit",
            Selection::All,
            handler_fn(move |r| sink.lock().unwrap().extend(AuditEvent::from_record(r))),
        )
        .unwrap();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    rt.block_on(async {
        let addr = support::serve(app(RequestContextLayer::new())).await;
        let headers = [
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("User-Agent", "ua/1"),
        ];
        let (status, _) = support::request(addr, "/login", &headers).await;
        assert_eq!(status, 200);
    });
    let audits = audits.lock().unwrap();
    let stop = audits
        .iter()
        .find(|a| a.action() == "auth.login.stop")
        .expect("the login stop is audited");
    assert_eq!(stop.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(stop.client_ip(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(stop.user_agent(), Some("ua/1"));
}

#[test]
fn the_request_id_is_echoed_in_the_response_when_asked() {
    let (registry, _capture) = support::capture();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    rt.block_on(async {
        let echoing = support::serve(app(RequestContextLayer::new()
            .generate_request_id(true)
            .echo_request_id(true)))
        .await;
        let given = support::request_raw(echoing, "/login", &[("X-Request-Id", "req-echo")]).await;
        assert!(given.contains("x-request-id: req-echo\r\n"), "{given}");
        let generated = support::request_raw(echoing, "/login", &[]).await;
        let id = generated
            .split("\r\n")
            .find_map(|l| l.strip_prefix("x-request-id: "))
            .expect("a generated id is echoed");
        let parsed = uuid::Uuid::parse_str(id).expect("a generated id is a UUID");
        assert_eq!(parsed.get_version_num(), 7, "{id}");
        let quiet = support::serve(app(RequestContextLayer::new())).await;
        let response = support::request_raw(quiet, "/login", &[("X-Request-Id", "req-echo")]).await;
        assert!(!response.contains("x-request-id"), "{response}");
    });
}
