//! What the detectors cost, next to baselines (see xtask/src/bench.rs for the naming).
//!
//! - `detect_login`: one failed login (`auth.login` closure span, stop with a failure) on
//!   the global registry through the five detectors that hear `auth.login.stop` (brute
//!   force, spraying, stuffing, new location, travel), attached by `Detectors::attach` as one
//!   handler (`authtel-detect.login`),
//!   against the same span with one no-op handler (core's `span/one_handler_start_stop`).
//!   Accounts and addresses rotate over 4,096 of each, as traffic does.
//! - `detect_login_event`: the row issue 15 names: one failed-login event (a single
//!   `telemetry::event` of `auth.login.stop` with outcome failure, no span) through the same
//!   five detectors, against the same event with one no-op handler. Target: ≤ 200 ns.
//! - `detect_verdict`: `Detectors::verdict` with no penalty running anywhere (one load)
//!   and with penalties in the box (address, account and pair penalties running: hash the
//!   address and the account, look up what their hints point to), against one lookup in a
//!   std `HashMap<String, u64>` (SipHash, like ours). Target: ≤ 100 ns.
//!
//! `examples/detect_loop.rs` runs the same loops (`common/`) for callgrind.
//! - `detect/memory_…` (a JSON row in `$AUTHTEL_BENCH_DIR/detect.jsonl`): the process's
//!   resident memory growth after a million distinct addresses and accounts, beside the
//!   detectors' own accounting.

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use authtel_core::catalogue::AUTH_LOGIN;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{self, Registry, handler_fn};
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use authtel_detect::{Detectors, FixedGeo, GeoPoint};
use common::{KEYS, Traffic, login_detectors};
use criterion::{BenchmarkGroup, Criterion, criterion_group, measurement::WallTime};

fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
}

fn assert_nothing_attached() {
    assert!(
        Registry::global().handlers().is_empty(),
        "the bench owns the global registry"
    );
}

fn detect_login(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect_login");
    short(&mut group);
    assert_nothing_attached();
    let mut traffic = Traffic::new();
    let detectors = login_detectors();
    detectors.attach_global().expect("nothing else is attached");
    assert_eq!(Registry::global().handlers().len(), 1);
    group.bench_function("failed_login_five_detectors", |b| {
        b.iter(|| traffic.failed_login())
    });
    detectors
        .detach(Registry::global())
        .expect("attached above");

    registry::attach(
        "bench-noop",
        &AUTH_LOGIN,
        handler_fn(|r| {
            black_box(r.event);
        }),
    )
    .expect("nothing else is attached");
    group.bench_function("baseline:one_noop_handler", |b| {
        b.iter(|| traffic.failed_login())
    });
    registry::detach("bench-noop").expect("attached above");
    group.finish();
}

fn detect_login_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect_login_event");
    short(&mut group);
    assert_nothing_attached();
    let mut traffic = Traffic::new();
    let detectors = login_detectors();
    detectors.attach_global().expect("nothing else is attached");
    group.bench_function("failed_login_event_five_detectors", |b| {
        b.iter(|| traffic.failed_login_event())
    });
    detectors
        .detach(Registry::global())
        .expect("attached above");

    registry::attach(
        "bench-noop",
        &AUTH_LOGIN,
        handler_fn(|r| {
            black_box(r.event);
        }),
    )
    .expect("nothing else is attached");
    group.bench_function("baseline:one_noop_handler", |b| {
        b.iter(|| traffic.failed_login_event())
    });
    registry::detach("bench-noop").expect("attached above");
    group.finish();
}

fn detect_verdict(c: &mut Criterion) {
    let mut group = c.benchmark_group("detect_verdict");
    short(&mut group);
    let mut traffic = Traffic::new();
    let detectors = login_detectors();
    group.bench_function("verdict_no_penalty", |b| {
        b.iter(|| {
            let (ip, user) = traffic.next_attempt();
            detectors.verdict(black_box(ip), black_box(user))
        })
    });
    traffic.penalise(&detectors);
    group.bench_function("verdict_with_penalties", |b| {
        b.iter(|| {
            let (ip, user) = traffic.next_attempt();
            detectors.verdict(black_box(ip), black_box(user))
        })
    });
    let map: HashMap<String, u64> = traffic.users.iter().map(|u| (u.clone(), 1)).collect();
    let mut j = 0;
    group.bench_function("baseline:std_hashmap_get", |b| {
        b.iter(|| {
            j = (j + 1) % KEYS;
            map.get(black_box(traffic.users[j].as_str())).copied()
        })
    });
    group.finish();
}

fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A million distinct addresses and accounts through every detector; RSS growth against
/// the accounting, as a JSON row for `cargo xtask bench`.
fn memory_row() {
    let before = rss_bytes();
    let detectors = Detectors::builder()
        .with_geo(
            FixedGeo::new()
                .with_network("0.0.0.0/0", GeoPoint::new(52.5, 13.4, 25).with_asn(64_500))
                .expect("valid network"),
        )
        .build()
        .expect("defaults are valid");
    let handlers = detectors.handlers();
    let numbers = Measurements::new();
    let mut user = String::new();
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        user.clear();
        let _ = write!(user, "u{i}");
        let ip = IpAddr::V4(Ipv4Addr::from(i.wrapping_mul(0x9E37_79B1)));
        for outcome in [Outcome::Failure, Outcome::Success] {
            let meta = Metadata::new()
                .user_id(&user)
                .client_ip(ip)
                .user_agent("ua/bench")
                .outcome(outcome);
            let ctx = SpanContext::child_of(None);
            let record = EventRecord::signal(AUTH_LOGIN.stop(), ctx, &numbers, &meta);
            for h in &handlers {
                if h.events.iter().any(|e| std::ptr::eq(*e, record.event)) {
                    h.handler.handle(&record);
                }
            }
        }
    }
    let accounted = detectors.stats().memory_bytes;
    let after = rss_bytes();
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    let Some(grown) = before.zip(after).map(|(b, a)| a.saturating_sub(b)) else {
        println!(
            "detect/memory: no /proc/self/statm; accounted {:.1} MiB",
            mib(accounted)
        );
        return;
    };
    println!(
        "detect/memory_1m_ips_1m_users: RSS grew {:.1} MiB, accounted {:.1} MiB, bound 64 MiB",
        mib(grown),
        mib(accounted)
    );
    if let Some(dir) = std::env::var_os("AUTHTEL_BENCH_DIR") {
        let row = format!(
            "{{\"case\": \"detect/memory_1m_ips_1m_users_rss\", \"value\": {:.1}, \"unit\": \"MiB\", \"baseline\": \"detector accounting\", \"baseline_value\": {:.1}}}\n",
            mib(grown),
            mib(accounted)
        );
        let path = std::path::Path::new(&dir).join("detect.jsonl");
        if let Err(e) = std::fs::write(&path, row) {
            eprintln!("detect: could not write {}: {e}", path.display());
        }
    }
    drop(handlers);
    drop(detectors);
}

criterion_group!(benches, detect_login, detect_login_event, detect_verdict);

fn main() {
    memory_row();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
