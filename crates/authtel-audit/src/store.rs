//! The recent-audit store: a bounded, indexed, in-memory window onto the newest audit
//! records.
//!
//! Records are kept oldest to newest in one queue, each with a sequence number one above
//! its predecessor, so a sequence number finds its record by subtraction. Records leave only
//! from the oldest end — when `max_entries` or `max_bytes` would be exceeded, or when they
//! fall out of the retention window — and every departure is counted by reason.
//! One `std::sync::Mutex` guards the queue and the indexes: an insert holds it for a few
//! hash-map operations, and the benchmark shows that meets the two-writer target.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use authtel_core::audit::{AuditEvent, Timestamp, is_audited};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::EventRecord;

use crate::access::{AccessDenied, AccessPolicy, Reader, RequireRole};
use crate::cleanup::CleanupGuard;
use crate::estimate::record_bytes;
use crate::index::{KeyHasher, KeyIndex, NameCounts, OutcomeIndex};

/// Retention is checked once per this many inserts (and on every [`RecentAuditStore::cleanup`]),
/// so the hot path reads the clock rarely.
const CLEANUP_EVERY: u32 = 64;
/// Distinct operation and action names counted in the statistics; further names are
/// counted under [`OTHER`], so an application cannot grow the statistics without bound.
const MAX_DISTINCT_TOTALS: usize = 256;
/// The statistics key under which names beyond the first 256 distinct ones are counted.
pub const OTHER: &str = "(other)";
/// Longest store name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// A store's bounds. All are changeable at runtime; shrinking one evicts at once.
///
/// ```
/// use authtel_audit::StoreSettings;
/// let s = StoreSettings::default();
/// assert_eq!(s.max_entries, 10_000);
/// assert_eq!(s.retention.as_secs(), 3600);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    /// Most records kept.
    pub max_entries: usize,
    /// Most estimated bytes kept (records and their index entries).
    pub max_bytes: usize,
    /// How long a record is kept, counted from its `occurred_at`; whole seconds.
    pub retention: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            max_entries: 10_000,
            max_bytes: 16 * 1024 * 1024,
            retention: Duration::from_secs(3600),
        }
    }
}

impl StoreSettings {
    fn check(&self) -> Result<(), SettingsError> {
        if self.max_entries == 0 {
            return Err(SettingsError::Zero("max_entries"));
        }
        if self.max_bytes == 0 {
            return Err(SettingsError::Zero("max_bytes"));
        }
        if self.retention.as_secs() == 0 {
            return Err(SettingsError::Zero("retention (seconds)"));
        }
        Ok(())
    }
}

/// A store setting or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A bound was zero.
    #[error("store setting {0} must be at least 1, got 0: use disable() to stop storing")]
    Zero(&'static str),
    /// A store name was empty or too long.
    #[error(
        "store name {0:?} is invalid: use 1 to {MAX_NAME_LEN} bytes, e.g. \"authz\" or \"admin-actions\""
    )]
    InvalidName(String),
}

/// A record was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The record alone is larger than the store's `max_bytes`.
    #[error(
        "audit record of an estimated {bytes} bytes is larger than store {store:?}'s whole max_bytes of {max}: raise max_bytes or shrink the record's metadata"
    )]
    TooLarge {
        /// The store's name.
        store: String,
        /// The record's estimated size.
        bytes: usize,
        /// The store's `max_bytes`.
        max: usize,
    },
}

/// What [`RecentAuditStore::insert`] did with a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// It is stored.
    Stored,
    /// Storage is disabled; the record was counted in `dropped_disabled`.
    Disabled,
    /// It was already older than the retention window; counted as a retention eviction.
    Expired,
}

/// Records that left the store, by why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Evictions {
    /// To make room under `max_entries`.
    pub max_entries: u64,
    /// To make room under `max_bytes`.
    pub max_bytes: u64,
    /// Older than the retention window.
    pub retention: u64,
    /// Removed by [`RecentAuditStore::clear`].
    pub cleared: u64,
}

/// A snapshot of a store's statistics. Totals count every record stored since the store
/// was created (a [`clear`](RecentAuditStore::clear) does not reset them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// The store's name.
    pub name: String,
    /// Whether storage is enabled.
    pub enabled: bool,
    /// Records held now.
    pub entries: usize,
    /// Their estimated bytes.
    pub estimated_bytes: usize,
    /// Distinct actor ids among the records held (size of the actor index).
    pub distinct_actors: usize,
    /// Distinct resources among the records held.
    pub distinct_resources: usize,
    /// Distinct actions among the records held.
    pub distinct_actions: usize,
    /// The `occurred_at` of the oldest record held (the first in store order).
    pub oldest: Option<Timestamp>,
    /// Records stored, all time.
    pub stored_total: u64,
    /// Records stored, by outcome.
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// Records stored, by operation (records without one are not counted here).
    pub by_operation: BTreeMap<String, u64>,
    /// Records stored, by action.
    pub by_action: BTreeMap<String, u64>,
    /// Records that left, by why.
    pub evictions: Evictions,
    /// Records not stored because storage was disabled.
    pub dropped_disabled: u64,
    /// Records refused: larger than `max_bytes` alone.
    pub rejected: u64,
}

