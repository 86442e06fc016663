//! `authtel tail` shows records committed after it started, including one whose timestamp
//! is older than a record already shown (a slow transaction), and stops at `--max-rows`;
//! `--for` bounds it when nothing arrives. SQLite and PostgreSQL.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;
use support::{Backend, Fixture, command, event, on_both_backends};

fn args(f: &Fixture, extra: &[&str]) -> Vec<String> {
    let mut all = vec!["--database-url".to_owned(), f.url.clone()];
    if let Some(s) = &f.schema {
        all.extend(["--schema".to_owned(), s.clone()]);
    }
    all.extend(extra.iter().map(|a| (*a).to_owned()));
    all
}

fn tail_shows_late_commits_and_stops_at_max_rows(backend: Backend) {
    let Some(f) = Fixture::new(backend, "tail", &[]) else {
        return;
    };
    // Older than the tail's --since: must not be shown.
    f.write_batch(&[event(
        "auth.login.stop",
        Outcome::Success,
        "u_old",
        "192.0.2.1",
        1,
    )]);
    let since = Timestamp::from_unix_micros(Timestamp::now().unix_micros() - 10_000_000);
    let since = since.to_string();
    let mut child = command(&args(
        &f,
        &[
            "tail",
            "--since",
            &since,
            "--format",
            "ndjson",
            "--interval",
            "50ms",
            "--max-rows",
            "2",
            "--for",
            "30s",
        ],
    ))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let first = event(
        "auth.login.stop",
        Outcome::Failure,
        "u_first",
        "192.0.2.2",
        0,
    );
    f.write_batch(std::slice::from_ref(&first));
    let line = lines.next().expect("tail ended early").unwrap();
    let shown: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(shown["id"], first.id().to_string());

    // Committed now, stamped a second before `first` (inside --since and the grace window).
    let mut late = event(
        "security.lockout",
        Outcome::Failure,
        "u_late",
        "192.0.2.3",
        0,
    );
    late = late.with_occurred_at(Timestamp::from_unix_micros(
        first.occurred_at().unix_micros() - 1_000_000,
    ));
    f.write_batch(std::slice::from_ref(&late));
    let line = lines
        .next()
        .expect("tail ended before the late record")
        .unwrap();
    let shown: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(shown["id"], late.id().to_string());

    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(lines.next().is_none(), "tail printed more than --max-rows");
}

fn tail_stops_after_for_when_nothing_arrives(backend: Backend) {
    let Some(f) = Fixture::new(backend, "tail_for", &[]) else {
        return;
    };
    let started = Instant::now();
    let out = command(&args(&f, &["tail", "--for", "300ms", "--interval", "50ms"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "only the header: {stdout}");
    assert!(stdout.starts_with("occurred_at"));
}

on_both_backends!(
    tail_shows_late_commits_and_stops_at_max_rows,
    tail_stops_after_for_when_nothing_arrives,
);
