//! The crate's error type: one enum for every store operation, each variant saying what
//! failed, with which value, and what to do.

use authtel_core::forward::{ErrorKind, ForwardError};

/// Why a store operation failed.
///
/// ```
/// use authtel_sql::SqlError;
/// let e = SqlError::InvalidSchemaName("drop table;".into());
/// assert!(e.to_string().contains("drop table;"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The database answered with an error or could not be reached.
    ///
    /// The driver's error is part of the message (not a `source()`): every way of printing the
    /// error shows it exactly once.
    #[error("{context} failed: {cause}; {}", database_hint(cause))]
    Database {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// Opening the database failed: the server refused or did not answer, the login was
    /// refused, or the SQLite file cannot be opened. Returned by `connect` at once, without
    /// waiting for a pool timeout.
    #[error(
        "could not connect to {backend} at {target}: {cause}; {}",
        connect_hint(backend)
    )]
    Connect {
        /// `PostgreSQL` or `SQLite`.
        backend: &'static str,
        /// Where: `host:port (database …, user …)` or the SQLite path; never a password.
        target: String,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// A connection URL or path that this backend cannot use.
    #[error("{backend} URL {url:?} cannot be used: {problem}")]
    InvalidUrl {
        /// `PostgreSQL` or `SQLite`.
        backend: &'static str,
        /// The URL as given, with any password replaced by `***`.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// Running the migrations failed.
    #[error(
        "running the authtel-sql migrations failed: {0}; fix the schema by hand if a migration was modified"
    )]
    Migrate(sqlx::migrate::MigrateError),
    /// The audit tables are missing or older than this library: `migrate()` has not run.
    #[error(
        "the audit schema is at migration {found} but this library needs {expected}; call AuditStore::migrate() at startup"
    )]
    SchemaOutdated {
        /// The newest migration applied in the database (0 = none).
        found: i64,
        /// The newest migration this library ships.
        expected: i64,
    },
    /// A schema name that is not a plain lowercase SQL identifier.
    #[error(
        "schema name {0:?} is not a lowercase identifier like \"audit\" (letters, digits, underscore, at most 63 bytes)"
    )]
    InvalidSchemaName(String),
    /// A forwarder id that is empty, too long or has odd characters.
    #[error("forwarder id {0:?} is not valid; use 1-64 characters of a-z, 0-9, '_', '-' or '.'")]
    InvalidForwarderId(String),
    /// A relay was given a forwarder the store does not enqueue for, or the other way round.
    #[error(
        "forwarder {0:?} is not configured on the store; add it with AuditStoreBuilder::with_forwarder"
    )]
    UnknownForwarder(String),
    /// The relay's delivery settings for a forwarder are invalid (a zero forward timeout, a
    /// breaker threshold of 0, …).
    #[error("relay settings for forwarder {forwarder:?} are invalid: {source}")]
    RelaySettings {
        /// The forwarder id.
        forwarder: String,
        /// What the delivery engine refused.
        #[source]
        source: Box<authtel_pipeline::BuildError>,
    },
    /// An audit record that cannot be stored as it is.
    #[error("audit event {event_id} cannot be stored: field {field} {problem}")]
    InvalidEvent {
        /// The record's id.
        event_id: uuid::Uuid,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A stored row that does not parse back into an audit record.
    #[error("stored audit row {event_id:?} is corrupt: {problem}; inspect it with a SQL client")]
    CorruptRow {
        /// The row's event id as stored.
        event_id: String,
        /// What did not parse.
        problem: String,
    },
    /// A partition operation on a store built without monthly partitions.
    #[error(
        "this audit store is not partitioned; build it with with_monthly_partitions() before its first migrate(), or use purge_older_than"
    )]
    NotPartitioned,
    /// A pagination cursor that this library did not produce.
    #[error(
        "cursor {0:?} is not a cursor returned by AuditStore::query; start again without a cursor"
    )]
    InvalidCursor(String),
    /// Writing an export failed.
    #[error("writing the NDJSON export failed after {written} records: {cause}")]
    Export {
        /// Records written before the failure.
        written: u64,
        /// The I/O error.
        cause: std::io::Error,
    },
}

impl SqlError {
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> SqlError {
        move |cause| SqlError::Database { context, cause }
    }

    /// Whether retrying the same operation later can help (the database was unreachable or
    /// busy), as opposed to bad input or a schema problem.
    ///
    /// ```
    /// use authtel_sql::SqlError;
    /// assert!(!SqlError::InvalidCursor("x".into()).is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            SqlError::Database { cause, .. } | SqlError::Connect { cause, .. } => {
                matches!(
                    cause,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Protocol(_)
                ) || matches!(cause, sqlx::Error::Database(db) if is_transient_db_code(db.code().as_deref()))
            }
            _ => false,
        }
    }
}

