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
    #[error("{context} failed; check that the database is reachable and migrate() has run")]
    Database {
        /// What was being done.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Running the migrations failed.
    #[error(
        "running the authtel-sql migrations failed; see the cause and fix the schema by hand if a migration was modified"
    )]
    Migrate(#[source] sqlx::migrate::MigrateError),
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
    #[error("writing the NDJSON export failed after {written} records")]
    Export {
        /// Records written before the failure.
        written: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl SqlError {
    pub(crate) fn db(context: &'static str) -> impl FnOnce(sqlx::Error) -> SqlError {
        move |source| SqlError::Database { context, source }
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
            SqlError::Database { source, .. } => {
                matches!(
                    source,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Protocol(_)
                ) || matches!(source, sqlx::Error::Database(db) if is_transient_db_code(db.code().as_deref()))
            }
            _ => false,
        }
    }
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
