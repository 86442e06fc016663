//! Progress of long work on stderr: plain lines every N rows when stderr is not a terminal,
//! a line redrawn in place (`\r`, erase to end of line) when it is (run under `script`, which
//! gives the child a pseudo-terminal).

mod support;

use authtel_core::outcome::Outcome;
use support::{AUTHTEL, Backend, Fixture, event};

fn fixture(name: &str) -> Fixture {
    let f = Fixture::new(Backend::Sqlite, name, &[]).unwrap();
    let events: Vec<_> = (0..25)
        .map(|i| {
            event(
                "auth.login.stop",
                Outcome::Success,
                "u_1",
                "192.0.2.1",
                30 - i,
            )
        })
        .collect();
    f.write_batch(&events);
    f
}

#[test]
fn off_a_terminal_progress_is_a_plain_line_every_n_rows() {
    let f = fixture("plain");
    let run = f
        .cli(&[
            "export",
            "--output",
            "/dev/null",
            "--page-size",
            "10",
            "--progress-every",
            "10",
        ])
        .expect(0);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stderr);
    assert!(
        lines[0].starts_with("authtel: exported 10 rows ("),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("authtel: exported 20 rows ("),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("authtel: exported 25 rows in "),
        "{}",
        lines[2]
    );
    assert!(!run.stderr.contains('\r'));
    // Exporting to a device writes into it: /dev/null is still the null device (an
    // earlier version wrote /dev/null.partial and renamed it over the device).
    use std::os::unix::fs::FileTypeExt;
    let null = std::fs::metadata("/dev/null").unwrap();
    assert!(null.file_type().is_char_device(), "{null:?}");
    assert!(!std::path::Path::new("/dev/null.partial").exists());
}

#[test]
fn on_a_terminal_progress_redraws_one_line() {
    let f = fixture("tty");
    let inner = format!(
        "{AUTHTEL} --database-url {} export --output /dev/null",
        f.url
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("\r\u{1b}[Kauthtel: exported 25 rows in "),
        "{text:?}"
    );
}

#[test]
fn purge_progress_advances_in_steps_even_when_old_rows_cluster() {
    let f = Fixture::new(Backend::Sqlite, "purge_steps", &[]).unwrap();
    // 200 rows within 200 minutes, 400 days ago; the cutoff (365 days) is a month later.
    let events: Vec<_> = (0..200)
        .map(|i| {
            event(
                "auth.login.stop",
                Outcome::Failure,
                "u_1",
                "192.0.2.1",
                576_000 + i,
            )
        })
        .collect();
    f.write_batch(&events);
    let run = f
        .cli(&["purge", "--older-than", "365d", "--yes", "--batch", "1"])
        .expect(0);
    assert!(
        run.stdout.starts_with("deleted 200 audit rows"),
        "{}",
        run.stdout
    );
    let steps = run
        .stderr
        .lines()
        .filter(|l| l.contains("/200 rows ("))
        .count();
    assert!(
        steps >= 5,
        "one slice took (nearly) everything:\n{}",
        run.stderr
    );
}
