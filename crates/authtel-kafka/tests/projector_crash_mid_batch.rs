//! A projector killed after its database commit but before its offset commit, then
//! restarted: the batch is read again and skipped, the store ends with one row per event.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use authtel_kafka::{KafkaForwarder, ProjectFuture, ProjectionSink, Projector};
use authtel_sql::AuditStore;
use common::stores::RowCount;
use tokio::sync::Notify;

/// Stores the first batch through the real store, then never returns: the projector is
/// stuck between the database commit and the offset commit, where the test kills it.
#[derive(Debug)]
struct HangAfterFirstCommit<S> {
    store: Arc<S>,
    hung: AtomicBool,
    stored: Notify,
}

impl<S: ProjectionSink> ProjectionSink for HangAfterFirstCommit<S> {
    fn project<'a>(&'a self, batch: &'a [AuditEvent]) -> ProjectFuture<'a> {
        Box::pin(async move {
            let new = self.store.project(batch).await?;
            if !self.hung.swap(true, Ordering::SeqCst) {
                self.stored.notify_one();
                std::future::pending::<()>().await;
            }
            Ok(new)
        })
    }
}

async fn crash_and_restart<S>(test: &str, store: AuditStore<S>)
where
    S: sqlx::Database,
    AuditStore<S>: ProjectionSink + RowCount,
{
    let Some(bootstrap) = common::bootstrap(test) else {
        return;
    };
    let topic = common::unique_topic("crash");
    common::create_topic(&bootstrap, &topic, 1).await;
    let kafka = KafkaForwarder::builder(&bootstrap, &topic).build().unwrap();
    let sent: Vec<_> = (0..300)
        .map(|i| {
            let mut e = AuditEvent::new("jwt.refresh.stop", Outcome::Success).unwrap();
            e = e.with_actor(Party::new(format!("u_{}", i % 10), "user"));
            e
        })
        .collect();
    kafka.forward(&sent).await.unwrap();

    let store = Arc::new(store);
    let group = common::unique_topic("g");
    let hanging = Arc::new(HangAfterFirstCommit {
        store: store.clone(),
        hung: AtomicBool::new(false),
        stored: Notify::new(),
    });
    let first = Projector::builder(&bootstrap, &group, &topic)
        .with_config("session.timeout.ms", "6000")
        .with_max_batch(100)
        .build(hanging.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = first.clone();
        async move { p.run().await }
    });
    tokio::time::timeout(common::WAIT, hanging.stored.notified())
        .await
        .expect("first batch stored");
    let (rows_before_crash, _) = store.rows().await;
    assert!(rows_before_crash > 0, "the first batch is in the database");
    // Kill: abort the task and drop the projector; no offset was committed.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    drop(first);

    let second = Projector::builder(&bootstrap, &group, &topic)
        .with_config("session.timeout.ms", "6000")
        .with_max_batch(100)
        .build(store.clone())
        .unwrap();
    let task = tokio::spawn({
        let p = second.clone();
        async move { p.run().await }
    });
    assert!(
        common::wait_until(|| second.counters().consumed >= 300).await,
        "{test}: restarted projector read the topic from the last commit: {:?}",
        second.counters()
    );
    second.stop();
    task.await.unwrap().expect("clean stop");
    let c = second.counters();
    assert_eq!(
        c.consumed, 300,
        "nothing was committed by the killed projector: {c:?}"
    );
    assert_eq!(
        c.duplicates, rows_before_crash as u64,
        "the stored batch was skipped, not written twice: {c:?}"
    );
    assert_eq!(c.projected + c.duplicates, 300, "{c:?}");
    assert_eq!(store.rows().await, (300, 300), "{test}: one row per event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_killed_mid_batch_leaves_one_row_per_event_sqlite() {
    let test = "projector_killed_mid_batch_leaves_one_row_per_event_sqlite";
    crash_and_restart(test, common::stores::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_killed_mid_batch_leaves_one_row_per_event_postgres() {
    let test = "projector_killed_mid_batch_leaves_one_row_per_event_postgres";
    let Some(store) = common::stores::postgres(test).await else {
        return;
    };
    crash_and_restart(test, store).await;
}
