//! Several independent stores by name — one for authorization decisions, one for admin
//! actions, … — found again from anywhere in the application.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::settings::SettingsError;
use crate::store::RecentAuditStore;

/// A name is already taken in a [`StoreRegistry`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a recent-audit store named {0:?} is already registered: look it up with get(), or remove() it first"
)]
pub struct NameTaken(pub String);

/// Named stores. [`StoreRegistry::global`] is the process-wide one; tests build their own.
///
/// ```
/// use authtel_audit::{RecentAuditStore, StoreRegistry};
/// let stores = StoreRegistry::new();
/// let authz = stores.get_or_create("authz").unwrap();
/// stores.register(RecentAuditStore::new("admin").unwrap()).unwrap();
/// assert!(stores.get("authz").unwrap().same_store(&authz));
/// assert_eq!(stores.names(), ["admin", "authz"]);
/// ```
#[derive(Debug, Default)]
pub struct StoreRegistry {
    stores: Mutex<BTreeMap<String, RecentAuditStore>>,
}

impl StoreRegistry {
    /// An empty registry.
    pub fn new() -> StoreRegistry {
        StoreRegistry::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static StoreRegistry {
        static GLOBAL: OnceLock<StoreRegistry> = OnceLock::new();
        GLOBAL.get_or_init(StoreRegistry::new)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, RecentAuditStore>> {
        self.stores.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a store under its own name.
    pub fn register(&self, store: RecentAuditStore) -> Result<(), NameTaken> {
        let mut stores = self.lock();
        if stores.contains_key(store.name()) {
            return Err(NameTaken(store.name().to_owned()));
        }
        stores.insert(store.name().to_owned(), store);
        Ok(())
    }

    /// The store named `name`, created with default settings if there is none.
    pub fn get_or_create(&self, name: &str) -> Result<RecentAuditStore, SettingsError> {
        let mut stores = self.lock();
        if let Some(store) = stores.get(name) {
            return Ok(store.clone());
        }
        let store = RecentAuditStore::new(name)?;
        stores.insert(name.to_owned(), store.clone());
        Ok(store)
    }

    /// The store named `name`.
    pub fn get(&self, name: &str) -> Option<RecentAuditStore> {
        self.lock().get(name).cloned()
    }

    /// Removes and returns the store named `name`; handles others hold keep working.
    pub fn remove(&self, name: &str) -> Option<RecentAuditStore> {
        self.lock().remove(name)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}
