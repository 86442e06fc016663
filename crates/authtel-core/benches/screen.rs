//! What the one screen costs per audit record (issue 13's own row).
//!
//! A record is screened when it is made, so the screen's cost is paid where a record is
//! built or decoded, once, and never by a sink.
//!
//! - `screen/decode_clean_record`: decoding a typical, clean login record (actor, target,
//!   session, client IP, browser user agent, reason, three metadata fields) from JSON into
//!   an `AuditEvent`: the JSON parse plus the policy on every field. What the Kafka
//!   projector, spill replay and dead-letter reads pay per record.
//! - `screen/decode_dirty_record`: the same record with a password planted in the reason and
//!   a bearer token in a metadata value: what a careless record costs.
//! - Baseline `baseline:decode_parts`: decoding the same JSON into `AuditEventParts`, the
//!   policy-free half; `decode_clean_record` minus this is the screen.
//! - Baseline `baseline:serde_json_to_vec`: encoding the record to JSON once, the work every
//!   sink does with it anyway.

use std::hint::black_box;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, AuditEventParts, Party};
use authtel_core::outcome::Outcome;
use criterion::{Criterion, criterion_group, criterion_main};

fn typical() -> AuditEvent {
    AuditEvent::new("auth.login.stop", Outcome::Failure)
        .expect("a catalogue action")
        .with_actor(Party::new("u_0190a5f27b3c", "user"))
        .with_target(Party::new("u_0190a5f27b3c", "user"))
        .with_session_id("s_7d4e9f10")
        .with_client_ip("203.0.113.7".parse().expect("ip"))
        .with_user_agent(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        )
        .with_reason("invalid_credentials")
        .with_metadata("request_id", "0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
        .and_then(|e| e.with_metadata("method", "password"))
        .and_then(|e| e.with_metadata("attempt", 3))
        .expect("within bounds")
}

fn screen(c: &mut Criterion) {
    let mut group = c.benchmark_group("screen");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let clean = typical();
    let clean_json = serde_json::to_vec(&clean).expect("encodes");
    let mut dirty: serde_json::Value = serde_json::from_slice(&clean_json).expect("json");
    dirty["reason"] = "verify failed: password=hunter2-planted".into();
    dirty["metadata"]["note"] = "Authorization: Bearer abcDEF123456ghiJKL789".into();
    let dirty_json = serde_json::to_vec(&dirty).expect("encodes");
    let decoded: AuditEvent = serde_json::from_slice(&clean_json).expect("decodes");
    assert_eq!(decoded, clean, "the typical record is clean");
    let decoded: AuditEvent = serde_json::from_slice(&dirty_json).expect("decodes");
    assert_eq!(
        decoded.reason(),
        Some("[REDACTED]"),
        "the dirty record is screened"
    );

    group.bench_function("baseline:serde_json_to_vec", |b| {
        b.iter(|| serde_json::to_vec(black_box(&clean)).expect("encodes"))
    });
    group.bench_function("baseline:decode_parts", |b| {
        b.iter(|| {
            serde_json::from_slice::<AuditEventParts>(black_box(&clean_json)).expect("decodes")
        })
    });
    group.bench_function("decode_clean_record", |b| {
        b.iter(|| serde_json::from_slice::<AuditEvent>(black_box(&clean_json)).expect("decodes"))
    });
    group.bench_function("decode_dirty_record", |b| {
        b.iter(|| serde_json::from_slice::<AuditEvent>(black_box(&dirty_json)).expect("decodes"))
    });
    group.finish();
}

criterion_group!(benches, screen);
criterion_main!(benches);
