//! On a multi-thread tokio runtime, with requests in flight at once and tasks moving
//! between workers, each record carries its own request's context and no other: not a
//! neighbour's, not one left behind on a worker thread, not one leaked into tasks the
//! request did not scope.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Duration;

use authtel_core::context::{REQUEST_ID_KEY, RequestContext};
use authtel_core::metadata::Metadata;
use authtel_core::{catalogue, telemetry};
use authtel_tower::{PeerAddr, RequestContextLayer};
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower_service::Service;

fn signal(step: u64) {
    telemetry::event(
        &catalogue::SECURITY_RATE_LIMITED,
        telemetry::Measurements::new().count(step),
        Metadata::new(),
    );
}

/// Emits around several awaits and reports whether the task changed threads meanwhile.
async fn hop_around() -> String {
    let mut threads: Vec<ThreadId> = vec![std::thread::current().id()];
    for step in 0..6 {
        signal(step);
        if step % 2 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else {
            tokio::task::yield_now().await;
        }
        threads.push(std::thread::current().id());
    }
    let migrated = threads.windows(2).any(|w| w[0] != w[1]);
    migrated.to_string()
}

#[test]
fn concurrent_requests_keep_their_own_context_across_awaits_and_workers() {
    let (registry, capture) = support::capture();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    let mut migrations = 0;
    let mut rounds = 0;
    // Migration is up to the scheduler: repeat (bounded) until some task moved, so the
    // property is checked on tasks that really changed threads.
    while migrations == 0 && rounds < 20 {
        rounds += 1;
        migrations += rt.block_on(async {
            let app = Router::new()
                .route("/", get(hop_around))
                .layer(RequestContextLayer::new());
            let mut tasks = Vec::new();
            for i in 0..64u32 {
                let mut svc = app.clone();
                tasks.push(tokio::spawn(async move {
                    let peer = SocketAddr::from(([10, 0, (i / 250) as u8, (i % 250) as u8], 40000));
                    let mut req = Request::builder()
                        .uri("/")
                        .header("x-request-id", format!("req-{rounds}-{i}"))
                        .body(Body::empty())
                        .unwrap();
                    req.extensions_mut().insert(PeerAddr(peer));
                    let response = svc.call(req).await.unwrap();
                    let body = axum::body::to_bytes(response.into_body(), 1024)
                        .await
                        .unwrap();
                    // The response future's context never stays on the worker afterwards.
                    assert!(RequestContext::current().is_none());
                    body == "true"
                }));
            }
            let mut migrated = 0;
            for t in tasks {
                migrated += u32::from(t.await.unwrap());
            }
            migrated
        });
    }
    assert!(migrations > 0, "no task changed worker in {rounds} rounds");

    let events = capture.events();
    let mut per_request: HashMap<String, usize> = HashMap::new();
    for e in events.iter().filter(|e| e.name == "security.rate_limited") {
        let id = e
            .field(REQUEST_ID_KEY)
            .unwrap_or_else(|| panic!("a request's signal lost its context: {e:?}"));
        let i: u32 = id.rsplit('-').next().unwrap().parse().unwrap();
        let want = format!("10.0.{}.{}", i / 250, i % 250);
        assert_eq!(e.field("client_ip"), Some(want.as_str()), "{id}");
        *per_request.entry(id.to_owned()).or_default() += 1;
    }
    assert_eq!(per_request.len(), 64 * rounds);
    assert!(per_request.values().all(|n| *n == 6));
}

