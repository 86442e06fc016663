// The one suite, compiled once per backend module (sqlite_suite, postgres_suite), which
// provide `Db`, `store(name, forwarders)`, `fresh_store(name, forwarders)`, `dump_tables`,
// `count_rows` and `delete_event`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::forward::{ErrorKind, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditQuery, BatchWriter, Relay, RelayConfig, RetryPolicy, SqlError};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

fn fast_retry(max: u32) -> RelayConfig {
    RelayConfig::default()
        .with_lease(Duration::from_secs(30))
        .with_retry(RetryPolicy::new(
            max,
            Duration::from_millis(1),
            Duration::from_millis(5),
        ))
}

async fn drive(relay: &Relay<Db>, until: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !until() {
        relay.run_once().await.unwrap();
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

macro_rules! store_or_skip {
    ($name:expr, $fwd:expr) => {
        match store($name, $fwd).await {
            Some(s) => s,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_is_idempotent_and_checked() {
    let Some(store) = fresh_store("migrate", &["kafka"]).await else {
        return;
    };
    assert!(matches!(
        store.check_schema().await,
        Err(SqlError::SchemaOutdated {
            found: 0,
            expected: SCHEMA_VERSION
        })
    ));
    let e = event("auth.login.stop", Outcome::Success);
    let mut tx = store.begin().await.unwrap();
    let err = tx.record(&e).await.unwrap_err();
    assert!(matches!(err, SqlError::Database { .. }), "{err}");
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.check_schema().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_leaves_nothing_and_commit_keeps_both() {
    let store = store_or_skip!("rollback", &["kafka", "otlp"]);
    let rolled = event("auth.login.stop", Outcome::Success);
    let mut tx = store.begin().await.unwrap();
    tx.record(&rolled).await.unwrap();
    tx.rollback().await.unwrap();

    // A raw sqlx transaction, dropped without commit.
    let mut raw = store.pool().begin().await.unwrap();
    store.record_in(&mut raw, &rolled).await.unwrap();
    drop(raw);
    assert_eq!(count_rows(&store).await, (0, 0));

    let kept = event("auth.login.stop", Outcome::Success);
    let mut tx = store.begin().await.unwrap();
    tx.record(&kept).await.unwrap();
    let mut handed_on = Vec::new();
    let committed = tx
        .commit_then(|events| handed_on.extend(events.iter().map(|e| e.id())))
        .await
        .unwrap();
    assert_eq!(handed_on, [kept.id()]);
    assert_eq!(committed, std::slice::from_ref(&kept));
    assert_eq!(count_rows(&store).await, (1, 2));

    let kafka = shared(Recording::default());
    let otlp = shared(Recording::default());
    let relay = Relay::new(&store, RelayConfig::default())
        .with_forwarder("kafka", kafka.clone())
        .unwrap()
        .with_forwarder("otlp", otlp.clone())
        .unwrap();
    let pass = relay.run_once().await.unwrap();
    assert_eq!(pass.delivered, 2);
    assert_eq!(kafka.ids(), [kept.id()]);
    assert_eq!(otlp.ids(), [kept.id()]);
    assert_eq!(kafka.events.lock().unwrap()[0], kept);
    assert!(relay.with_forwarder("nope", kafka.clone()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_relay_delivers_every_committed_record() {
    let store = store_or_skip!("spawned", &["kafka", "otlp"]);
    let kafka = shared(Recording::default());
    let otlp = shared(Recording::default());
    let handle = Relay::new(
        &store,
        RelayConfig::default()
            .with_batch_size(7)
            .with_poll_interval(Duration::from_millis(20)),
    )
    .with_forwarder("kafka", kafka.clone())
    .unwrap()
    .with_forwarder("otlp", otlp.clone())
    .unwrap()
    .spawn();
    let mut expected = HashSet::new();
    for i in 0..40 {
        let mut tx = store.begin().await.unwrap();
        let e = event("auth.login.stop", Outcome::Success);
        expected.insert(e.id());
        tx.record(&e).await.unwrap();
        if i % 2 == 0 {
            tx.record(&e).await.unwrap(); // same id twice: one row, one entry per forwarder
        }
        tx.commit().await.unwrap();
    }
    eventually(WAIT, "both forwarders got 40 records", || async {
        kafka.len() == 40 && otlp.len() == 40
    })
    .await;
    assert_eq!(kafka.ids().into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(otlp.ids().into_iter().collect::<HashSet<_>>(), expected);
    eventually(WAIT, "outbox marked done", || async {
        let s = store.delivery_state().await.unwrap();
        s.iter().all(|f| f.pending == 0 && f.done == 40) && s.len() == 2
    })
    .await;
    // The counters are bumped at the end of a pass, just after the rows are marked.
    eventually(WAIT, "relay counters", || async {
        handle.stats().delivered.load(Ordering::Relaxed) == 80
    })
    .await;
    assert!(handle.shutdown(Duration::from_secs(30)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_retries_a_flaky_forwarder() {
    let store = store_or_skip!("flaky", &["kafka"]);
    let e = event("auth.login.stop", Outcome::Failure);
    let mut tx = store.begin().await.unwrap();
    tx.record(&e).await.unwrap();
    tx.commit().await.unwrap();
    let flaky = shared(Flaky {
        failures: 2,
        ..Flaky::default()
    });
    let relay = Relay::new(&store, fast_retry(5))
        .with_forwarder("kafka", flaky.clone())
        .unwrap();
    drive(&relay, || flaky.inner.len() == 1, "flaky delivery").await;
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
    assert_eq!(flaky.inner.ids(), [e.id()]);
    let state = store.delivery_state().await.unwrap();
    assert_eq!((state[0].pending, state[0].dead, state[0].done), (0, 0, 1));
    assert_eq!(relay.stats().retried.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_dead_letters_with_the_reason() {
    let store = store_or_skip!("dead", &["permanent", "transient"]);
    let e = event("auth.login.stop", Outcome::Failure);
    let mut tx = store.begin().await.unwrap();
    tx.record(&e).await.unwrap();
    tx.commit().await.unwrap();
    let relay = Relay::new(&store, fast_retry(3))
        .with_forwarder("permanent", Arc::new(Failing(ErrorKind::Permanent)))
        .unwrap()
        .with_forwarder("transient", Arc::new(Failing(ErrorKind::Transient)))
        .unwrap();
    drive(
        &relay,
        || relay.stats().dead.load(Ordering::Relaxed) == 2,
        "both dead-lettered",
    )
    .await;
    let perm = store.dead_letters("permanent", 10).await.unwrap();
    assert_eq!(perm.len(), 1);
    assert_eq!(perm[0].event_id, e.id());
    assert_eq!(perm[0].attempts, 1);
    assert!(perm[0].reason.contains("schema mismatch"), "{}", perm[0].reason);
    let trans = store.dead_letters("transient", 10).await.unwrap();
    assert_eq!(trans[0].attempts, 3);
    assert!(
        trans[0].reason.starts_with("gave up after 3 attempts"),
        "{}",
        trans[0].reason
    );
    let state = store.delivery_state().await.unwrap();
    assert!(state.iter().all(|s| s.dead == 1 && s.pending == 0));
    let health = store.health(Duration::from_secs(60)).await.unwrap();
    assert_eq!(health.dead, 2);
    assert_eq!(store.requeue_dead("transient").await.unwrap(), 1);
    let state = store.delivery_state().await.unwrap();
    let t = state.iter().find(|s| s.forwarder == "transient").unwrap();
    assert_eq!((t.pending, t.dead), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_crash_mid_batch_loses_nothing() {
    let store = store_or_skip!("crash", &["kafka"]);
    let mut ids = HashSet::new();
    for _ in 0..25 {
        let mut tx = store.begin().await.unwrap();
        let e = event("auth.login.stop", Outcome::Success);
        ids.insert(e.id());
        tx.record(&e).await.unwrap();
        tx.commit().await.unwrap();
    }
    let lease = Duration::from_millis(800);
    let hanging = shared(Hanging::default());
    let doomed = Relay::new(&store, RelayConfig::default().with_lease(lease))
        .with_forwarder("kafka", hanging.clone())
        .unwrap()
        .spawn();
    tokio::time::timeout(WAIT, hanging.entered.notified())
        .await
        .expect("the doomed relay claimed a batch");
    drop(doomed); // the relay dies between claim and mark-done
    let state = store.delivery_state().await.unwrap();
    assert_eq!(state[0].pending, 25, "claimed entries stay pending");

    let survivor = shared(Recording::default());
    let relay = Relay::new(&store, RelayConfig::default().with_lease(lease))
        .with_forwarder("kafka", survivor.clone())
        .unwrap();
    drive(&relay, || survivor.len() >= 25, "re-claim after the lease").await;
    let delivered = survivor.ids();
    assert_eq!(delivered.len(), 25, "each entry exactly once to the survivor");
    assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_relays_share_work_without_double_delivery() {
    let store = store_or_skip!("shared", &["kafka"]);
    let events: Vec<AuditEvent> = (0..300)
        .map(|_| event("auth.login.stop", Outcome::Success))
        .collect();
    for chunk in events.chunks(50) {
        let mut tx = store.begin().await.unwrap();
        for e in chunk {
            tx.record(e).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    let a = shared(Recording::default());
    let b = shared(Recording::default());
    let config = RelayConfig::default().with_batch_size(20);
    let ra = Relay::new(&store, config).with_forwarder("kafka", a.clone()).unwrap();
    let rb = Relay::new(&store, config).with_forwarder("kafka", b.clone()).unwrap();
    let run = |relay: Relay<Db>| {
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                let pass = relay.run_once().await.unwrap();
                if pass.claimed == 0 || std::time::Instant::now() > deadline {
                    break;
                }
            }
        })
    };
    let (x, y) = (run(ra), run(rb));
    x.await.unwrap();
    y.await.unwrap();
    let (ia, ib): (HashSet<_>, HashSet<_>) =
        (a.ids().into_iter().collect(), b.ids().into_iter().collect());
    assert_eq!(ia.len() + ib.len(), 300, "no entry delivered twice");
    assert!(ia.is_disjoint(&ib));
    let all: HashSet<_> = ia.union(&ib).copied().collect();
    assert_eq!(all, events.iter().map(|e| e.id()).collect::<HashSet<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writer_is_idempotent_on_event_id() {
    let store = store_or_skip!("batch", &[]);
    let batch: Vec<AuditEvent> = (0..1203)
        .map(|_| event("jwt.refresh.stop", Outcome::Success))
        .collect();
    let writer = BatchWriter::new(&store);
    writer.forward(&batch).await.unwrap();
    writer.forward(&batch).await.unwrap();
    writer.forward(&batch[..10]).await.unwrap();
    assert_eq!(count_rows(&store).await, (1203, 0));
    let mut tx = store.pool().begin().await.unwrap();
    let fresh = event("jwt.refresh.stop", Outcome::Success);
    let n = store
        .upsert_batch_in(&mut tx, &[batch[0].clone(), fresh.clone(), fresh])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n, 1);
    let page = store
        .query(&AuditQuery::new().limit(2000))
        .await
        .unwrap();
    assert_eq!(page.events.len(), 1204);
    let stored = page.events.iter().find(|e| e.id() == batch[7].id()).unwrap();
    assert_eq!(stored, &batch[7], "round trip is exact");
}

/// PostgreSQL loads batches with text COPY (escaped tabs, newlines, backslashes) and falls
/// back to an idempotent insert when part of a batch is already stored; SQLite binds. Either
/// way every value comes back byte for byte and every id is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_writer_round_trips_awkward_text_and_half_stored_batches() {
    let store = store_or_skip!("batch_text", &[]);
    let mut awkward = event("auth.login.stop", Outcome::Failure);
    // Identifiers refuse control characters (core policy); text columns keep them.
    awkward = awkward.with_actor(authtel_core::audit::Party::new("u\\1", "user\t\\"));
    awkward = awkward.with_reason("tab\there\nnewline\r\\N \\ \u{e9}\u{1f980}");
    awkward = awkward.with_user_agent("\\N");
    awkward = awkward.with_resource(String::new());
    awkward = awkward.with_metadata("quote", "\"\\\"\t\n").unwrap();
    awkward = awkward.with_metadata("nested", serde_json::json!({"list": ["\\N", "x\ty"], "n": -1.5})).unwrap();
    let mut batch: Vec<AuditEvent> = (0..40)
        .map(|_| event("token.generate.stop", Outcome::Success))
        .collect();
    let writer = BatchWriter::new(&store);
    writer.forward(&batch[..15]).await.unwrap();
    batch.push(awkward.clone());
    // Half stored already, plus a duplicate inside the batch itself.
    batch.push(batch[20].clone());
    writer.forward(&batch).await.unwrap();
    writer.forward(std::slice::from_ref(&awkward)).await.unwrap();
    // Year 12000: beyond what the RFC 3339 text form (JSON, Kafka, export) carries, so the
    // store refuses it with a typed error rather than keep what it cannot hand back.
    let far = at(
        event("auth.login.stop", Outcome::Success),
        Timestamp::from_unix_micros(316_000_000_000_000_000),
    );
    let outcome = writer.write(std::slice::from_ref(&far)).await.unwrap();
    assert!(
        matches!(
            outcome.refused[..],
            [authtel_sql::RefusedRecord {
                error: SqlError::InvalidEvent {
                    field: "occurred_at",
                    ..
                },
                ..
            }]
        ),
        "{outcome:?}"
    );
    assert_eq!(count_rows(&store).await, (41, 0));
    let stored = store.query(&AuditQuery::new().limit(100)).await.unwrap();
    let mut expected = batch[..41].to_vec();
    expected.sort_by_key(|e| (e.occurred_at(), e.id()));
    assert_eq!(stored.events, expected, "every record once, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pagination_returns_every_row_exactly_once() {
    let store = store_or_skip!("keyset", &[]);
    let same_instant = minutes_ago(30);
    let mut events = Vec::new();
    for i in 0..137 {
        let mut e = event(
            if i % 3 == 0 { "auth.login.stop" } else { "auth.logout.stop" },
            if i % 2 == 0 { Outcome::Success } else { Outcome::Failure },
        );
        // Many rows share one timestamp, so the event id must break ties.
        e = e.with_occurred_at(if i % 4 == 0 { same_instant } else { minutes_ago(i) });
        if i % 5 == 0 {
            e = e.with_actor(authtel_core::audit::Party::new("u_5", "user"));
            e = e.with_client_ip("2001:db8::5".parse().unwrap());
        }
        events.push(e);
    }
    BatchWriter::new(&store).forward(&events).await.unwrap();
    let collect = |q: AuditQuery| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut q = q.limit(10);
            loop {
                let page = store.query(&q).await.unwrap();
                assert!(page.events.len() <= 10);
                seen.extend(page.events.iter().map(|e| (e.occurred_at(), e.id())));
                match page.next {
                    Some(c) => q = q.after(c.to_string().parse().unwrap()),
                    None => break,
                }
            }
            seen
        }
    };
    let all = collect(AuditQuery::new()).await;
    let mut expected: Vec<_> = events.iter().map(|e| (e.occurred_at(), e.id())).collect();
    expected.sort();
    assert_eq!(all, expected, "every row once, in (occurred_at, id) order");

    let count = |f: &dyn Fn(&AuditEvent) -> bool| events.iter().filter(|e| f(e)).count();
    assert_eq!(
        collect(AuditQuery::new().actor("u_5")).await.len(),
        count(&|e| e.actor().unwrap().id == "u_5")
    );
    assert_eq!(
        collect(AuditQuery::new().client_ip("2001:db8::5".parse().unwrap()))
            .await
            .len(),
        28
    );
    assert_eq!(
        collect(AuditQuery::new().action("auth.login.stop").outcome(Outcome::Failure))
            .await
            .len(),
        count(&|e| e.action() == "auth.login.stop" && e.outcome() == Outcome::Failure)
    );
    let (from, until) = (minutes_ago(60), minutes_ago(20));
    assert_eq!(
        collect(AuditQuery::new().from(from).until(until)).await.len(),
        count(&|e| e.occurred_at() >= from && e.occurred_at() < until)
    );
    assert!(matches!(
        "c1.zz.nope".parse::<authtel_sql::Cursor>(),
        Err(SqlError::InvalidCursor(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ndjson_export_round_trips_every_record() {
    let store = store_or_skip!("ndjson", &[]);
    let events: Vec<AuditEvent> = (0..2100)
        .map(|i| at(event("auth.login.stop", Outcome::Success), minutes_ago(i)))
        .collect();
    BatchWriter::new(&store).forward(&events).await.unwrap();
    let mut out = Vec::new();
    let n = store
        .export_ndjson(&AuditQuery::new(), &mut out)
        .await
        .unwrap();
    assert_eq!(n, 2100);
    let text = String::from_utf8(out).unwrap();
    let parsed: Vec<AuditEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut expected = events.clone();
    expected.sort_by_key(|e| (e.occurred_at(), e.id()));
    assert_eq!(parsed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_queries_find_the_seeded_patterns() {
    let store = store_or_skip!("detect", &[]);
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    let mut seed = Vec::new();
    let with = |action: &str, outcome, actor: &str, addr: &str, t: Timestamp| {
        let mut e = at(event(action, outcome), t);
        e = e.with_actor(authtel_core::audit::Party::new(actor, "user"));
        e = e.with_client_ip(ip(addr));
        e
    };
    // Burst: 4 failed login stops + 2 invalid-credential signals from .66 in the last hour,
    // one older failure outside the window, 2 failures from .77, a success from .66.
    for i in 0..4 {
        seed.push(with("auth.login.stop", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(10 + i)));
    }
    for i in 0..2 {
        seed.push(with("security.invalid_credentials", Outcome::Failure, "u_b", "198.51.100.66", minutes_ago(20 + i)));
    }
    seed.push(with("auth.login.stop", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(120)));
    seed.push(with("auth.login.stop", Outcome::Success, "u_a", "198.51.100.66", minutes_ago(5)));
    for i in 0..2 {
        seed.push(with("auth.login.stop", Outcome::Failure, "u_c", "198.51.100.77", minutes_ago(15 + i)));
    }
    // First-seen: u_old has known IP .1 (2 days ago, again today) and new IP .2 today.
    seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(2 * 24 * 60)));
    seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(30)));
    seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.2", minutes_ago(40)));
    // MFA disables: one today, one failed today, one 3 days ago.
    let disable = with("mfa.disable.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(50));
    seed.push(disable.clone());
    seed.push(with("mfa.disable.stop", Outcome::Failure, "u_old", "192.0.2.1", minutes_ago(51)));
    seed.push(with("mfa.disable.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(3 * 24 * 60)));
    // Lockouts: two kinds today, one last week.
    let l1 = with("security.lockout", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(9));
    let l2 = with("mfa.lockout", Outcome::Failure, "u_old", "192.0.2.2", minutes_ago(8));
    seed.extend([l1.clone(), l2.clone()]);
    seed.push(with("security.lockout", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(7 * 24 * 60)));
    BatchWriter::new(&store).forward(&seed).await.unwrap();

    let hour = minutes_ago(60);
    let bursts = store.failed_login_bursts(hour, 5).await.unwrap();
    assert_eq!(bursts.len(), 1, "{bursts:?}");
    assert_eq!(bursts[0].client_ip, ip("198.51.100.66"));
    assert_eq!(bursts[0].failures, 6);
    assert!(bursts[0].first_at <= bursts[0].last_at);
    assert_eq!(store.failed_login_bursts(hour, 2).await.unwrap().len(), 2);

    let day = minutes_ago(24 * 60);
    let firsts = store.first_seen_ips(day).await.unwrap();
    let pairs: Vec<(String, std::net::IpAddr)> = firsts
        .iter()
        .map(|f| (f.actor_id.clone(), f.client_ip))
        .collect();
    assert!(pairs.contains(&("u_old".into(), ip("192.0.2.2"))), "{pairs:?}");
    assert!(!pairs.contains(&("u_old".into(), ip("192.0.2.1"))), "{pairs:?}");
    assert!(pairs.contains(&("u_a".into(), ip("198.51.100.66"))), "{pairs:?}");
    assert_eq!(pairs.len(), 2, "{pairs:?}");

    let disables = store.mfa_disables(day).await.unwrap();
    assert_eq!(disables.iter().map(|e| e.id()).collect::<Vec<_>>(), [disable.id()]);
    let locks = store.lockouts(day).await.unwrap();
    assert_eq!(locks.iter().map(|e| e.id()).collect::<Vec<_>>(), [l1.id(), l2.id()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_secrets_never_reach_any_row() {
    use authtel_core::metadata::Metadata;
    use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    let store = store_or_skip!("secrets", &["kafka"]);
    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzEifQ.c2VjcmV0LXNpZ25hdHVyZQ";
    const SECRETS: [&str; 6] = [
        "hunter2-pass",
        "rt_4f9c-refresh",
        JWT,
        "eyJzdWIiOiJ1XzEifQ",
        "otp-481516",
        "sess-cookie-value",
    ];
    // Through the event API: core's metadata policy applies.
    let meta = Metadata::new()
        .user_id("u_1")
        .with_extra("password", "hunter2-pass")
        .with_extra("refresh_token", "rt_4f9c-refresh")
        .with_extra("note", JWT);
    let measurements = Measurements::new();
    let record = EventRecord::signal(
        &authtel_core::catalogue::SECURITY_INVALID_CREDENTIALS,
        SpanContext::child_of(None),
        &measurements,
        &meta,
    );
    let from_api = AuditEvent::from_record(&record).unwrap();
    // Built by hand: the store's own scrubbing applies.
    let mut by_hand = event("auth.login.stop", Outcome::Failure);
    by_hand = by_hand.with_metadata("password", "hunter2-pass").unwrap();
    by_hand = by_hand.with_metadata("totp_code", "otp-481516").unwrap();
    by_hand = by_hand
        .with_metadata("headers", serde_json::json!({"cookie": "sess-cookie-value", "x": [JWT]}))
        .unwrap();
    by_hand = by_hand.with_reason(format!("Bearer {JWT}"));
    by_hand = by_hand.with_user_agent(format!("curl token={JWT}"));
    let mut tx = store.begin().await.unwrap();
    tx.record(&from_api).await.unwrap();
    tx.record(&by_hand).await.unwrap();
    tx.commit().await.unwrap();
    let mut batch_copy = by_hand.clone();
    batch_copy = batch_copy.with_id(uuid::Uuid::now_v7());
    BatchWriter::new(&store).forward(&[batch_copy]).await.unwrap();

    let dump = dump_tables(&store).await;
    assert!(dump.contains("[REDACTED]"), "the dump saw the rows: {dump}");
    let mut export = Vec::new();
    store.export_ndjson(&AuditQuery::new(), &mut export).await.unwrap();
    let export = String::from_utf8(export).unwrap();
    let recording = shared(Recording::default());
    let relay = Relay::new(&store, RelayConfig::default())
        .with_forwarder("kafka", recording.clone())
        .unwrap();
    relay.run_once().await.unwrap();
    let forwarded = serde_json::to_string(&*recording.events.lock().unwrap()).unwrap();
    assert_eq!(recording.len(), 2);
    for secret in SECRETS {
        for (name, text) in [("tables", &dump), ("export", &export), ("forwarded", &forwarded)] {
            assert!(!text.contains(secret), "{secret} reached the {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_typed_error() {
    let store = store_or_skip!("badinput", &["kafka"]);
    let mut nul_reason = event("auth.login.stop", Outcome::Failure);
    nul_reason = nul_reason.with_reason("bad\0reason");
    // Over core's metadata bound (each text is within the text bound, so nothing is cut):
    // refused when the record is made, so no store is ever handed one.
    let big = (0..(authtel_sql::MAX_METADATA_BYTES / 200 + 1)).try_fold(
        event("auth.login.stop", Outcome::Failure),
        |e, i| e.with_metadata(format!("blob{i}"), "x".repeat(200)),
    );
    assert!(
        matches!(big, Err(authtel_core::audit::AuditError::MetadataTooLarge { .. })),
        "{big:?}"
    );
    let mut nul_key = event("auth.login.stop", Outcome::Failure);
    nul_key = nul_key.with_metadata("k\0", 1).unwrap();
    for bad in [&nul_reason, &nul_key] {
        let mut tx = store.begin().await.unwrap();
        let err = tx.record(bad).await.unwrap_err();
        assert!(matches!(err, SqlError::InvalidEvent { event_id, .. } if event_id == bad.id()), "{err}");
        assert!(!err.is_transient());
        tx.rollback().await.unwrap();
        let err = BatchWriter::new(&store).forward(std::slice::from_ref(bad)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent);
    }
    assert_eq!(count_rows(&store).await, (0, 0));
    // An identifier with a control character is refused by core's policy: the record is
    // stored without it (and the refusal counted), not lost.
    let mut nul_session = event("auth.login.stop", Outcome::Failure);
    nul_session = nul_session.with_session_id("s\0x");
    let mut tx = store.begin().await.unwrap();
    tx.record(&nul_session).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count_rows(&store).await.0, 1);
    assert!(authtel_sql::AuditStore::builder(store.pool().clone())
        .with_forwarder("no spaces")
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_old_rows_in_batches_and_spares_pending_ones() {
    let store = store_or_skip!("purge", &["kafka"]);
    let old: Vec<AuditEvent> = (0..7)
        .map(|i| at(event("auth.login.stop", Outcome::Success), minutes_ago(100 * 24 * 60 + i)))
        .collect();
    BatchWriter::new(&store).forward(&old).await.unwrap();
    // One old record still pending delivery must survive until delivered.
    let pending_old = at(event("auth.login.stop", Outcome::Success), minutes_ago(100 * 24 * 60));
    let fresh = event("auth.login.stop", Outcome::Success);
    let mut tx = store.begin().await.unwrap();
    tx.record(&pending_old).await.unwrap();
    tx.record(&fresh).await.unwrap();
    tx.commit().await.unwrap();
    let cutoff = minutes_ago(90 * 24 * 60);
    let dry = store.purge_older_than(cutoff, 3, true).await.unwrap();
    assert_eq!(dry.events, 7);
    assert_eq!(count_rows(&store).await, (9, 2));
    let done = store.purge_older_than(cutoff, 3, false).await.unwrap();
    assert_eq!(done.events, 7);
    let left: HashSet<_> = store
        .query(&AuditQuery::new())
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.id())
        .collect();
    assert_eq!(left, HashSet::from([pending_old.id(), fresh.id()]));
    let health = store.health(Duration::from_secs(3600)).await.unwrap();
    assert!(health.ok, "{health:?}");
    let strict = store.health(Duration::ZERO).await.unwrap();
    assert!(!strict.ok || strict.max_lag.is_zero());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_whose_row_vanished_is_dead_lettered_not_lost() {
    let store = store_or_skip!("orphan", &["kafka"]);
    let (kept, gone) = (
        event("auth.login.stop", Outcome::Success),
        event("auth.login.stop", Outcome::Success),
    );
    let mut tx = store.begin().await.unwrap();
    tx.record(&kept).await.unwrap();
    tx.record(&gone).await.unwrap();
    tx.commit().await.unwrap();
    delete_event(&store, gone.id()).await;
    let recording = shared(Recording::default());
    let relay = Relay::new(&store, RelayConfig::default())
        .with_forwarder("kafka", recording.clone())
        .unwrap();
    let pass = relay.run_once().await.unwrap();
    assert_eq!((pass.claimed, pass.delivered, pass.dead), (2, 1, 1));
    assert_eq!(recording.ids(), [kept.id()]);
    let dead = store.dead_letters("kafka", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, gone.id());
    assert!(dead[0].reason.contains("missing"), "{}", dead[0].reason);
}

/// Tenants share actor ids (`u_1` exists in both); every write path stores the tenant, and a
/// query for one tenant returns exactly its rows, never another's nor tenant-less ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_for_one_tenant_never_returns_another_tenants_rows() {
    let store = store_or_skip!("tenants", &["kafka"]);
    let of = |tenant: Option<&str>| {
        let e = event("auth.login.stop", Outcome::Failure);
        match tenant {
            Some(t) => e.with_tenant_id(t),
            None => e,
        }
    };
    let mut expected: std::collections::BTreeMap<Option<&str>, HashSet<uuid::Uuid>> =
        Default::default();
    // Batch path (COPY on PostgreSQL, multi-row INSERT on SQLite).
    let batch: Vec<AuditEvent> = (0..60)
        .map(|i| of([Some("acme"), Some("globex"), None][i % 3]))
        .collect();
    for e in &batch {
        expected.entry(e.tenant_id()).or_default().insert(e.id());
    }
    BatchWriter::new(&store).forward(&batch).await.unwrap();
    // Transaction path, with an outbox entry per record.
    let mut tx = store.begin().await.unwrap();
    let mut in_tx = Vec::new();
    for tenant in [Some("acme"), Some("globex"), None] {
        let e = of(tenant);
        tx.record(&e).await.unwrap();
        in_tx.push(e);
    }
    tx.commit().await.unwrap();
    for e in &in_tx {
        expected.entry(e.tenant_id()).or_default().insert(e.id());
    }
    // A tenant that is an email is refused as an identifier: the record has none.
    let refused = of(Some("ops@acme.example"));
    assert_eq!(refused.tenant_id(), None);

    for tenant in ["acme", "globex"] {
        let mut seen = HashSet::new();
        let mut q = AuditQuery::new().tenant(tenant).limit(7);
        loop {
            let page = store.query(&q).await.unwrap();
            for e in &page.events {
                assert_eq!(e.tenant_id(), Some(tenant), "{tenant}'s query read {e:?}");
                seen.insert(e.id());
            }
            match page.next {
                Some(cursor) => q = q.after(cursor),
                None => break,
            }
        }
        assert_eq!(seen, expected[&Some(tenant)], "{tenant}");
        assert_eq!(seen.len(), 21);
        // With another filter the tenant still holds.
        let page = store
            .query(&AuditQuery::new().tenant(tenant).actor("u_1").limit(100))
            .await
            .unwrap();
        assert_eq!(page.events.len(), 21);
        assert!(page.events.iter().all(|e| e.tenant_id() == Some(tenant)));
    }
    let none = store
        .query(&AuditQuery::new().tenant("initech").limit(100))
        .await
        .unwrap();
    assert!(none.events.is_empty(), "{:?}", none.events);
    // Untenanted rows stay readable without the filter.
    let all = store.query(&AuditQuery::new().limit(100)).await.unwrap();
    assert_eq!(all.events.len(), 63);
    assert_eq!(
        all.events.iter().filter(|e| e.tenant_id().is_none()).count(),
        expected[&None].len()
    );
}
