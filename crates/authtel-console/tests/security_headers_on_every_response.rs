//! Every response — pages, assets, the event stream, and every error (400, 401, 403, 404,
//! 405) — carries the CSP, X-Frame-Options, Cache-Control, nosniff and Referrer-Policy.

mod support;

use support::{Fixture, Response, Sse, TOKEN, request};

/// A request: method, path, headers, and the status it must get.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);

fn assert_secured(what: &str, r: &Response) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP: {r:?}"));
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{what}: {csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let f = Fixture::start("headers").await;
    let auth = format!("Bearer {TOKEN}");
    let cases: Vec<Case<'_>> = vec![
        ("GET", "/", vec![("authorization", &auth)], 200),
        (
            "GET",
            "/search?actor=u_1",
            vec![("authorization", &auth)],
            200,
        ),
        (
            "GET",
            "/search?ip=not-an-ip",
            vec![("authorization", &auth)],
            400,
        ),
        (
            "GET",
            "/search?after=garbage",
            vec![("authorization", &auth)],
            400,
        ),
        (
            "GET",
            "/records/not-a-uuid?at=1",
            vec![("authorization", &auth)],
            400,
        ),
        (
            "GET",
            "/records/0190a5f2-7d1c-7a3b-8e4f-0123456789ab?at=1",
            vec![("authorization", &auth)],
            404,
        ),
        ("GET", "/timeline", vec![("authorization", &auth)], 200),
        ("GET", "/timeline.svg", vec![("authorization", &auth)], 200),
        ("GET", "/outbox", vec![("authorization", &auth)], 200),
        ("GET", "/detections", vec![("authorization", &auth)], 200),
        ("GET", "/login", vec![], 200),
        ("GET", "/assets/console.js", vec![], 200),
        ("GET", "/assets/console.css", vec![], 200),
        ("GET", "/no/such/page", vec![("authorization", &auth)], 404),
        ("GET", "/no/such/page", vec![], 404),
        ("GET", "/search", vec![], 401),
        (
            "GET",
            "/search",
            vec![("authorization", "Bearer wrong-wrong-wrong-wrong")],
            403,
        ),
        ("GET", "/purge", vec![("authorization", &auth)], 405),
        (
            "GET",
            "/outbox/requeue",
            vec![("authorization", &auth)],
            405,
        ),
        (
            "POST",
            "/purge",
            vec![
                ("authorization", &auth),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            403,
        ),
        (
            "POST",
            "/login",
            vec![("content-type", "application/x-www-form-urlencoded")],
            422,
        ),
    ];
    for (method, path, headers, status) in &cases {
        let r = request(f.addr, method, path, headers, "").await;
        assert_eq!(r.status, *status, "{method} {path}: {r:?}");
        assert_secured(&format!("{method} {path} ({status})"), &r);
    }
    let sse = Sse::open(f.addr, "/stream/events", &[]).await;
    assert_eq!(sse.status, 200);
    let r = Response {
        status: sse.status,
        headers: sse.headers.clone(),
        body: String::new(),
    };
    assert_secured("the event stream", &r);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let js = request(f.addr, "GET", "/assets/console.js", &[], "").await;
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.body.contains("EventSource"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_load_their_script_from_a_file_never_inline() {
    let f = Fixture::start("noinline").await;
    for page in [
        "/",
        "/search",
        "/timeline",
        "/outbox",
        "/detections",
        "/login",
    ] {
        let r = f.get(page).await;
        assert_eq!(r.status, 200, "{page}");
        assert_eq!(
            r.body.matches("<script").count(),
            1,
            "{page}: one script tag"
        );
        assert!(
            r.body
                .contains("<script src=\"/assets/console.js\" defer></script>"),
            "{page}"
        );
        assert!(!r.body.contains(" style=\""), "{page}: no inline style");
        assert!(!r.body.contains(" onclick="), "{page}: no inline handlers");
    }
}
