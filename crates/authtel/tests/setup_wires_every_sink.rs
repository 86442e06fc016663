//! `authtel::setup()`: one chain attaches the sinks, one guard shuts them down, and a
//! failure half-way leaves nothing attached. These tests use the global registry, so they
//! take turns.

#![cfg(all(feature = "log", feature = "sql"))]

use std::sync::Mutex;
use std::time::Duration;

use authtel::catalogue::AUTH_LOGIN;
use authtel::log::LoggerOptions;
use authtel::metadata::Metadata;
use authtel::registry::Registry;
use authtel::sql::AuditQuery;
use authtel::{SetupError, telemetry};

static GLOBAL: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    GLOBAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn attached() -> Vec<String> {
    Registry::global()
        .handlers()
        .into_iter()
        .map(|h| h.id.to_string())
        .collect()
}

fn temp_db(name: &str) -> (std::path::PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("authtel-setup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("audit.db").display());
    (dir, url)
}

#[test]
fn a_login_reaches_the_sqlite_trail_and_shutdown_reports_it() {
    let _turn = turn();
    let (dir, url) = temp_db("login");
    let authtel = authtel::setup()
        .default_logger(LoggerOptions::new())
        .sql(&url)
        .install()
        .expect("install");
    assert_eq!(
        authtel.handlers(),
        ["authtel-default-logger", "authtel-pipeline"]
    );
    for n in 0..50 {
        let user = format!("u_{n}");
        let _ = telemetry::span(
            &AUTH_LOGIN,
            Metadata::new().user_id(&user).reason("password=hunter2"),
            || Err::<(), _>("invalid_password"),
        );
    }
    authtel.flush(Duration::from_secs(10)).expect("flush");
    let store = authtel.sqlite().expect("a SQLite store").clone();
    let handle = authtel.runtime_handle().expect("a runtime");
    let page = handle
        .block_on(store.query(&AuditQuery::new().limit(100)))
        .expect("query");
    assert_eq!(page.events.len(), 50);
    assert!(page.events.iter().all(|e| e.action() == "auth.login.stop"));
    assert!(
        page.events
            .iter()
            .all(|e| e.reason() != Some("password=hunter2"))
    );

    let report = authtel.shutdown(Duration::from_secs(10)).expect("shutdown");
    assert_eq!(report.delivered("sql"), Some(50));
    assert_eq!(report.lanes[0].dropped, 0);
    assert!(attached().is_empty(), "left attached: {:?}", attached());
    // After shutdown a span reaches nobody, and the ids are free for a new install.
    let again = authtel::setup()
        .sql(&url)
        .install()
        .expect("second install");
    drop(again);
    assert!(attached().is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_failed_step_detaches_what_was_attached_before_it() {
    let _turn = turn();
    let err = authtel::setup()
        .default_logger(LoggerOptions::new())
        .sql("mysql://app:hunter2@db.internal:3306/audit")
        .install()
        .expect_err("MySQL is not a backend");
    let message = err.to_string();
    assert!(
        matches!(err, SetupError::UnsupportedDatabase { .. }),
        "{err:?}"
    );
    assert!(
        message.contains("mysql://app:***@db.internal:3306/audit"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(attached().is_empty(), "left attached: {:?}", attached());

    // An unreachable directory: the SQLite error names the file, and the logger is gone.
    let err = authtel::setup()
        .default_logger(LoggerOptions::new())
        .sql("sqlite:///proc/authtel-no-such-dir/audit.db")
        .install()
        .expect_err("cannot create a database under /proc");
    assert!(matches!(err, SetupError::Sql(_)), "{err:?}");
    assert!(
        err.to_string().contains("/proc/authtel-no-such-dir"),
        "{err}"
    );
    assert!(attached().is_empty(), "left attached: {:?}", attached());
}

#[test]
fn install_inside_a_runtime_says_to_use_install_async() {
    let _turn = turn();
    let (dir, url) = temp_db("async");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let err = authtel::setup()
            .sql(&url)
            .install()
            .expect_err("blocking inside the runtime");
        assert!(
            matches!(err, SetupError::InsideRuntime { sink: "sql" }),
            "{err:?}"
        );
        assert!(err.to_string().contains("install_async"), "{err}");

        let authtel = authtel::setup()
            .sql(&url)
            .install_async()
            .await
            .expect("install_async");
        // Published from tasks on the application's own runtime.
        let tasks: Vec<_> = (0..4)
            .map(|t| {
                tokio::spawn(async move {
                    for n in 0..25 {
                        let user = format!("u_{t}_{n}");
                        let _ =
                            telemetry::span(&AUTH_LOGIN, Metadata::new().user_id(&user), || {
                                Ok::<(), &str>(())
                            });
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let report = tokio::task::spawn_blocking(move || authtel.shutdown(Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("shutdown");
        assert_eq!(report.delivered("sql"), Some(100));
    });
    assert!(attached().is_empty());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn dropping_the_guard_delivers_and_detaches() {
    let _turn = turn();
    let (dir, url) = temp_db("drop");
    {
        let _authtel = authtel::setup().sql(&url).install().expect("install");
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_drop"), || {
            Ok::<(), &str>(())
        });
    }
    assert!(attached().is_empty());
    // The record made it into the file before the guard let go.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = runtime.block_on(async {
        let pool = authtel::sql::sqlite::connect(&url).await.unwrap();
        let store = authtel::sql::AuditStore::builder(pool).build();
        store
            .query(&AuditQuery::new().limit(10))
            .await
            .unwrap()
            .events
    });
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].actor().map(|a| a.id.as_str()), Some("u_drop"));
    std::fs::remove_dir_all(dir).ok();
}

/// Runs this test binary again, for one test, with extra environment (the environment is
/// process-wide; the child has its own).
fn run_child(test: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("AUTHTEL_SETUP_CHILD", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child {test} failed:\n{text}");
    text
}

#[cfg(not(feature = "kafka"))]
#[test]
fn from_env_names_a_variable_for_a_sink_this_build_lacks() {
    if std::env::var_os("AUTHTEL_SETUP_CHILD").is_some() {
        let authtel = authtel::setup().from_env().install().expect("install");
        let warnings = authtel.warnings().join("\n");
        assert!(warnings.contains("KAFKA_BOOTSTRAP is set"), "{warnings}");
        assert!(warnings.contains("authtel/kafka"), "{warnings}");
        println!("child-ok");
        return;
    }
    let out = run_child(
        "from_env_names_a_variable_for_a_sink_this_build_lacks",
        &[
            ("KAFKA_BOOTSTRAP", "127.0.0.1:1"),
            ("DATABASE_URL", "sqlite::memory:"),
        ],
    );
    assert!(out.contains("child-ok"), "{out}");
}

#[cfg(feature = "prometheus")]
#[test]
fn a_bad_metrics_address_is_named_and_nothing_stays_attached() {
    if std::env::var_os("AUTHTEL_SETUP_CHILD").is_some() {
        let err = authtel::setup()
            .default_logger(LoggerOptions::new())
            .from_env()
            .install()
            .expect_err("not an address");
        assert!(
            err.to_string()
                .contains("AUTHTEL_METRICS_ADDR=\"localhost\""),
            "{err}"
        );
        assert!(attached().is_empty(), "left attached: {:?}", attached());
        println!("child-ok");
        return;
    }
    let out = run_child(
        "a_bad_metrics_address_is_named_and_nothing_stays_attached",
        &[("AUTHTEL_METRICS_ADDR", "localhost")],
    );
    assert!(out.contains("child-ok"), "{out}");
}
