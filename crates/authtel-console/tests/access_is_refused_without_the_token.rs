//! The console is a security boundary: no credentials → 401, wrong credentials → 403,
//! the right token (header or login form) → 200; it will not build without an access
//! policy nor listen beyond loopback unless told to.

mod support;

use authtel_audit::{AccessDenied, Reader};
use authtel_console::{Authorizer, Console, ConsoleError, Refusal};
use support::{Fixture, TOKEN, request};

const PAGES: [&str; 8] = [
    "/",
    "/search",
    "/records/0190a5f2-7d1c-7a3b-8e4f-0123456789ab?at=1",
    "/timeline",
    "/timeline.svg",
    "/outbox",
    "/detections",
    "/stream/events",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_is_401_without_credentials_and_403_with_a_wrong_token() {
    let f = Fixture::start("access").await;
    for page in PAGES {
        let r = request(f.addr, "GET", page, &[], "").await;
        assert_eq!(r.status, 401, "{page} without credentials: {r:?}");
        assert!(r.body.contains("not logged in"), "{page}: {}", r.body);
        assert!(r.header("www-authenticate").is_some());
        let wrong = request(
            f.addr,
            "GET",
            page,
            &[("authorization", "Bearer test-token-0123456789abcdeX")],
            "",
        )
        .await;
        assert_eq!(wrong.status, 403, "{page} with a wrong token: {wrong:?}");
        let short = request(f.addr, "GET", page, &[("authorization", "Bearer t")], "").await;
        assert_eq!(short.status, 403, "{page} with a prefix of the token");
        let basic = request(
            f.addr,
            "GET",
            page,
            &[("authorization", "Basic dXNlcjpwYXNz")],
            "",
        )
        .await;
        assert_eq!(basic.status, 401, "{page} with another scheme");
        let bogus_cookie = request(
            f.addr,
            "GET",
            page,
            &[("cookie", "authtel_console=deadbeef")],
            "",
        )
        .await;
        assert_eq!(bogus_cookie.status, 401, "{page} with an unknown session");
    }
    for page in &PAGES[..7] {
        let ok = f.get(page).await;
        assert!(
            ok.status == 200 || ok.status == 404,
            "{page} with the token: {ok:?}"
        );
    }
    // The POST routes refuse before looking at the form.
    for page in ["/outbox/requeue", "/purge", "/logout"] {
        let r = request(
            f.addr,
            "POST",
            page,
            &[("content-type", "application/x-www-form-urlencoded")],
            "forwarder=siem",
        )
        .await;
        assert_eq!(r.status, 401, "POST {page}: {r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_form_sets_a_strict_http_only_session_cookie() {
    let f = Fixture::start("login").await;
    let form = request(f.addr, "GET", "/login", &[], "").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"token\""));
    let wrong = request(
        f.addr,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        "token=wrong-token-0123456789",
    )
    .await;
    assert_eq!(wrong.status, 403, "{wrong:?}");
    assert!(wrong.header("set-cookie").is_none());
    let ok = request(
        f.addr,
        "POST",
        "/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}"),
    )
    .await;
    assert_eq!(ok.status, 303);
    let cookie = ok.header("set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(
        !cookie.contains(TOKEN),
        "the cookie is a session id, not the token"
    );
    let (session, csrf) = f.login().await;
    assert_eq!(csrf.len(), 64);
    let page = request(f.addr, "GET", "/search", &[("cookie", &session)], "").await;
    assert_eq!(page.status, 200);
    // Logging out ends the session.
    let out = request(
        f.addr,
        "POST",
        "/logout",
        &[
            ("cookie", &session),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={csrf}"),
    )
    .await;
    assert_eq!(out.status, 303, "{out:?}");
    let after = request(f.addr, "GET", "/search", &[("cookie", &session)], "").await;
    assert_eq!(after.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_access_policy_no_weak_token_no_remote_listening() {
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .unwrap();
    let store = authtel_sql::AuditStore::builder(pool).build();
    let e = Console::builder(store.clone()).build().unwrap_err();
    assert!(matches!(e, ConsoleError::NoAccessPolicy));
    assert!(e.to_string().contains("with_token"), "{e}");
    let e = Console::builder(store.clone())
        .with_token("abc")
        .unwrap_err();
    assert!(matches!(e, ConsoleError::WeakToken { len: 3 }), "{e}");
    let e = authtel_console::bind("0.0.0.0:0".parse().unwrap(), false)
        .await
        .unwrap_err();
    assert!(matches!(e, ConsoleError::NotLoopback { .. }), "{e}");
    assert!(
        authtel_console::bind("[::1]:0".parse().unwrap(), false)
            .await
            .is_ok()
            || std::net::TcpListener::bind("[::1]:0").is_err()
    );
}

/// Admits requests with `x-admin: <id>`; `x-admin: intern` is admitted without a role.
#[derive(Debug)]
struct HeaderAuthorizer;

impl Authorizer for HeaderAuthorizer {
    fn authorize(&self, request: &axum::http::request::Parts) -> Result<Reader, Refusal> {
        match request.headers.get("x-admin").and_then(|v| v.to_str().ok()) {
            Some("intern") => Ok(Reader::new("intern")),
            Some(id) => Ok(Reader::new(id).with_role("admin")),
            None => Err(Refusal::Unauthenticated("no x-admin header".into())),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_authorizer_and_the_history_access_policy_decide() {
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .unwrap();
    let store = authtel_sql::AuditStore::builder(pool).build();
    store.migrate().await.unwrap();
    let console = Console::builder(store)
        .with_authorizer(HeaderAuthorizer)
        .with_access_policy(authtel_audit::policy_fn(|r: &Reader| {
            if r.id() == "mallory" {
                Err(AccessDenied::new(r.id(), "mallory is suspended"))
            } else {
                authtel_audit::AccessPolicy::check(&authtel_audit::RequireRole::admin(), r)
            }
        }))
        .build()
        .unwrap();
    let listener = authtel_console::bind("127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(console.serve_on(listener, std::future::pending()));
    assert_eq!(request(addr, "GET", "/search", &[], "").await.status, 401);
    let intern = request(addr, "GET", "/search", &[("x-admin", "intern")], "").await;
    assert_eq!(intern.status, 403);
    assert!(
        intern.body.contains("lacks the &quot;admin&quot; role"),
        "{}",
        intern.body
    );
    let mallory = request(addr, "GET", "/search", &[("x-admin", "mallory")], "").await;
    assert_eq!(mallory.status, 403);
    assert!(mallory.body.contains("suspended"));
    let ops = request(addr, "GET", "/outbox", &[("x-admin", "ops")], "").await;
    assert_eq!(ops.status, 200);
    // The authorizer's reader got a session, so its forms carry a CSRF token.
    assert!(
        ops.header("set-cookie")
            .is_some_and(|c| c.contains("SameSite=Strict"))
    );
    assert!(ops.body.contains("name=\"csrf\""));
    // That session's CSRF token lets the same reader change state...
    let cookie = ops
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = support::between(&ops.body, "name=\"csrf\" value=\"", "\"")
        .unwrap()
        .to_owned();
    let form = [
        ("x-admin", "ops"),
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let ok = request(
        addr,
        "POST",
        "/outbox/requeue",
        &form,
        &format!("forwarder=siem&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("Requeued 0 dead entries"));
    // ...but the cookie does not outlive the application's word: presented by someone the
    // authorizer says is another reader, it is not ops's session any more.
    let stolen = [
        ("x-admin", "intern"),
        ("cookie", cookie.as_str()),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let r = request(
        addr,
        "POST",
        "/outbox/requeue",
        &stolen,
        &format!("forwarder=siem&csrf={csrf}"),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    let gone = [("cookie", cookie.as_str())];
    assert_eq!(
        request(addr, "GET", "/outbox", &gone, "").await.status,
        401,
        "no authorizer identity, no access"
    );
    // A bearer token means nothing to a console without one.
    let bearer = request(
        addr,
        "GET",
        "/search",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .await;
    assert_eq!(bearer.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_under_a_path_its_links_and_cookie_point_there() {
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .unwrap();
    let store = authtel_sql::AuditStore::builder(pool).build();
    store.migrate().await.unwrap();
    let console = Console::builder(store)
        .with_token(TOKEN)
        .unwrap()
        .mounted_at("/ops/audit")
        .unwrap()
        .with_self_audit(false)
        .build()
        .unwrap();
    let app = axum::Router::new().nest("/ops/audit", console.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let login = request(
        addr,
        "POST",
        "/ops/audit/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        &format!("token={TOKEN}"),
    )
    .await;
    assert_eq!(login.status, 303, "{login:?}");
    assert_eq!(login.header("location"), Some("/ops/audit/"));
    assert!(
        login
            .header("set-cookie")
            .unwrap()
            .contains("Path=/ops/audit;")
    );
    let page = request(
        addr,
        "GET",
        "/ops/audit/search",
        &[("authorization", &format!("Bearer {TOKEN}"))],
        "",
    )
    .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("href=\"/ops/audit/timeline\""));
    assert!(page.body.contains("src=\"/ops/audit/assets/console.js\""));
    assert!(page.body.contains("action=\"/ops/audit/search\""));
    assert_eq!(
        request(addr, "GET", "/ops/audit/assets/console.css", &[], "")
            .await
            .status,
        200
    );
    assert!(
        Console::builder(
            authtel_sql::AuditStore::builder(
                authtel_sql::sqlite::connect("sqlite::memory:")
                    .await
                    .unwrap()
            )
            .build()
        )
        .mounted_at("/a//b")
        .is_err()
    );
}
