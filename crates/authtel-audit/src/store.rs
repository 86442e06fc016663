//! [`RecentAuditStore`]: a bounded, indexed, in-memory window onto the newest audit
//! records, and its insert path.
//!
//! One `std::sync::Mutex` guards the queue and the indexes ([`Inner`]). An insert sizes
//! the record, hashes its keys and allocates its `Arc` before taking the lock, and drops
//! any record it evicted after releasing it, so two writers share only the few table
//! probes and counter updates of `Inner::push` and `Inner::make_room`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp, is_audited};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use crate::access::{AccessDenied, AccessPolicy, Reader};
use crate::cleanup::CleanupGuard;
use crate::estimate::record_bytes;
use crate::index::{KeyHasher, NameCounts};
use crate::inner::{Chain, Evicted, Inner, KeyHashes, outcome_slot};
use crate::settings::{InsertError, Inserted, OTHER, SettingsError, StoreSettings, StoreStats};

/// Retention is checked once per this many inserts (and on every [`RecentAuditStore::cleanup`]),
/// so the hot path reads the clock rarely.
const CLEANUP_EVERY: u32 = 64;

/// What every handle of one store shares.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) hasher: KeyHasher,
    pub(crate) enabled: AtomicBool,
    pub(crate) policy: Box<dyn AccessPolicy>,
    pub(crate) dropped_disabled: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) inner: Mutex<Inner>,
}

/// A bounded in-memory store of recent audit records, queried newest first.
///
/// Cloning gives another handle to the same store: attach one clone as a [`Handler`]
/// (it converts audited events with [`AuditEvent::from_record`] and ignores span starts)
/// and keep another to query. Queries name a [`Reader`] that the store's
/// [`AccessPolicy`] must allow (by default: readers with the `admin` role).
///
/// ```
/// use authtel_audit::{Reader, RecentAuditStore};
/// use authtel_core::authorization::{log_denied, DenyReason, Operation};
/// use authtel_core::registry::{Registry, Selection};
///
/// let store = RecentAuditStore::new("authz").unwrap();
/// let registry = Registry::new();
/// registry.attach("recent-audit", Selection::All, store.clone()).unwrap();
/// let _scope = registry.enter();
///
/// log_denied(Operation::Publish, "svc_reports", "payroll.updates", DenyReason::Unauthorized);
///
/// let admin = Reader::new("ops").with_role("admin");
/// let denied = store.by_actor(&admin, "svc_reports", 10).unwrap();
/// assert_eq!(denied[0].reason(), Some("unauthorized"));
/// assert!(store.recent(&Reader::new("guest"), 10).is_err());
/// ```
#[derive(Clone)]
pub struct RecentAuditStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for RecentAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentAuditStore")
            .field("name", &self.shared.name)
            .field("enabled", &self.is_enabled())
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

