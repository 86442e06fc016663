//! Why a command failed and how it ends: the exit codes and the 3 a.m. error report
//! (what failed, against which database, the cause, what to do).

use std::fmt::Write as _;
use std::process::ExitCode;

use authtel_sql::SqlError;

/// Exit code: success.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit code: usage or configuration error, or a failed database operation.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code reserved for a tamper finding (the future `verify` command); nothing returns it yet.
#[allow(dead_code)]
pub(crate) const EXIT_TAMPER: u8 = 2;
/// Exit code: outbox lag over the `doctor --max-lag` threshold.
pub(crate) const EXIT_LAG: u8 = 3;

/// How a command that ran to the end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Everything as expected.
    Ok,
    /// `doctor --max-lag`: some forwarder lags more than allowed.
    LagOverThreshold,
}

impl Finished {
    /// The process exit code.
    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(match self {
            Finished::Ok => EXIT_OK,
            Finished::LagOverThreshold => EXIT_LAG,
        })
    }
}

/// Why a command could not do its work. Every variant exits with [`EXIT_FAILED`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line or environment does not say what is needed.
    #[error("{problem}")]
    Config {
        /// What is wrong, with the value.
        problem: String,
        /// What to do about it.
        hint: String,
    },
    /// A store operation failed.
    #[error("{doing} failed")]
    Store {
        /// What the command was doing.
        doing: &'static str,
        /// The store's error.
        #[source]
        source: SqlError,
    },
    /// An operator action was done but its audit record could not be written.
    #[error("{done}, but recording it in the audit trail failed")]
    Unrecorded {
        /// What was done.
        done: &'static str,
        /// Why recording failed.
        #[source]
        source: Box<CliError>,
    },
    /// Writing the output failed.
    #[error("{doing} failed")]
    Io {
        /// What was being written, and where.
        doing: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// A configuration error.
    pub(crate) fn config(problem: impl Into<String>, hint: impl Into<String>) -> CliError {
        CliError::Config {
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    /// Wraps a store error with what the command was doing.
    pub(crate) fn store(doing: &'static str) -> impl FnOnce(SqlError) -> CliError {
        move |source| CliError::Store { doing, source }
    }

    /// This error, after `done` had already happened (the action is not undone).
    pub(crate) fn after(self, done: &'static str) -> CliError {
        CliError::Unrecorded {
            done,
            source: Box::new(self),
        }
    }

    /// What an operator should do next.
    fn hint(&self) -> String {
        match self {
            CliError::Unrecorded { source, .. } => format!(
                "the action is not undone; {} — then note the action in your change log,                  since the trail lacks its record",
                source.hint()
            ),
            CliError::Config { hint, .. } => hint.clone(),
            CliError::Io { .. } => {
                "check that the output path is writable and the disk is not full".to_owned()
            }
            CliError::Store { source, .. } => match source {
                SqlError::SchemaOutdated { .. } => "the application creates and upgrades the \
                    tables with AuditStore::migrate() at startup: start it once against this \
                    database, or check that --database-url (and --schema) name the right one"
                    .to_owned(),
                SqlError::InvalidCursor(_) => "start again without --after".to_owned(),
                SqlError::CorruptRow { .. } => {
                    "inspect the row with a SQL client; other rows are unaffected".to_owned()
                }
                e if e.is_transient() => "check that the database is running and reachable \
                    from here (host, port, firewall), then retry"
                    .to_owned(),
                _ => "check the credentials, the database name and that the audit tables \
                    exist (`authtel doctor` shows what it can reach)"
                    .to_owned(),
            },
        }
    }

    /// The full report: what failed, the database (password redacted), the cause and what
    /// to do.
    pub(crate) fn report(&self, database: Option<&str>) -> String {
        let mut out = format!("authtel: error: {self}\n");
        if let Some(db) = database {
            let _ = writeln!(out, "  database:   {db}");
        }
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let _ = writeln!(out, "  cause:      {cause}");
            source = cause.source();
        }
        let _ = writeln!(out, "  what to do: {}", self.hint());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_names_the_failure_the_database_the_cause_and_the_remedy() {
        let e = CliError::store("reading the audit trail")(SqlError::SchemaOutdated {
            found: 0,
            expected: 1,
        });
        let text = e.report(Some("postgres://ops:***@db:5432/app"));
        assert!(text.starts_with("authtel: error: reading the audit trail failed\n"));
        assert!(text.contains("database:   postgres://ops:***@db:5432/app"));
        assert!(text.contains("cause:      the audit schema is at migration 0"));
        assert!(text.contains("what to do: the application creates"));
    }
}
