// The one suite, compiled once per backend module (sqlite_suite, postgres_suite), which
// provide `Db`, `store(name, forwarders)`, `fresh_store(name, forwarders)`, `dump_tables`,
// `count_rows` and `delete_event`. Schema, transactions, the batch writer, input safety and
// retention here; the relay's delivery in `relay_delivery.rs`, the read side in `queries.rs`.

use std::collections::HashSet;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::forward::{ErrorKind, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_sql::{AuditQuery, BatchWriter, Relay, RelayConfig, SqlError};

use crate::support::*;

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