impl RecentAuditStore {
    pub(crate) fn from_shared(shared: Arc<Shared>) -> RecentAuditStore {
        RecentAuditStore { shared }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether two handles refer to the same store.
    pub fn same_store(&self, other: &RecentAuditStore) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queue and indexes half-updated in
        // a way queries trip over (every get is checked), so keep serving.
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a record (screened and bounded by core's policy when it was made), evicting
    /// the oldest records as the bounds require.
    ///
    /// ```
    /// use authtel_audit::{Inserted, RecentAuditStore};
    /// use authtel_core::{audit::AuditEvent, outcome::Outcome};
    /// let store = RecentAuditStore::new("app").unwrap();
    /// let event = AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).unwrap();
    /// assert_eq!(store.insert(event).unwrap(), Inserted::Stored);
    /// ```
    pub fn insert(&self, event: AuditEvent) -> Result<Inserted, InsertError> {
        if !self.is_enabled() {
            self.shared.dropped_disabled.fetch_add(1, Ordering::Relaxed);
            return Ok(Inserted::Disabled);
        }
        self.store(event)
    }

    /// Stores a record: everything that needs no lock first, then `store_entry`.
    fn store(&self, event: AuditEvent) -> Result<Inserted, InsertError> {
        let bytes = record_bytes(&event);
        let hasher = &self.shared.hasher;
        let hashes = KeyHashes {
            actor: event.actor().map(|a| hasher.hash(&a.id)),
            resource: event.resource().map(|r| hasher.hash(r)),
            action: hasher.hash_name(event.action()),
            operation: event.operation().map(|o| hasher.hash_name(o)),
        };
        let mut evicted = Evicted::default();
        let result = self.store_entry(Arc::new(event), bytes, hashes, &mut evicted);
        drop(evicted);
        result
    }

    fn store_entry(
        &self,
        event: Arc<AuditEvent>,
        bytes: usize,
        hashes: KeyHashes,
        evicted: &mut Evicted,
    ) -> Result<Inserted, InsertError> {
        let mut inner = self.lock();
        if bytes > inner.settings.max_bytes {
            let max = inner.settings.max_bytes;
            drop(inner);
            self.shared.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(InsertError::TooLarge {
                store: self.shared.name.clone(),
                bytes,
                max,
            });
        }
        inner.inserts_since_cleanup += 1;
        if inner.inserts_since_cleanup >= CLEANUP_EVERY {
            inner.cleanup(Timestamp::now(), evicted);
        }
        if inner.cutoff.is_some_and(|c| event.occurred_at() < c) {
            inner.evictions.retention += 1;
            drop(inner);
            evicted.keep(event);
            return Ok(Inserted::Expired);
        }
        inner.make_room(1, bytes, evicted);
        inner.push(event, bytes, hashes);
        Ok(Inserted::Stored)
    }

    /// Removes records older than the retention window; returns how many. Inserts also do
    /// this every few dozen records; [`RecentAuditStore::spawn_cleanup`] does it on a timer.
    ///
    /// ```
    /// let store = authtel_audit::RecentAuditStore::new("s").unwrap();
    /// assert_eq!(store.cleanup(), 0);
    /// ```
    pub fn cleanup(&self) -> usize {
        let mut evicted = Evicted::default();
        let removed = self.lock().cleanup(Timestamp::now(), &mut evicted);
        drop(evicted);
        removed
    }

    /// Starts storing again.
    pub fn enable(&self) {
        self.shared.enabled.store(true, Ordering::Relaxed);
    }

    /// Stops storing; events keep flowing to other handlers, and records that would have
    /// been stored are counted in `dropped_disabled`. Stored records stay queryable.
    ///
    /// ```
    /// use authtel_audit::{Inserted, RecentAuditStore};
    /// use authtel_core::{audit::AuditEvent, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// store.disable();
    /// let e = AuditEvent::new("security.lockout", Outcome::Failure).unwrap();
    /// assert_eq!(store.insert(e).unwrap(), Inserted::Disabled);
    /// assert_eq!(store.stats().dropped_disabled, 1);
    /// ```
    pub fn disable(&self) {
        self.shared.enabled.store(false, Ordering::Relaxed);
    }

    /// Whether storage is enabled.
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled.load(Ordering::Relaxed)
    }

    /// Removes every record (counted as `cleared` evictions); totals are kept.
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// store.clear();
    /// assert_eq!(store.stats().entries, 0);
    /// assert_eq!(store.stats().stored_total, 1);
    /// ```
    pub fn clear(&self) {
        let mut inner = self.lock();
        let records = inner.clear();
        drop(inner);
        drop(records);
    }

    /// The current bounds.
    pub fn settings(&self) -> StoreSettings {
        self.lock().settings
    }

    /// Changes all bounds; evicts at once if they shrank.
    ///
    /// ```
    /// use authtel_audit::{RecentAuditStore, SettingsError, StoreSettings};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let bad = StoreSettings { max_entries: 0, ..store.settings() };
    /// assert_eq!(store.set_settings(bad), Err(SettingsError::Zero("max_entries")));
    /// ```
    pub fn set_settings(&self, settings: StoreSettings) -> Result<(), SettingsError> {
        settings.check()?;
        let mut evicted = Evicted::default();
        let mut inner = self.lock();
        inner.settings = settings;
        inner.make_room(0, 0, &mut evicted);
        inner.cleanup(Timestamp::now(), &mut evicted);
        drop(inner);
        drop(evicted);
        Ok(())
    }

    /// Changes `max_entries`.
    pub fn set_max_entries(&self, max_entries: usize) -> Result<(), SettingsError> {
        self.set_settings(StoreSettings {
            max_entries,
            ..self.settings()
        })
    }

    /// Changes `max_bytes`.
    pub fn set_max_bytes(&self, max_bytes: usize) -> Result<(), SettingsError> {
        self.set_settings(StoreSettings {
            max_bytes,
            ..self.settings()
        })
    }

    /// Changes the retention, in seconds.
    ///
    /// ```
    /// let store = authtel_audit::RecentAuditStore::new("s").unwrap();
    /// store.set_retention(60).unwrap();
    /// assert_eq!(store.settings().retention.as_secs(), 60);
    /// assert!(store.set_retention(0).is_err());
    /// ```
    pub fn set_retention(&self, seconds: u64) -> Result<(), SettingsError> {
        self.set_settings(StoreSettings {
            retention: Duration::from_secs(seconds),
            ..self.settings()
        })
    }

    /// The store's statistics (aggregates only: no reader needed).
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// let stats = store.stats();
    /// assert_eq!(stats.entries, 1);
    /// assert_eq!(stats.by_outcome[&Outcome::Denied], 1);
    /// assert_eq!(stats.by_action["authorization.denied"], 1);
    /// ```
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        let by_outcome = Outcome::ALL
            .into_iter()
            .map(|o| (o, inner.totals.by_outcome[outcome_slot(o)]))
            .collect();
        let sorted = |m: &NameCounts| m.iter(OTHER).map(|(k, v)| (k.to_owned(), v)).collect();
        StoreStats {
            name: self.shared.name.clone(),
            enabled: self.is_enabled(),
            entries: inner.len(),
            estimated_bytes: inner.bytes,
            distinct_actors: inner.by_actor.len(),
            distinct_resources: inner.by_resource.len(),
            distinct_actions: inner.by_action.len(),
            oldest: inner.oldest(),
            stored_total: inner.totals.stored,
            by_outcome,
            by_operation: sorted(&inner.totals.by_operation),
            by_action: sorted(&inner.totals.by_action),
            evictions: inner.evictions,
            dropped_disabled: self.shared.dropped_disabled.load(Ordering::Relaxed),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
        }
    }

