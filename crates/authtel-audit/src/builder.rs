//! [`StoreBuilder`]: a store's name, bounds, access policy and initial state.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::access::{AccessPolicy, RequireRole};
use crate::index::KeyHasher;
use crate::inner::Inner;
use crate::settings::{MAX_NAME_LEN, SettingsError, StoreSettings};
use crate::store::{RecentAuditStore, Shared};

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
        Ok(RecentAuditStore::from_shared(Arc::new(Shared {
            name: self.name,
            hasher: KeyHasher::default(),
            enabled: AtomicBool::new(self.enabled),
            policy: self.policy,
            dropped_disabled: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            inner: Mutex::new(Inner::new(self.settings)),
        })))
    }
}

impl StoreBuilder {
    pub(crate) fn new(name: &str) -> StoreBuilder {
        StoreBuilder {
            name: name.to_owned(),
            settings: StoreSettings::default(),
            policy: Box::new(RequireRole::admin()),
            enabled: true,
            bytes_set: false,
        }
    }
}

/// Making a store: through its builder, which checks the settings once.
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
        StoreBuilder::new(name)
    }
}
