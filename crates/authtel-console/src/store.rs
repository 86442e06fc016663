//! What the console reads and changes, as one object-safe trait over the SQL store's own
//! operations: [`AuditStore`] on SQLite and PostgreSQL implements it by calling the
//! methods `authtel query`, `authtel outbox` and `authtel purge` use. The console adds no
//! query of its own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use authtel_core::audit::{AuditEvent, Timestamp};
use authtel_sql::{
    AuditQuery, AuditStore, DeadLetter, ForwarderRetries, ForwarderState, Page, PurgeReport,
    RelayStatus, SqlError,
};
use uuid::Uuid;

/// A boxed future returned by [`ConsoleStore`] methods.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SqlError>> + Send + 'a>>;

/// The store operations the console uses. Implemented for [`AuditStore`] on each enabled
/// backend; an application can implement it to serve another store (or a wrapper that adds
/// its own checks).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use authtel_console::ConsoleStore;
/// let store = authtel_sql::AuditStore::builder(authtel_sql::sqlite::connect("sqlite::memory:").await?).build();
/// store.migrate().await?;
/// let page = ConsoleStore::query(&store, &authtel_sql::AuditQuery::new()).await?;
/// assert!(page.events.is_empty());
/// assert!(store.supports_feed());
/// # Ok(()) }
/// ```
pub trait ConsoleStore: Send + Sync + fmt::Debug + 'static {
    /// One page of records ([`AuditStore::query`]).
    fn query<'a>(&'a self, q: &'a AuditQuery) -> StoreFuture<'a, Page>;
    /// Records committed after feed position `after`, with their positions
    /// (`AuditStore::feed_after`); the live stream's event ids.
    fn feed_after(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<(u64, AuditEvent)>>;
    /// The newest feed position.
    fn feed_head(&self) -> StoreFuture<'_, u64>;
    /// Whether [`feed_after`](Self::feed_after) works on this backend.
    fn supports_feed(&self) -> bool;
    /// Per-forwarder delivery state ([`AuditStore::delivery_state`]).
    fn delivery_state(&self) -> StoreFuture<'_, Vec<ForwarderState>>;
    /// Pending entries being retried, per forwarder.
    fn retrying(&self) -> StoreFuture<'_, Vec<ForwarderRetries>>;
    /// Dead letters of one forwarder, oldest first.
    fn dead_letters<'a>(
        &'a self,
        forwarder: &'a str,
        limit: u32,
    ) -> StoreFuture<'a, Vec<DeadLetter>>;
    /// Every dead entry of `forwarder` back to pending; how many moved.
    fn requeue_dead<'a>(&'a self, forwarder: &'a str) -> StoreFuture<'a, u64>;
    /// The dead entries of one record back to pending; how many moved.
    fn requeue_dead_event<'a>(
        &'a self,
        event: Uuid,
        forwarder: Option<&'a str>,
    ) -> StoreFuture<'a, u64>;
    /// Records `event` in its own transaction (the console's own audit trail of reads and
    /// operator actions).
    fn record<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, ()>;
    /// Retention purge, or only a count with `dry_run`.
    fn purge_older_than(
        &self,
        cutoff: Timestamp,
        batch: u32,
        dry_run: bool,
    ) -> StoreFuture<'_, PurgeReport>;
    /// What the running relays report per forwarder ([`AuditStore::relay_status`]): the
    /// breaker column of the outbox page. The default reports nothing (the page then says
    /// no relay has reported).
    fn relay_status(&self) -> StoreFuture<'_, Vec<RelayStatus>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The methods that call the store's operation of the same name, on either backend.
macro_rules! shared_methods {
    () => {
        fn query<'a>(&'a self, q: &'a AuditQuery) -> StoreFuture<'a, Page> {
            Box::pin(Self::query(self, q))
        }
        fn delivery_state(&self) -> StoreFuture<'_, Vec<ForwarderState>> {
            Box::pin(Self::delivery_state(self))
        }
        fn retrying(&self) -> StoreFuture<'_, Vec<ForwarderRetries>> {
            Box::pin(Self::retrying(self))
        }
        fn dead_letters<'a>(
            &'a self,
            forwarder: &'a str,
            limit: u32,
        ) -> StoreFuture<'a, Vec<DeadLetter>> {
            Box::pin(Self::dead_letters(self, forwarder, limit))
        }
        fn requeue_dead<'a>(&'a self, forwarder: &'a str) -> StoreFuture<'a, u64> {
            Box::pin(Self::requeue_dead(self, forwarder))
        }
        fn requeue_dead_event<'a>(
            &'a self,
            event: Uuid,
            forwarder: Option<&'a str>,
        ) -> StoreFuture<'a, u64> {
            Box::pin(Self::requeue_dead_event(self, event, forwarder))
        }
        fn record<'a>(&'a self, event: &'a AuditEvent) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let mut tx = self.begin().await?;
                tx.record(event).await?;
                tx.commit().await.map(|_| ())
            })
        }
        fn purge_older_than(
            &self,
            cutoff: Timestamp,
            batch: u32,
            dry_run: bool,
        ) -> StoreFuture<'_, PurgeReport> {
            Box::pin(Self::purge_older_than(self, cutoff, batch, dry_run))
        }
        fn relay_status(&self) -> StoreFuture<'_, Vec<RelayStatus>> {
            Box::pin(Self::relay_status(self))
        }
    };
}

#[cfg(feature = "sqlite")]
impl ConsoleStore for AuditStore<authtel_sql::sqlite::Sqlite> {
    shared_methods!();

    fn feed_after(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<(u64, AuditEvent)>> {
        Box::pin(Self::feed_after(self, after, limit))
    }
    fn feed_head(&self) -> StoreFuture<'_, u64> {
        Box::pin(Self::feed_head(self))
    }
    fn supports_feed(&self) -> bool {
        true
    }
}

/// PostgreSQL stamps feed positions on records of finished transactions (see
/// `AuditStore::feed_after`), so the live stream resumes without gaps there too.
#[cfg(feature = "postgres")]
impl ConsoleStore for AuditStore<authtel_sql::postgres::Postgres> {
    shared_methods!();

    fn feed_after(&self, after: u64, limit: u32) -> StoreFuture<'_, Vec<(u64, AuditEvent)>> {
        Box::pin(Self::feed_after(self, after, limit))
    }
    fn feed_head(&self) -> StoreFuture<'_, u64> {
        Box::pin(Self::feed_head(self))
    }
    fn supports_feed(&self) -> bool {
        true
    }
}
