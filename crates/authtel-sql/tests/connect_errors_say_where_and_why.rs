//! Connection failures are typed, fast and readable at 3 a.m.: a refused PostgreSQL port says
//! which host and port refused (never the password) within a second instead of a 10 s "pool
//! timed out", a `mysql://` URL is refused before any connection attempt, SQLite names the
//! file it cannot open, and an empty SQLite path is an error, not a throwaway database.
//! None of these needs a running service.

use std::time::{Duration, Instant};

use authtel_sql::SqlError;

/// A loopback port with nothing listening (bound, then released).
fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_refused_postgres_port_fails_fast_naming_host_and_port() {
    let port = refused_port();
    let url = format!("postgres://auditor:s3cret-pw@127.0.0.1:{port}/audit");
    let started = Instant::now();
    let err = authtel_sql::postgres::connect(&url).await.unwrap_err();
    let elapsed = started.elapsed();
    let text = err.to_string();
    assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}: {text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("database audit, user auditor"), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains("s3cret-pw"), "{text}");
    assert!(!format!("{err:?}").contains("s3cret-pw"), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_mysql_url_is_refused_at_once_with_the_password_redacted() {
    let started = Instant::now();
    let err = authtel_sql::postgres::connect("mysql://root:hunter2@127.0.0.1:3306/audit")
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    let text = err.to_string();
    assert!(matches!(err, SqlError::InvalidUrl { .. }), "{err:?}");
    assert!(
        text.contains("mysql://root:***@127.0.0.1:3306/audit"),
        "{text}"
    );
    assert!(text.contains("postgres://"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// The password in the query string (`?password=`, libpq's other spelling), in every
/// error that carries the URL: a refused port and a URL refused before connecting.
#[tokio::test]
async fn a_password_in_the_query_string_never_reaches_the_error() {
    let port = refused_port();
    let refused =
        format!("postgres://auditor@127.0.0.1:{port}/audit?password=qs-s3cret&sslmode=disable");
    let wrong_scheme = "mysql://127.0.0.1:3306/audit?user=root&PassWord=qs-s3cret";
    for url in [refused.as_str(), wrong_scheme] {
        let err = authtel_sql::postgres::connect(url).await.unwrap_err();
        let (text, debug) = (err.to_string(), format!("{err:?}"));
        assert!(!text.contains("qs-s3cret"), "{text}");
        assert!(!debug.contains("qs-s3cret"), "{debug}");
    }
}

#[tokio::test]
async fn a_sqlite_file_that_cannot_be_opened_is_named() {
    let dir = std::env::temp_dir().join(format!("authtel-no-such-dir-{}", uuid::Uuid::now_v7()));
    let path = dir.join("audit.db");
    let err = authtel_sql::sqlite::connect(path.to_str().unwrap())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("unable to open database file"), "{text}");
    assert!(text.contains("directory exists"), "{text}");
}

#[tokio::test]
async fn an_empty_sqlite_path_is_a_typed_error() {
    for url in ["", "  ", "sqlite:", "sqlite://", "sqlite://?mode=rwc"] {
        let err = authtel_sql::sqlite::connect(url).await.unwrap_err();
        assert!(
            matches!(err, SqlError::InvalidUrl { .. }),
            "{url:?}: {err:?}"
        );
        assert!(err.to_string().contains("the path is empty"), "{err}");
    }
    // In-memory databases have no path and stay allowed.
    for url in ["sqlite::memory:", "sqlite://?mode=memory"] {
        authtel_sql::sqlite::connect(url).await.unwrap();
    }
}

#[tokio::test]
async fn a_statement_error_prints_its_cause() {
    let pool = authtel_sql::sqlite::connect("sqlite::memory:")
        .await
        .unwrap();
    let store = authtel_sql::AuditStore::builder(pool).build();
    // No migrate(): the tables are missing.
    let err = store
        .query(&authtel_sql::AuditQuery::new())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no such table"), "{text}");
    assert!(text.contains("call AuditStore::migrate()"), "{text}");
}

/// `sslmode=require` needs TLS: without the `postgres-tls` feature the URL is refused at once
/// naming the feature; with it, TLS is attempted (here against a plain-text port that
/// refuses, so the error is a connect error, not "built without TLS").
#[tokio::test]
async fn sslmode_require_names_the_tls_feature() {
    let port = refused_port();
    let url = format!("postgres://auditor:pw@127.0.0.1:{port}/audit?sslmode=require");
    let err = authtel_sql::postgres::connect(&url).await.unwrap_err();
    let text = err.to_string();
    if cfg!(feature = "postgres-tls") {
        assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");
    } else {
        assert!(matches!(err, SqlError::InvalidUrl { .. }), "{err:?}");
        assert!(text.contains("postgres-tls"), "{text}");
    }
    assert!(!text.contains(":pw@"), "{text}");
}

/// With `postgres-tls`, `sslmode=require` really negotiates TLS: the test server speaks plain
/// text only, so the connection is refused for that reason (needs `DATABASE_URL`).
#[cfg(feature = "postgres-tls")]
#[tokio::test]
async fn with_postgres_tls_sslmode_require_negotiates_tls() {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        assert!(
            std::env::var_os("CI").is_none()
                && std::env::var_os("AUTHTEL_REQUIRE_SERVICES").is_none(),
            "DATABASE_URL is required"
        );
        eprintln!("skipping: DATABASE_URL is not set");
        return;
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    let err = authtel_sql::postgres::connect(&format!("{url}{sep}sslmode=require"))
        .await
        .unwrap_err();
    let text = err.to_string().to_lowercase();
    assert!(matches!(err, SqlError::Connect { .. }), "{err:?}");
    assert!(text.contains("tls") || text.contains("ssl"), "{text}");
}
