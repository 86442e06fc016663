//! Every command of the real `authtel` binary against a seeded store, on SQLite and on
//! PostgreSQL (`DATABASE_URL`; required when `CI` is set): outputs and exit codes.

mod support;

use authtel_core::audit::AuditEvent;
use authtel_core::outcome::Outcome;
use serde_json::Value;
use support::{Backend, Fixture, event, on_both_backends};

/// A store holding: alice's logins (one 3 days ago from 198.51.100.1, three in the last
/// 3 hours from 203.0.113.7), twelve failed logins of bob from 198.51.100.66 in the last
/// 30 minutes, a lockout, an MFA disable by carol, all with outbox entries for `siem`
/// (dead-lettered) and `kafka` (failed once, waiting for a retry); and one 400-day-old
/// record written by the batch writer (no outbox entries).
struct Seeded {
    f: Fixture,
    bob_failures: Vec<AuditEvent>,
    live: Vec<AuditEvent>,
}

const TOTAL: usize = 19;

fn seeded(backend: Backend, name: &str) -> Option<Seeded> {
    let f = Fixture::new(backend, name, &["kafka", "siem"])?;
    let mut live = vec![event(
        "auth.login.stop",
        Outcome::Success,
        "u_alice",
        "198.51.100.1",
        3 * 24 * 60,
    )];
    for age in [180, 120, 60] {
        live.push(event(
            "auth.login.stop",
            Outcome::Success,
            "u_alice",
            "203.0.113.7",
            age,
        ));
    }
    let mut bob_failures = Vec::new();
    for i in 0..12 {
        let mut e = event(
            "auth.login.stop",
            Outcome::Failure,
            "u_bob",
            "198.51.100.66",
            30 - i,
        );
        e = e.with_reason("invalid_credentials");
        bob_failures.push(e);
    }
    live.extend(bob_failures.iter().cloned());
    live.push(event(
        "security.lockout",
        Outcome::Failure,
        "u_bob",
        "198.51.100.66",
        17,
    ));
    live.push(event(
        "mfa.disable.stop",
        Outcome::Success,
        "u_carol",
        "192.0.2.5",
        10,
    ));
    f.record(&live);
    f.fail_deliveries("siem", "kafka");
    f.write_batch(&[event(
        "auth.login.stop",
        Outcome::Success,
        "u_dave",
        "192.0.2.9",
        400 * 24 * 60,
    )]);
    Some(Seeded {
        f,
        bob_failures,
        live,
    })
}

fn ids(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

fn query_filters_and_pages(backend: Backend) {
    let Some(s) = seeded(backend, "query") else {
        return;
    };
    let f = &s.f;
    let bob = f
        .cli(&[
            "query",
            "--actor",
            "u_bob",
            "--action",
            "auth.login.stop",
            "--outcome",
            "failure",
            "--format",
            "ndjson",
        ])
        .expect(0);
    let lines = bob.json_lines();
    assert_eq!(lines.len(), 12);
    assert!(lines.iter().all(|l| l["actor"]["id"] == "u_bob"));
    assert!(bob.stderr.contains("last page"), "{}", bob.stderr);

    // Pages of 5 by cursor: every failure exactly once, oldest first.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for page in 0.. {
        assert!(page < 5, "pagination does not end");
        let mut args = vec![
            "query", "--actor", "u_bob", "--limit", "5", "--format", "ndjson",
        ];
        if let Some(a) = &after {
            args.extend(["--after", a.as_str()]);
        }
        let run = f.cli(&args).expect(0);
        seen.extend(ids(&run.json_lines()));
        match run.stderr.trim().strip_prefix("next page: --after ") {
            Some(cursor) => after = Some(cursor.to_owned()),
            None => break,
        }
    }
    let mut expected = s.bob_failures.clone();
    expected.sort_by_key(|e| (e.occurred_at(), e.id()));
    let expected: Vec<String> = expected.iter().map(|e| e.id().to_string()).collect();
    // bob's lockout is not a login failure but matches --actor: it sorts among them.
    seen.retain(|id| expected.contains(id));
    assert_eq!(seen, expected);

    let by_ip = f
        .cli(&["query", "--ip", "203.0.113.7", "--format", "ndjson"])
        .expect(0);
    assert_eq!(by_ip.json_lines().len(), 3);
    let recent = f
        .cli(&["query", "--since", "90m", "--format", "ndjson"])
        .expect(0);
    assert_eq!(recent.json_lines().len(), 15, "{}", recent.stdout);
    let old = f
        .cli(&["query", "--until", "1d", "--format", "ndjson"])
        .expect(0);
    assert_eq!(old.json_lines().len(), 2);

    let table = f.cli(&["query", "--action", "mfa.disable.stop"]).expect(0);
    let mut rows = table.stdout.lines();
    assert!(
        rows.next().unwrap().starts_with("occurred_at"),
        "{}",
        table.stdout
    );
    let carol = rows.next().unwrap();
    assert!(
        carol.contains("mfa.disable.stop") && carol.contains("u_carol"),
        "{carol}"
    );
    assert_eq!(rows.next(), None);

    let bad = f.cli(&["query", "--after", "nonsense"]).expect(1);
    assert!(
        bad.stderr.contains("start again without --after"),
        "{}",
        bad.stderr
    );
}

