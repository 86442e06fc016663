//! The handler registry: who hears which events.
//!
//! Attach and detach are rare; emitting is constant. So the registry keeps an immutable
//! snapshot — a table from each event's dense id to the handlers that want it — and
//! replaces it whole on every change (copy-on-write). Emitters load the current snapshot
//! without locking and never wait for an attach.
//!
//! When nothing is attached anywhere, one relaxed atomic load ([`is_active`]) is all an
//! emit costs.
//!
//! A handler that panics is caught, counted, reported (the
//! [`PIPELINE_HANDLER_FAILURE`](crate::catalogue::PIPELINE_HANDLER_FAILURE) signal and one
//! `tracing` error) and stays attached — unless its [`FailurePolicy`] says to detach it
//! after N consecutive failures, which is reported as
//! [`PIPELINE_HANDLER_DETACHED`](crate::catalogue::PIPELINE_HANDLER_DETACHED).
//!
//! Tests use their own [`Registry`] and [`Registry::enter`] it on their thread, so they
//! run in parallel without seeing each other's events.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::ArcSwap;

use crate::catalogue::{self, Event};
use crate::metadata;

mod dispatch;
mod handler;
mod selection;

pub(crate) use dispatch::{Target, global_snapshot, with_target, with_uncached_target};
pub use handler::{FailurePolicy, FnHandler, Handler, handler_fn};
pub use selection::Selection;

/// Why an attach or detach failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// A handler with this id is already attached.
    #[error("a handler with id {0:?} is already attached; detach it first or choose another id")]
    AlreadyExists(String),
    /// The id is empty or longer than 128 bytes.
    #[error(
        "handler id {0:?} is invalid; use a non-empty name of at most 128 bytes, e.g. \"myapp-audit\""
    )]
    InvalidId(String),
}

/// Why a detach failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DetachError {
    /// No handler with this id is attached.
    #[error("no handler with id {0:?} is attached; list them with `handlers()`")]
    NotFound(String),
}

/// What a registry reports about one attached handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandlerInfo {
    /// The id given at attach.
    pub id: String,
    /// How many times it panicked.
    pub failures: u64,
}

pub(crate) struct Entry {
    id: Box<str>,
    selection: Selection,
    handler: Box<dyn Handler>,
    policy: FailurePolicy,
    failures: AtomicU64,
    consecutive: AtomicU32,
    detached: AtomicBool,
    registry: Weak<Inner>,
}

#[derive(Default)]
struct Snapshot {
    /// Indexed by event id; covers ids assigned when the snapshot was built.
    table: Vec<Box<[Arc<Entry>]>>,
    /// Every entry, for events whose id is newer than the table.
    entries: Box<[Arc<Entry>]>,
}

impl Snapshot {
    fn build(entries: &[Arc<Entry>]) -> Snapshot {
        // Give every library event and every explicitly selected event an id now, so the
        // emit path finds them in the table.
        for event in catalogue::all() {
            event.id();
        }
        for entry in entries {
            if let Selection::Events(list) = &entry.selection {
                for event in list {
                    event.id();
                }
            }
        }
        let known = catalogue::events_by_id();
        let table = known
            .iter()
            .map(|slot| match slot {
                Some(event) => entries
                    .iter()
                    .filter(|e| e.selection.matches(event))
                    .cloned()
                    .collect(),
                None => Box::default(),
            })
            .collect();
        Snapshot {
            table,
            entries: entries.to_vec().into_boxed_slice(),
        }
    }

    #[inline(always)]
    fn for_each(&self, event: &Event, mut f: impl FnMut(&Arc<Entry>)) {
        let id = event.assigned_id() as usize;
        if id != 0 && id < self.table.len() {
            self.table[id].iter().for_each(f);
        } else {
            for e in self.entries.iter().filter(|e| e.selection.matches(event)) {
                f(e)
            }
        }
    }

    #[inline]
    fn wants(&self, event: &Event) -> bool {
        let id = event.assigned_id() as usize;
        if id != 0 && id < self.table.len() {
            !self.table[id].is_empty()
        } else {
            self.entries.iter().any(|e| e.selection.matches(event))
        }
    }
}

struct Inner {
    snapshot: ArcSwap<Snapshot>,
    entries: Mutex<Vec<Arc<Entry>>>,
    global: bool,
}

