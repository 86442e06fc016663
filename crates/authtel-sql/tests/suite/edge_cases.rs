// Edge cases of what the store takes, compiled once per backend module like `cases.rs`;
// each backend module also provides `refuse_actor_in_db(store, actor)`, which makes the
// database itself (not validation) refuse rows with that actor.

mod edge_cases {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use authtel_core::audit::{AuditEvent, Party, Timestamp};
    use authtel_core::forward::{ErrorKind, ForwardFuture, Forwarder};
    use authtel_core::outcome::Outcome;
    use authtel_sql::{AuditQuery, BatchWriter, Relay, RelayConfig, RetryPolicy, SqlError};

    use super::{count_rows, refuse_actor_in_db, store};
    use crate::support::{Recording, eventually};

    /// Panics on its first call (before returning a future) and inside its second call's
    /// future, then records.
    #[derive(Debug, Default)]
    struct PanicsTwice {
        calls: AtomicU32,
        inner: Recording,
    }

    impl Forwarder for PanicsTwice {
        fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
            match self.calls.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("forwarder bug, in the call"),
                1 => Box::pin(async { panic!("forwarder bug, in the future") }),
                _ => self.inner.forward(batch),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_forwarder_does_not_kill_the_relay() {
        let Some(store) = store("relay_panic", &["p"]).await else {
            return;
        };
        let mut expected = HashSet::new();
        for _ in 0..10 {
            let mut tx = store.begin().await.unwrap();
            let e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
            expected.insert(e.id());
            tx.record(&e).await.unwrap();
            tx.commit().await.unwrap();
        }
        let forwarder = std::sync::Arc::new(PanicsTwice::default());
        let config = RelayConfig::default()
            .with_poll_interval(Duration::from_millis(20))
            .with_retry(RetryPolicy::new(5, Duration::from_millis(1), Duration::from_millis(5)));
        let handle = Relay::new(&store, config)
            .with_forwarder("p", forwarder.clone())
            .unwrap()
            .spawn();
        eventually(Duration::from_secs(60), "all 10 delivered after two panics", || async {
            forwarder.inner.len() == 10
        })
        .await;
        assert_eq!(
            forwarder.inner.ids().into_iter().collect::<HashSet<_>>(),
            expected
        );
        assert_eq!(handle.stats().panics.load(Ordering::Relaxed), 2);
        eventually(Duration::from_secs(60), "outbox marked done", || async {
            let s = store.delivery_state().await.unwrap();
            s.iter().all(|f| f.pending == 0 && f.dead == 0 && f.done == 10)
        })
        .await;
        assert!(handle.shutdown(Duration::from_secs(10)).await);
    }

