//! The live stream over real HTTP: records committed after connecting arrive; after a
//! disconnect, reconnecting with `Last-Event-ID` delivers exactly the records committed
//! meanwhile — none twice, none missing — even while writers keep committing and the reader
//! keeps reconnecting.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use authtel_core::outcome::Outcome;
use support::{Fixture, Sse, event_record_id, login, request};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_with_last_event_id_gets_exactly_the_missed_records() {
    let f = Fixture::start("sse-resume").await;
    // Records from before the connection are not replayed to a fresh stream.
    f.record(&[login("before", Outcome::Success)]).await;
    let mut sse = Sse::open(f.addr, "/stream/events", &[]).await;
    assert_eq!(sse.status, 200);
    let first: Vec<_> = (0..5)
        .map(|i| login(&format!("a{i}"), Outcome::Success))
        .collect();
    for e in &first {
        f.record(std::slice::from_ref(e)).await;
    }
    let got = sse.audit_events(5, WAIT).await;
    let ids: Vec<String> = got.iter().map(event_record_id).collect();
    let want: Vec<String> = first.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(ids, want, "live events arrive once each, in commit order");
    let seqs: Vec<u64> = got
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "event ids grow: {seqs:?}"
    );
    let last = got.last().unwrap().id.clone().unwrap();
    drop(sse);

    let missed: Vec<_> = (0..7)
        .map(|i| login(&format!("b{i}"), Outcome::Failure))
        .collect();
    f.record(&missed[..3]).await;
    f.record(&missed[3..]).await;
    let mut again = Sse::open(f.addr, "/stream/events", &[("last-event-id", &last)]).await;
    let got = again.audit_events(8, Duration::from_millis(1500)).await;
    let ids: Vec<String> = got.iter().map(event_record_id).collect();
    let want: Vec<String> = missed.iter().map(|e| e.id().to_string()).collect();
    assert_eq!(
        ids, want,
        "exactly the missed records, in order, no duplicates"
    );
    // And the resumed stream keeps following.
    let next = login("c", Outcome::Success);
    f.record(std::slice::from_ref(&next)).await;
    let got = again.audit_events(1, WAIT).await;
    assert_eq!(
        got.iter().map(event_record_id).collect::<Vec<_>>(),
        vec![next.id().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_keeps_reconnecting_during_concurrent_writes_sees_every_record_once() {
    let f = std::sync::Arc::new(Fixture::start("sse-churn").await);
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let f = f.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..40 {
                    let e = login(&format!("w{w}-{i}"), Outcome::Success);
                    ids.push(e.id().to_string());
                    f.record(&[e]).await;
                }
                ids
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut last: Option<String> = Some("0".to_owned());
    // Reconnect after every 7 events until all 160 arrived (bounded).
    for _ in 0..100 {
        let headers: Vec<(&str, &str)> =
            last.iter().map(|l| ("last-event-id", l.as_str())).collect();
        let mut sse = Sse::open(f.addr, "/stream/events", &headers).await;
        let got = sse.audit_events(7, Duration::from_secs(2)).await;
        if let Some(e) = got.last() {
            last = e.id.clone();
        }
        seen.extend(got.iter().map(event_record_id));
        if seen.len() >= 160 {
            break;
        }
    }
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    assert_eq!(
        seen.len(),
        160,
        "every record arrived exactly once (no more, no fewer)"
    );
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    assert_eq!(unique, written, "no gaps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_last_event_id_is_a_clear_400() {
    let f = Fixture::start("sse-bad-id").await;
    let auth = format!("Bearer {}", support::TOKEN);
    let r = request(
        f.addr,
        "GET",
        "/stream/events",
        &[("authorization", &auth), ("last-event-id", "abc")],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("is not a stream position"), "{}", r.body);
    // `?after=` starts a first connection at a known position.
    f.record(&[login("x", Outcome::Success)]).await;
    let mut sse = Sse::open(f.addr, "/stream/events?after=0", &[]).await;
    assert_eq!(sse.audit_events(1, WAIT).await.len(), 1);
    // A position from another (or a rebuilt) database, past the newest record, starts at the
    // newest record: the next commit arrives instead of silence.
    let mut from_elsewhere =
        Sse::open(f.addr, "/stream/events", &[("last-event-id", "999999")]).await;
    let next = login("y", Outcome::Success);
    f.record(std::slice::from_ref(&next)).await;
    let got = from_elsewhere.audit_events(1, WAIT).await;
    assert_eq!(
        got.iter().map(event_record_id).collect::<Vec<_>>(),
        vec![next.id().to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_browsers_each_get_every_record() {
    let f = Fixture::start("sse-fanout").await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(Sse::open(f.addr, "/stream/events", &[]).await);
    }
    let records: Vec<_> = (0..5)
        .map(|i| login(&format!("fan{i}"), Outcome::Success))
        .collect();
    let want: Vec<String> = records.iter().map(|e| e.id().to_string()).collect();
    let committed = std::time::Instant::now();
    f.record(&records).await;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { c.audit_events(5, WAIT).await }))
        .collect();
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!(got.iter().map(event_record_id).collect::<Vec<_>>(), want);
    }
    eprintln!(
        "5 records reached 100 SSE clients {:?} after commit",
        committed.elapsed()
    );
}