fn export_streams_every_record(backend: Backend) {
    let Some(s) = seeded(backend, "export") else {
        return;
    };
    let f = &s.f;
    let path = support::temp_db("export").with_extension("ndjson");
    let run = f
        .cli(&[
            "export",
            "--output",
            path.to_str().unwrap(),
            "--page-size",
            "7",
        ])
        .expect(0);
    assert!(
        run.stderr.contains(&format!("exported {TOTAL} rows")),
        "{}",
        run.stderr
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<AuditEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), TOTAL);
    assert!(
        lines
            .windows(2)
            .all(|w| (w[0].occurred_at(), w[0].id()) < (w[1].occurred_at(), w[1].id()))
    );
    for e in &s.live {
        assert!(lines.contains(e), "{} missing from the export", e.id());
    }
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    assert!(!std::path::Path::new(&partial).exists());
    std::fs::remove_file(&path).unwrap();

    let alice = f.cli(&["export", "--actor", "u_alice"]).expect(0);
    assert_eq!(alice.json_lines().len(), 4);
}

fn detect_reports_each_detection(backend: Backend) {
    let Some(s) = seeded(backend, "detect") else {
        return;
    };
    let f = &s.f;
    let table = f.cli(&["detect"]).expect(0);
    let t = &table.stdout;
    for needle in [
        "== failed-login bursts",
        "198.51.100.66  12",
        "== first-seen IPs",
        "u_alice  203.0.113.7",
        "== MFA disables",
        "u_carol",
        "== lockouts",
        "security.lockout",
    ] {
        assert!(t.contains(needle), "{needle:?} missing from:\n{t}");
    }
    let json = f
        .cli(&["detect", "--format", "ndjson"])
        .expect(0)
        .json_lines();
    let kinds: Vec<&str> = json
        .iter()
        .map(|l| l["finding"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "failed_login_burst",
            "first_seen_ip",
            "mfa_disable",
            "lockout"
        ]
    );
    assert_eq!(json[0]["failures"], 12);
    assert_eq!(json[1]["actor_id"], "u_alice");

    let strict = f
        .cli(&["detect", "--min-failures", "13", "--format", "ndjson"])
        .expect(0);
    assert_eq!(strict.json_lines().len(), 3, "no burst reaches 13");
}

fn status_of(f: &Fixture) -> Vec<Value> {
    f.cli(&["outbox", "status", "--format", "ndjson"])
        .expect(0)
        .json_lines()
}

