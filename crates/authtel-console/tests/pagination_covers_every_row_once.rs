//! Following the search's "Next page" links visits every matching record exactly once,
//! including records that share a timestamp across a page boundary.

mod support;

use std::collections::HashSet;

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;
use support::{Fixture, between, login, record, record_links};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_page_links_cover_every_row_once() {
    let f = Fixture::start("pages").await;
    let t = Timestamp::now();
    let mut all = Vec::new();
    for i in 0..137 {
        let mut e = login(
            if i % 3 == 0 { "u_other" } else { "u_pager" },
            Outcome::Success,
        );
        // Runs of 9 records share one timestamp, so ties straddle page boundaries.
        e = e.with_occurred_at(Timestamp::from_unix_micros(
            t.unix_micros() - 1_000_000 + (i / 9) as i64,
        ));
        all.push(e);
    }
    f.record(&all).await;
    let want: HashSet<String> = all
        .iter()
        .filter(|e| e.actor().unwrap().id == "u_pager")
        .map(|e| e.id().to_string())
        .collect();
    let mut seen = Vec::new();
    let mut path = "/search?actor=u_pager&limit=10".to_owned();
    for _ in 0..50 {
        let page = f.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {page:?}");
        let links = record_links(&page.body);
        assert!(links.len() <= 10);
        seen.extend(links);
        match between(&page.body, "id=\"next-page\" href=\"", "\"") {
            Some(next) => path = next.replace("&amp;", "&"),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), want.len(), "each record once");
    assert_eq!(unique, want, "every matching record, nothing else");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_opens_in_its_detail_view() {
    let f = Fixture::start("detail").await;
    let mut e = login("u_detail", Outcome::Failure);
    e = e.with_reason("bad password");
    e = e
        .with_metadata("method", serde_json::json!("password"))
        .unwrap();
    f.record(std::slice::from_ref(&e)).await;
    let search = f.get("/search?actor=u_detail&outcome=failure").await;
    let href = between(&search.body, "href=\"/records/", "\"")
        .unwrap()
        .replace("&amp;", "&");
    let detail = f.get(&format!("/records/{href}")).await;
    assert_eq!(detail.status, 200);
    for want in [
        e.id().to_string().as_str(),
        "u_detail (user)",
        "bad password",
        "192.0.2.7",
        "&quot;method&quot;: &quot;password&quot;",
    ] {
        assert!(
            detail.body.contains(want),
            "detail shows {want}: {}",
            detail.body
        );
    }
    let missing = f.get(&format!("/records/{}?at=1", e.id())).await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("purged"), "{}", missing.body);
    let no_at = f.get(&format!("/records/{}", e.id())).await;
    assert_eq!(no_at.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_counts_per_series_and_the_outbox_shows_health() {
    let f = Fixture::start("timeline").await;
    let lock = record("security.lockout", "u_t", Outcome::Denied);
    f.record(&[
        login("u_t", Outcome::Success),
        login("u_t", Outcome::Failure),
        login("u_t", Outcome::Failure),
        lock,
    ])
    .await;
    let svg = f.get("/timeline.svg?minutes=15").await;
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    for (series, total) in [
        ("logins", 1),
        ("failures", 2),
        ("lockouts", 1),
        ("denials", 1),
    ] {
        let want = format!("data-series=\"{series}\" data-total=\"{total}\"");
        assert!(svg.body.contains(&want), "{want} in {}", svg.body);
    }
    let page = f.get("/timeline").await;
    assert!(page.body.contains("<svg"));
    f.kill_deliveries().await;
    let outbox = f.get("/outbox").await;
    assert!(outbox.body.contains("<td>siem</td>"), "{}", outbox.body);
    assert!(outbox.body.contains("Requeue 4 dead"), "{}", outbox.body);
    assert!(
        outbox.body.contains("refused"),
        "the dead letters show their last error"
    );
    let detections = f.get("/detections").await;
    assert!(
        detections.body.contains("1 security signals"),
        "{}",
        detections.body
    );
}
