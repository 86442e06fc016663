//! The projector stores through the pipeline's delivery engine: a store that fails, panics,
//! hangs, or fails long enough to open the breaker loses nothing and stores nothing twice,
//! and the engine's counters say what happened.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::{ErrorKind, ForwardError, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, ProjectFuture, ProjectionSink, Projector, ProjectorState};
use authtel_pipeline::{BreakerConfig, BreakerState};

/// What the store does on each call, by call number (from 1); afterwards it works.
#[derive(Clone, Copy, Debug)]
enum Fault {
    Transient,
    Panic,
    Hang,
}

/// An in-memory store, idempotent on the event id, that misbehaves on its first calls.
#[derive(Debug)]
struct FaultyStore {
    script: Vec<Fault>,
    calls: AtomicU32,
    ids: Mutex<HashSet<uuid::Uuid>>,
}

impl FaultyStore {
    fn new(script: Vec<Fault>) -> FaultyStore {
        FaultyStore {
            script,
            calls: AtomicU32::new(0),
            ids: Mutex::new(HashSet::new()),
        }
    }

    fn stored(&self) -> usize {
        self.ids.lock().unwrap().len()
    }
}

impl ProjectionSink for FaultyStore {
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            match self.script.get(call) {
                Some(Fault::Transient) => {
                    return Err(ForwardError::message(
                        ErrorKind::Transient,
                        "database is restarting",
                    ));
                }
                Some(Fault::Panic) => panic!("store bug on call {call}"),
                Some(Fault::Hang) => std::future::pending::<()>().await,
                None => {}
            }
            let mut ids = self.ids.lock().unwrap();
            Ok(batch.iter().filter(|e| ids.insert(e.id())).count() as u64)
        })
    }
}

fn events(n: usize) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            AuditEvent::new("auth.login.stop", Outcome::Failure)
                .unwrap()
                .with_actor(Party::new(format!("u_{}", i % 5), "user"))
        })
        .collect()
}

/// Sends `n` records, projects them into `store`, returns the projector once all are stored.
async fn project_all(
    test: &str,
    store: Arc<FaultyStore>,
    n: usize,
    breaker: BreakerConfig,
) -> Option<Projector> {
    let bootstrap = common::bootstrap(test)?;
    let topic = common::unique_topic("faults");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    kafka.forward(&events(n)).await.unwrap();

    let p = Projector::builder(&bootstrap, common::unique_topic("g"), &topic)
        .with_config("session.timeout.ms", "6000")
        .with_store_retry(Duration::from_millis(20), Duration::from_millis(200))
        .with_store_timeout(Duration::from_millis(300))
        .with_breaker(breaker)
        .build(store.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = p.clone();
        async move { p.run().await }
    });
    let all = common::wait_until(|| store.stored() >= n).await;
    assert!(
        all,
        "{test}: {} of {n} stored: {:?} {:?}",
        store.stored(),
        p.counters(),
        p.health()
    );
    // Wait for the offsets too: the batch is done when its offsets are committed.
    assert!(
        common::wait_until(|| p.health().state == ProjectorState::Running).await,
        "{test}: {:?}",
        p.health()
    );
    p.stop();
    task.await.unwrap().expect("clean stop");
    Some(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_panicking_hanging_store_loses_nothing() {
    let test = "a_failing_panicking_hanging_store_loses_nothing";
    let store = Arc::new(FaultyStore::new(vec![
        Fault::Transient,
        Fault::Panic,
        Fault::Hang,
        Fault::Transient,
    ]));
    let lenient = BreakerConfig {
        failure_threshold: 100,
        open_for: Duration::from_secs(1),
    };
    let Some(p) = project_all(test, store.clone(), 60, lenient).await else {
        return;
    };
    assert_eq!(store.stored(), 60);
    let c = p.counters();
    assert_eq!(c.projected, 60, "{c:?}");
    assert_eq!(c.duplicates, 0, "{c:?}");
    assert_eq!(c.refused, 0, "{c:?}");
    assert_eq!(c.dead_lettered, 0, "{c:?}");
    // The two errors the store returned; the panic and the hang are the engine's to count.
    assert_eq!(c.store_failures, 2, "{c:?}");
    let m = p.store_metrics();
    assert_eq!(m.forwarder, "projector");
    assert_eq!(m.panics, 1, "{m:?}");
    assert_eq!(m.timeouts, 1, "{m:?}");
    assert!(
        store.calls.load(Ordering::SeqCst) >= 5,
        "four faults, then a call that stored"
    );
    let last = p.health().last_error.unwrap_or_default();
    assert!(last.contains("retrying"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_pauses_the_store_and_delivery_resumes() {
    let test = "an_open_breaker_pauses_the_store_and_delivery_resumes";
    let store = Arc::new(FaultyStore::new(vec![Fault::Transient; 4]));
    let breaker = BreakerConfig {
        failure_threshold: 2,
        open_for: Duration::from_millis(400),
    };
    let Some(p) = project_all(test, store.clone(), 25, breaker).await else {
        return;
    };
    assert_eq!(store.stored(), 25);
    let m = p.store_metrics();
    assert!(m.breaker_opens >= 1, "{m:?}");
    assert_eq!(m.breaker, BreakerState::Closed, "{m:?}");
    // While open the store is not called: four failures, a few probes, one success.
    let calls = store.calls.load(Ordering::SeqCst);
    assert!((5..=8).contains(&calls), "{calls} store calls");
    assert_eq!(p.counters().projected, 25);
}