/// What the indexes need to know about a record: its keys' hashes (computed before taking
/// the lock) and which keys it has. Kept in the entry so that evicting a record touches
/// only the entry, never the old, likely cache-cold record itself.
#[derive(Clone, Copy, Debug)]
struct KeyHashes {
    actor: Option<u64>,
    resource: Option<u64>,
    action: u64,
    operation: Option<u64>,
    outcome: usize,
}

/// One stored record, its estimated size and its key hashes.
#[derive(Debug)]
pub(crate) struct Entry {
    event: Arc<AuditEvent>,
    bytes: usize,
    hashes: KeyHashes,
}

#[derive(Debug)]
struct Totals {
    stored: u64,
    by_outcome: [u64; 4],
    by_operation: NameCounts,
    by_action: NameCounts,
}

fn outcome_slot(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
        Outcome::Denied => 2,
        Outcome::Error => 3,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    MaxEntries,
    MaxBytes,
    Retention,
}

#[derive(Debug)]
struct Inner {
    settings: StoreSettings,
    records: VecDeque<Entry>,
    /// Sequence number of `records[0]`.
    first_seq: u64,
    bytes: usize,
    by_actor: KeyIndex,
    by_resource: KeyIndex,
    by_action: KeyIndex,
    by_outcome: OutcomeIndex,
    totals: Totals,
    evictions: Evictions,
    inserts_since_cleanup: u32,
    /// Records older than this are expired; refreshed at each cleanup.
    cutoff: Option<Timestamp>,
}

impl Inner {
    fn new(settings: StoreSettings) -> Inner {
        Inner {
            settings,
            records: VecDeque::new(),
            first_seq: 0,
            bytes: 0,
            by_actor: KeyIndex::default(),
            by_resource: KeyIndex::default(),
            by_action: KeyIndex::default(),
            by_outcome: OutcomeIndex::default(),
            totals: Totals {
                stored: 0,
                by_outcome: [0; 4],
                by_operation: NameCounts::new(MAX_DISTINCT_TOTALS),
                by_action: NameCounts::new(MAX_DISTINCT_TOTALS),
            },
            evictions: Evictions::default(),
            inserts_since_cleanup: 0,
            cutoff: None,
        }
    }

    fn get(&self, seq: u64) -> Option<&Arc<AuditEvent>> {
        let offset = seq.checked_sub(self.first_seq)?;
        self.records
            .get(usize::try_from(offset).ok()?)
            .map(|e| &e.event)
    }

    fn collect(&self, seqs: impl Iterator<Item = u64>) -> Vec<Arc<AuditEvent>> {
        seqs.filter_map(|s| self.get(s).cloned()).collect()
    }

    fn push(&mut self, entry: Entry) {
        let seq = self.first_seq + self.records.len() as u64;
        let (event, h) = (&entry.event, entry.hashes);
        if let (Some(actor), Some(hash)) = (&event.actor(), h.actor) {
            self.by_actor.push(&actor.id, hash, seq);
        }
        if let (Some(resource), Some(hash)) = (&event.resource(), h.resource) {
            self.by_resource.push(resource, hash, seq);
        }
        self.by_action.push(event.action(), h.action, seq);
        self.by_outcome.push(h.outcome, seq);
        let totals = &mut self.totals;
        totals.stored += 1;
        totals.by_outcome[h.outcome] += 1;
        totals.by_action.add(event.action(), h.action);
        if let (Some(op), Some(hash)) = (&event.operation(), h.operation) {
            totals.by_operation.add(op, hash);
        }
        self.bytes += entry.bytes;
        self.records.push_back(entry);
    }

    /// Removes the oldest record and returns it, so the caller can drop it after unlocking.
    fn evict_oldest(&mut self, why: Why) -> Option<Arc<AuditEvent>> {
        let entry = self.records.pop_front()?;
        let seq = self.first_seq;
        self.first_seq += 1;
        self.bytes -= entry.bytes;
        let h = entry.hashes;
        if let Some(hash) = h.actor {
            self.by_actor.remove_oldest(hash, seq);
        }
        if let Some(hash) = h.resource {
            self.by_resource.remove_oldest(hash, seq);
        }
        self.by_action.remove_oldest(h.action, seq);
        self.by_outcome.remove_oldest(h.outcome, seq);
        match why {
            Why::MaxEntries => self.evictions.max_entries += 1,
            Why::MaxBytes => self.evictions.max_bytes += 1,
            Why::Retention => self.evictions.retention += 1,
        }
        Some(entry.event)
    }

