//! A login never waits on a destination. Under the default configuration (Dispatch::Auto,
//! default backpressure, the pipeline handler attached, no tokio runtime anywhere) and a
//! destination that hangs forever, a login span returns at once, and keeps returning at
//! once after the queue is full. The first version delivered inline outside a runtime: one
//! login waited about 50 s (call timeout 10 s × 5 attempts + backoff).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::metadata::Metadata;
use authtel_core::registry::{Registry, Selection};
use authtel_core::telemetry;
use authtel_pipeline::{ForwarderConfig, Pipeline};
use common::wait_until;

/// Takes the batch and never answers.
#[derive(Debug, Default)]
struct Hangs {
    calls: AtomicU64,
}

impl Forwarder for Hangs {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(std::future::pending())
    }
}

/// Far above the expected value (well under a millisecond), so a loaded machine cannot
/// make it flake; the first version took seconds.
const BOUND: Duration = Duration::from_millis(100);

#[test]
fn a_login_span_returns_at_once_while_the_destination_hangs() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let dest = Arc::new(Hangs::default());
    let pipeline = Pipeline::builder()
        .forwarder(ForwarderConfig::from_arc("kafka", dest.clone()).queue_capacity(256))
        .build()
        .unwrap();
    let registry = Registry::new();
    registry
        .attach("pipeline", Selection::All, pipeline.handler())
        .unwrap();
    let _scope = registry.enter();
    let login = |i: u64| {
        let started = Instant::now();
        let user = format!("u_{i}");
        let r = telemetry::span(
            &catalogue::AUTH_LOGIN,
            Metadata::new().user_id(&user),
            || Ok::<_, ()>(()),
        );
        assert!(r.is_ok());
        started.elapsed()
    };
    let first = login(0);
    assert!(first < BOUND, "first login took {first:?}");
    assert!(wait_until(|| dest.calls.load(Ordering::SeqCst) >= 1));
    // The worker is stuck in the hanging call; fill the queue and its audit reserve and
    // go on: no login ever waits.
    let mut worst = first;
    for i in 1..2_000 {
        worst = worst.max(login(i));
    }
    assert!(worst < BOUND, "slowest login took {worst:?}");
    let m = &pipeline.metrics()[0];
    assert!(m.asynchronous, "{m:?}");
    assert!(m.published >= 2_000, "{m:?}");
}