#[test]
fn tasks_the_request_did_not_scope_do_not_inherit_it() {
    let (registry, capture) = support::capture();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    rt.block_on(async {
        // A background task running alongside requests, emitting on the same workers.
        let stop = Arc::new(tokio::sync::Notify::new());
        let background = {
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    signal(100);
                    tokio::select! {
                        _ = stop.notified() => break,
                        _ = tokio::time::sleep(Duration::from_micros(200)) => {}
                    }
                }
            })
        };
        async fn handler() -> &'static str {
            // Spawned from inside the request without `scope`: not the request's.
            tokio::spawn(async { signal(200) }).await.unwrap();
            // Spawned with the request's context: the request's.
            let ctx = RequestContext::current().unwrap();
            tokio::spawn(ctx.scope(async { signal(300) }))
                .await
                .unwrap();
            hop_around().await;
            "ok"
        }
        let app = Router::new()
            .route("/", get(handler))
            .layer(RequestContextLayer::new());
        let mut tasks = Vec::new();
        for i in 0..16u8 {
            let mut svc = app.clone();
            tasks.push(tokio::spawn(async move {
                let mut req = Request::builder()
                    .uri("/")
                    .header("x-request-id", format!("r{i}"))
                    .body(Body::empty())
                    .unwrap();
                req.extensions_mut()
                    .insert(PeerAddr(SocketAddr::from(([192, 0, 2, i], 1))));
                svc.call(req).await.unwrap()
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        stop.notify_one();
        background.await.unwrap();
    });
    let events = capture.events();
    let count = |n| {
        events
            .iter()
            .filter(move |e| e.measurements.count == Some(n))
    };
    assert!(count(100).count() > 0);
    for e in count(100).chain(count(200)) {
        assert_eq!(e.field("client_ip"), None, "{e:?}");
        assert_eq!(e.field(REQUEST_ID_KEY), None, "{e:?}");
    }
    assert_eq!(count(200).count(), 16);
    assert_eq!(count(300).count(), 16);
    for e in count(300) {
        let id = e.field(REQUEST_ID_KEY).unwrap();
        let i: u8 = id[1..].parse().unwrap();
        assert_eq!(e.field("client_ip"), Some(format!("192.0.2.{i}").as_str()));
    }
}

#[test]
fn two_requests_in_flight_at_once_over_loopback_each_record_their_own_client() {
    let (registry, capture) = support::capture();
    let rt = support::runtime(&registry);
    let _scope = registry.enter();
    rt.block_on(async {
        // Both handlers wait for each other: they are certainly in flight together.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let app = Router::new()
            .route(
                "/",
                get(move || {
                    let barrier = barrier.clone();
                    async move {
                        signal(1);
                        barrier.wait().await;
                        signal(2);
                        "ok"
                    }
                }),
            )
            .layer(
                RequestContextLayer::new()
                    .trusted_proxies(["127.0.0.1"])
                    .unwrap(),
            );
        let addr = support::serve(app).await;
        let a = support::request(
            addr,
            "/",
            &[("X-Forwarded-For", "198.51.100.1"), ("X-Request-Id", "a")],
        );
        let b = support::request(
            addr,
            "/",
            &[("X-Forwarded-For", "2001:db8::2"), ("X-Request-Id", "b")],
        );
        let (ra, rb) = tokio::join!(a, b);
        assert_eq!((ra.0, rb.0), (200, 200));
    });
    let events = capture.events();
    let signals: Vec<_> = events
        .iter()
        .filter(|e| e.name == "security.rate_limited")
        .collect();
    assert_eq!(signals.len(), 4);
    for e in signals {
        let want = match e.field(REQUEST_ID_KEY) {
            Some("a") => "198.51.100.1",
            Some("b") => "2001:db8::2",
            other => panic!("unexpected request id {other:?}"),
        };
        assert_eq!(e.field("client_ip"), Some(want));
    }
}

#[test]
fn a_panicking_handler_leaves_no_context_on_the_thread_that_polled_it() {
    let (registry, capture) = support::capture();
    let _scope = registry.enter();
    async fn boom() -> &'static str {
        signal(1);
        tokio::task::yield_now().await;
        signal(2);
        panic!("handler bug")
    }
    let mut svc = Router::new()
        .route("/", get(boom))
        .layer(RequestContextLayer::new());
    let mut req = Request::builder().uri("/").body(Body::empty()).unwrap();
    req.extensions_mut()
        .insert(PeerAddr(SocketAddr::from(([192, 0, 2, 1], 1))));
    // Polled on this very thread, so a context left installed would show right here.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(svc.call(req))));
    assert!(outcome.is_err(), "the handler's panic reached the caller");
    assert!(RequestContext::current().is_none());
    signal(9);
    let events = capture.events();
    let ip_of = |n| {
        events
            .iter()
            .find(|e| e.measurements.count == Some(n))
            .map(|e| e.field("client_ip").map(str::to_owned))
    };
    assert_eq!(ip_of(1), Some(Some("192.0.2.1".to_owned())));
    assert_eq!(ip_of(2), Some(Some("192.0.2.1".to_owned())));
    assert_eq!(ip_of(9), Some(None));
}
