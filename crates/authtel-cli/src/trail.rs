//! The CLI's operator actions in the audit trail: `purge --yes` and `requeue` are recorded
//! as `audit.purge` / `audit.requeue` (built by [`authtel_sql::trail`], the console's
//! definition too), with the operating-system user running the CLI as actor. Read-only
//! commands and dry runs record nothing, so they keep working on a read-only login.

use authtel_core::audit::{AuditEvent, Party};

use crate::db::{Database, with_store};
use crate::error::CliError;

/// The user running this process: `$USER` (or `$LOGNAME`) with the kernel's uid as
/// metadata, or `uid N` when neither is set. Actor type [`authtel_sql::trail::OS_USER_TYPE`].
pub(crate) fn os_user() -> (Party, Option<u32>) {
    let uid = process_uid();
    let name = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|n| !n.trim().is_empty());
    let id = match (name, uid) {
        (Some(n), _) => n,
        (None, Some(u)) => format!("uid {u}"),
        (None, None) => "unknown".to_owned(),
    };
    (Party::new(id, authtel_sql::trail::OS_USER_TYPE), uid)
}

/// An error and its causes in one line, for the reason of a failed action's record.
pub(crate) fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The real uid, from the owner of `/proc/self` (Linux); `None` elsewhere.
fn process_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Adds the uid and records `event` in its own transaction, with an outbox entry for every
/// forwarder the outbox already knows, so the operator action reaches the same
/// destinations as the application's records.
pub(crate) async fn record(
    db: &Database,
    event: AuditEvent,
    uid: Option<u32>,
) -> Result<(), CliError> {
    let refused = |e: authtel_core::audit::AuditError| {
        CliError::config(
            format!("the operator audit record was refused: {e}"),
            "this is a bug in authtel-cli: report it with this message",
        )
    };
    let event = match uid {
        Some(u) => event.with_metadata("os_uid", u).map_err(refused)?,
        None => event,
    };
    with_store!(&db.store, s => {
        let forwarders = s
            .delivery_state()
            .await
            .map_err(CliError::store("reading the outbox forwarders"))?;
        let mut b = authtel_sql::AuditStore::builder(s.pool().clone());
        if let Some(schema) = s.schema() {
            b = b.schema_of(schema)?;
        }
        for f in &forwarders {
            b = b
                .with_forwarder(&f.forwarder)
                .map_err(CliError::store("naming the outbox forwarders"))?;
        }
        let store = b.build();
        let mut tx = store
            .begin()
            .await
            .map_err(CliError::store("recording the operator action"))?;
        tx.record(&event)
            .await
            .map_err(CliError::store("recording the operator action"))?;
        tx.commit()
            .await
            .map_err(CliError::store("recording the operator action"))?;
        Ok(())
    })
}

/// `with_schema` exists on PostgreSQL builders only; a SQLite store never has a schema.
trait WithSchema: Sized {
    fn schema_of(self, schema: &str) -> Result<Self, CliError>;
}

#[cfg(feature = "sqlite")]
impl WithSchema for authtel_sql::AuditStoreBuilder<authtel_sql::sqlite::Sqlite> {
    fn schema_of(self, _: &str) -> Result<Self, CliError> {
        Ok(self)
    }
}

#[cfg(feature = "postgres")]
impl WithSchema for authtel_sql::AuditStoreBuilder<authtel_sql::postgres::Postgres> {
    fn schema_of(self, schema: &str) -> Result<Self, CliError> {
        self.with_schema(schema)
            .map_err(CliError::store("choosing the PostgreSQL schema"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_actor_is_the_os_user_marked_as_such() {
        let (party, uid) = super::os_user();
        assert_eq!(party.kind, authtel_sql::trail::OS_USER_TYPE);
        assert!(!party.id.is_empty());
        #[cfg(target_os = "linux")]
        assert!(uid.is_some(), "Linux has /proc/self");
        let _ = uid;
    }
}
