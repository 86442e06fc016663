//! Benchmarks of the recent-audit store (group `recent_store`).
//!
//! - `insert_two_threads@mutex_vecdeque_push`: ns per record while two threads insert
//!   concurrently into a full store (so every insert also evicts); target ≤ 300 ns. Paired
//!   with `baseline:mutex_vecdeque_push`, two threads pushing the same records into a bare
//!   `Mutex<VecDeque>` ring: the floor for a locked, bounded queue.
//! - `by_actor_limit100_of_100k@brute_force_scan_by_actor`: the indexed query on 100,000
//!   records (1,000 actors); target ≤ 50 µs. Paired with `baseline:brute_force_scan_by_actor`,
//!   the same answer from a linear scan.
//! - `recent_100_of_100k`: the newest 100 of 100,000; target ≤ 20 µs.
//!
//! Also prints the estimated memory per stored record and appends it to
//! `$CARGO_TARGET_DIR/authtel-bench/recent_store.jsonl` (case `memory_per_record`).

use std::collections::VecDeque;
use std::hint::black_box;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authtel_audit::Reader;
use authtel_core::audit::AuditEvent;
use common::{STORE_SIZE, full_store, two_threads};
use criterion::{Criterion, criterion_group, criterion_main};

mod common;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("recent_store");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let store = full_store();
    let admin = Reader::new("bench").with_role("admin");

    group.bench_function("insert_two_threads@mutex_vecdeque_push", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &store, |s, e| {
                let _ = black_box(s.insert(e));
            })
        })
    });
    let ring: Mutex<VecDeque<AuditEvent>> = Mutex::new(VecDeque::with_capacity(STORE_SIZE));
    group.bench_function("baseline:mutex_vecdeque_push", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &ring, |r, e| {
                let mut q = r.lock().unwrap();
                if q.len() >= STORE_SIZE {
                    black_box(q.pop_front());
                }
                q.push_back(e);
            })
        })
    });
    drop(ring);

    // A fresh full store, so the queries see exactly 100k records and 100 per actor.
    let store = full_store();
    let actor = "svc_421";
    assert_eq!(store.by_actor(&admin, actor, 100).unwrap().len(), 100);
    group.bench_function("by_actor_limit100_of_100k@brute_force_scan_by_actor", |b| {
        b.iter(|| black_box(store.by_actor(&admin, black_box(actor), 100).unwrap()))
    });
    let all = store.recent(&admin, usize::MAX).unwrap();
    assert_eq!(all.len(), STORE_SIZE);
    group.bench_function("baseline:brute_force_scan_by_actor", |b| {
        b.iter(|| {
            let found: Vec<Arc<AuditEvent>> = all
                .iter()
                .filter(|e| e.actor().is_some_and(|p| p.id == black_box(actor)))
                .take(100)
                .cloned()
                .collect();
            black_box(found)
        })
    });
    group.bench_function("recent_100_of_100k", |b| {
        b.iter(|| black_box(store.recent(&admin, black_box(100)).unwrap()))
    });
    group.finish();

    let stats = store.stats();
    let per_record = stats.estimated_bytes as f64 / stats.entries as f64;
    eprintln!(
        "recent_store: estimated memory per stored record: {per_record:.0} bytes ({} records, {} bytes)",
        stats.entries, stats.estimated_bytes
    );
    write_jsonl(per_record);
}

fn write_jsonl(per_record: f64) {
    let Some(target) = std::env::var_os("CARGO_TARGET_DIR") else {
        eprintln!("recent_store: CARGO_TARGET_DIR is unset; memory_per_record not written");
        return;
    };
    let dir = std::path::Path::new(&target).join("authtel-bench");
    let line = format!(
        "{{\"case\":\"recent_store/memory_per_record\",\"value\":{per_record:.1},\"unit\":\"bytes\",\"baseline\":null,\"baseline_value\":null,\"ratio\":null}}\n"
    );
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("recent_store.jsonl"))?
            .write_all(line.as_bytes())
    });
    if let Err(e) = result {
        eprintln!("recent_store: could not write {}: {e}", dir.display());
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
