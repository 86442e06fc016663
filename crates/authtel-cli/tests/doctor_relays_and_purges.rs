//! `authtel doctor` reports what the running relays say about each forwarder's circuit
//! breaker (or that none reports, or that their reports went stale) and the newest purge;
//! `purge --yes` and `requeue` record themselves in the trail with the OS user as actor; on a
//! PostgreSQL store partitioned by month, `purge` drops whole months and keeps the ones
//! whose records are still pending delivery.

mod support;

use std::sync::Arc;
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_core::forward::ErrorKind;
use authtel_core::outcome::Outcome;
use authtel_sql::sqlx;
use authtel_sql::{AuditStore, BreakerConfig, Relay, RelayConfig, RetryPolicy};
use serde_json::Value;
use support::{Backend, Failing, Fixture, Run, Store, command, event, on_both_backends, on_store};

/// The CLI as OS user `user`.
fn as_user(f: &Fixture, user: &str, args: &[&str]) -> Run {
    let mut all = vec!["--database-url".to_owned(), f.url.clone()];
    if let Some(s) = &f.schema {
        all.extend(["--schema".to_owned(), s.clone()]);
    }
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let out = command(&all).env("USER", user).output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A forwarder that accepts everything.
#[derive(Debug)]
struct Accepts;

impl authtel_core::forward::Forwarder for Accepts {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> authtel_core::forward::ForwardFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

fn forwarder<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["forwarders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["forwarder"] == id)
        .unwrap_or_else(|| panic!("no {id} in {json}"))
}

fn doctor_reports_breakers_as_the_relays_report_them(backend: Backend) {
    let Some(f) = Fixture::new(backend, "breakers", &["kafka", "siem"]) else {
        return;
    };
    f.record(&[event(
        "auth.login.stop",
        Outcome::Success,
        "u_a",
        "192.0.2.1",
        1,
    )]);

    let none = f.cli(&["doctor"]).expect(0);
    assert_eq!(
        none.stdout.matches("no relay has reported").count(),
        4,
        "{}",
        none.stdout
    );
    assert!(
        none.stdout
            .contains("note: siem: no relay has reported: check that")
    );
    let json = &f
        .cli(&["doctor", "--format", "ndjson"])
        .expect(0)
        .json_lines()[0];
    assert_eq!(forwarder(json, "siem")["relay"], "none");
    assert_eq!(forwarder(json, "siem")["breaker"], Value::Null);

    // siem's destination is down: two failed calls open its breaker; kafka delivers.
    let config = RelayConfig::default()
        .with_retry(RetryPolicy::new(
            50,
            Duration::from_millis(1),
            Duration::from_millis(1),
        ))
        .with_breaker(BreakerConfig {
            failure_threshold: 2,
            open_for: Duration::from_secs(3600),
        });
    on_store!(&f.store, s => f.block_on(async {
        let relay = Relay::new(s, config)
            .with_forwarder("siem", Arc::new(Failing(ErrorKind::Transient)))
            .unwrap()
            .with_forwarder("kafka", Arc::new(Accepts))
            .unwrap();
        for _ in 0..4 {
            relay.run_once().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }));
    let table = f.cli(&["doctor"]).expect(0);
    let line = |id: &str| {
        table
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no {id} line in\n{}", table.stdout))
            .to_owned()
    };
    assert!(line("siem").contains("OPEN for"), "{}", table.stdout);
    assert!(line("siem").contains(" seen "), "{}", table.stdout);
    assert!(line("kafka").contains("closed for"), "{}", table.stdout);
    assert!(
        table
            .stdout
            .contains("note: siem: the relay's circuit breaker is open")
            && table.stdout.contains("siem.internal:6514"),
        "{}",
        table.stdout
    );
    let json = &f
        .cli(&["doctor", "--format", "ndjson"])
        .expect(0)
        .json_lines()[0];
    let siem = forwarder(json, "siem");
    assert_eq!(
        (&siem["relay"], &siem["breaker"]),
        (&"reporting".into(), &"open".into())
    );
    assert!(siem["breaker_since"].as_str().unwrap().ends_with('Z'));
    assert!(siem["relay_last_seen_seconds"].as_f64().unwrap() < 30.0);
    assert!(
        siem["last_error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
    let kafka = forwarder(json, "kafka");
    assert_eq!(
        (&kafka["relay"], &kafka["breaker"]),
        (&"reporting".into(), &"closed".into())
    );

    // The relay goes quiet for an hour: its rows are stale, the breaker unknown.
    let table_name = match &f.schema {
        Some(s) => format!("\"{s}\".audit_relay_status"),
        None => "audit_relay_status".to_owned(),
    };
    let age = format!("UPDATE {table_name} SET heartbeat_at = heartbeat_at - 3600000000");
    on_store!(&f.store, s => f.block_on(sqlx::query(sqlx::AssertSqlSafe(age)).execute(s.pool())).map(drop))
        .unwrap();
    let stale = f.cli(&["doctor"]).expect(0);
    assert!(
        stale.stdout.contains("not reachable: last seen 1h00m ago"),
        "{}",
        stale.stdout
    );
    assert!(
        stale
            .stdout
            .contains("note: siem: no relay reachable: the last one wrote 1h00m ago"),
        "{}",
        stale.stdout
    );
    let json = &f
        .cli(&["doctor", "--format", "ndjson"])
        .expect(0)
        .json_lines()[0];
    assert_eq!(forwarder(json, "siem")["relay"], "stale");
    assert!(
        forwarder(json, "siem")["relay_last_seen_seconds"]
            .as_f64()
            .unwrap()
            >= 3600.0
    );
}

fn purge_and_requeue_are_recorded_and_doctor_shows_the_last_purge(backend: Backend) {
    let Some(f) = Fixture::new(backend, "recorded", &["kafka", "siem"]) else {
        return;
    };
    let recent = event("auth.login.stop", Outcome::Success, "u_a", "192.0.2.1", 5);
    f.record(std::slice::from_ref(&recent));
    f.write_batch(&[event(
        "auth.login.stop",
        Outcome::Success,
        "u_old",
        "192.0.2.2",
        400 * 24 * 60,
    )]);
    let purges = |f: &Fixture| {
        f.cli(&["query", "--action", "audit.purge", "--format", "ndjson"])
            .expect(0)
            .json_lines()
    };
    let never = f.cli(&["doctor"]).expect(0);
    assert!(
        never.stdout.contains("last purge: never purged"),
        "{}",
        never.stdout
    );
    assert_eq!(
        f.cli(&["doctor", "--format", "ndjson"])
            .expect(0)
            .json_lines()[0]["last_purge"],
        Value::Null
    );

    as_user(
        &f,
        "ops-alice",
        &["purge", "--older-than", "365d", "--dry-run"],
    )
    .expect(0);
    assert!(purges(&f).is_empty(), "a dry run records nothing");
    let real = as_user(&f, "ops-alice", &["purge", "--older-than", "365d", "--yes"]).expect(0);
    assert!(
        real.stdout.contains("deleted 1 audit rows"),
        "{}",
        real.stdout
    );
    let recorded = purges(&f);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let r = &recorded[0];
    assert_eq!(
        (&r["actor"]["id"], &r["actor"]["type"]),
        (&"ops-alice".into(), &"os_user".into())
    );
    assert_eq!(
        (&r["outcome"], &r["operation"]),
        (&"success".into(), &"delete".into())
    );
    assert_eq!(r["metadata"]["audit_rows"], 1);
    assert!(r["metadata"]["os_uid"].is_u64(), "{r}");
    // It goes wherever the application's records go.
    let status = f
        .cli(&["outbox", "status", "--format", "ndjson"])
        .expect(0)
        .json_lines();
    assert!(status.iter().all(|s| s["pending"] == 2), "{status:?}");

    let doctor = f.cli(&["doctor"]).expect(0);
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("last purge: "))
        .unwrap_or_else(|| panic!("{}", doctor.stdout));
    assert!(
        line.contains(
            "ago) by ops-alice (os_user): 1 audit rows, 0 outbox entries, 0 partitions dropped"
        ),
        "{line}"
    );
    let json = &f
        .cli(&["doctor", "--format", "ndjson"])
        .expect(0)
        .json_lines()[0];
    assert_eq!(json["last_purge"]["actor"], "ops-alice");
    assert_eq!(json["last_purge"]["audit_rows"], 1);

    f.fail_deliveries("siem", "kafka");
    as_user(&f, "ops-bob", &["requeue", "--forwarder", "siem"]).expect(0);
    let requeues = f
        .cli(&["query", "--action", "audit.requeue", "--format", "ndjson"])
        .expect(0)
        .json_lines();
    assert_eq!(requeues.len(), 1);
    assert_eq!(requeues[0]["actor"]["id"], "ops-bob");
    assert_eq!(requeues[0]["resource"], "outbox/forwarder siem");
    assert_eq!(requeues[0]["metadata"]["requeued"], 2, "{}", requeues[0]);
}

on_both_backends!(
    doctor_reports_breakers_as_the_relays_report_them,
    purge_and_requeue_are_recorded_and_doctor_shows_the_last_purge,
);

/// Noon UTC of `day` of `month` 2024.
fn in_2024(month: u32, day: u32) -> Timestamp {
    format!("2024-{month:02}-{day:02}T12:00:00Z")
        .parse()
        .unwrap()
}

#[test]
fn a_partitioned_store_drops_whole_months_and_keeps_months_still_pending() {
    let Some(mut f) = Fixture::unmigrated(Backend::Postgres, "parts", &["kafka"]) else {
        return;
    };
    let schema = f.schema.clone().unwrap();
    let Store::Postgres(plain) = &f.store else {
        unreachable!()
    };
    let store = AuditStore::builder(plain.pool().clone())
        .with_schema(&schema)
        .unwrap()
        .with_monthly_partitions()
        .with_forwarder("kafka")
        .unwrap()
        .build();
    f.block_on(store.migrate()).unwrap();
    for month in 1..=3 {
        let ddl = format!(
            "CREATE TABLE \"{schema}\".audit_events_p2024{month:02} PARTITION OF \"{schema}\".audit_events \
             FOR VALUES FROM ('2024-{month:02}-01 00:00:00+00') TO ('2024-{:02}-01 00:00:00+00')",
            month + 1
        );
        f.block_on(sqlx::raw_sql(sqlx::AssertSqlSafe(ddl)).execute(store.pool()))
            .unwrap();
    }
    f.store = Store::Postgres(store.clone());
    let at = |e: AuditEvent, t: Timestamp| e.with_occurred_at(t);
    let old = |t: Timestamp| {
        at(
            event("auth.login.stop", Outcome::Success, "u_a", "192.0.2.1", 0),
            t,
        )
    };
    // January 3 rows, February 2 (+1 pending delivery), March 4, June 2023 2 (default
    // partition), and 1 recent row (default partition).
    let mut batch = Vec::new();
    batch.extend((1..=3).map(|d| old(in_2024(1, d))));
    batch.extend((1..=2).map(|d| old(in_2024(2, d))));
    batch.extend((1..=4).map(|d| old(in_2024(3, d))));
    batch.extend((1..=2).map(|d| old(format!("2023-06-0{d}T00:00:00Z").parse().unwrap())));
    batch.push(event(
        "auth.login.stop",
        Outcome::Success,
        "u_new",
        "192.0.2.9",
        1,
    ));
    f.write_batch(&batch);
    let pending = old(in_2024(2, 20));
    f.record(std::slice::from_ref(&pending));
    let tables = |f: &Fixture| -> Vec<String> {
        let sql = format!(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relname ~ '^audit_events_p[0-9]{{6}}$' ORDER BY 1"
        );
        on_store!(&f.store, s => f.block_on(sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch_all(s.pool())))
            .unwrap()
    };
    let all_months = [
        "audit_events_p202401",
        "audit_events_p202402",
        "audit_events_p202403",
    ];
    assert_eq!(tables(&f), all_months);

    let cutoff = "2024-04-01T00:00:00Z";
    let dry = f
        .cli(&["purge", "--older-than", cutoff, "--dry-run"])
        .expect(0);
    for needle in [
        "would drop partition audit_events_p202401 (2024-01-01T00:00:00.000000Z to 2024-02-01T00:00:00.000000Z): 3 rows",
        "would drop partition audit_events_p202403 (2024-03-01T00:00:00.000000Z to 2024-04-01T00:00:00.000000Z): 4 rows",
        "keeping partition audit_events_p202402 (2024-02-01T00:00:00.000000Z to 2024-03-01T00:00:00.000000Z): 1 of its records are still pending delivery",
        "dry run: would delete 11 audit rows older than 2024-04-01T00:00:00.000000Z (7 by dropping 2 partitions, 4 row by row)",
    ] {
        assert!(
            dry.stdout.contains(needle),
            "{needle:?} missing from:\n{}",
            dry.stdout
        );
    }
    assert_eq!(tables(&f), all_months, "a dry run drops nothing");

    let real = f.cli(&["purge", "--older-than", cutoff, "--yes"]).expect(0);
    for needle in [
        "dropped partition audit_events_p202401 (3 rows)",
        "dropped partition audit_events_p202403 (4 rows)",
        "keeping partition audit_events_p202402",
        "deleted 11 audit rows older than 2024-04-01T00:00:00.000000Z and 0 finished outbox entries (2 partitions dropped: audit_events_p202401, audit_events_p202403)",
    ] {
        assert!(
            real.stdout.contains(needle),
            "{needle:?} missing from:\n{}",
            real.stdout
        );
    }
    assert_eq!(tables(&f), ["audit_events_p202402"]);
    let left: Vec<String> = f
        .cli(&["export"])
        .expect(0)
        .json_lines()
        .iter()
        .map(|e| {
            e["action"].as_str().unwrap().to_owned() + "@" + e["occurred_at"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        left.len(),
        3,
        "the pending February record, the recent one, the purge record: {left:?}"
    );
    assert!(
        left.contains(&format!("auth.login.stop@{}", pending.occurred_at())),
        "{left:?}"
    );
    let record = &f
        .cli(&["query", "--action", "audit.purge", "--format", "ndjson"])
        .expect(0)
        .json_lines()[0];
    assert_eq!(record["metadata"]["partitions_dropped"], 2);
    assert_eq!(record["metadata"]["audit_rows"], 11);

    // Once delivered, February goes too.
    f.block_on(async {
        let relay = Relay::new(&store, RelayConfig::default())
            .with_forwarder("kafka", Arc::new(Accepts))
            .unwrap();
        relay.run_once().await.unwrap();
    });
    let last = f.cli(&["purge", "--older-than", cutoff, "--yes"]).expect(0);
    assert!(
        last.stdout
            .contains("dropped partition audit_events_p202402 (1 rows)"),
        "{}",
        last.stdout
    );
    assert!(tables(&f).is_empty());
}
