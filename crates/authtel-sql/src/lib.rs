//! authtel-sql: the SQL audit trail for authtel, on sqlx — SQLite (default) and PostgreSQL.
//!
//! The audit row is the source of truth, so it is written in the same database transaction
//! as the auth change it describes: a rolled-back login leaves no row, a committed one
//! always has one. Forwarding to other sinks goes through a transactional outbox: the row
//! and one pending-delivery entry per forwarder commit together, and a [`Relay`] delivers
//! them afterwards — at least once, deduplicated by event id, with retries, dead letters and
//! a per-forwarder state an operator can query. A crash between commit and delivery loses
//! nothing.
//!
//! - [`AuditStore`]: `migrate()`, `record_in(&mut tx, &event)`, `begin()` → [`AuditTx`],
//!   `upsert_batch_in`, queries with keyset pagination ([`AuditQuery`], [`Cursor`]), NDJSON
//!   export, detection queries ([`detect`]), retention (`purge_older_than`; monthly partitions
//!   on PostgreSQL), delivery state, dead letters and health.
//! - [`Relay`]: the outbox relay (a tokio task).
//! - [`BatchWriter`]: a [`Forwarder`](authtel_core::forward::Forwarder) for records not tied to
//!   a transaction.
//!
//! Every record is validated and scrubbed on the way in: values under secret-looking
//! metadata keys and credential-looking text (JWTs, `Bearer …`) are stored as `[REDACTED]`;
//! NUL bytes and oversized fields are refused with [`SqlError::InvalidEvent`].
//!
//! # In applications
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use authtel_core::{audit::AuditEvent, Outcome};
//! use authtel_sql::{AuditStore, sqlite};
//! let store = AuditStore::builder(sqlite::connect("sqlite::memory:").await?).build();
//! store.migrate().await?;
//! let mut tx = store.begin().await?;
//! // ... the application's own statements on tx.conn() ...
//! tx.record(&AuditEvent::new("auth.login.stop", Outcome::Success).unwrap()).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//! - `sqlite` (default): the SQLite backend, [`sqlite`], with a bundled libsqlite3.
//! - `postgres`: the PostgreSQL backend, [`postgres`].
//! - `postgres-tls`: TLS to PostgreSQL (`sslmode=require`, `verify-ca`, `verify-full`) with
//!   rustls (ring provider, webpki roots). Without it such a URL is
//!   [`SqlError::InvalidUrl`] naming this feature.
//!
//! See `docs/sql.md` for the schema, the outbox design and operator queries.
//!
//! # Supported Rust versions
//! 1.94 and newer (sqlx 0.9).

// Without a backend feature the crate has types but no operations; keep that build (used by
// feature-matrix checks) free of dead-code noise.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_imports)
)]

mod backend;
mod batch;
pub mod detect;
mod error;
mod operator;
mod outbox;
mod query;
mod relay;
mod relay_status;
mod row;
mod store;
pub mod trail;
mod tx;

/// The relay's retry schedule is the pipeline's: one policy type for every delivery.
pub use authtel_pipeline::{BreakerConfig, BreakerState, RetryPolicy};
pub use batch::{BatchOutcome, BatchWriter, RefusedRecord};
pub use error::{SqlError, redact_url};
pub use operator::ForwarderRetries;
pub use outbox::{DeadLetter, ForwarderState, Health, PurgeReport, RelayPass};
pub use query::{AuditQuery, Cursor, MAX_PAGE, Page};
pub use relay::{Relay, RelayConfig, RelayHandle, RelayStats};
pub use relay_status::{RelayReading, RelayStatus, breaker_name};
pub use row::{MAX_METADATA_BYTES, MAX_TEXT_BYTES};
pub use store::{AuditStore, AuditStoreBuilder};
pub use trail::{LastPurge, PurgeAction};
pub use tx::AuditTx;

/// The SQLite backend: [`connect`](sqlite::connect) and the `sqlx` types.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite {
    pub use crate::backend::sqlite::connect;
    pub use sqlx::{Sqlite, SqlitePool};
}

/// The PostgreSQL backend: [`connect`](postgres::connect) and the `sqlx` types.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres {
    pub use crate::backend::postgres::{MonthlyPartition, PartitionDrop, connect};
    pub use sqlx::{PgPool, Postgres};
}

/// The sqlx version this crate is built on, re-exported so callers use matching types.
pub use sqlx;