fn outbox_status_dead_letters_and_requeue(backend: Backend) {
    let Some(s) = seeded(backend, "outbox") else {
        return;
    };
    let f = &s.f;
    let n = s.live.len() as u64;
    let status = status_of(f);
    assert_eq!(status.len(), 2);
    let (kafka, siem) = (&status[0], &status[1]);
    assert_eq!(kafka["forwarder"], "kafka");
    assert_eq!(
        (
            &kafka["pending"],
            &kafka["retrying"],
            &kafka["max_attempts"],
            &kafka["dead"]
        ),
        (
            &Value::from(n),
            &Value::from(n),
            &Value::from(1),
            &Value::from(0)
        )
    );
    assert!(kafka["oldest_pending_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(siem["forwarder"], "siem");
    assert_eq!(
        (&siem["pending"], &siem["dead"]),
        (&Value::from(0), &Value::from(n))
    );

    let table = f.cli(&["outbox", "status"]).expect(0);
    assert!(
        table.stdout.starts_with("forwarder  pending  retrying"),
        "{}",
        table.stdout
    );

    let dead = f
        .cli(&[
            "outbox",
            "dead",
            "--forwarder",
            "siem",
            "--format",
            "ndjson",
        ])
        .expect(0)
        .json_lines();
    assert_eq!(dead.len() as u64, n);
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );

    let one = s.live[0].id().to_string();
    let r = f
        .cli(&["requeue", "--event", &one, "--forwarder", "siem"])
        .expect(0);
    assert!(
        r.stdout.starts_with("requeued 1 dead entries"),
        "{}",
        r.stdout
    );
    // The requeued entry, and the requeue's own audit.requeue record, which goes to every
    // forwarder the outbox knows.
    let siem = &status_of(f)[1];
    assert_eq!(
        (&siem["pending"], &siem["dead"]),
        (&Value::from(2), &Value::from(n - 1))
    );
    let again = f.cli(&["requeue", "--event", &one]).expect(0);
    assert!(
        again.stdout.starts_with("nothing requeued"),
        "{}",
        again.stdout
    );

    let rest = f.cli(&["requeue", "--forwarder", "siem"]).expect(0);
    assert!(
        rest.stdout.starts_with(&format!("requeued {} dead", n - 1)),
        "{}",
        rest.stdout
    );
    assert_eq!(status_of(f)[1]["dead"], 0);

    let neither = f.cli(&["requeue"]).expect(1);
    assert!(neither.stderr.contains("--event"), "{}", neither.stderr);
}

fn purge_by_age_counts_first_and_keeps_pending_rows(backend: Backend) {
    let Some(s) = seeded(backend, "purge") else {
        return;
    };
    let f = &s.f;
    let unconfirmed = f.cli(&["purge", "--older-than", "365d"]).expect(1);
    assert!(
        unconfirmed.stderr.contains("--dry-run"),
        "{}",
        unconfirmed.stderr
    );

    let dry = f
        .cli(&["purge", "--older-than", "365d", "--dry-run"])
        .expect(0);
    assert!(
        dry.stdout.starts_with("dry run: would delete 1 audit rows"),
        "{}",
        dry.stdout
    );
    let count = |f: &Fixture| f.cli(&["export"]).expect(0).json_lines().len();
    assert_eq!(count(f), TOTAL, "a dry run deletes nothing");

    // alice's 3-day-old login is older than 1d but still pending for kafka: it stays.
    let pending = f
        .cli(&["purge", "--older-than", "1d", "--dry-run"])
        .expect(0);
    assert!(
        pending
            .stdout
            .starts_with("dry run: would delete 1 audit rows"),
        "{}",
        pending.stdout
    );

    let real = f
        .cli(&["purge", "--older-than", "365d", "--yes", "--batch", "1"])
        .expect(0);
    assert!(
        real.stdout.starts_with("deleted 1 audit rows"),
        "{}",
        real.stdout
    );
    assert!(real.stderr.contains("purged 1 rows in"), "{}", real.stderr);
    // The purge's own audit.purge record joined the trail.
    assert_eq!(count(f), TOTAL - 1 + 1);
}

fn doctor_reports_health_and_lag(backend: Backend) {
    let Some(s) = seeded(backend, "doctor") else {
        return;
    };
    let f = &s.f;
    let ok = f.cli(&["doctor"]).expect(0);
    // PostgreSQL's migration 2 adds the live feed's positions; then each backend adds the
    // relays' status table and, last, the tenant column.
    let newest = match backend {
        Backend::Sqlite => 3,
        Backend::Postgres => 4,
    };
    let schema_line = format!("schema:    migration {newest} applied, no pending migrations");
    for needle in [
        "reachable: yes",
        schema_line.as_str(),
        "kafka",
        "siem",
        "dead letters",
    ] {
        assert!(
            ok.stdout.contains(needle),
            "{needle:?} missing from:\n{}",
            ok.stdout
        );
    }
    f.cli(&["doctor", "--max-lag", "1h"]).expect(0);
    // kafka's entries have waited since seeding, longer than a millisecond.
    let lag = f.cli(&["doctor", "--max-lag", "1ms"]).expect(3);
    assert!(lag.stdout.contains("LAGGING"), "{}", lag.stdout);
    assert!(
        lag.stdout.contains("verdict:   LAG over 0s for kafka"),
        "{}",
        lag.stdout
    );

    let json = f
        .cli(&["doctor", "--format", "ndjson"])
        .expect(0)
        .json_lines();
    assert_eq!(json[0]["schema_version"], newest);
    assert_eq!(json[0]["pending_migrations"], 0);
    assert_eq!(json[0]["forwarders"].as_array().unwrap().len(), 2);
}

fn an_unmigrated_store_is_reported_with_what_to_do(backend: Backend) {
    let Some(f) = Fixture::unmigrated(backend, "empty", &[]) else {
        return;
    };
    let doctor = f.cli(&["doctor"]).expect(1);
    assert!(
        doctor.stdout.contains("pending migration"),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stderr.contains("AuditStore::migrate()"),
        "{}",
        doctor.stderr
    );
    let query = f.cli(&["query"]).expect(1);
    assert!(
        query.stderr.contains("checking the audit schema failed"),
        "{}",
        query.stderr
    );
}

on_both_backends!(
    query_filters_and_pages,
    export_streams_every_record,
    detect_reports_each_detection,
    outbox_status_dead_letters_and_requeue,
    purge_by_age_counts_first_and_keeps_pending_rows,
    doctor_reports_health_and_lag,
    an_unmigrated_store_is_reported_with_what_to_do,
);
