//! Indexed queries return exactly what a brute-force scan of the store returns, after two
//! threads insert concurrently and the bounds evict.

use std::sync::Arc;

use authtel_audit::{Reader, RecentAuditStore};
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;
use proptest::prelude::*;

const ACTORS: [&str; 4] = ["u0", "u1", "u2", "svc"];
const RESOURCES: [&str; 3] = ["r0", "r1", "r2"];
const ACTIONS: [&str; 3] = [
    "authorization.allowed",
    "authorization.denied",
    "security.lockout",
];

#[derive(Clone, Debug)]
struct Spec {
    actor: Option<usize>,
    resource: Option<usize>,
    action: usize,
    outcome: usize,
    reason_len: usize,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::of(0..ACTORS.len()),
        proptest::option::of(0..RESOURCES.len()),
        0..ACTIONS.len(),
        0..Outcome::ALL.len(),
        0..300usize,
    )
        .prop_map(|(actor, resource, action, outcome, reason_len)| Spec {
            actor,
            resource,
            action,
            outcome,
            reason_len,
        })
}

fn build(spec: &Spec, writer: u64, n: u64) -> AuditEvent {
    let mut e = AuditEvent::new(ACTIONS[spec.action], Outcome::ALL[spec.outcome]).unwrap();
    if let Some(a) = spec.actor {
        e = e.with_actor(Party::new(ACTORS[a], "user"));
    }
    if let Some(r) = spec.resource {
        e = e.with_resource(RESOURCES[r]);
    }
    e = e.with_reason("x".repeat(spec.reason_len));
    e = e.with_metadata("writer", writer).unwrap();
    e = e.with_metadata("n", n).unwrap();
    e
}

fn key(e: &AuditEvent) -> (u64, u64) {
    (
        e.metadata()["writer"].as_u64().unwrap(),
        e.metadata()["n"].as_u64().unwrap(),
    )
}

fn keys(events: &[Arc<AuditEvent>]) -> Vec<(u64, u64)> {
    events.iter().map(|e| key(e)).collect()
}

fn scan(
    all: &[Arc<AuditEvent>],
    limit: usize,
    pick: impl Fn(&AuditEvent) -> bool,
) -> Vec<(u64, u64)> {
    all.iter()
        .filter(|e| pick(e))
        .take(limit)
        .map(|e| key(e))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn indexed_queries_equal_a_brute_force_scan(
        a in proptest::collection::vec(spec(), 0..150),
        b in proptest::collection::vec(spec(), 0..150),
        max_entries in 1usize..120,
        max_kib in 8usize..64,
        limit in 1usize..40,
    ) {
        let store = RecentAuditStore::builder("p")
            .with_max_entries(max_entries)
            .with_max_bytes(max_kib * 1024)
            .build()
            .unwrap();
        std::thread::scope(|s| {
            for (writer, specs) in [(0u64, &a), (1u64, &b)] {
                let store = store.clone();
                s.spawn(move || {
                    for (n, spec) in specs.iter().enumerate() {
                        store.insert(build(spec, writer, n as u64)).unwrap();
                    }
                });
            }
        });
        let admin = Reader::new("p").with_role("admin");
        let all = store.recent(&admin, usize::MAX).unwrap();
        let stats = store.stats();
        prop_assert_eq!(all.len(), stats.entries);
        prop_assert!(stats.entries <= max_entries);
        prop_assert!(stats.estimated_bytes <= max_kib * 1024);
        prop_assert_eq!(stats.stored_total, (a.len() + b.len()) as u64);
        let evicted = stats.evictions.max_entries + stats.evictions.max_bytes;
        prop_assert_eq!(evicted + stats.entries as u64, stats.stored_total);

        // Each writer's records are kept in its own insertion order, and what is kept is
        // that writer's newest records (eviction takes the oldest first).
        for writer in 0..2u64 {
            let mine: Vec<u64> = all.iter().rev().map(|e| key(e)).filter(|k| k.0 == writer).map(|k| k.1).collect();
            let total = if writer == 0 { a.len() } else { b.len() } as u64;
            let expected: Vec<u64> = (total - mine.len() as u64..total).collect();
            prop_assert_eq!(mine, expected);
        }

        // Indexes forget keys whose last record left: their sizes match the records held.
        let distinct = |f: &dyn Fn(&AuditEvent) -> Option<String>| {
            all.iter().filter_map(|e| f(e)).collect::<std::collections::HashSet<_>>().len()
        };
        prop_assert_eq!(stats.distinct_actors, distinct(&|e| e.actor().map(|p| p.id.clone())));
        prop_assert_eq!(stats.distinct_resources, distinct(&|e| e.resource().map(str::to_owned)));
        prop_assert_eq!(stats.distinct_actions, distinct(&|e| Some(e.action().to_owned())));

        for actor in ACTORS.iter().chain(["nobody"].iter()) {
            let got = keys(&store.by_actor(&admin, actor, limit).unwrap());
            let want = scan(&all, limit, |e| e.actor().is_some_and(|p| p.id == *actor));
            prop_assert_eq!(got, want, "by_actor {}", actor);
        }
        for resource in RESOURCES {
            let got = keys(&store.by_resource(&admin, resource, limit).unwrap());
            let want = scan(&all, limit, |e| e.resource() == Some(resource));
            prop_assert_eq!(got, want, "by_resource {}", resource);
        }
        for action in ACTIONS {
            let got = keys(&store.by_action(&admin, action, limit).unwrap());
            let want = scan(&all, limit, |e| e.action() == action);
            prop_assert_eq!(got, want, "by_action {}", action);
        }
        for outcome in Outcome::ALL {
            let got = keys(&store.by_outcome(&admin, outcome, limit).unwrap());
            let want = scan(&all, limit, |e| e.outcome() == outcome);
            prop_assert_eq!(got, want, "by_outcome {}", outcome);
        }
        prop_assert_eq!(keys(&store.recent(&admin, limit).unwrap()), scan(&all, limit, |_| true));
    }
}
