// Reading the store back: keyset pagination and its filters, the NDJSON export, the
// detection queries and the tenant filter. Compiled once per backend module like `cases.rs`.

mod queries {
    use std::collections::HashSet;

    use authtel_core::audit::{AuditEvent, Timestamp};
    use authtel_core::forward::Forwarder;
    use authtel_core::outcome::Outcome;
    use authtel_sql::{AuditQuery, BatchWriter, SqlError};

    use super::store;
    use crate::support::{at, event, minutes_ago};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keyset_pagination_returns_every_row_exactly_once() {
        let store = store_or_skip!("keyset", &[]);
        let same_instant = minutes_ago(30);
        let mut events = Vec::new();
        for i in 0..137 {
            let mut e = event(
                if i % 3 == 0 { "auth.login.stop" } else { "auth.logout.stop" },
                if i % 2 == 0 { Outcome::Success } else { Outcome::Failure },
            );
            // Many rows share one timestamp, so the event id must break ties.
            e = e.with_occurred_at(if i % 4 == 0 { same_instant } else { minutes_ago(i) });
            if i % 5 == 0 {
                e = e.with_actor(authtel_core::audit::Party::new("u_5", "user"));
                e = e.with_client_ip("2001:db8::5".parse().unwrap());
            }
            events.push(e);
        }
        BatchWriter::new(&store).forward(&events).await.unwrap();
        let collect = |q: AuditQuery| {
            let store = store.clone();
            async move {
                let mut seen = Vec::new();
                let mut q = q.limit(10);
                loop {
                    let page = store.query(&q).await.unwrap();
                    assert!(page.events.len() <= 10);
                    seen.extend(page.events.iter().map(|e| (e.occurred_at(), e.id())));
                    match page.next {
                        Some(c) => q = q.after(c.to_string().parse().unwrap()),
                        None => break,
                    }
                }
                seen
            }
        };
        let all = collect(AuditQuery::new()).await;
        let mut expected: Vec<_> = events.iter().map(|e| (e.occurred_at(), e.id())).collect();
        expected.sort();
        assert_eq!(all, expected, "every row once, in (occurred_at, id) order");

        let count = |f: &dyn Fn(&AuditEvent) -> bool| events.iter().filter(|e| f(e)).count();
        assert_eq!(
            collect(AuditQuery::new().actor("u_5")).await.len(),
            count(&|e| e.actor().unwrap().id == "u_5")
        );
        assert_eq!(
            collect(AuditQuery::new().client_ip("2001:db8::5".parse().unwrap()))
                .await
                .len(),
            28
        );
        assert_eq!(
            collect(AuditQuery::new().action("auth.login.stop").outcome(Outcome::Failure))
                .await
                .len(),
            count(&|e| e.action() == "auth.login.stop" && e.outcome() == Outcome::Failure)
        );
        let (from, until) = (minutes_ago(60), minutes_ago(20));
        assert_eq!(
            collect(AuditQuery::new().from(from).until(until)).await.len(),
            count(&|e| e.occurred_at() >= from && e.occurred_at() < until)
        );
        assert!(matches!(
            "c1.zz.nope".parse::<authtel_sql::Cursor>(),
            Err(SqlError::InvalidCursor(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ndjson_export_round_trips_every_record() {
        let store = store_or_skip!("ndjson", &[]);
        let events: Vec<AuditEvent> = (0..2100)
            .map(|i| at(event("auth.login.stop", Outcome::Success), minutes_ago(i)))
            .collect();
        BatchWriter::new(&store).forward(&events).await.unwrap();
        let mut out = Vec::new();
        let n = store
            .export_ndjson(&AuditQuery::new(), &mut out)
            .await
            .unwrap();
        assert_eq!(n, 2100);
        let text = String::from_utf8(out).unwrap();
        let parsed: Vec<AuditEvent> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut expected = events.clone();
        expected.sort_by_key(|e| (e.occurred_at(), e.id()));
        assert_eq!(parsed, expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn detection_queries_find_the_seeded_patterns() {
        let store = store_or_skip!("detect", &[]);
        let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
        let mut seed = Vec::new();
        let with = |action: &str, outcome, actor: &str, addr: &str, t: Timestamp| {
            let mut e = at(event(action, outcome), t);
            e = e.with_actor(authtel_core::audit::Party::new(actor, "user"));
            e = e.with_client_ip(ip(addr));
            e
        };
        // Burst: 4 failed login stops + 2 invalid-credential signals from .66 in the last hour,
        // one older failure outside the window, 2 failures from .77, a success from .66.
        for i in 0..4 {
            seed.push(with("auth.login.stop", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(10 + i)));
        }
        for i in 0..2 {
            seed.push(with("security.invalid_credentials", Outcome::Failure, "u_b", "198.51.100.66", minutes_ago(20 + i)));
        }
        seed.push(with("auth.login.stop", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(120)));
        seed.push(with("auth.login.stop", Outcome::Success, "u_a", "198.51.100.66", minutes_ago(5)));
        for i in 0..2 {
            seed.push(with("auth.login.stop", Outcome::Failure, "u_c", "198.51.100.77", minutes_ago(15 + i)));
        }
        // First-seen: u_old has known IP .1 (2 days ago, again today) and new IP .2 today.
        seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(2 * 24 * 60)));
        seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(30)));
        seed.push(with("auth.login.stop", Outcome::Success, "u_old", "192.0.2.2", minutes_ago(40)));
        // MFA disables: one today, one failed today, one 3 days ago.
        let disable = with("mfa.disable.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(50));
        seed.push(disable.clone());
        seed.push(with("mfa.disable.stop", Outcome::Failure, "u_old", "192.0.2.1", minutes_ago(51)));
        seed.push(with("mfa.disable.stop", Outcome::Success, "u_old", "192.0.2.1", minutes_ago(3 * 24 * 60)));
        // Lockouts: two kinds today, one last week.
        let l1 = with("security.lockout", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(9));
        let l2 = with("mfa.lockout", Outcome::Failure, "u_old", "192.0.2.2", minutes_ago(8));
        seed.extend([l1.clone(), l2.clone()]);
        seed.push(with("security.lockout", Outcome::Failure, "u_a", "198.51.100.66", minutes_ago(7 * 24 * 60)));
        BatchWriter::new(&store).forward(&seed).await.unwrap();

        let hour = minutes_ago(60);
        let bursts = store.failed_login_bursts(hour, 5).await.unwrap();
        assert_eq!(bursts.len(), 1, "{bursts:?}");
        assert_eq!(bursts[0].client_ip, ip("198.51.100.66"));
        assert_eq!(bursts[0].failures, 6);
        assert!(bursts[0].first_at <= bursts[0].last_at);
        assert_eq!(store.failed_login_bursts(hour, 2).await.unwrap().len(), 2);

        let day = minutes_ago(24 * 60);
        let firsts = store.first_seen_ips(day).await.unwrap();
        let pairs: Vec<(String, std::net::IpAddr)> = firsts
            .iter()
            .map(|f| (f.actor_id.clone(), f.client_ip))
            .collect();
        assert!(pairs.contains(&("u_old".into(), ip("192.0.2.2"))), "{pairs:?}");
        assert!(!pairs.contains(&("u_old".into(), ip("192.0.2.1"))), "{pairs:?}");
        assert!(pairs.contains(&("u_a".into(), ip("198.51.100.66"))), "{pairs:?}");
        assert_eq!(pairs.len(), 2, "{pairs:?}");

        let disables = store.mfa_disables(day).await.unwrap();
        assert_eq!(disables.iter().map(|e| e.id()).collect::<Vec<_>>(), [disable.id()]);
        let locks = store.lockouts(day).await.unwrap();
        assert_eq!(locks.iter().map(|e| e.id()).collect::<Vec<_>>(), [l1.id(), l2.id()]);
    }

    /// Tenants share actor ids (`u_1` exists in both); every write path stores the tenant, and a
    /// query for one tenant returns exactly its rows, never another's nor tenant-less ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_for_one_tenant_never_returns_another_tenants_rows() {
        let store = store_or_skip!("tenants", &["kafka"]);
        let of = |tenant: Option<&str>| {
            let e = event("auth.login.stop", Outcome::Failure);
            match tenant {
                Some(t) => e.with_tenant_id(t),
                None => e,
            }
        };
        let mut expected: std::collections::BTreeMap<Option<&str>, HashSet<uuid::Uuid>> =
            Default::default();
        // Batch path (COPY on PostgreSQL, multi-row INSERT on SQLite).
        let batch: Vec<AuditEvent> = (0..60)
            .map(|i| of([Some("acme"), Some("globex"), None][i % 3]))
            .collect();
        for e in &batch {
            expected.entry(e.tenant_id()).or_default().insert(e.id());
        }
        BatchWriter::new(&store).forward(&batch).await.unwrap();
        // Transaction path, with an outbox entry per record.
        let mut tx = store.begin().await.unwrap();
        let mut in_tx = Vec::new();
        for tenant in [Some("acme"), Some("globex"), None] {
            let e = of(tenant);
            tx.record(&e).await.unwrap();
            in_tx.push(e);
        }
        tx.commit().await.unwrap();
        for e in &in_tx {
            expected.entry(e.tenant_id()).or_default().insert(e.id());
        }
        // A tenant that is an email is refused as an identifier: the record has none.
        let refused = of(Some("ops@acme.example"));
        assert_eq!(refused.tenant_id(), None);

        for tenant in ["acme", "globex"] {
            let mut seen = HashSet::new();
            let mut q = AuditQuery::new().tenant(tenant).limit(7);
            loop {
                let page = store.query(&q).await.unwrap();
                for e in &page.events {
                    assert_eq!(e.tenant_id(), Some(tenant), "{tenant}'s query read {e:?}");
                    seen.insert(e.id());
                }
                match page.next {
                    Some(cursor) => q = q.after(cursor),
                    None => break,
                }
            }
            assert_eq!(seen, expected[&Some(tenant)], "{tenant}");
            assert_eq!(seen.len(), 21);
            // With another filter the tenant still holds.
            let page = store
                .query(&AuditQuery::new().tenant(tenant).actor("u_1").limit(100))
                .await
                .unwrap();
            assert_eq!(page.events.len(), 21);
            assert!(page.events.iter().all(|e| e.tenant_id() == Some(tenant)));
        }
        let none = store
            .query(&AuditQuery::new().tenant("initech").limit(100))
            .await
            .unwrap();
        assert!(none.events.is_empty(), "{:?}", none.events);
        // Untenanted rows stay readable without the filter.
        let all = store.query(&AuditQuery::new().limit(100)).await.unwrap();
        assert_eq!(all.events.len(), 63);
        assert_eq!(
            all.events.iter().filter(|e| e.tenant_id().is_none()).count(),
            expected[&None].len()
        );
    }
}