/// What to check for a driver error, in words an operator can act on.
fn database_hint(cause: &sqlx::Error) -> &'static str {
    match cause {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => "check that the database is reachable",
        sqlx::Error::Database(db)
            if db.code().as_deref() == Some("42P01") || db.message().contains("no such table") =>
        {
            "the audit tables are missing: call AuditStore::migrate() at startup"
        }
        sqlx::Error::Database(_) => "the database refused the statement (see its message)",
        _ => "see the driver's message",
    }
}

fn connect_hint(backend: &str) -> &'static str {
    if backend == "SQLite" {
        "check that the directory exists and this process may write there"
    } else {
        "check that the server runs there and accepts this user (pg_hba.conf, password, sslmode)"
    }
}

/// `url` with every password in it replaced by `***`, safe for error messages and output:
/// the user-info part's (`scheme://user:password@host`) and the value of a `password` or
/// `sslpassword` query parameter (any case; libpq and sqlx accept both forms). The one
/// implementation: the facade's setup errors and the `authtel` CLI use it too.
///
/// ```
/// assert_eq!(authtel_sql::redact_url("mysql://root:pw@h/db"), "mysql://root:***@h/db");
/// assert_eq!(
///     authtel_sql::redact_url("postgres://db/app?user=ops&password=hunter2"),
///     "postgres://db/app?user=ops&password=***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://").map(|i| i + 3) {
        // Not cut at `?`: a raw `?` in a password would end the authority before its `@`.
        let authority_end = out[scheme_end..]
            .find(['/', '#'])
            .map_or(out.len(), |i| scheme_end + i);
        if let Some(at) = out[scheme_end..authority_end].rfind('@')
            && let Some(colon) = out[scheme_end..scheme_end + at].find(':')
        {
            out.replace_range(scheme_end + colon + 1..scheme_end + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let query_end = out[q..].find('#').map_or(out.len(), |i| q + i);
        let params: Vec<String> = out[q + 1..query_end]
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _))
                    if k.eq_ignore_ascii_case("password")
                        || k.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{k}=***")
                }
                _ => p.to_owned(),
            })
            .collect();
        out.replace_range(q + 1..query_end, &params.join("&"));
    }
    out
}

// PostgreSQL: serialization failure, deadlock, admin shutdown, cannot connect now;
// SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6).
fn is_transient_db_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some("40001" | "40P01" | "57P01" | "57P02" | "57P03" | "5" | "6" | "517" | "262")
    )
}

impl From<SqlError> for ForwardError {
    fn from(e: SqlError) -> ForwardError {
        let kind = if e.is_transient() {
            ErrorKind::Transient
        } else {
            ErrorKind::Permanent
        };
        match kind {
            ErrorKind::Transient => ForwardError::transient("write audit batch to SQL", e),
            ErrorKind::Permanent => ForwardError::permanent("write audit batch to SQL", e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_every_password_and_nothing_else() {
        for (url, want) in [
            (
                "postgres://app:s3cr%40t@db:5432/audit?sslmode=require",
                "postgres://app:***@db:5432/audit?sslmode=require",
            ),
            ("postgres://app@db/audit", "postgres://app@db/audit"),
            ("mysql://root:pw@h/db", "mysql://root:***@h/db"),
            ("postgres://db/a@b", "postgres://db/a@b"),
            ("not a url", "not a url"),
            ("x://u:p@", "x://u:***@"),
            (
                "postgresql://db/app?user=ops&password=hunter2",
                "postgresql://db/app?user=ops&password=***",
            ),
            (
                "postgres://u:pw@db/app?PASSWORD=x&sslpassword=y#frag",
                "postgres://u:***@db/app?PASSWORD=***&sslpassword=***#frag",
            ),
            (
                "sqlite:///var/lib/app/audit.db",
                "sqlite:///var/lib/app/audit.db",
            ),
            ("/var/lib/app/audit.db", "/var/lib/app/audit.db"),
            ("postgres://u:pa?ss@db/app", "postgres://u:***@db/app"),
            (
                "postgres://db?sslmode=disable",
                "postgres://db?sslmode=disable",
            ),
        ] {
            assert_eq!(redact_url(url), want);
        }
    }

    #[test]
    fn database_errors_print_their_cause_once() {
        let e = SqlError::Database {
            context: "insert audit event",
            cause: sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        };
        let text = e.to_string();
        assert!(text.starts_with("insert audit event failed: "), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(
            text.contains("check that the database is reachable"),
            "{text}"
        );
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.is_transient());
    }
}
