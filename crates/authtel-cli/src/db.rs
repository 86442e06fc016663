//! Opening the audit store named by `--database-url`: which backend, the URL with its
//! password redacted for messages, and the store itself.

use authtel_sql::AuditStore;

use crate::error::CliError;

/// The store on whichever backend the URL names. Use [`with_store!`] to call the (identical)
/// operations of either.
#[derive(Debug, Clone)]
pub(crate) enum Store {
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(AuditStore<authtel_sql::sqlite::Sqlite>),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(AuditStore<authtel_sql::postgres::Postgres>),
}

/// Runs `$body` with `$s` bound to the backend's `AuditStore`.
macro_rules! with_store {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            #[cfg(feature = "sqlite")]
            $crate::db::Store::Sqlite($s) => $body,
            #[cfg(feature = "postgres")]
            $crate::db::Store::Postgres($s) => $body,
        }
    };
}
pub(crate) use with_store;

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// `sqlite:` URLs and plain paths.
    Sqlite,
    /// `postgres://` and `postgresql://` URLs.
    Postgres,
}

impl Backend {
    /// The backend of `url`.
    pub(crate) fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// `url` with its passwords replaced by `***`, safe to print: the SQL crate's one
/// implementation ([`authtel_sql::redact_url`]).
pub(crate) use authtel_sql::redact_url as redact;

/// The file a SQLite URL or path names, unless it is an in-memory database.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:") && !url.contains("mode=memory")).then_some(path)
}

/// An opened store.
#[derive(Debug)]
pub(crate) struct Database {
    /// The store.
    pub(crate) store: Store,
}

/// A monthly partition a purge can drop whole (PostgreSQL), as listed before the drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    /// `audit_events_pYYYYMM`.
    pub(crate) name: String,
    /// The month's first instant.
    pub(crate) from: authtel_core::audit::Timestamp,
    /// The next month's first instant.
    pub(crate) until: authtel_core::audit::Timestamp,
    /// Its rows when listed.
    pub(crate) rows: u64,
    /// Outbox entries of its records still pending delivery (then it is never dropped).
    pub(crate) pending: u64,
}

/// What dropping one partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    /// Gone, with its rows.
    Yes,
    /// Kept: this many of its records became pending delivery since it was listed.
    KeptPending(u64),
    /// Someone else dropped it meanwhile.
    Missing,
}

