//! Reading the audit history is itself audited: every page an admitted reader opens is an
//! `audit.history.read` record, every requeue an `audit.requeue` and every purge (dry runs
//! too) an `audit.purge`, with the reader as actor. Refused requests record nothing and
//! change nothing.

mod support;

use authtel_core::outcome::Outcome;
use authtel_sql::AuditQuery;
use support::{Fixture, login, request};

const FORM: &str = "application/x-www-form-urlencoded";

async fn records_of(f: &Fixture, action: &str) -> Vec<authtel_core::audit::AuditEvent> {
    f.store
        .query(&AuditQuery::new().action(action))
        .await
        .unwrap()
        .events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_and_action_leaves_a_record_naming_the_reader() {
    let f = Fixture::start_with("self-audit", true).await;
    f.record(&[login("u_1", Outcome::Failure)]).await;
    f.kill_deliveries().await;
    let page = f.get("/search?actor=u_1").await;
    assert_eq!(page.status, 200);
    let reads = records_of(&f, authtel_console::HISTORY_READ).await;
    assert_eq!(reads.len(), 1, "{reads:?}");
    let r = &reads[0];
    assert_eq!(r.actor().unwrap().id, authtel_console::TOKEN_READER);
    assert_eq!(r.actor().unwrap().kind, authtel_console::READER_TYPE);
    assert_eq!(r.resource(), Some("/search?actor=u_1"));
    // Refused reads are not recorded as reads.
    assert_eq!(request(f.addr, "GET", "/search", &[], "").await.status, 401);
    assert_eq!(records_of(&f, authtel_console::HISTORY_READ).await.len(), 1);

    let (cookie, csrf) = f.login().await; // reads /outbox
    let refused = request(
        f.addr,
        "POST",
        "/outbox/requeue",
        &[("cookie", &cookie), ("content-type", FORM)],
        "forwarder=siem&csrf=bad",
    )
    .await;
    assert_eq!(refused.status, 403);
    assert!(
        records_of(&f, authtel_console::REQUEUE).await.is_empty(),
        "a refused requeue records nothing"
    );
    let ok = request(
        f.addr,
        "POST",
        "/outbox/requeue",
        &[("cookie", &cookie), ("content-type", FORM)],
        &format!("forwarder=siem&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    let requeues = records_of(&f, authtel_console::REQUEUE).await;
    assert_eq!(requeues.len(), 1);
    assert_eq!(requeues[0].reason(), Some("requeued 1 dead entries"));
    assert_eq!(requeues[0].resource(), Some("outbox/forwarder siem"));
    let dry = request(
        f.addr,
        "POST",
        "/purge",
        &[("cookie", &cookie), ("content-type", FORM)],
        &format!("older_than=30d&csrf={csrf}"),
    )
    .await;
    assert_eq!(dry.status, 200);
    let purges = records_of(&f, authtel_console::PURGE).await;
    assert_eq!(purges.len(), 1);
    assert_eq!(purges[0].operation(), Some("dry_run"));
    assert_eq!(purges[0].outcome(), Outcome::Success);
    assert_eq!(
        records_of(&f, authtel_console::HISTORY_READ).await.len(),
        2,
        "search + the outbox page"
    );
}
