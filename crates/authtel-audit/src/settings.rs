//! A store's bounds, its errors, and what its statistics report.

use std::collections::BTreeMap;
use std::time::Duration;

use authtel_core::audit::Timestamp;
use authtel_core::outcome::Outcome;

#[cfg(doc)]
use crate::RecentAuditStore;

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
    pub(crate) fn check(&self) -> Result<(), SettingsError> {
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
