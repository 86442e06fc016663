//! The recent-store insert bench's loop without criterion, for instruction counts and
//! plain wall-clock timing:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*store_insert*' target/release/examples/store_loop store 20000
//! target/release/examples/store_loop store2 2000000
//! ```
//!
//! Cases: `store` (one thread inserting into the bench's full store), `ring` (the bench's
//! baseline, a `Mutex<VecDeque>` ring, one thread), and `store2` / `ring2` (the same with
//! two threads, printing ns per record of wall time). Records are built in rounds between
//! the timed sections, as in the bench (`benches/common/mod.rs` is its loop). For instruction counts collect only inside `store_insert` or
//! `ring_push` (`--toggle-collect`, as above), run a one-thread case at two counts and divide
//! the difference of the totals by the difference of the counts: that is the cost of one
//! insert, eviction included, without the setup.

#[path = "../benches/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Mutex;

use authtel_audit::RecentAuditStore;
use authtel_core::audit::AuditEvent;
use common::{STORE_SIZE, full_store, record};

#[inline(never)]
fn ring_push(ring: &Mutex<VecDeque<AuditEvent>>, e: AuditEvent) {
    let mut q = ring.lock().unwrap();
    if q.len() >= STORE_SIZE {
        black_box(q.pop_front());
    }
    q.push_back(e);
}

fn full_ring() -> Mutex<VecDeque<AuditEvent>> {
    let ring = Mutex::new(VecDeque::with_capacity(STORE_SIZE));
    for i in 0..STORE_SIZE {
        ring_push(&ring, record(i));
    }
    ring
}

#[inline(never)]
fn store_insert(store: &RecentAuditStore, e: AuditEvent) {
    let _ = black_box(store.insert(e));
}

/// ns per record of `threads` threads inserting `n` records in all.
fn run<S: Sync>(sink: &S, threads: usize, n: usize, insert: impl Fn(&S, AuditEvent) + Sync) -> f64 {
    common::threads(threads, n as u64, sink, insert).as_nanos() as f64 / n as f64
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "store".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let ns = match case.as_str() {
        "store" => run(&full_store(), 1, n, store_insert),
        "store2" => run(&full_store(), 2, n, store_insert),
        "ring" => run(&full_ring(), 1, n, ring_push),
        "ring2" => run(&full_ring(), 2, n, ring_push),
        other => panic!("unknown case {other:?}: use store, store2, ring or ring2"),
    };
    println!("{case}: {ns:.1} ns per record ({n} records)");
}
