//! The store's bounds: eviction order, retention, the memory cap, runtime settings.

use std::time::Duration;

use authtel_audit::{InsertError, Inserted, Reader, RecentAuditStore, SettingsError};
use authtel_core::audit::{AuditError, AuditEvent, Party, Timestamp};
use authtel_core::outcome::Outcome;

fn admin() -> Reader {
    Reader::new("test").with_role("admin")
}

fn record(actor: &str, n: usize) -> AuditEvent {
    let mut e = AuditEvent::new("authorization.allowed", Outcome::Success).unwrap();
    e = e.with_actor(Party::new(actor, "caller"));
    e = e.with_resource(format!("res.{n}"));
    e = e.with_metadata("n", n).unwrap();
    e
}

fn numbers(events: &[std::sync::Arc<AuditEvent>]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.metadata()["n"].as_u64().unwrap())
        .collect()
}

#[test]
fn max_entries_evicts_oldest_first_and_counts_it() {
    let store = RecentAuditStore::builder("s")
        .with_max_entries(3)
        .build()
        .unwrap();
    for n in 0..5 {
        assert_eq!(store.insert(record("u1", n)).unwrap(), Inserted::Stored);
    }
    assert_eq!(numbers(&store.recent(&admin(), 10).unwrap()), [4, 3, 2]);
    assert_eq!(
        numbers(&store.by_actor(&admin(), "u1", 10).unwrap()),
        [4, 3, 2]
    );
    assert!(store.by_resource(&admin(), "res.1", 10).unwrap().is_empty());
    let stats = store.stats();
    assert_eq!(stats.entries, 3);
    assert_eq!(stats.evictions.max_entries, 2);
    assert_eq!(stats.stored_total, 5);
}

#[test]
fn retention_removes_records_older_than_the_window_in_store_order() {
    let store = RecentAuditStore::builder("s")
        .with_retention(Duration::from_secs(60))
        .build()
        .unwrap();
    let now = Timestamp::now().unix_micros();
    let at = |secs_ago: i64, n| {
        let mut e = record("u1", n);
        e = e.with_occurred_at(Timestamp::from_unix_micros(now - secs_ago * 1_000_000));
        e
    };
    store.insert(at(600, 0)).unwrap();
    store.insert(at(120, 1)).unwrap();
    store.insert(at(5, 2)).unwrap();
    store.insert(at(1, 3)).unwrap();
    assert_eq!(store.cleanup(), 2);
    assert_eq!(numbers(&store.recent(&admin(), 10).unwrap()), [3, 2]);
    let stats = store.stats();
    assert_eq!(stats.evictions.retention, 2);
    assert_eq!(stats.oldest.map(|t| t.unix_micros()), Some(now - 5_000_000));
    // After a cleanup the store knows the cutoff: an already-expired record is not kept.
    assert_eq!(store.insert(at(3600, 4)).unwrap(), Inserted::Expired);
    assert_eq!(store.stats().entries, 2);
}

