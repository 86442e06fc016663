//! What the recent-store bench and the `store_loop` example share: the bench's record and
//! its full store, and the timed loop.

#![allow(dead_code, unreachable_pub)]

use std::sync::Barrier;
use std::time::{Duration, Instant};

use authtel_audit::RecentAuditStore;
use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;

/// Records held by the bench's full store.
pub const STORE_SIZE: usize = 100_000;
/// Distinct actors among the records.
pub const ACTORS: usize = 1_000;

/// A typical authorization record, as `AuditEvent::from_record` builds it.
pub fn record(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(
        if i.is_multiple_of(5) {
            "authorization.denied"
        } else {
            "authorization.allowed"
        },
        if i.is_multiple_of(5) {
            Outcome::Denied
        } else {
            Outcome::Success
        },
    )
    .unwrap();
    e = e.with_actor(Party::new(format!("svc_{}", i % ACTORS), "caller"));
    e = e.with_resource(format!("energy.site_{}.status", i % 250));
    e = e.with_operation("call".to_owned());
    if i.is_multiple_of(5) {
        e = e.with_reason("insufficient_capability".to_owned());
    }
    let span = format!("{:016x}", i as u64 * 7_919);
    e.with_span_id(span.clone()).with_trace_id(span)
}

/// A store of [`STORE_SIZE`] records, full, so every further insert evicts.
pub fn full_store() -> RecentAuditStore {
    let store = RecentAuditStore::builder("bench")
        .with_max_entries(STORE_SIZE)
        .with_max_bytes(1 << 30)
        .build()
        .unwrap();
    for i in 0..STORE_SIZE {
        store.insert(record(i)).unwrap();
    }
    store
}

/// Records built (untimed) per round of the insert benchmark, per thread.
pub const CHUNK: u64 = 4_096;

/// Runs `insert` for `iters` records split over two threads; returns the wall time of the
/// timed sections only (record construction happens between them).
pub fn two_threads<S: Sync>(
    iters: u64,
    sink: &S,
    insert: impl Fn(&S, AuditEvent) + Sync,
) -> Duration {
    threads(2, iters, sink, insert)
}

/// Runs `insert` for `iters` records split over `n` threads, in rounds of [`CHUNK`]
/// records per thread built before the round; returns the wall time of the rounds only.
pub fn threads<S: Sync>(
    n: usize,
    iters: u64,
    sink: &S,
    insert: impl Fn(&S, AuditEvent) + Sync,
) -> Duration {
    let start = Barrier::new(n + 1);
    let done = Barrier::new(n + 1);
    let mut total = Duration::ZERO;
    let rounds = iters.div_ceil(n as u64 * CHUNK);
    std::thread::scope(|s| {
        for t in 0..n {
            let (start, done, insert) = (&start, &done, &insert);
            s.spawn(move || {
                for round in 0..rounds {
                    let batch: Vec<AuditEvent> = (0..CHUNK as usize)
                        .map(|i| record(t * 7 + i * 2 + round as usize))
                        .collect();
                    start.wait();
                    for e in batch {
                        insert(sink, e);
                    }
                    done.wait();
                }
            });
        }
        for _ in 0..rounds {
            start.wait();
            let t0 = Instant::now();
            done.wait();
            total += t0.elapsed();
        }
    });
    // Scale to the requested iteration count (rounds insert a whole number of chunks).
    total.mul_f64(iters as f64 / (rounds * n as u64 * CHUNK) as f64)
}
