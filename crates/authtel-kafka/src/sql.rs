//! [`ProjectionSink`] for the SQL audit store (`authtel-sql`): one transaction per batch,
//! `upsert_batch_in` skipping event ids already stored, commit before the projector
//! commits its offsets.

use authtel_core::forward::ForwardError;
use authtel_sql::{AuditStore, SqlError};

#[allow(unused_imports)]
use crate::sink::{ProjectFuture, ProjectionSink};

fn store_error(records: usize, e: SqlError) -> ForwardError {
    let context = format!("store {records} projected audit records in the sql audit store");
    if e.is_transient() {
        ForwardError::transient(context, e)
    } else {
        ForwardError::permanent(context, e)
    }
}

// The store's methods exist per backend (they are generated for each `Database`), so the
// impl is written once and instantiated per enabled backend.
macro_rules! sql_sink {
    ($db:ty, $feature:literal) => {
        #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
        impl ProjectionSink for AuditStore<$db> {
            fn project<'a>(
                &'a self,
                batch: &'a [authtel_core::audit::AuditEvent],
            ) -> ProjectFuture<'a> {
                Box::pin(async move {
                    let n = batch.len();
                    let mut tx = self.begin().await.map_err(|e| store_error(n, e))?;
                    let new = self
                        .upsert_batch_in(tx.conn(), batch)
                        .await
                        .map_err(|e| store_error(n, e))?;
                    tx.commit().await.map_err(|e| store_error(n, e))?;
                    Ok(new)
                })
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sql_sink!(authtel_sql::sqlite::Sqlite, "sqlite");
#[cfg(feature = "postgres")]
sql_sink!(authtel_sql::postgres::Postgres, "postgres");