#[test]
fn retention_is_applied_while_inserting_without_explicit_cleanup() {
    let store = RecentAuditStore::builder("s")
        .with_retention(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut old = record("u1", 0);
    old = old.with_occurred_at(Timestamp::from_unix_micros(
        Timestamp::now().unix_micros() - 3_600_000_000,
    ));
    store.insert(old).unwrap();
    for n in 1..200 {
        store.insert(record("u1", n)).unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.evictions.retention, 1);
    assert_eq!(stats.entries, 199);
}

#[test]
fn background_cleanup_removes_expired_records_and_stops_on_request() {
    let store = RecentAuditStore::builder("s")
        .with_retention(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut old = record("u1", 0);
    old = old.with_occurred_at(Timestamp::from_unix_micros(
        Timestamp::now().unix_micros() - 3_600_000_000,
    ));
    store.insert(old).unwrap();
    let cleaner = store.spawn_cleanup(Duration::from_millis(10)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.stats().entries != 0 {
        assert!(std::time::Instant::now() < deadline, "cleanup never ran");
        std::thread::yield_now();
    }
    assert!(cleaner.is_running());
    cleaner.stop();
    assert_eq!(store.stats().evictions.retention, 1);
}

#[test]
fn estimated_bytes_never_exceed_the_memory_cap() {
    let cap = 64 * 1024;
    let store = RecentAuditStore::builder("s")
        .with_max_bytes(cap)
        .with_max_entries(1_000_000)
        .build()
        .unwrap();
    for n in 0..2_000 {
        let mut e = record(&format!("u{}", n % 17), n);
        // Records of varying size, so eviction must free more than one at times.
        e = e.with_reason("x".repeat(n % 700));
        store.insert(e).unwrap();
        let stats = store.stats();
        assert!(
            stats.estimated_bytes <= cap,
            "{} > {cap}",
            stats.estimated_bytes
        );
    }
    let stats = store.stats();
    assert!(stats.evictions.max_bytes > 0);
    assert!(stats.entries > 10, "{}", stats.entries);
    // The newest record is always kept.
    assert_eq!(numbers(&store.recent(&admin(), 1).unwrap()), [1_999]);
}

#[test]
fn a_record_larger_than_the_whole_cap_is_a_typed_error() {
    let store = RecentAuditStore::builder("tiny")
        .with_max_bytes(600)
        .build()
        .unwrap();
    let mut e = record("u1", 0);
    e = e.with_reason("x".repeat(2_000));
    let err = store.insert(e).unwrap_err();
    assert!(
        matches!(&err, InsertError::TooLarge { bytes, max: 600, .. } if *bytes > 600),
        "{err}"
    );
    assert!(err.to_string().contains("raise max_bytes"), "{err}");
    assert_eq!(store.stats().rejected, 1);
}

#[test]
fn invalid_records_are_refused_with_the_reason_before_any_store_sees_them() {
    // An invalid action cannot make a record at all, so no store can be handed one.
    let err = AuditEvent::new("auth.made_up", Outcome::Success).unwrap_err();
    assert!(matches!(err, AuditError::InvalidAction(_)), "{err}");
    assert!(err.to_string().contains("auth.made_up"), "{err}");
}

#[test]
fn settings_change_at_runtime_and_shrinking_evicts_at_once() {
    let store = RecentAuditStore::new("s").unwrap();
    for n in 0..10 {
        store.insert(record("u1", n)).unwrap();
    }
    store.set_max_entries(4).unwrap();
    assert_eq!(store.settings().max_entries, 4);
    assert_eq!(numbers(&store.recent(&admin(), 10).unwrap()), [9, 8, 7, 6]);
    store.set_retention(30).unwrap();
    assert_eq!(store.settings().retention, Duration::from_secs(30));
    assert_eq!(
        store.set_max_entries(0),
        Err(SettingsError::Zero("max_entries"))
    );
    assert_eq!(
        store.set_max_bytes(0),
        Err(SettingsError::Zero("max_bytes"))
    );
    assert!(
        store
            .set_retention(0)
            .unwrap_err()
            .to_string()
            .contains("retention")
    );
    assert_eq!(
        store.settings().max_entries,
        4,
        "a refused change leaves settings alone"
    );
}

#[test]
fn clear_empties_the_store_but_keeps_totals() {
    let store = RecentAuditStore::new("s").unwrap();
    for n in 0..3 {
        store.insert(record("u1", n)).unwrap();
    }
    store.clear();
    assert!(store.recent(&admin(), 10).unwrap().is_empty());
    assert!(store.by_actor(&admin(), "u1", 10).unwrap().is_empty());
    let stats = store.stats();
    assert_eq!((stats.entries, stats.estimated_bytes), (0, 0));
    assert_eq!(stats.evictions.cleared, 3);
    assert_eq!(stats.stored_total, 3);
    store.insert(record("u1", 7)).unwrap();
    assert_eq!(numbers(&store.by_actor(&admin(), "u1", 10).unwrap()), [7]);
}

#[test]
fn invalid_names_are_refused() {
    assert!(matches!(
        RecentAuditStore::new(""),
        Err(SettingsError::InvalidName(_))
    ));
    assert!(RecentAuditStore::new(&"n".repeat(65)).is_err());
}

/// A burst of typical login records (user agent, IP, span ids, a few metadata fields), as
/// the quickstart and a real service write them.
fn login_record(n: usize) -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    e = e.with_actor(Party::new(format!("u_{n:08}"), "user"));
    e = e.with_client_ip(std::net::IpAddr::from([203, 0, 113, (n % 250) as u8]));
    e = e.with_user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0");
    e = e.with_session_id(format!("sess_{n:016x}"));
    e = e.with_reason("invalid_password");
    e = e.with_span_id(format!("{n:016x}"));
    e = e.with_trace_id(format!("{n:032x}"));
    e = e.with_metadata("method", "password").unwrap();
    e = e.with_metadata("attempts_remaining", 3).unwrap();
    e
}

#[test]
fn max_entries_alone_holds_that_many_typical_records() {
    // With only an entry bound, the byte bound follows it: 100,000 asked, 100,000 kept.
    let store = RecentAuditStore::builder("burst")
        .with_max_entries(100_000)
        .build()
        .unwrap();
    for n in 0..100_000 {
        store.insert(login_record(n)).unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.entries, 100_000, "{stats:?}");
    assert_eq!(stats.evictions.max_bytes, 0, "{stats:?}");
    // An explicit byte bound still wins, whichever order the calls come in.
    let capped = RecentAuditStore::builder("capped")
        .with_max_bytes(1 << 20)
        .with_max_entries(100_000)
        .build()
        .unwrap();
    for n in 0..10_000 {
        capped.insert(login_record(n)).unwrap();
    }
    let stats = capped.stats();
    assert!(stats.entries < 10_000, "{stats:?}");
    assert!(stats.estimated_bytes <= 1 << 20, "{stats:?}");
}