    fn read<T>(&self, reader: &Reader, query: impl FnOnce(&Inner) -> T) -> Result<T, AccessDenied> {
        self.shared.policy.check(reader)?;
        Ok(query(&self.lock()))
    }

    /// The newest `n` records, newest first.
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// assert_eq!(store.recent(&admin, 10).unwrap().len(), 1);
    /// ```
    pub fn recent(&self, reader: &Reader, n: usize) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        self.read(reader, |inner| {
            inner.newest_first().take(n).cloned().collect()
        })
    }

    /// The newest `limit` records whose actor id is `actor_id` (a user or a caller),
    /// newest first. Uses an index: cost grows with `limit`, not with the store.
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// assert_eq!(store.by_actor(&admin, "svc_a", 10).unwrap()[0].action(), "authorization.denied");
    /// assert!(store.by_actor(&admin, "svc_b", 10).unwrap().is_empty());
    /// ```
    pub fn by_actor(
        &self,
        reader: &Reader,
        actor_id: &str,
        limit: usize,
    ) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        let hash = self.shared.hasher.hash(actor_id);
        self.read(reader, |inner| {
            inner.walk(Chain::Actor, inner.by_actor.newest(actor_id, hash), limit)
        })
    }

    /// The newest `limit` records about `resource`, newest first (indexed).
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// assert_eq!(store.by_resource(&admin, "grid.prices", 10).unwrap().len(), 1);
    /// ```
    pub fn by_resource(
        &self,
        reader: &Reader,
        resource: &str,
        limit: usize,
    ) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        let hash = self.shared.hasher.hash(resource);
        self.read(reader, |inner| {
            inner.walk(
                Chain::Resource,
                inner.by_resource.newest(resource, hash),
                limit,
            )
        })
    }

    /// The newest `limit` records of `action` (`authorization.denied`), newest first
    /// (indexed).
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// assert_eq!(store.by_action(&admin, "authorization.denied", 10).unwrap().len(), 1);
    /// ```
    pub fn by_action(
        &self,
        reader: &Reader,
        action: &str,
        limit: usize,
    ) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        let hash = self.shared.hasher.hash_name(action);
        self.read(reader, |inner| {
            inner.walk(Chain::Action, inner.by_action.newest(action, hash), limit)
        })
    }

    /// The newest `limit` records with `outcome`, newest first (indexed).
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// assert_eq!(store.by_outcome(&admin, Outcome::Denied, 10).unwrap().len(), 1);
    /// assert!(store.by_outcome(&admin, Outcome::Success, 10).unwrap().is_empty());
    /// ```
    pub fn by_outcome(
        &self,
        reader: &Reader,
        outcome: Outcome,
        limit: usize,
    ) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        self.read(reader, |inner| {
            inner.walk(Chain::Outcome, inner.newest_with_outcome(outcome), limit)
        })
    }

    /// The newest `limit` records whose `occurred_at` lies in `from..=to`, newest first in
    /// store order. Scans the store (records may arrive out of time order); meant for
    /// occasional operator queries.
    ///
    /// ```
    /// # use authtel_audit::{Reader, RecentAuditStore};
    /// # use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let store = RecentAuditStore::new("s").unwrap();
    /// let mut e = AuditEvent::new("authorization.denied", Outcome::Denied).unwrap();
    /// e = e.with_actor(Party::new("svc_a", "caller"));
    /// e = e.with_resource("grid.prices");
    /// store.insert(e).unwrap();
    /// let admin = Reader::new("ops").with_role("admin");
    /// use authtel_core::audit::Timestamp;
    /// let last_hour = Timestamp::from_unix_micros(Timestamp::now().unix_micros() - 3_600_000_000);
    /// assert_eq!(store.between(&admin, last_hour, Timestamp::now(), 10).unwrap().len(), 1);
    /// ```
    pub fn between(
        &self,
        reader: &Reader,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Arc<AuditEvent>>, AccessDenied> {
        self.read(reader, |inner| {
            inner
                .newest_first()
                .filter(|e| (from..=to).contains(&e.occurred_at()))
                .take(limit)
                .cloned()
                .collect()
        })
    }

    /// Runs [`cleanup`](RecentAuditStore::cleanup) every `every` on a background thread
    /// (no async runtime needed) until the returned guard is stopped or dropped, or the
    /// store is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = authtel_audit::RecentAuditStore::new("s").unwrap();
    /// let cleaner = store.spawn_cleanup(Duration::from_secs(30)).unwrap();
    /// cleaner.stop();
    /// ```
    pub fn spawn_cleanup(&self, every: Duration) -> std::io::Result<CleanupGuard> {
        let weak = Arc::downgrade(&self.shared);
        CleanupGuard::spawn(&self.shared.name, every, move || {
            weak.upgrade()
                .map(|shared| RecentAuditStore { shared }.cleanup())
                .is_some()
        })
    }
}

impl Handler for RecentAuditStore {
    fn handle(&self, record: &EventRecord<'_>) {
        if !is_audited(record.event) {
            return;
        }
        if !self.is_enabled() {
            self.shared.dropped_disabled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // Records built from events are already screened and bounded by the metadata
        // policy; the outcome of storing them (including a refusal) is counted.
        if let Some(event) = AuditEvent::from_record(record) {
            let _ = self.store(event);
        }
    }
}