    /// Evicts until `extra_entries` more records of `extra_bytes` fit.
    fn make_room(&mut self, extra_entries: usize, extra_bytes: usize, evicted: &mut Evicted) {
        while self.records.len() + extra_entries > self.settings.max_entries {
            let Some(e) = self.evict_oldest(Why::MaxEntries) else {
                break;
            };
            evicted.keep(e);
        }
        while self.bytes + extra_bytes > self.settings.max_bytes {
            let Some(e) = self.evict_oldest(Why::MaxBytes) else {
                break;
            };
            evicted.keep(e);
        }
    }

    fn cleanup(&mut self, now: Timestamp, evicted: &mut Evicted) -> usize {
        let retention = i64::try_from(self.settings.retention.as_micros()).unwrap_or(i64::MAX);
        let cutoff = Timestamp::from_unix_micros(now.unix_micros().saturating_sub(retention));
        self.cutoff = Some(cutoff);
        self.inserts_since_cleanup = 0;
        let mut removed = 0;
        while self
            .records
            .front()
            .is_some_and(|e| e.event.occurred_at() < cutoff)
        {
            if let Some(e) = self.evict_oldest(Why::Retention) {
                evicted.keep(e);
            }
            removed += 1;
        }
        removed
    }
}

/// Records evicted under the lock, freed after it is released: dropping a record frees
/// several strings, work the other writer should not wait for. Usually one record, so the
/// first needs no allocation.
#[derive(Default)]
struct Evicted {
    first: Option<Arc<AuditEvent>>,
    more: Vec<Arc<AuditEvent>>,
}

impl Evicted {
    fn keep(&mut self, event: Arc<AuditEvent>) {
        if self.first.is_none() {
            self.first = Some(event);
        } else {
            self.more.push(event);
        }
    }
}

struct Shared {
    name: String,
    hasher: KeyHasher,
    enabled: AtomicBool,
    policy: Box<dyn AccessPolicy>,
    dropped_disabled: AtomicU64,
    rejected: AtomicU64,
    inner: Mutex<Inner>,
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

/// Builds a [`RecentAuditStore`]; see [`RecentAuditStore::builder`].
#[derive(Debug)]
#[must_use]
pub struct StoreBuilder {
    name: String,
    settings: StoreSettings,
    policy: Box<dyn AccessPolicy>,
    enabled: bool,
    /// Whether `max_bytes` was chosen by the caller (else it follows `max_entries`).
    bytes_set: bool,
}

/// The bytes budgeted per record when only `max_entries` is given: about twice a typical
/// login record's estimate, so the entry bound, not the byte bound, is the one that holds.
pub const BYTES_PER_ENTRY: usize = 2048;

impl StoreBuilder {
    /// Most records kept. Unless [`with_max_bytes`](Self::with_max_bytes) sets a byte bound
    /// too, the byte bound grows with it (`n` × [`BYTES_PER_ENTRY`], never below the 16 MiB
    /// default), so `with_max_entries(100_000)` holds 100,000 typical records.
    ///
    /// ```
    /// let store = authtel_audit::RecentAuditStore::builder("recent").with_max_entries(100_000).build()?;
    /// assert_eq!(store.settings().max_bytes, 100_000 * authtel_audit::BYTES_PER_ENTRY);
    /// # Ok::<(), authtel_audit::SettingsError>(())
    /// ```
    pub fn with_max_entries(mut self, n: usize) -> Self {
        self.settings.max_entries = n;
        if !self.bytes_set {
            self.settings.max_bytes = StoreSettings::default()
                .max_bytes
                .max(n.saturating_mul(BYTES_PER_ENTRY));
        }
        self
    }

    /// Most estimated bytes kept (a hard bound on memory, whatever `max_entries` says).
    pub fn with_max_bytes(mut self, n: usize) -> Self {
        self.settings.max_bytes = n;
        self.bytes_set = true;
        self
    }

    /// How long records are kept (whole seconds).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.settings.retention = retention;
        self
    }