/// Opens the store `url` names (without migrating: the CLI never changes the schema).
pub(crate) async fn open(url: &str, schema: Option<&str>) -> Result<Database, CliError> {
    let store = match Backend::of(url) {
        Backend::Sqlite => open_sqlite(url, schema).await?,
        Backend::Postgres => open_postgres(url, schema).await?,
    };
    Ok(Database { store })
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str, schema: Option<&str>) -> Result<Store, CliError> {
    if schema.is_some() {
        return Err(CliError::config(
            "--schema applies only to PostgreSQL, but the database URL names a SQLite file",
            "leave out --schema (and AUTHTEL_SCHEMA) for SQLite",
        ));
    }
    if let Some(path) = sqlite_path(url)
        && !std::path::Path::new(path).exists()
    {
        return Err(CliError::config(
            format!("there is no SQLite database at {path}"),
            "check the path: authtel reads an existing audit store and never creates one \
             (the application's AuditStore::migrate() does)",
        ));
    }
    let pool = authtel_sql::sqlite::connect(url)
        .await
        .map_err(CliError::store("opening the SQLite audit store"))?;
    Ok(Store::Sqlite(AuditStore::builder(pool).build()))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_: &str, _: Option<&str>) -> Result<Store, CliError> {
    let _ = sqlite_path;
    Err(CliError::config(
        "this authtel was built without SQLite support, and the database URL is not a postgres:// URL",
        "use a postgres:// URL, or rebuild with `cargo install authtel-cli --features sqlite`",
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, schema: Option<&str>) -> Result<Store, CliError> {
    let pool = authtel_sql::postgres::connect(url)
        .await
        .map_err(CliError::store("connecting to PostgreSQL"))?;
    let mut builder = AuditStore::builder(pool.clone());
    if let Some(s) = schema {
        builder = builder
            .with_schema(s)
            .map_err(CliError::store("choosing the PostgreSQL schema"))?;
    }
    let store = builder.build();
    // A store the application built with monthly partitions: purge drops whole months.
    let partitioned = store
        .events_table_is_partitioned()
        .await
        .map_err(CliError::store("inspecting the audit table"))?;
    if !partitioned {
        return Ok(Store::Postgres(store));
    }
    let mut builder = AuditStore::builder(pool).with_monthly_partitions();
    if let Some(s) = schema {
        builder = builder
            .with_schema(s)
            .map_err(CliError::store("choosing the PostgreSQL schema"))?;
    }
    Ok(Store::Postgres(builder.build()))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str, _: Option<&str>) -> Result<Store, CliError> {
    Err(CliError::config(
        "this authtel was built without PostgreSQL support",
        "rebuild with `cargo install authtel-cli --features postgres`",
    ))
}

impl Database {
    /// Fails with a clear message unless the audit tables exist and are current.
    pub(crate) async fn require_schema(&self) -> Result<(), CliError> {
        with_store!(&self.store, s => s.check_schema().await)
            .map_err(CliError::store("checking the audit schema"))
    }

    /// Whether the audit table is partitioned by month (PostgreSQL only).
    pub(crate) fn partitioned(&self) -> bool {
        match &self.store {
            #[cfg(feature = "sqlite")]
            Store::Sqlite(_) => false,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.monthly_partitions(),
        }
    }

    /// The monthly partitions wholly before `cutoff`, oldest first; empty unless the store
    /// is partitioned.
    pub(crate) async fn partitions_older_than(
        &self,
        cutoff: authtel_core::audit::Timestamp,
    ) -> Result<Vec<Partition>, CliError> {
        match &self.store {
            #[cfg(feature = "postgres")]
            Store::Postgres(s) if self.partitioned() => Ok(s
                .partitions_older_than(cutoff)
                .await
                .map_err(CliError::store("listing the monthly partitions to purge"))?
                .into_iter()
                .map(|p| Partition {
                    name: p.name,
                    from: p.from,
                    until: p.until,
                    rows: p.rows,
                    pending: p.pending,
                })
                .collect()),
            _ => {
                let _ = cutoff;
                Ok(Vec::new())
            }
        }
    }

    /// Drops one monthly partition unless records in it are pending delivery.
    pub(crate) async fn drop_partition(&self, name: &str) -> Result<Dropped, CliError> {
        match &self.store {
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => {
                use authtel_sql::postgres::PartitionDrop;
                Ok(
                    match s
                        .drop_partition(name)
                        .await
                        .map_err(CliError::store("dropping a monthly partition"))?
                    {
                        PartitionDrop::Dropped => Dropped::Yes,
                        PartitionDrop::KeptPending(n) => Dropped::KeptPending(n),
                        PartitionDrop::Missing => Dropped::Missing,
                    },
                )
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = name;
                Ok(Dropped::Missing)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redact("postgres://ops:s3cr%40t@db.internal:5432/app?sslmode=require"),
            "postgres://ops:***@db.internal:5432/app?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://db/app?user=ops&password=hunter2"),
            "postgresql://db/app?user=ops&password=***"
        );
        assert_eq!(redact("postgres://ops@db/app"), "postgres://ops@db/app");
        assert_eq!(redact("/var/lib/app/audit.db"), "/var/lib/app/audit.db");
    }

    #[test]
    fn urls_pick_their_backend() {
        assert_eq!(Backend::of("postgres://db/app"), Backend::Postgres);
        assert_eq!(Backend::of("postgresql://db/app"), Backend::Postgres);
        assert_eq!(Backend::of("sqlite:audit.db"), Backend::Sqlite);
        assert_eq!(Backend::of("/tmp/audit.db"), Backend::Sqlite);
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_path("sqlite:///tmp/a.db?mode=rw"), Some("/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite:a.db"), Some("a.db"));
        assert_eq!(sqlite_path("/tmp/a.db"), Some("/tmp/a.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