    fn batch(n: usize) -> Vec<AuditEvent> {
        (0..n)
            .map(|i| {
                let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
                e = e.with_actor(Party::new(format!("u_{i}"), "user"));
                e
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_invalid_record_is_refused_alone() {
        let Some(store) = store("refuse_invalid", &[]).await else {
            return;
        };
        let mut records = batch(1000);
        // A NUL byte in free text (an identifier with one is already refused by core's
        // policy, which stores the record without it).
        records[617] = records[617].clone().with_reason("bad\0reason");
        let writer = BatchWriter::new(&store);
        let outcome = writer.write(&records).await.unwrap();
        assert_eq!(outcome.stored, 999);
        assert_eq!(outcome.refused.len(), 1);
        let refused = &outcome.refused[0];
        assert_eq!((refused.index, refused.event_id), (617, records[617].id()));
        assert!(
            matches!(&refused.error, SqlError::InvalidEvent { field: "reason", .. }),
            "{}",
            refused.error
        );
        assert_eq!(count_rows(&store).await.0, 999);

        // Through the Forwarder contract: the neighbours are stored, the error is permanent
        // and names the refused record; forwarding again changes nothing.
        let err = writer.forward(&records).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent);
        let text = err.to_string();
        assert!(text.contains("refused 1 of 1000"), "{text}");
        assert!(text.contains(&records[617].id().to_string()), "{text}");
        assert_eq!(count_rows(&store).await.0, 999);
        writer.forward(&records[..617]).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_the_database_refuses_are_isolated() {
        let Some(store) = store("refuse_db", &[]).await else {
            return;
        };
        refuse_actor_in_db(&store, "evil").await;
        let mut records = batch(1000);
        for i in [0, 499, 500, 999] {
            records[i] = records[i].clone().with_actor(Party::new("evil", "user"));
        }
        let outcome = BatchWriter::new(&store).write(&records).await.unwrap();
        assert_eq!(outcome.stored, 996);
        let indexes: Vec<usize> = outcome.refused.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [0, 499, 500, 999]);
        for r in &outcome.refused {
            assert!(
                matches!(r.error, SqlError::Database { .. }),
                "{}",
                r.error
            );
        }
        assert_eq!(count_rows(&store).await.0, 996);
        let page = store
            .query(&AuditQuery::new().actor("evil"))
            .await
            .unwrap();
        assert!(page.events.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_without_tables_fails_the_batch_once() {
        let Some(store) = super::fresh_store("refuse_nothing", &[]).await else {
            return;
        };
        // No migrate(): the statement fails, not a record; the batch is not split.
        let err = BatchWriter::new(&store).write(&batch(64)).await.unwrap_err();
        assert!(matches!(err, SqlError::Database { .. }), "{err}");
    }

    /// Times far from the epoch, where float arithmetic loses microseconds, and the ends
    /// of the supported range.
    fn far_times() -> Vec<Timestamp> {
        let mut times: Vec<Timestamp> = [
            "2300-01-01T00:00:00.000001Z",
            "9999-12-31T23:59:59.999999Z",
            "0000-01-01T00:00:00.000000Z",
            "0001-02-03T04:05:06.000007Z",
            "1969-12-31T23:59:59.999999Z",
            "5000-06-15T12:34:56.789012Z",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        // A fixed spread over the whole range (an LCG, so failures reproduce).
        let (lo, hi) = (Timestamp::MIN.unix_micros(), Timestamp::MAX.unix_micros());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let span = (hi - lo) as u64;
            times.push(Timestamp::from_unix_micros(lo + (x % span) as i64));
        }
        times
    }

    fn at(t: Timestamp) -> AuditEvent {
        let mut e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
        e = e.with_occurred_at(t);
        e
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timestamps_far_from_the_epoch_read_back_exactly() {
        let Some(store) = store("far_times", &[]).await else {
            return;
        };
        let times = far_times();
        // Each write path: the single-row insert, the batch writer (COPY on PostgreSQL) and
        // upsert_batch_in (UNNEST on PostgreSQL).
        let (single, rest) = times.split_at(6);
        let (batched, upserted) = rest.split_at(100);
        let mut written = Vec::new();
        let mut tx = store.begin().await.unwrap();
        for t in single {
            let e = at(*t);
            tx.record(&e).await.unwrap();
            written.push(e);
        }
        tx.commit().await.unwrap();
        let batch: Vec<AuditEvent> = batched.iter().map(|t| at(*t)).collect();
        BatchWriter::new(&store).forward(&batch).await.unwrap();
        written.extend(batch);
        let upsert: Vec<AuditEvent> = upserted.iter().map(|t| at(*t)).collect();
        let mut tx = store.begin().await.unwrap();
        store.upsert_batch_in(tx.conn(), &upsert).await.unwrap();
        tx.commit().await.unwrap();
        written.extend(upsert);

        let mut read = Vec::new();
        let mut q = AuditQuery::new().limit(500);
        loop {
            let page = store.query(&q).await.unwrap();
            read.extend(page.events);
            match page.next {
                Some(cursor) => q = q.after(cursor),
                None => break,
            }
        }
        written.sort_by_key(|e| e.id());
        read.sort_by_key(|e| e.id());
        assert_eq!(read.len(), written.len());
        for (w, r) in written.iter().zip(&read) {
            assert_eq!(r.occurred_at(), w.occurred_at(), "{} read back as {}", w.occurred_at(), r.occurred_at());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn timestamps_outside_years_0000_to_9999_are_refused() {
        let Some(store) = store("out_of_range", &[]).await else {
            return;
        };
        for micros in [
            Timestamp::MAX.unix_micros() + 1,
            Timestamp::MIN.unix_micros() - 1,
            i64::MAX,
            i64::MIN,
        ] {
            let e = at(Timestamp::from_unix_micros(micros));
            let mut tx = store.begin().await.unwrap();
            let err = tx.record(&e).await.unwrap_err();
            assert!(
                matches!(err, SqlError::InvalidEvent { field: "occurred_at", .. }),
                "{err}"
            );
            assert!(err.to_string().contains("outside years 0000 to 9999"), "{err}");
        }
        assert_eq!(count_rows(&store).await.0, 0);
    }

    /// `migrate()`'s future is `Send + 'static`-friendly: it can run on a spawned task (on
    /// SQLite it used to fail to compile with a higher-ranked lifetime error).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrate_can_be_spawned() {
        let Some(store) = super::fresh_store("spawned_migrate", &[]).await else {
            return;
        };
        let task = tokio::spawn({
            let store = store.clone();
            async move { store.migrate().await }
        });
        task.await.unwrap().unwrap();
        // The other operations an application runs from tasks are spawnable too.
        let s = store.clone();
        tokio::spawn(async move { s.check_schema().await }).await.unwrap().unwrap();
        let s = store.clone();
        let page = tokio::spawn(async move { s.query(&AuditQuery::new()).await });
        assert!(page.await.unwrap().unwrap().events.is_empty());
        let s = store.clone();
        let writer = tokio::spawn(async move { BatchWriter::new(&s).write(&batch(3)).await });
        assert_eq!(writer.await.unwrap().unwrap().stored, 3);
        let s = store.clone();
        let mut tx = tokio::spawn(async move { s.begin().await }).await.unwrap().unwrap();
        tx.record(&batch(1)[0]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count_rows(&store).await.0, 4);
    }
}
