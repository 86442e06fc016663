//! Runs the README's first command, `cargo run --example quickstart`, as a child process and
//! checks that what it says it wrote is in the SQLite file it names.

use std::path::PathBuf;
use std::process::Command;

use authtel::outcome::Outcome;
use authtel::sql::{AuditQuery, AuditStore, MAX_PAGE};

/// The quickstart binary cargo built next to this test (`cargo test` builds examples);
/// built on demand when a runner did not.
fn quickstart_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test binary lives in <target>/<profile>/deps");
    let binary = profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "authtel-examples", "--example", "quickstart"])
            .status()
            .expect("running cargo build --example quickstart");
        assert!(status.success(), "cargo build --example quickstart failed");
    }
    assert!(
        binary.exists(),
        "no quickstart binary at {}",
        binary.display()
    );
    binary
}

fn number_after<'a>(text: &'a str, prefix: &str) -> Option<(u64, &'a str)> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    let rest = &line[prefix.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((digits.parse().ok()?, line))
}

#[test]
fn the_quickstart_writes_the_audit_trail_it_names() {
    let dir = tempfile_dir();
    let db = dir.join("audit.db");
    let output = Command::new(quickstart_binary())
        .env("AUTHTEL_QUICKSTART_DB", &db)
        .env("RUST_LOG", "warn")
        .env_remove("DATABASE_URL")
        .env_remove("KAFKA_BOOTSTRAP")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("AUTHTEL_METRICS_ADDR")
        .output()
        .expect("running the quickstart");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );

    // It names the file and how many records it holds.
    let (printed, line) =
        number_after(&stdout, "sql: ").unwrap_or_else(|| panic!("no `sql: N` line in:\n{stdout}"));
    assert!(
        line.ends_with(&format!("audit records in {}", db.display())),
        "the sql line does not name the database file: {line}"
    );
    // 45 login attempts, 6 MFA checks, 2 lockouts, the OAuth callback and link, one
    // rate-limit signal, a JWT refresh, a denied authorization, and two detector signals.
    assert_eq!(printed, 60, "{stdout}");
    let (delivered, _) = number_after(&stdout, "delivery: lane sql delivered ")
        .unwrap_or_else(|| panic!("no delivery line in:\n{stdout}"));
    assert_eq!(delivered, printed, "{stdout}");
    assert!(
        stdout.contains("Block("),
        "the spraying bot is not blocked:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("console --database-url sqlite://{}", db.display())),
        "the quickstart does not say how to open the console on its trail:\n{stdout}"
    );
    assert!(
        stdout.contains("sql detect: 25 failed logins from 203.0.113.66"),
        "the detection query did not find the spraying bot:\n{stdout}"
    );

    // The file really holds those rows, readable by anyone with the path.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let stored = runtime.block_on(async {
        let pool = authtel::sql::sqlite::connect(&db.display().to_string())
            .await
            .expect("opening the quickstart's database");
        let store = AuditStore::builder(pool).build();
        store.check_schema().await.expect("the schema is migrated");
        let mut rows = Vec::new();
        let mut query = AuditQuery::new().limit(MAX_PAGE);
        loop {
            let page = store.query(&query).await.expect("querying");
            rows.extend(page.events);
            match page.next {
                Some(c) => query = query.after(c),
                None => break rows,
            }
        }
    });
    assert_eq!(stored.len() as u64, printed);
    let logins = stored
        .iter()
        .filter(|e| e.action() == "auth.login.stop")
        .count();
    assert_eq!(logins, 45);
    // A passed MFA check carries how the user got in, typed.
    let mfa_passed: Vec<_> = stored
        .iter()
        .filter(|e| e.action() == "mfa.verify.stop" && e.outcome() == Outcome::Success)
        .collect();
    assert!(!mfa_passed.is_empty(), "u_alice passes her MFA check");
    for e in mfa_passed {
        let factors: Vec<_> = e.metadata()["factors"]
            .as_array()
            .expect("factors are a list")
            .iter()
            .map(|f| f.as_str())
            .collect();
        assert_eq!(factors, [Some("password"), Some("totp")]);
        assert_eq!(e.metadata()["aal"], "aal2");
        assert_eq!(e.metadata()["is_mfa"], true);
    }
    // No password from the simulation reached the file.
    let bytes = std::fs::read(&db).expect("reading the database file");
    for password in [
        "correct horse",
        "battery staple",
        "never-guessed",
        "iloveyou",
    ] {
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "{password:?} is in the audit database"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "authtel-quickstart-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}
