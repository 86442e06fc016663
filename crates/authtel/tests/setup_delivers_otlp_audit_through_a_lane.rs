//! `setup().otlp_from_env()`: audit records reach the collector through the pipeline's
//! `otlp` lane (acknowledged per batch), each once; spans and signals through the handler.
//! With the collector down, audit records wait in the lane (retried, spilled when it stays
//! down) instead of being dropped, and arrive once it is back.

#![cfg(feature = "otlp")]

use std::collections::BTreeSet;
use std::time::Duration;

use authtel::catalogue::AUTH_LOGIN;
use authtel::metadata::Metadata;
use authtel::telemetry;
use authtel_testing::otlp::{OtlpReceiver, attribute};

/// The audit ids the collector received, and how many log records in all.
fn audit_ids(receiver: &OtlpReceiver) -> (BTreeSet<String>, usize) {
    let logs = receiver.log_records();
    let ids = logs
        .iter()
        .filter(|l| l.event_name == "authtel.audit")
        .filter_map(|l| attribute(&l.attributes, "audit.id"))
        .collect();
    (ids, logs.len())
}

async fn wait_for(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..600 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done()
}

// One test in this binary: it sets the process's OTLP environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_reach_otlp_through_the_lane_and_survive_a_dead_collector() {
    let receiver = OtlpReceiver::start().await.expect("receiver starts");
    let spill = std::env::temp_dir().join(format!("authtel-otlp-lane-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spill);
    // SAFETY: the only test of this binary sets these before any thread reads them.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint());
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    }
    let authtel = authtel::setup()
        .service_name("otlp-lane-test")
        .otlp_from_env()
        .spill_dir(&spill)
        .install_async()
        .await
        .expect("install");
    assert!(
        authtel.handlers().contains(&"authtel-pipeline"),
        "{:?}",
        authtel.handlers()
    );

    let pipeline = authtel
        .pipeline()
        .expect("the otlp lane is a pipeline lane");
    let lane = || {
        pipeline
            .metrics()
            .into_iter()
            .find(|f| f.forwarder == "otlp")
            .expect("otlp lane")
    };
    let login = |n: usize| {
        let user = format!("u_{n}");
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id(&user), || {
            Err::<(), _>("invalid_password")
        });
    };
    for n in 0..200 {
        login(n);
    }
    assert!(
        wait_for(|| lane().delivered == 200).await,
        "lane delivered {:?}",
        lane()
    );
    let (ids, logs) = audit_ids(&receiver);
    assert_eq!(ids.len(), 200, "each audit record once, by id");
    // The handler exports spans only, no log record per span stop: no record twice.
    assert_eq!(logs, 200, "only the lane's audit log records");
    assert!(
        wait_for(|| receiver.spans().len() >= 200).await,
        "spans still go through the handler: {}",
        receiver.spans().len()
    );

    // The collector goes away: the lane holds the records (nothing is acknowledged, nothing
    // dropped or given up on) and delivers them once the collector is back.
    receiver.stop().await;
    for n in 200..500 {
        login(n);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        lane().delivered,
        200,
        "nothing acknowledged while down: {:?}",
        lane()
    );
    assert_eq!(audit_ids(&receiver).0.len(), 200);

    receiver.restart().await.expect("receiver restarts");
    assert!(
        wait_for(|| lane().delivered == 500).await,
        "the lane delivers the rest once the collector is back: {:?}",
        lane()
    );
    assert_eq!(
        audit_ids(&receiver).0.len(),
        500,
        "every audit record arrived"
    );
    assert_eq!(lane().dropped, 0, "{:?}", lane());
    assert_eq!(lane().dead_lettered, 0, "{:?}", lane());
    authtel
        .shutdown(Duration::from_secs(20))
        .expect("clean shutdown");
    assert_eq!(
        audit_ids(&receiver).0.len(),
        500,
        "nothing more after shutdown"
    );
    let _ = std::fs::remove_dir_all(&spill);
}
