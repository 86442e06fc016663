// The relay's status rows (`audit_relay_status`): what `authtel doctor` and the console read
// of each forwarder's circuit breaker. Compiled once per backend module like `cases.rs`.

mod relay_status {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use authtel_core::audit::{AuditEvent, Timestamp};
    use authtel_core::forward::ErrorKind;
    use authtel_core::outcome::Outcome;
    use authtel_sql::{AuditStore, BreakerConfig, BreakerState, Relay, RelayConfig, RetryPolicy};

    use super::{Db, store};
    use crate::support::{Failing, Recording};

    async fn record_one(store: &AuditStore<Db>) {
        let mut tx = store.begin().await.unwrap();
        tx.record(&AuditEvent::new("auth.login.stop", Outcome::Success).unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    fn config() -> RelayConfig {
        RelayConfig::default()
            .with_retry(RetryPolicy::new(
                50,
                Duration::from_millis(1),
                Duration::from_millis(1),
            ))
            .with_breaker(BreakerConfig {
                failure_threshold: 2,
                open_for: Duration::from_secs(3600),
            })
            .with_heartbeat(Duration::from_secs(3600))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_forwarder_reports_an_open_breaker_and_a_healthy_one_closed() {
        let Some(store) = store("status_breaker", &["siem", "kafka"]).await else {
            return;
        };
        assert!(store.relay_status().await.unwrap().is_empty(), "no relay yet");
        record_one(&store).await;
        let healthy = Arc::new(Recording::default());
        let relay = Relay::new(&store, config())
            .with_forwarder("siem", Arc::new(Failing(ErrorKind::Transient)))
            .unwrap()
            .with_forwarder("kafka", healthy.clone())
            .unwrap();
        for _ in 0..4 {
            relay.run_once().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(healthy.ids().len(), 1);
        let rows = store.relay_status().await.unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let (kafka, siem) = (&rows[0], &rows[1]);
        assert_eq!((kafka.forwarder.as_str(), kafka.breaker), ("kafka", BreakerState::Closed));
        assert_eq!(kafka.last_error, None);
        assert_eq!((siem.forwarder.as_str(), siem.breaker), ("siem", BreakerState::Open));
        let reason = siem.last_error.as_deref().unwrap();
        assert!(reason.contains("schema mismatch at destination"), "{reason}");
        assert!(siem.last_error_at.is_some());
        assert_eq!(siem.relay, relay.relay_id());
        let now = Timestamp::now();
        assert!(!siem.is_stale(now), "{siem:?}");
        assert!(siem.last_seen(now) < Duration::from_secs(30));
        // Three heartbeats of an hour plus two forward timeouts of 30 s.
        assert_eq!(siem.stale_after, Duration::from_secs(3 * 3600 + 60));
        assert!(siem.since >= kafka.since, "opened after the relay started");
        assert_eq!(relay.stats().status_errors.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_are_written_on_a_change_or_heartbeat_not_per_pass() {
        let Some(store) = store("status_quiet", &["kafka"]).await else {
            return;
        };
        let relay = Relay::new(&store, config())
            .with_forwarder("kafka", Arc::new(Recording::default()))
            .unwrap();
        relay.run_once().await.unwrap();
        let first = store.relay_status().await.unwrap()[0].heartbeat_at;
        for _ in 0..20 {
            record_one(&store).await;
            relay.run_once().await.unwrap();
        }
        let rows = store.relay_status().await.unwrap();
        assert_eq!(rows[0].heartbeat_at, first, "nothing changed, heartbeat not due: no write");
        assert_eq!(rows[0].breaker, BreakerState::Closed);

        let fast = Relay::new(&store, config().with_heartbeat(Duration::from_millis(100)))
            .with_forwarder("kafka", Arc::new(Recording::default()))
            .unwrap();
        fast.run_once().await.unwrap();
        let a = store.relay_status().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        fast.run_once().await.unwrap();
        let b = store.relay_status().await.unwrap();
        let mine = |rows: &[authtel_sql::RelayStatus]| {
            rows.iter().find(|r| r.relay == fast.relay_id()).unwrap().heartbeat_at
        };
        assert!(mine(&b) > mine(&a), "the heartbeat is refreshed once due");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_clean_shutdown_removes_the_rows_and_a_failed_write_never_stops_delivery() {
        let Some(store) = store("status_life", &["kafka"]).await else {
            return;
        };
        let recording = Arc::new(Recording::default());
        let handle = Relay::new(&store, config())
            .with_forwarder("kafka", recording.clone())
            .unwrap()
            .spawn();
        record_one(&store).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.relay_status().await.unwrap().is_empty() || recording.ids().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the relay never reported");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(handle.shutdown(Duration::from_secs(10)).await);
        assert!(
            store.relay_status().await.unwrap().is_empty(),
            "a relay that stopped cleanly reports nothing"
        );

        // Without its table the status cannot be written: counted, and delivery goes on.
        let table = match store.schema() {
            Some(s) => format!("\"{s}\".audit_relay_status"),
            None => "audit_relay_status".to_owned(),
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
            .execute(store.pool())
            .await
            .unwrap();
        record_one(&store).await;
        let relay = Relay::new(&store, config())
            .with_forwarder("kafka", recording.clone())
            .unwrap();
        let pass = relay.run_once().await.unwrap();
        assert_eq!(pass.delivered, 1);
        assert_eq!(recording.ids().len(), 2);
        assert_eq!(relay.stats().status_errors.load(Ordering::Relaxed), 1);
    }
}