/// Global handlers attached plus scopes entered: zero means nobody listens anywhere.
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static GLOBAL: OnceLock<Registry> = OnceLock::new();
/// Bumped after each change of the global registry's snapshot: threads compare it with the
/// generation of their cached snapshot (see `global_snapshot`).
static GLOBAL_GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Scopes entered on this thread and not yet dropped, oldest first, with their tokens
    /// (tokens grow, so a stack stays sorted by them). The newest is the registry this
    /// thread emits to.
    static SCOPE_STACK: RefCell<Vec<(u64, Arc<Inner>)>> = const { RefCell::new(Vec::new()) };
    static REPORTING_FAILURE: Cell<bool> = const { Cell::new(false) };
}

/// The token of a scope entered when the thread's scope stack was already destroyed (from a
/// thread-local destructor): no stack entry has it.
const NO_SCOPE: u64 = u64::MAX;

/// Whether any handler could hear an event: one relaxed atomic load.
#[inline]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed) != 0
}

/// A set of attached handlers. The process has one global registry ([`Registry::global`]);
/// tests make their own and [`enter`](Registry::enter) it.
///
/// ```
/// use authtel_core::registry::{handler_fn, Registry, Selection, AttachError};
/// let registry = Registry::new();
/// registry.attach("a", Selection::All, handler_fn(|_| {})).unwrap();
/// assert!(matches!(registry.attach("a", Selection::All, handler_fn(|_| {})),
///     Err(AttachError::AlreadyExists(id)) if id == "a"));
/// assert_eq!(registry.handlers()[0].id, "a");
/// registry.detach("a").unwrap();
/// assert!(registry.handlers().is_empty());
/// ```
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("global", &self.inner.global)
            .field("handlers", &self.handlers())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    /// A new, empty, scoped registry.
    pub fn new() -> Registry {
        Registry::with_kind(false)
    }

    fn with_kind(global: bool) -> Registry {
        Registry {
            inner: Arc::new(Inner {
                snapshot: ArcSwap::from_pointee(Snapshot::default()),
                entries: Mutex::new(Vec::new()),
                global,
            }),
        }
    }

    /// The process-global registry, used wherever no scoped registry is entered.
    pub fn global() -> &'static Registry {
        GLOBAL.get_or_init(|| Registry::with_kind(true))
    }

    /// Attaches `handler` under `id` for the selected events; it stays attached whatever
    /// it does (see [`Registry::attach_with_policy`]).
    pub fn attach(
        &self,
        id: &str,
        selection: impl Into<Selection>,
        handler: impl Handler,
    ) -> Result<(), AttachError> {
        self.attach_with_policy(id, selection, handler, FailurePolicy::default())
    }

    /// Attaches with a [`FailurePolicy`].
    ///
    /// ```
    /// use authtel_core::registry::{handler_fn, FailurePolicy, Registry, Selection};
    /// let r = Registry::new();
    /// r.attach_with_policy("flaky", Selection::All, handler_fn(|_| {}), FailurePolicy::detach_after(3)).unwrap();
    /// ```
    pub fn attach_with_policy(
        &self,
        id: &str,
        selection: impl Into<Selection>,
        handler: impl Handler,
        policy: FailurePolicy,
    ) -> Result<(), AttachError> {
        if id.is_empty() || id.len() > 128 {
            return Err(AttachError::InvalidId(
                metadata::truncate(id, 128).to_owned(),
            ));
        }
        let mut entries = self.lock();
        if entries.iter().any(|e| &*e.id == id) {
            return Err(AttachError::AlreadyExists(id.to_owned()));
        }
        entries.push(Arc::new(Entry {
            id: id.into(),
            selection: selection.into(),
            handler: Box::new(handler),
            policy,
            failures: AtomicU64::new(0),
            consecutive: AtomicU32::new(0),
            detached: AtomicBool::new(false),
            registry: Arc::downgrade(&self.inner),
        }));
        self.publish(&entries);
        if self.inner.global {
            ACTIVE.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Replaces the snapshot emitters read; the caller holds the entries lock.
    fn publish(&self, entries: &[Arc<Entry>]) {
        self.inner
            .snapshot
            .store(Arc::new(Snapshot::build(entries)));
        if self.inner.global {
            GLOBAL_GENERATION.fetch_add(1, Ordering::Release);
        }
    }

    /// Detaches the handler with this id. It hears no event after this returns.
    ///
    /// On the global registry the handler value itself may be dropped later: each thread
    /// that emitted keeps a cached reference to the handler set (so emitting needs no
    /// fenced atomic operation). The thread calling `detach` lets go at once; another
    /// thread lets go at its next emit while some handler is attached, or when it exits. Do
    /// not rely on a handler's `Drop` for flushing; sinks have explicit flush/shutdown.
    pub fn detach(&self, id: &str) -> Result<(), DetachError> {
        if self.remove_where(|e| &*e.id == id) {
            Ok(())
        } else {
            Err(DetachError::NotFound(id.to_owned()))
        }
    }

    /// Detaches exactly this entry: not a newer handler attached under the same id since.
    fn detach_entry(&self, entry: &Arc<Entry>) -> bool {
        self.remove_where(|e| Arc::ptr_eq(e, entry))
    }

    fn remove_where(&self, matches: impl Fn(&Arc<Entry>) -> bool) -> bool {
        let mut entries = self.lock();
        let Some(pos) = entries.iter().position(matches) else {
            return false;
        };
        let removed = entries.remove(pos);
        removed.detached.store(true, Ordering::Relaxed);
        self.publish(&entries);
        if self.inner.global {
            ACTIVE.fetch_sub(1, Ordering::Relaxed);
        }
        // Unlocked first: dropping a handler runs its `Drop`, which may use the registry.
        drop(entries);
        if self.inner.global {
            // This thread lets go of its cached snapshot now. Without this, detaching the
            // last handler would leave it alive in the cache for as long as the thread runs:
            // with nothing attached, emits return before they look at the cache.
            global_snapshot::release();
        }
        drop(removed);
        true
    }

    /// The attached handlers, in attach order.
    pub fn handlers(&self) -> Vec<HandlerInfo> {
        self.lock()
            .iter()
            .map(|e| HandlerInfo {
                id: e.id.to_string(),
                failures: e.failures.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Whether some handler is attached to `event`.
    pub fn wants(&self, event: &Event) -> bool {
        self.inner.snapshot.load().wants(event)
    }

    /// Makes this registry the one the current thread emits to, until the guard drops.
    /// Other threads keep emitting to theirs. Used by tests, which then run in parallel.
    ///
    /// ```
    /// use authtel_core::registry::{handler_fn, Registry, Selection};
    /// use authtel_core::{catalogue, telemetry};
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    ///
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let registry = Registry::new();
    /// let s = seen.clone();
    /// registry.attach("count", Selection::All, handler_fn(move |_| { s.fetch_add(1, Ordering::Relaxed); })).unwrap();
    /// {
    ///     let _scope = registry.enter();
    ///     telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Default::default());
    /// }
    /// telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Default::default());
    /// assert_eq!(seen.load(Ordering::Relaxed), 1);
    /// ```
    pub fn enter(&self) -> ScopeGuard {
        // A thread-local destructor running after this thread's scope stack was destroyed
        // gets a guard for no scope (its emits go to the global registry), not an abort.
        let token = SCOPE_STACK
            .try_with(|stack| {
                let mut stack = stack.borrow_mut();
                let token = stack.last().map_or(0, |(t, _)| t + 1);
                stack.push((token, self.inner.clone()));
                token
            })
            .unwrap_or(NO_SCOPE);
        // While this thread is in a scope, its cached global snapshot must not be used:
        // invalidating it sends every emit here through the scope lookup.
        global_snapshot::invalidate();
        ACTIVE.fetch_add(1, Ordering::Relaxed);
        ScopeGuard {
            token,
            _not_send: std::marker::PhantomData,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Entry>>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Restores the previously entered registry when dropped. Not `Send`: a scope belongs to
/// the thread that entered it.
#[must_use = "the scope ends when the guard is dropped"]
pub struct ScopeGuard {
    /// This scope's entry in the thread's scope stack.
    token: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl fmt::Debug for ScopeGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScopeGuard")
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        // Remove this scope wherever it is in the stack: guards dropped out of order must
        // leave the newest scope still alive in force, never one already dropped.
        // `try_with`: a guard dropped by a thread-local destructor may outlive the stack.
        let _ = SCOPE_STACK.try_with(|stack| stack.borrow_mut().retain(|(t, _)| *t != self.token));
        ACTIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Attaches to the global registry. See [`Registry::attach`].
///
/// ```
/// use authtel_core::registry::{attach, detach, handler_fn, Selection};
/// attach("doc-example", Selection::All, handler_fn(|_| {})).unwrap();
/// detach("doc-example").unwrap();
/// ```
pub fn attach(
    id: &str,
    selection: impl Into<Selection>,
    handler: impl Handler,
) -> Result<(), AttachError> {
    Registry::global().attach(id, selection, handler)
}

/// Detaches from the global registry. See [`Registry::detach`].
pub fn detach(id: &str) -> Result<(), DetachError> {
    Registry::global().detach(id)
}

/// The handlers attached to the global registry.
pub fn handlers() -> Vec<HandlerInfo> {
    Registry::global().handlers()
}
