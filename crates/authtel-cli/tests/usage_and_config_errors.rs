//! Exit codes and messages that need no seeded data: help, completions, usage errors (exit
//! 1, never clap's default 2, which is reserved for tamper findings), configuration errors
//! that say what to do, and passwords that never reach a message.

mod support;

use support::{Backend, Fixture, authtel, command};

#[test]
fn help_documents_every_exit_code() {
    let help = authtel(&["--help"]).expect(0);
    for line in [
        "0  success",
        "1  usage or configuration error",
        "2  reserved: a tamper finding",
        "3  outbox lag over the threshold",
    ] {
        assert!(
            help.stdout.contains(line),
            "{line:?} missing:\n{}",
            help.stdout
        );
    }
    for cmd in [
        "query", "export", "tail", "detect", "requeue", "purge", "doctor",
    ] {
        let sub = authtel(&[cmd, "--help"]).expect(0);
        assert!(
            sub.stdout.contains("Exit codes:"),
            "{cmd} --help:\n{}",
            sub.stdout
        );
    }
    let status = authtel(&["outbox", "status", "--help"]).expect(0);
    assert!(status.stdout.contains("retrying"), "{}", status.stdout);
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = authtel(&["completions", shell]).expect(0);
        assert!(run.stdout.contains("authtel"), "{shell}");
        assert!(run.stdout.contains("doctor"), "{shell}");
    }
    authtel(&["completions", "tcsh"]).expect(1);
}

#[test]
fn usage_errors_exit_1_with_a_suggestion() {
    let typo = authtel(&["quer"]).expect(1);
    assert!(
        typo.stderr.contains("similar subcommand exists: 'query'"),
        "{}",
        typo.stderr
    );
    let bad_value = authtel(&["query", "--outcome", "maybe"]).expect(1);
    assert!(
        bad_value.stderr.contains("possible values"),
        "{}",
        bad_value.stderr
    );
    let bad_age = authtel(&["query", "--since", "yesterday"]).expect(1);
    assert!(bad_age.stderr.contains("RFC 3339"), "{}", bad_age.stderr);
    authtel(&["tail", "--interval", "1ms"]).expect(1);
    authtel::<&str>(&[]).expect(1);
}

#[test]
fn a_missing_database_says_how_to_name_one() {
    let run = authtel(&["query"]).expect(1);
    assert!(run.stderr.contains("no database given"), "{}", run.stderr);
    assert!(run.stderr.contains("DATABASE_URL"), "{}", run.stderr);

    let path = support::temp_db("absent");
    let absent = authtel(&["query", "--database-url", path.to_str().unwrap()]).expect(1);
    assert!(
        absent.stderr.contains("there is no SQLite database at"),
        "{}",
        absent.stderr
    );
    assert!(!path.exists(), "the CLI must not create a database");

    let schema = authtel(&[
        "query",
        "--database-url",
        "sqlite::memory:",
        "--schema",
        "audit",
    ]);
    let schema = schema.expect(1);
    assert!(
        schema
            .stderr
            .contains("--schema applies only to PostgreSQL"),
        "{}",
        schema.stderr
    );
}

#[test]
fn passwords_are_redacted_in_error_reports() {
    let url = "postgres://ops:hunter2@127.0.0.1:1/app?sslmode=bogus";
    let run = authtel(&["doctor", "--database-url", url]).expect(1);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        run.stderr.contains("postgres://ops:***@127.0.0.1:1/app"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("what to do:"), "{}", run.stderr);
}

#[test]
fn the_database_url_comes_from_the_environment() {
    let f = Fixture::new(Backend::Sqlite, "env", &[]).unwrap();
    let out = command(&["doctor"])
        .env("DATABASE_URL", &f.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("reachable: yes"));
}

#[test]
fn export_into_a_closed_pipe_ends_quietly() {
    use authtel_core::outcome::Outcome;
    use std::io::{BufRead, BufReader};

    let f = Fixture::new(Backend::Sqlite, "pipe", &[]).unwrap();
    let events: Vec<_> = (0..3000)
        .map(|_| support::event("auth.login.stop", Outcome::Success, "u_1", "192.0.2.1", 5))
        .collect();
    f.write_batch(&events);
    let mut child = command(&["--database-url", &f.url, "export", "--page-size", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is gone (like `authtel export | head -1`): 3000 records do not fit a pipe.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).is_empty(), "{out:?}");
}
