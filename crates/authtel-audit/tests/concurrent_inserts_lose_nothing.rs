//! Two threads insert into one store while a third queries it: no record is lost or
//! duplicated in any index, keys come and go (their index slots are freed and reused), and
//! the entry and byte bounds hold at every moment a query can see.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use authtel_audit::{Reader, RecentAuditStore};
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;

const PER_WRITER: u64 = 20_000;
const MAX_ENTRIES: usize = 1_000;
const MAX_BYTES: usize = 1024 * 1024;
/// More actors than the store holds records for, so actor keys keep leaving the index and
/// coming back; a few are busy enough to stay.
const ACTORS: u64 = 3_000;

fn admin() -> Reader {
    Reader::new("test").with_role("admin")
}

fn actor(writer: u64, n: u64) -> String {
    if n.is_multiple_of(4) {
        format!("busy_{}", n % 3)
    } else {
        format!("user_{}", (n * 7 + writer) % ACTORS)
    }
}

fn record(writer: u64, n: u64) -> AuditEvent {
    let denied = n.is_multiple_of(3);
    let mut e = AuditEvent::new(
        if denied {
            "authorization.denied"
        } else {
            "authorization.allowed"
        },
        if denied {
            Outcome::Denied
        } else {
            Outcome::Success
        },
    )
    .unwrap();
    if !n.is_multiple_of(10) {
        e = e.with_actor(Party::new(actor(writer, n), "user"));
    }
    e = e.with_resource(format!("res.{}", n % 50));
    // Phases of large records, where the byte bound evicts, alternate with phases of small
    // ones, where the entry bound does.
    let reason_len = if (n / 2_000).is_multiple_of(2) {
        2_000
    } else {
        n % 7 * 10
    };
    e = e.with_reason("r".repeat(reason_len as usize));
    e = e.with_metadata("writer", writer).unwrap();
    e.with_metadata("n", n).unwrap()
}

fn key(e: &AuditEvent) -> (u64, u64) {
    (
        e.metadata()["writer"].as_u64().unwrap(),
        e.metadata()["n"].as_u64().unwrap(),
    )
}

/// A query's answer holds no record twice, only records matching `pick`, and each
/// writer's records newest first.
fn check_answer(events: &[Arc<AuditEvent>], pick: impl Fn(&AuditEvent) -> bool, what: &str) {
    let mut seen = HashSet::new();
    let mut last = [u64::MAX; 2];
    for e in events {
        let (w, n) = key(e);
        assert!(seen.insert((w, n)), "{what}: record {w}/{n} twice");
        assert!(pick(e), "{what}: record {w}/{n} does not match");
        assert!(
            n < last[w as usize],
            "{what}: writer {w} out of order at {n}"
        );
        last[w as usize] = n;
    }
}

#[test]
fn two_writers_and_a_reader_see_every_record_once_within_the_bounds() {
    let store = RecentAuditStore::builder("c")
        .with_max_entries(MAX_ENTRIES)
        .with_max_bytes(MAX_BYTES)
        .build()
        .unwrap();
    let writing = AtomicBool::new(true);
    let queries = AtomicUsize::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let store = &store;
                s.spawn(move || {
                    for n in 0..PER_WRITER {
                        store.insert(record(w, n)).unwrap();
                    }
                })
            })
            .collect();
        s.spawn(|| {
            let admin = admin();
            let mut i = 0u64;
            while writing.load(Ordering::Relaxed) {
                let stats = store.stats();
                assert!(stats.entries <= MAX_ENTRIES, "{stats:?}");
                assert!(stats.estimated_bytes <= MAX_BYTES, "{stats:?}");
                assert!(stats.distinct_actors <= stats.entries, "{stats:?}");
                let all = store.recent(&admin, usize::MAX).unwrap();
                assert!(all.len() <= MAX_ENTRIES);
                check_answer(&all, |_| true, "recent");
                let who = if i.is_multiple_of(2) {
                    format!("busy_{}", i % 3)
                } else {
                    actor(i % 2, i * 13)
                };
                let mine = store.by_actor(&admin, &who, usize::MAX).unwrap();
                check_answer(&mine, |e| e.actor().is_some_and(|p| p.id == who), &who);
                let res = format!("res.{}", i % 50);
                let on = store.by_resource(&admin, &res, 30).unwrap();
                assert!(on.len() <= 30);
                check_answer(&on, |e| e.resource() == Some(res.as_str()), &res);
                let denied = store.by_outcome(&admin, Outcome::Denied, 100).unwrap();
                check_answer(&denied, |e| e.outcome() == Outcome::Denied, "denied");
                let allowed = store
                    .by_action(&admin, "authorization.allowed", 100)
                    .unwrap();
                check_answer(
                    &allowed,
                    |e| e.action() == "authorization.allowed",
                    "allowed",
                );
                queries.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, Ordering::Relaxed);
    });
    assert!(queries.load(Ordering::Relaxed) > 0, "the reader never ran");

    let admin = admin();
    let stats = store.stats();
    let all = store.recent(&admin, usize::MAX).unwrap();
    assert_eq!(all.len(), stats.entries);
    assert!(stats.entries <= MAX_ENTRIES && stats.estimated_bytes <= MAX_BYTES);
    assert_eq!(stats.stored_total, 2 * PER_WRITER);
    let evicted = stats.evictions.max_entries + stats.evictions.max_bytes;
    assert_eq!(evicted + stats.entries as u64, stats.stored_total);
    assert!(
        stats.evictions.max_bytes > 0,
        "the byte bound never evicted: {stats:?}"
    );
    assert!(
        stats.evictions.max_entries > 0,
        "the entry bound never evicted: {stats:?}"
    );

    // What is held is each writer's newest records, none missing in between.
    for w in 0..2u64 {
        let mut mine: Vec<u64> = all
            .iter()
            .map(|e| key(e))
            .filter(|k| k.0 == w)
            .map(|k| k.1)
            .collect();
        mine.sort_unstable();
        let first = PER_WRITER - mine.len() as u64;
        assert_eq!(mine, (first..PER_WRITER).collect::<Vec<_>>(), "writer {w}");
    }

    // Every held record with an actor is found under its actor exactly once, and the
    // actor index has a key for each distinct actor held and no other.
    let actors: HashSet<String> = all
        .iter()
        .filter_map(|e| e.actor().map(|p| p.id.clone()))
        .collect();
    assert_eq!(stats.distinct_actors, actors.len());
    let mut found = HashSet::new();
    for a in &actors {
        let mine = store.by_actor(&admin, a, usize::MAX).unwrap();
        let want: Vec<_> = all
            .iter()
            .filter(|e| e.actor().is_some_and(|p| &p.id == a))
            .map(|e| key(e))
            .collect();
        assert_eq!(mine.iter().map(|e| key(e)).collect::<Vec<_>>(), want, "{a}");
        for e in &mine {
            assert!(found.insert(key(e)), "{a}: {:?} under two actors", key(e));
        }
    }
    let with_actor = all.iter().filter(|e| e.actor().is_some()).count();
    assert_eq!(found.len(), with_actor);
    // Keys that left the store are gone from the index: an early, rare actor finds nothing.
    assert!(
        store
            .by_actor(&admin, &actor(0, 1), usize::MAX)
            .unwrap()
            .iter()
            .all(|e| key(e).1 >= PER_WRITER - MAX_ENTRIES as u64)
    );
}
