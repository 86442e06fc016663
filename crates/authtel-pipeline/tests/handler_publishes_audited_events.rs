//! Attached to a registry, the pipeline turns audited events (span stops, exceptions,
//! signals) into audit records; span starts are skipped; its own failure signals do not
//! feed back into it; the flush guard delivers everything accepted when dropped.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection};
use authtel_core::{catalogue, telemetry};
use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{Capture, TempDir, numbered};

#[test]
fn audited_events_become_records_and_starts_do_not() {
    let dest = Arc::new(Capture::new());
    let pipeline = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("store", dest.clone()).dispatch(Dispatch::Sync))
        .build()
        .unwrap();
    let registry = Registry::new();
    registry
        .attach("pipeline", Selection::All, pipeline.handler())
        .unwrap();
    let _scope = registry.enter();
    let ok: Result<(), std::io::Error> = telemetry::span(
        &catalogue::AUTH_LOGIN,
        Metadata::new().user_id("u_7"),
        || Ok(()),
    );
    ok.unwrap();
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new().user_id("u_7"),
    );
    let actions: Vec<_> = dest
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.action().to_owned())
        .collect();
    assert_eq!(actions, ["auth.login.stop", "security.lockout"]);
    let actor = dest.received.lock().unwrap()[1].actor().cloned().unwrap();
    assert_eq!(actor.id, "u_7");
}

#[test]
fn forward_errors_do_not_loop_back_into_the_pipeline() {
    let dir = TempDir::new("loop");
    let dest = Arc::new(Capture::new());
    dest.down.store(true, Ordering::SeqCst);
    let registry = Registry::new();
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("down", dest.clone())
                .dispatch(Dispatch::Sync)
                .retry(RetryPolicy {
                    max_attempts: 1,
                    base: Duration::ZERO,
                    max: Duration::ZERO,
                    jitter: false,
                })
                .dead_letter_dir(dir.path()),
        )
        .signals_to(registry.clone())
        .build()
        .unwrap();
    registry
        .attach("pipeline", Selection::All, pipeline.handler())
        .unwrap();
    let _scope = registry.enter();
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new(),
    );
    let m = &pipeline.metrics()[0];
    // One record published and dead-lettered; its forward-error signal was not re-published.
    assert_eq!((m.published, m.dead_lettered), (1, 1), "{m:?}");
    assert_eq!(dest.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_guard_delivers_everything_accepted() {
    let dest = Arc::new(Capture::new());
    let pipeline = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("store", dest.clone())
                .dispatch(Dispatch::Async)
                .batch_size(7),
        )
        .build()
        .unwrap();
    let p = pipeline.clone();
    tokio::task::spawn_blocking(move || {
        let guard = p.flush_guard(common::PATIENCE);
        for e in numbered(0..1_000) {
            p.publish(e).unwrap();
        }
        drop(guard);
    })
    .await
    .unwrap();
    assert_eq!(dest.seqs(), (0..1_000).collect::<Vec<_>>());
    assert_eq!(pipeline.metrics()[0].queue_depth, 0);
}
