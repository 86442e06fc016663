//! Requeue and purge change state: they are POST only (GET → 405), and without this
//! session's CSRF token — missing, wrong, another session's, a bare bearer token, or a
//! cross-site request — they are refused with 403 and nothing changes.

mod support;

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;
use support::{Fixture, TOKEN, login, request};

/// A refused attempt: what is wrong, its headers and its form body.
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, String);

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_needs_the_sessions_csrf_token() {
    let f = Fixture::start("csrf-requeue").await;
    f.record(&[
        login("u_1", Outcome::Failure),
        login("u_2", Outcome::Success),
    ])
    .await;
    f.kill_deliveries().await;
    assert_eq!(f.dead().await, 2);
    let (cookie, csrf) = f.login().await;
    let (other_cookie, other_csrf) = f.login().await;
    assert_ne!(csrf, other_csrf);
    let auth = format!("Bearer {TOKEN}");
    let refused: Vec<Attempt<'_>> = vec![
        (
            "missing",
            vec![("cookie", &cookie), ("content-type", FORM)],
            "forwarder=siem".into(),
        ),
        (
            "empty",
            vec![("cookie", &cookie), ("content-type", FORM)],
            "forwarder=siem&csrf=".into(),
        ),
        (
            "wrong",
            vec![("cookie", &cookie), ("content-type", FORM)],
            format!("forwarder=siem&csrf={}", "0".repeat(64)),
        ),
        (
            "another session's",
            vec![("cookie", &cookie), ("content-type", FORM)],
            format!("forwarder=siem&csrf={other_csrf}"),
        ),
        (
            "bearer only",
            vec![("authorization", &auth), ("content-type", FORM)],
            format!("forwarder=siem&csrf={csrf}"),
        ),
        (
            "cross-site",
            vec![
                ("cookie", &cookie),
                ("content-type", FORM),
                ("sec-fetch-site", "cross-site"),
            ],
            format!("forwarder=siem&csrf={csrf}"),
        ),
    ];
    for (what, headers, body) in &refused {
        let r = request(f.addr, "POST", "/outbox/requeue", headers, body).await;
        assert_eq!(r.status, 403, "{what} CSRF token: {r:?}");
        assert!(r.body.contains("nothing was changed"), "{what}: {}", r.body);
        assert_eq!(
            f.dead().await,
            2,
            "{what} CSRF token: the dead entries stay dead"
        );
    }
    for path in [
        "/outbox/requeue?forwarder=siem",
        "/purge?older_than=1s&confirm=yes",
    ] {
        let r = request(f.addr, "GET", path, &[("cookie", &cookie)], "").await;
        assert_eq!(r.status, 405, "GET {path}");
    }
    assert_eq!(f.dead().await, 2);
    let _ = other_cookie;
    let ok = request(
        f.addr,
        "POST",
        "/outbox/requeue",
        &[
            ("cookie", &cookie),
            ("content-type", FORM),
            ("sec-fetch-site", "same-origin"),
        ],
        &format!("forwarder=siem&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(ok.body.contains("Requeued 2 dead entries"), "{}", ok.body);
    assert_eq!(f.dead().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_needs_the_csrf_token_and_is_a_dry_run_unless_confirmed() {
    let f = Fixture::start("csrf-purge").await;
    let mut old = login("u_old", Outcome::Success);
    old = old.with_occurred_at(Timestamp::from_unix_micros(
        Timestamp::now().unix_micros() - 10 * 86_400_000_000,
    ));
    f.record(&[old]).await;
    // Delivered-or-dead rows are purgeable; pending ones are kept.
    f.kill_deliveries().await;
    let rows = || async {
        f.store
            .query(&authtel_sql::AuditQuery::new())
            .await
            .unwrap()
            .events
            .len()
    };
    assert_eq!(rows().await, 1);
    let (cookie, csrf) = f.login().await;
    let wrong = request(
        f.addr,
        "POST",
        "/purge",
        &[("cookie", &cookie), ("content-type", FORM)],
        "older_than=1d&confirm=yes&csrf=nope",
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(rows().await, 1, "a refused purge deletes nothing");
    let dry = request(
        f.addr,
        "POST",
        "/purge",
        &[("cookie", &cookie), ("content-type", FORM)],
        &format!("older_than=1d&csrf={csrf}"),
    )
    .await;
    assert_eq!(dry.status, 200, "{dry:?}");
    assert!(
        dry.body.contains("Would delete 1 audit rows"),
        "{}",
        dry.body
    );
    assert_eq!(rows().await, 1, "a dry run deletes nothing");
    let bad = request(
        f.addr,
        "POST",
        "/purge",
        &[("cookie", &cookie), ("content-type", FORM)],
        &format!("older_than=forever&confirm=yes&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("90d"),
        "the error says how to write an age: {}",
        bad.body
    );
    let real = request(
        f.addr,
        "POST",
        "/purge",
        &[("cookie", &cookie), ("content-type", FORM)],
        &format!("older_than=1d&confirm=yes&csrf={csrf}"),
    )
    .await;
    assert_eq!(real.status, 200, "{real:?}");
    assert!(real.body.contains("Deleted 1 audit rows"), "{}", real.body);
    assert_eq!(rows().await, 0);
}
