//! What the one screen costs per audit record (issue 13's own row).
//!
//! - `screen/screened_clean_record`: `AuditEvent::screened()` on a typical, clean login
//!   record (actor, target, session, client IP, browser user agent, reason, three metadata
//!   fields): every sink calls it once per record; a clean record is borrowed, not copied.
//! - `screen/sanitize_dirty_copy`: a copy of the same record with a password planted in the
//!   reason and a bearer token in a metadata value, sanitized: what a careless record costs.
//! - Baseline `baseline:serde_json_to_vec`: encoding the same record to JSON once, the work
//!   every sink does with it anyway; the ratio says what screening adds to that.

use std::hint::black_box;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::outcome::Outcome;
use criterion::{Criterion, criterion_group, criterion_main};

fn typical() -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure);
    e.actor = Some(Party::new("u_0190a5f27b3c", "user"));
    e.target = Some(Party::new("u_0190a5f27b3c", "user"));
    e.session_id = Some("s_7d4e9f10".into());
    e.client_ip = Some("203.0.113.7".parse().expect("ip"));
    e.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
            .into(),
    );
    e.reason = Some("invalid_credentials".into());
    e.metadata.insert(
        "request_id".into(),
        "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f".into(),
    );
    e.metadata.insert("method".into(), "password".into());
    e.metadata.insert("attempt".into(), 3.into());
    e
}

fn screen(c: &mut Criterion) {
    let mut group = c.benchmark_group("screen");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let clean = typical();
    assert!(clean.is_screened(), "the typical record is clean");
    let mut dirty = typical();
    dirty.reason = Some("verify failed: password=hunter2-planted".into());
    dirty.metadata.insert(
        "note".into(),
        "Authorization: Bearer abcDEF123456ghiJKL789".into(),
    );
    assert!(!dirty.is_screened(), "the dirty record needs screening");

    group.bench_function("baseline:serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&clean)).expect("encodes"))
    });
    group.bench_function("screened_clean_record", |b| {
        b.iter(|| {
            let screened = black_box(&clean).screened().expect("valid");
            black_box(matches!(screened, std::borrow::Cow::Borrowed(_)))
        })
    });
    group.bench_function("sanitize_dirty_copy", |b| {
        b.iter(|| {
            let mut copy = black_box(&dirty).clone();
            black_box(copy.sanitize().expect("valid"))
        })
    });
    group.finish();
}

criterion_group!(benches, screen);
criterion_main!(benches);
