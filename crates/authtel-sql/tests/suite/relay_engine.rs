// The relay is a source for the pipeline's delivery engine: a forwarder behaves the same
// behind the outbox as behind the pipeline's queue. Compiled once per backend module like
// `cases.rs`.

mod relay_engine {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use authtel_core::audit::AuditEvent;
    use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
    use authtel_core::outcome::Outcome;
    use authtel_sql::{BreakerConfig, Relay, RelayConfig, RetryPolicy};

    use super::store;
    use crate::support::{Failing, Recording};

    /// Refuses for good any batch holding a logout; records the others.
    #[derive(Debug, Default)]
    struct RefusesLogouts {
        calls: AtomicU32,
        inner: Recording,
    }

    impl Forwarder for RefusesLogouts {
        fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if batch.iter().any(|e| e.action() == "auth.logout.stop") {
                return Box::pin(async {
                    Err(ForwardError::message(
                        ErrorKind::Permanent,
                        "deliver to projection: logout records are not accepted",
                    ))
                });
            }
            self.inner.forward(batch)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_refused_record_spares_its_outbox_batch() {
        let Some(store) = store("relay_isolates", &["kafka"]).await else {
            return;
        };
        let mut refused = HashSet::new();
        let mut good = HashSet::new();
        let mut tx = store.begin().await.unwrap();
        for i in 0..100 {
            let action = if [7, 50, 93].contains(&i) {
                "auth.logout.stop"
            } else {
                "auth.login.stop"
            };
            let e = AuditEvent::new(action, Outcome::Success).unwrap();
            if action == "auth.logout.stop" {
                refused.insert(e.id());
            } else {
                good.insert(e.id());
            }
            tx.record(&e).await.unwrap();
        }
        tx.commit().await.unwrap();

        let forwarder = Arc::new(RefusesLogouts::default());
        let relay = Relay::new(&store, RelayConfig::default().with_batch_size(100))
            .with_forwarder("kafka", forwarder.clone())
            .unwrap();
        let pass = relay.run_once().await.unwrap();
        assert_eq!(
            (pass.claimed, pass.delivered, pass.dead, pass.retried),
            (100, 97, 3, 0)
        );
        let delivered: Vec<_> = forwarder.inner.ids();
        assert_eq!(delivered.len(), 97, "each good record delivered once");
        assert_eq!(delivered.into_iter().collect::<HashSet<_>>(), good);
        let dead = store.dead_letters("kafka", 10).await.unwrap();
        let dead_ids: HashSet<_> = dead.iter().map(|d| d.event_id).collect();
        assert_eq!(dead_ids, refused, "exactly the refused records are dead");
        for d in &dead {
            assert_eq!(d.attempts, 1);
            assert!(d.reason.contains("logout records are not accepted"), "{}", d.reason);
        }
        let state = store.delivery_state().await.unwrap();
        assert_eq!((state[0].pending, state[0].dead, state[0].done), (0, 3, 97));
        // Halving 100 down to three single records costs a few calls, not a hundred.
        let calls = forwarder.calls.load(Ordering::SeqCst);
        assert!(calls <= 1 + 2 * 3 * 7, "{calls} calls");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_open_breaker_spends_no_attempts() {
        let Some(store) = store("relay_breaker", &["kafka"]).await else {
            return;
        };
        let e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.record(&e).await.unwrap();
        tx.commit().await.unwrap();

        let down = Arc::new(Failing(ErrorKind::Transient));
        let config = RelayConfig::default()
            .with_retry(RetryPolicy::new(
                5,
                Duration::from_millis(1),
                Duration::from_millis(1),
            ))
            .with_breaker(BreakerConfig {
                failure_threshold: 2,
                open_for: Duration::from_secs(3600),
            });
        let relay = Relay::new(&store, config)
            .with_forwarder("kafka", down)
            .unwrap();
        let mut claimed = 0;
        for _ in 0..20 {
            claimed += relay.run_once().await.unwrap().claimed;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Two failed calls opened the breaker; afterwards no pass claimed the entry, so it
        // kept three of its five attempts instead of dying in a minute of passes.
        assert_eq!(claimed, 2);
        let state = store.delivery_state().await.unwrap();
        assert_eq!((state[0].pending, state[0].dead), (1, 0));
        assert!(store.dead_letters("kafka", 10).await.unwrap().is_empty());
        assert_eq!(relay.stats().retried.load(Ordering::Relaxed), 2);
    }
}
