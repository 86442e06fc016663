// The outbox relay's delivery: spawned and single passes, retries, dead letters, a crash
// between claim and mark-done, relays sharing one outbox, an entry whose row vanished.
// Compiled once per backend module like `cases.rs`.

mod relay_delivery {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use authtel_core::audit::AuditEvent;
    use authtel_core::forward::ErrorKind;
    use authtel_core::outcome::Outcome;
    use authtel_sql::{Relay, RelayConfig, RetryPolicy};

    use super::{Db, delete_event, store};
    use crate::support::{Failing, Flaky, Hanging, Recording, event, eventually, shared};

    const WAIT: Duration = Duration::from_secs(60);

    fn fast_retry(max: u32) -> RelayConfig {
        RelayConfig::default()
            .with_lease(Duration::from_secs(30))
            .with_retry(RetryPolicy::new(
                max,
                Duration::from_millis(1),
                Duration::from_millis(5),
            ))
    }

    async fn drive(relay: &Relay<Db>, until: impl Fn() -> bool, what: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while !until() {
            relay.run_once().await.unwrap();
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spawned_relay_delivers_every_committed_record() {
        let store = store_or_skip!("spawned", &["kafka", "otlp"]);
        let kafka = shared(Recording::default());
        let otlp = shared(Recording::default());
        let handle = Relay::new(
            &store,
            RelayConfig::default()
                .with_batch_size(7)
                .with_poll_interval(Duration::from_millis(20)),
        )
        .with_forwarder("kafka", kafka.clone())
        .unwrap()
        .with_forwarder("otlp", otlp.clone())
        .unwrap()
        .spawn();
        let mut expected = HashSet::new();
        for i in 0..40 {
            let mut tx = store.begin().await.unwrap();
            let e = event("auth.login.stop", Outcome::Success);
            expected.insert(e.id());
            tx.record(&e).await.unwrap();
            if i % 2 == 0 {
                tx.record(&e).await.unwrap(); // same id twice: one row, one entry per forwarder
            }
            tx.commit().await.unwrap();
        }
        eventually(WAIT, "both forwarders got 40 records", || async {
            kafka.len() == 40 && otlp.len() == 40
        })
        .await;
        assert_eq!(kafka.ids().into_iter().collect::<HashSet<_>>(), expected);
        assert_eq!(otlp.ids().into_iter().collect::<HashSet<_>>(), expected);
        eventually(WAIT, "outbox marked done", || async {
            let s = store.delivery_state().await.unwrap();
            s.iter().all(|f| f.pending == 0 && f.done == 40) && s.len() == 2
        })
        .await;
        // The counters are bumped at the end of a pass, just after the rows are marked.
        eventually(WAIT, "relay counters", || async {
            handle.stats().delivered.load(Ordering::Relaxed) == 80
        })
        .await;
        assert!(handle.shutdown(Duration::from_secs(30)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relay_retries_a_flaky_forwarder() {
        let store = store_or_skip!("flaky", &["kafka"]);
        let e = event("auth.login.stop", Outcome::Failure);
        let mut tx = store.begin().await.unwrap();
        tx.record(&e).await.unwrap();
        tx.commit().await.unwrap();
        let flaky = shared(Flaky {
            failures: 2,
            ..Flaky::default()
        });
        let relay = Relay::new(&store, fast_retry(5))
            .with_forwarder("kafka", flaky.clone())
            .unwrap();
        drive(&relay, || flaky.inner.len() == 1, "flaky delivery").await;
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 3);
        assert_eq!(flaky.inner.ids(), [e.id()]);
        let state = store.delivery_state().await.unwrap();
        assert_eq!((state[0].pending, state[0].dead, state[0].done), (0, 0, 1));
        assert_eq!(relay.stats().retried.load(Ordering::Relaxed), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relay_dead_letters_with_the_reason() {
        let store = store_or_skip!("dead", &["permanent", "transient"]);
        let e = event("auth.login.stop", Outcome::Failure);
        let mut tx = store.begin().await.unwrap();
        tx.record(&e).await.unwrap();
        tx.commit().await.unwrap();
        let relay = Relay::new(&store, fast_retry(3))
            .with_forwarder("permanent", Arc::new(Failing(ErrorKind::Permanent)))
            .unwrap()
            .with_forwarder("transient", Arc::new(Failing(ErrorKind::Transient)))
            .unwrap();
        drive(
            &relay,
            || relay.stats().dead.load(Ordering::Relaxed) == 2,
            "both dead-lettered",
        )
        .await;
        let perm = store.dead_letters("permanent", 10).await.unwrap();
        assert_eq!(perm.len(), 1);
        assert_eq!(perm[0].event_id, e.id());
        assert_eq!(perm[0].attempts, 1);
        assert!(perm[0].reason.contains("schema mismatch"), "{}", perm[0].reason);
        let trans = store.dead_letters("transient", 10).await.unwrap();
        assert_eq!(trans[0].attempts, 3);
        assert!(
            trans[0].reason.starts_with("gave up after 3 attempts"),
            "{}",
            trans[0].reason
        );
        let state = store.delivery_state().await.unwrap();
        assert!(state.iter().all(|s| s.dead == 1 && s.pending == 0));
        let health = store.health(Duration::from_secs(60)).await.unwrap();
        assert_eq!(health.dead, 2);
        assert_eq!(store.requeue_dead("transient").await.unwrap(), 1);
        let state = store.delivery_state().await.unwrap();
        let t = state.iter().find(|s| s.forwarder == "transient").unwrap();
        assert_eq!((t.pending, t.dead), (1, 0));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn relay_crash_mid_batch_loses_nothing() {
        let store = store_or_skip!("crash", &["kafka"]);
        let mut ids = HashSet::new();
        for _ in 0..25 {
            let mut tx = store.begin().await.unwrap();
            let e = event("auth.login.stop", Outcome::Success);
            ids.insert(e.id());
            tx.record(&e).await.unwrap();
            tx.commit().await.unwrap();
        }
        let lease = Duration::from_millis(800);
        let hanging = shared(Hanging::default());
        let doomed = Relay::new(&store, RelayConfig::default().with_lease(lease))
            .with_forwarder("kafka", hanging.clone())
            .unwrap()
            .spawn();
        tokio::time::timeout(WAIT, hanging.entered.notified())
            .await
            .expect("the doomed relay claimed a batch");
        drop(doomed); // the relay dies between claim and mark-done
        let state = store.delivery_state().await.unwrap();
        assert_eq!(state[0].pending, 25, "claimed entries stay pending");

        let survivor = shared(Recording::default());
        let relay = Relay::new(&store, RelayConfig::default().with_lease(lease))
            .with_forwarder("kafka", survivor.clone())
            .unwrap();
        drive(&relay, || survivor.len() >= 25, "re-claim after the lease").await;
        let delivered = survivor.ids();
        assert_eq!(delivered.len(), 25, "each entry exactly once to the survivor");
        assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), ids);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_relays_share_work_without_double_delivery() {
        let store = store_or_skip!("shared", &["kafka"]);
        let events: Vec<AuditEvent> = (0..300)
            .map(|_| event("auth.login.stop", Outcome::Success))
            .collect();
        for chunk in events.chunks(50) {
            let mut tx = store.begin().await.unwrap();
            for e in chunk {
                tx.record(e).await.unwrap();
            }
            tx.commit().await.unwrap();
        }
        let a = shared(Recording::default());
        let b = shared(Recording::default());
        let config = RelayConfig::default().with_batch_size(20);
        let ra = Relay::new(&store, config).with_forwarder("kafka", a.clone()).unwrap();
        let rb = Relay::new(&store, config).with_forwarder("kafka", b.clone()).unwrap();
        let run = |relay: Relay<Db>| {
            tokio::spawn(async move {
                let deadline = std::time::Instant::now() + WAIT;
                loop {
                    let pass = relay.run_once().await.unwrap();
                    if pass.claimed == 0 || std::time::Instant::now() > deadline {
                        break;
                    }
                }
            })
        };
        let (x, y) = (run(ra), run(rb));
        x.await.unwrap();
        y.await.unwrap();
        let (ia, ib): (HashSet<_>, HashSet<_>) =
            (a.ids().into_iter().collect(), b.ids().into_iter().collect());
        assert_eq!(ia.len() + ib.len(), 300, "no entry delivered twice");
        assert!(ia.is_disjoint(&ib));
        let all: HashSet<_> = ia.union(&ib).copied().collect();
        assert_eq!(all, events.iter().map(|e| e.id()).collect::<HashSet<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entry_whose_row_vanished_is_dead_lettered_not_lost() {
        let store = store_or_skip!("orphan", &["kafka"]);
        let (kept, gone) = (
            event("auth.login.stop", Outcome::Success),
            event("auth.login.stop", Outcome::Success),
        );
        let mut tx = store.begin().await.unwrap();
        tx.record(&kept).await.unwrap();
        tx.record(&gone).await.unwrap();
        tx.commit().await.unwrap();
        delete_event(&store, gone.id()).await;
        let recording = shared(Recording::default());
        let relay = Relay::new(&store, RelayConfig::default())
            .with_forwarder("kafka", recording.clone())
            .unwrap();
        let pass = relay.run_once().await.unwrap();
        assert_eq!((pass.claimed, pass.delivered, pass.dead), (2, 1, 1));
        assert_eq!(recording.ids(), [kept.id()]);
        let dead = store.dead_letters("kafka", 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].event_id, gone.id());
        assert!(dead[0].reason.contains("missing"), "{}", dead[0].reason);
    }
}
