//! Secrets planted through the public API — metadata fields named like secrets, bearer
//! tokens and JWT-looking values, on the handler path and on `publish` — never reach a
//! spill file, a dead-letter file or a forwarder.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection};
use authtel_core::{catalogue, telemetry};
use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{Capture, PATIENCE, TempDir, wait_until};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1XzEifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
const SECRETS: [&str; 6] = [
    "hunter2-correct-horse",
    JWT,
    "rt_9f8e7d6c5b4a39281706",
    "123456-totp",
    "sid=cookie-secret-value",
    "client-secret-s3cr3t",
];

/// Rejects everything permanently, echoing a token-looking text in its error.
#[derive(Debug)]
struct Rejects;
impl Forwarder for Rejects {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Permanent,
                format!("schema mismatch near Bearer {JWT}"),
            ))
        })
    }
}

fn plant(pipeline: &Pipeline, registry: &Registry) {
    {
        let _scope = registry.enter();
        for _ in 0..5 {
            telemetry::event(
                &catalogue::SECURITY_LOCKOUT,
                Default::default(),
                Metadata::new()
                    .user_id("u_1")
                    .reason(JWT)
                    .with_extra("password", SECRETS[0])
                    .with_extra("note", JWT)
                    .with_extra("refresh_token", SECRETS[2])
                    .with_extra("totp_code", SECRETS[3])
                    .with_extra("cookie", SECRETS[4])
                    .with_extra("client_secret", SECRETS[5]),
            );
        }
    }
    for _ in 0..5 {
        let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
        e = e.with_reason(format!("Bearer {JWT}"));
        e = e.with_user_agent(JWT.to_owned());
        e = e.with_metadata("password", SECRETS[0]).unwrap();
        e = e.with_metadata("access_token", SECRETS[2]).unwrap();
        e = e.with_metadata("otp", SECRETS[3]).unwrap();
        e = e.with_metadata("set_cookie", SECRETS[4]).unwrap();
        e = e
            .with_metadata(
                "oauth",
                serde_json::json!({"client_secret": SECRETS[5], "id_token": JWT}),
            )
            .unwrap();
        pipeline.publish(e).unwrap();
    }
}

fn assert_clean(bytes: &[u8], what: &str) {
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.is_empty(),
        "{what} is empty: the test would prove nothing"
    );
    for s in SECRETS {
        assert!(!text.contains(s), "{what} contains {s:?}");
    }
    assert!(
        !text.contains("eyJhbGciOiJIUzI1NiJ9"),
        "{what} contains a JWT header"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_spill_dead_letter_or_forwarder() {
    let dir = TempDir::new("secrets");
    let down = Arc::new(Capture::new());
    down.down.store(true, Ordering::SeqCst);
    let registry = Registry::new();
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("spills", down.clone())
                .dispatch(Dispatch::Async)
                .retry(RetryPolicy {
                    max_attempts: 1,
                    base: Duration::ZERO,
                    max: Duration::ZERO,
                    jitter: false,
                })
                .breaker(BreakerConfig {
                    failure_threshold: 1,
                    open_for: Duration::from_millis(50),
                })
                .spill_dir(dir.path().join("spill"))
                .dead_letter_dir(dir.path().join("dead")),
        )
        .forwarder(
            ForwarderConfig::new("rejects", Rejects)
                .dispatch(Dispatch::Sync)
                .dead_letter_dir(dir.path().join("dead")),
        )
        .signals_to(registry.clone())
        .build()
        .unwrap();
    registry
        .attach("pipeline", Selection::All, pipeline.handler())
        .unwrap();
    let reports = Arc::new(std::sync::Mutex::new(String::new()));
    let r = reports.clone();
    registry
        .attach(
            "reports",
            &catalogue::PIPELINE_FORWARD_ERROR,
            authtel_core::registry::handler_fn(move |rec| {
                rec.metadata
                    .for_each_field(|k, v| r.lock().unwrap().push_str(&format!("{k}={v:?};")));
            }),
        )
        .unwrap();
    let (p, reg) = (pipeline.clone(), registry.clone());
    tokio::task::spawn_blocking(move || {
        plant(&p, &reg);
        assert!(wait_until(|| p.metrics()[0].spilled == 10));
        assert_eq!(p.metrics()[1].dead_lettered, 10);
        p.flush(Instant::now() + PATIENCE).unwrap();
    })
    .await
    .unwrap();
    assert_clean(
        &std::fs::read(
            dir.path()
                .join("spill")
                .join("spills")
                .read_dir()
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
        )
        .unwrap(),
        "spill file",
    );
    assert_clean(
        &std::fs::read(dir.path().join("dead").join("rejects.dead.jsonl")).unwrap(),
        "dead-letter file",
    );
    assert_clean(&dir.all_bytes(), "files written by the pipeline");
    assert_clean(
        reports.lock().unwrap().as_bytes(),
        "forward-error signal metadata",
    );

    // Once the destination recovers, what it receives is just as clean.
    down.down.store(false, Ordering::SeqCst);
    let healthy = down.clone();
    tokio::task::spawn_blocking(move || assert!(wait_until(|| healthy.len() == 10)))
        .await
        .unwrap();
    let delivered = serde_json::to_vec(&*down.received.lock().unwrap()).unwrap();
    assert_clean(&delivered, "records delivered to the forwarder");
}
