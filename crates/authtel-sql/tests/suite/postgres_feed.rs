// PostgreSQL's live feed: positions that transactions committing out of order cannot break.
// Compiled into `postgres_suite` only (SQLite's rowid feed is tested by `cases.rs` and the
// console).

mod postgres_feed {
    use std::collections::HashSet;
    use std::sync::Arc;
    use std::time::Duration;

    use authtel_core::audit::AuditEvent;
    use authtel_core::outcome::Outcome;
    use authtel_sql::AuditStore;

    use super::{Db, store};

    const WAIT: Duration = Duration::from_secs(60);

    async fn ids_after(store: &AuditStore<Db>, after: u64) -> Vec<(u64, uuid::Uuid)> {
        let mut out = Vec::new();
        let mut last = after;
        loop {
            let page = store.feed_after(last, 100).await.unwrap();
            let Some((pos, _)) = page.last() else {
                return out;
            };
            last = *pos;
            out.extend(page.iter().map(|(p, e)| (*p, e.id())));
        }
    }

    /// Polls until the feed after `after` holds at least `n` records (other tests' open
    /// transactions on the same server may hold the feed back for a moment).
    async fn wait_for(store: &AuditStore<Db>, after: u64, n: usize) -> Vec<(u64, uuid::Uuid)> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let seen = ids_after(store, after).await;
            if seen.len() >= n {
                return seen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} records in the feed after {WAIT:?}",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_record_committed_late_is_not_skipped() {
        let Some(store) = store("feed_order", &[]).await else {
            return;
        };
        assert_eq!(store.feed_head().await.unwrap(), 0);
        // A inserts first (the lower transaction id) and stays open; B commits after it.
        let early = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
        let late = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
        let mut a = store.begin().await.unwrap();
        a.record(&early).await.unwrap();
        let mut b = store.begin().await.unwrap();
        b.record(&late).await.unwrap();
        b.commit().await.unwrap();
        // B is committed, but A began before it and is still running: B waits for it.
        assert!(store.feed_after(0, 10).await.unwrap().is_empty());
        assert_eq!(store.feed_head().await.unwrap(), 0);
        a.commit().await.unwrap();
        let seen = wait_for(&store, 0, 2).await;
        assert_eq!(
            seen.iter().map(|s| s.1).collect::<Vec<_>>(),
            [early.id(), late.id()]
        );
        assert!(seen[0].0 < seen[1].0);
        assert_eq!(store.feed_head().await.unwrap(), seen[1].0);

        // The same from a resumed position.
        let resume = seen[1].0;
        let (c_event, d_event) = (
            AuditEvent::new("auth.logout.stop", Outcome::Success).unwrap(),
            AuditEvent::new("security.lockout", Outcome::Success).unwrap(),
        );
        let mut c = store.begin().await.unwrap();
        c.record(&c_event).await.unwrap();
        let mut d = store.begin().await.unwrap();
        d.record(&d_event).await.unwrap();
        d.commit().await.unwrap();
        assert!(store.feed_after(resume, 10).await.unwrap().is_empty());
        c.commit().await.unwrap();
        let after = wait_for(&store, resume, 2).await;
        assert_eq!(
            after.iter().map(|s| s.1).collect::<Vec<_>>(),
            [c_event.id(), d_event.id()]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_following_concurrent_writers_misses_nothing() {
        let Some(store) = store("feed_concurrent", &[]).await else {
            return;
        };
        let store = Arc::new(store);
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    let mut n = 0u64;
                    while n < 60 {
                        // Transactions of 1-4 records, held open for 0-6 ms, so commits
                        // interleave out of insert order.
                        let size = 1 + (n * 7 + w) % 4;
                        let mut tx = store.begin().await.unwrap();
                        for _ in 0..size {
                            let e = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
                            ids.push(e.id());
                            tx.record(&e).await.unwrap();
                        }
                        tokio::time::sleep(Duration::from_millis((n * 3 + w) % 7)).await;
                        tx.commit().await.unwrap();
                        n += size;
                    }
                    ids
                })
            })
            .collect();
        // The reader follows while they write, as the console's stream does.
        let mut seen: Vec<(u64, uuid::Uuid)> = Vec::new();
        let mut last = 0;
        let mut all = HashSet::new();
        let mut done = false;
        let deadline = std::time::Instant::now() + WAIT;
        while !done {
            done = writers.iter().all(|w| w.is_finished());
            for (pos, e) in store.feed_after(last, 50).await.unwrap() {
                assert!(pos > last, "positions increase: {pos} after {last}");
                last = pos;
                seen.push((pos, e.id()));
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
            assert!(std::time::Instant::now() < deadline, "writers did not finish");
        }
        for w in writers {
            all.extend(w.await.unwrap());
        }
        let rest = wait_for(&store, last, all.len().saturating_sub(seen.len())).await;
        seen.extend(rest);
        let distinct: HashSet<_> = seen.iter().map(|s| s.1).collect();
        assert_eq!(distinct.len(), seen.len(), "no record twice");
        assert_eq!(distinct, all, "every record once");
    }
}
