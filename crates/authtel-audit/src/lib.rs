//! authtel-audit: a bounded, indexed, in-memory store of recent audit records.
//!
//! Operators and tests often need "what happened to this user in the last hour?" without a
//! database. [`RecentAuditStore`] keeps the newest [`AuditEvent`]s within an entry count,
//! an estimated memory budget and a retention window, answers queries newest first (recent,
//! by actor, resource, action, outcome, time range) through indexes, keeps statistics, and
//! lets only readers its [`AccessPolicy`] allows read the history.
//!
//! The record itself ([`AuditEvent`]) and the authorization helpers
//! ([`authtel_core::authorization`]) live in `authtel-core`.
//!
//! # In libraries
//! Don't depend on this crate: emit events with `authtel-core`, and let the application
//! decide where audit records go.
//!
//! # In applications
//! Build a store, attach it to the registry as a handler, keep a clone to query:
//!
//! ```
//! use authtel_audit::{Reader, RecentAuditStore, StoreRegistry};
//! use authtel_core::authorization::{log_authorized, Operation};
//! use authtel_core::registry::{Registry, Selection};
//!
//! let store = StoreRegistry::new().get_or_create("authz").unwrap();
//! let registry = Registry::new(); // in an application: Registry::global()
//! registry.attach("recent-audit", Selection::All, store.clone()).unwrap();
//! let _scope = registry.enter();
//!
//! log_authorized(Operation::Call, "svc_billing", "invoices.create");
//!
//! let admin = Reader::new("ops").with_role("admin");
//! assert_eq!(store.recent(&admin, 10).unwrap()[0].action(), "authorization.allowed");
//! assert_eq!(store.stats().entries, 1);
//! ```
//!
//! # Feature flags
//! None.
//!
//! # Supported Rust versions
//! 1.94 and newer.
//!
//! [`AuditEvent`]: authtel_core::audit::AuditEvent

mod access;
mod builder;
mod cleanup;
mod estimate;
mod index;
mod inner;
mod named;
mod settings;
mod store;

pub use access::{AccessDenied, AccessPolicy, FnPolicy, Reader, RequireRole, policy_fn};
pub use builder::{BYTES_PER_ENTRY, StoreBuilder};
pub use cleanup::CleanupGuard;
pub use named::{NameTaken, StoreRegistry};
pub use settings::{
    Evictions, InsertError, Inserted, MAX_NAME_LEN, OTHER, SettingsError, StoreSettings, StoreStats,
};
pub use store::RecentAuditStore;