    /// All bounds at once.
    pub fn with_settings(mut self, settings: StoreSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Who may read (default [`RequireRole::admin`]).
    pub fn with_access_policy(mut self, policy: impl AccessPolicy) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// Start with storage disabled.
    pub fn disabled(mut self) -> Self {
        self.enabled = false;
        self
    }

    /// The store, or why a setting or the name was refused.
    pub fn build(self) -> Result<RecentAuditStore, SettingsError> {
        if self.name.is_empty() || self.name.len() > MAX_NAME_LEN {
            return Err(SettingsError::InvalidName(
                authtel_core::metadata::truncate(&self.name, MAX_NAME_LEN).to_owned(),
            ));
        }
        self.settings.check()?;
        Ok(RecentAuditStore {
            shared: Arc::new(Shared {
                name: self.name,
                hasher: KeyHasher::default(),
                enabled: AtomicBool::new(self.enabled),
                policy: self.policy,
                dropped_disabled: AtomicU64::new(0),
                rejected: AtomicU64::new(0),
                inner: Mutex::new(Inner::new(self.settings)),
            }),
        })
    }
}

impl RecentAuditStore {
    /// A store named `name` with [`StoreSettings::default`] and the admin-only policy.
    ///
    /// ```
    /// let store = authtel_audit::RecentAuditStore::new("authz").unwrap();
    /// assert_eq!(store.name(), "authz");
    /// ```
    pub fn new(name: &str) -> Result<RecentAuditStore, SettingsError> {
        RecentAuditStore::builder(name).build()
    }

    /// A builder for a store named `name`.
    ///
    /// ```
    /// use authtel_audit::{RecentAuditStore, RequireRole};
    /// use std::time::Duration;
    /// let store = RecentAuditStore::builder("admin-actions")
    ///     .with_max_entries(1_000)
    ///     .with_max_bytes(1 << 20)
    ///     .with_retention(Duration::from_secs(600))
    ///     .with_access_policy(RequireRole::new("auditor"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(store.settings().max_entries, 1_000);
    /// ```
    pub fn builder(name: &str) -> StoreBuilder {
        StoreBuilder {
            name: name.to_owned(),
            settings: StoreSettings::default(),
            policy: Box::new(RequireRole::admin()),
            enabled: true,
            bytes_set: false,
        }
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

    /// Stores a record.
    fn store(&self, event: AuditEvent) -> Result<Inserted, InsertError> {
        let bytes = record_bytes(&event);
        let hasher = &self.shared.hasher;
        let hashes = KeyHashes {
            actor: event.actor().map(|a| hasher.hash(&a.id)),
            resource: event.resource().map(|r| hasher.hash(r)),
            action: hasher.hash(event.action()),
            operation: event.operation().map(|o| hasher.hash(o)),
            outcome: outcome_slot(event.outcome()),
        };
        let entry = Entry {
            event: Arc::new(event),
            bytes,
            hashes,
        };
        let mut evicted = Evicted::default();
        let result = self.store_entry(entry, &mut evicted);
        drop(evicted);
        result
    }

    fn store_entry(&self, entry: Entry, evicted: &mut Evicted) -> Result<Inserted, InsertError> {
        let bytes = entry.bytes;
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
        if inner.cutoff.is_some_and(|c| entry.event.occurred_at() < c) {
            inner.evictions.retention += 1;
            drop(inner);
            evicted.keep(entry.event);
            return Ok(Inserted::Expired);
        }
        inner.make_room(1, bytes, evicted);
        inner.push(entry);
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
        inner.evictions.cleared += inner.records.len() as u64;
        inner.first_seq += inner.records.len() as u64;
        let records = std::mem::take(&mut inner.records);
        inner.bytes = 0;
        inner.by_actor.clear();
        inner.by_resource.clear();
        inner.by_action.clear();
        inner.by_outcome.clear();
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
            entries: inner.records.len(),
            estimated_bytes: inner.bytes,
            distinct_actors: inner.by_actor.len(),
            distinct_resources: inner.by_resource.len(),
            distinct_actions: inner.by_action.len(),
            oldest: inner.records.front().map(|e| e.event.occurred_at()),
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
            inner
                .records
                .iter()
                .rev()
                .take(n)
                .map(|e| e.event.clone())
                .collect()
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
            inner.collect(inner.by_actor.newest(actor_id, hash, limit))
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
            inner.collect(inner.by_resource.newest(resource, hash, limit))
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
        let hash = self.shared.hasher.hash(action);
        self.read(reader, |inner| {
            inner.collect(inner.by_action.newest(action, hash, limit))
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
            inner.collect(inner.by_outcome.newest(outcome_slot(outcome), limit))
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
                .records
                .iter()
                .rev()
                .filter(|e| (from..=to).contains(&e.event.occurred_at()))
                .take(limit)
                .map(|e| e.event.clone())
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
