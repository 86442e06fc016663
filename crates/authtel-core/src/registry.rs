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
use std::num::NonZeroU32;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::ArcSwap;

use crate::catalogue::{self, Category, Event, SpanDef};
use crate::metadata::{self, Metadata};
use crate::telemetry::{EventRecord, Measurements, SpanContext};

/// Something that receives events. Implementations must be cheap and must not block for
/// long: they run inline in the code that emitted the event (auth request paths). Anything
/// slow belongs behind a queue (see the pipeline crate).
///
/// Handlers may be called from many threads at once. A panic inside `handle` is caught;
/// the handler stays attached (see [`FailurePolicy`]).
///
/// ```
/// use authtel_core::registry::Handler;
/// use authtel_core::telemetry::EventRecord;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// #[derive(Debug, Default)]
/// struct CountLogins(AtomicU64);
/// impl Handler for CountLogins {
///     fn handle(&self, record: &EventRecord<'_>) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Handler: Send + Sync + fmt::Debug + 'static {
    /// Receives one event.
    fn handle(&self, record: &EventRecord<'_>);
}

impl<H: Handler + ?Sized> Handler for Arc<H> {
    fn handle(&self, record: &EventRecord<'_>) {
        (**self).handle(record)
    }
}

/// A handler made from a closure; see [`handler_fn`].
pub struct FnHandler<F>(F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

impl<F> Handler for FnHandler<F>
where
    F: Fn(&EventRecord<'_>) + Send + Sync + 'static,
{
    fn handle(&self, record: &EventRecord<'_>) {
        (self.0)(record)
    }
}

/// Wraps a closure as a [`Handler`].
///
/// ```
/// use authtel_core::registry::{handler_fn, Registry, Selection};
/// let registry = Registry::new();
/// registry.attach("print", Selection::All, handler_fn(|r| println!("{}", r.event))).unwrap();
/// ```
pub fn handler_fn<F>(f: F) -> FnHandler<F>
where
    F: Fn(&EventRecord<'_>) + Send + Sync + 'static,
{
    FnHandler(f)
}

/// Which events a handler receives.
///
/// ```
/// use authtel_core::catalogue::{self, Category, AUTH_LOGIN, SECURITY_LOCKOUT};
/// use authtel_core::registry::Selection;
/// let a = Selection::from(catalogue::mfa_events());
/// let b = Selection::from(&AUTH_LOGIN);          // a span's three phases
/// let c = Selection::from(&SECURITY_LOCKOUT);    // one event
/// let d = Selection::from(Category::Security);   // a whole category, custom events included
/// assert!(d.matches(&SECURITY_LOCKOUT));
/// ```
#[derive(Clone, Debug)]
pub enum Selection {
    /// Every event, library and application.
    All,
    /// These events.
    Events(Vec<&'static Event>),
    /// Every event of these categories.
    Categories(Vec<Category>),
}

impl Selection {
    /// Whether `event` is selected.
    pub fn matches(&self, event: &Event) -> bool {
        match self {
            Selection::All => true,
            Selection::Events(list) => list.iter().any(|e| std::ptr::eq(*e, event)),
            Selection::Categories(cats) => cats.contains(&event.category()),
        }
    }
}

impl From<&'static [&'static Event]> for Selection {
    fn from(events: &'static [&'static Event]) -> Self {
        Selection::Events(events.to_vec())
    }
}
impl From<Vec<&'static Event>> for Selection {
    fn from(events: Vec<&'static Event>) -> Self {
        Selection::Events(events)
    }
}
impl From<&'static Event> for Selection {
    fn from(event: &'static Event) -> Self {
        Selection::Events(vec![event])
    }
}
impl From<&'static SpanDef> for Selection {
    fn from(span: &'static SpanDef) -> Self {
        Selection::Events(span.events().to_vec())
    }
}
impl From<Category> for Selection {
    fn from(category: Category) -> Self {
        Selection::Categories(vec![category])
    }
}

/// What happens to a handler that keeps panicking.
///
/// ```
/// use authtel_core::registry::FailurePolicy;
/// let keep = FailurePolicy::default();                 // stays attached, every failure reported
/// let give_up = FailurePolicy::detach_after(5);        // detached after 5 failures in a row
/// assert_ne!(keep, give_up);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailurePolicy {
    detach_after: Option<NonZeroU32>,
}

impl FailurePolicy {
    /// Detach after `n` consecutive panics (`0` means never).
    pub fn detach_after(n: u32) -> FailurePolicy {
        FailurePolicy {
            detach_after: NonZeroU32::new(n),
        }
    }
}

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

    #[inline]
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
/// Scopes entered on any thread: zero keeps the emit path off the thread-local.
static SCOPES: AtomicUsize = AtomicUsize::new(0);
static GLOBAL: OnceLock<Registry> = OnceLock::new();
/// Bumped after each change of the global registry's snapshot: threads compare it with the
/// generation of their cached snapshot (see `with_global_snapshot`).
static GLOBAL_GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Scopes entered on this thread and not yet dropped, oldest first, with their tokens
    /// (tokens grow, so a stack stays sorted by them). The newest is the registry this
    /// thread emits to.
    static SCOPE_STACK: RefCell<Vec<(u64, Arc<Inner>)>> = const { RefCell::new(Vec::new()) };
    static REPORTING_FAILURE: Cell<bool> = const { Cell::new(false) };
    /// This thread's reference to the global snapshot, with the generation it was loaded at.
    static GLOBAL_SNAPSHOT: RefCell<Option<(u64, Arc<Snapshot>)>> = const { RefCell::new(None) };
}

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
    /// On the global registry the handler value itself is dropped a little later: each
    /// thread that emitted keeps a cached reference to the handler set (so emitting needs
    /// no fenced atomic operation) and lets go of it at its next emit or when it exits. Do
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
        let token = SCOPE_STACK.with(|stack| {
            let mut stack = stack.borrow_mut();
            let token = stack.last().map_or(0, |(t, _)| t + 1);
            stack.push((token, self.inner.clone()));
            token
        });
        SCOPES.fetch_add(1, Ordering::Relaxed);
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
        SCOPE_STACK.with(|stack| stack.borrow_mut().retain(|(t, _)| *t != self.token));
        SCOPES.fetch_sub(1, Ordering::Relaxed);
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

/// Runs `f` with the registry the current thread emits to, if anyone listens.
#[inline]
fn with_current<R>(mut f: impl FnMut(&Inner, &Snapshot) -> R) -> Option<R> {
    if SCOPES.load(Ordering::Relaxed) != 0
        && let Some(inner) = SCOPE_STACK.with(|s| s.borrow().last().map(|(_, i)| i.clone()))
    {
        let snapshot = inner.snapshot.load();
        return Some(f(&inner, &snapshot));
    }
    let global = GLOBAL.get()?;
    Some(with_global_snapshot(&global.inner, f))
}

/// Runs `f` with the global registry's current snapshot, through this thread's cached
/// reference to it.
///
/// Why a cache: an `ArcSwap` load costs two fenced atomic operations (its debt slot), which
/// is most of what a no-op handler costs. The cached `Arc` is revalidated with one load of
/// [`GLOBAL_GENERATION`]. A nested emit (a handler that emits) while the cache is being
/// replaced, and an emit during thread teardown, take the `ArcSwap` path instead.
#[inline]
fn with_global_snapshot<R>(global: &Inner, mut f: impl FnMut(&Inner, &Snapshot) -> R) -> R {
    let generation = GLOBAL_GENERATION.load(Ordering::Acquire);
    GLOBAL_SNAPSHOT
        .try_with(|cache| {
            if let Ok(slot) = cache.try_borrow()
                && let Some((g, snapshot)) = slot.as_ref()
                && *g == generation
            {
                return f(global, snapshot);
            }
            refresh_and_run(cache, global, generation, &mut f)
        })
        // This thread's locals are being torn down (an emit from a destructor).
        .unwrap_or_else(|_| f(global, &global.snapshot.load()))
}

/// The cache is stale (or empty): replace it, unless an outer emit on this thread is
/// reading it right now (a handler that emits), in which case load without caching.
#[cold]
fn refresh_and_run<R>(
    cache: &RefCell<Option<(u64, Arc<Snapshot>)>>,
    global: &Inner,
    generation: u64,
    f: &mut impl FnMut(&Inner, &Snapshot) -> R,
) -> R {
    match cache.try_borrow_mut() {
        Ok(mut slot) => {
            let snapshot = global.snapshot.load_full();
            *slot = Some((generation, Arc::clone(&snapshot)));
            drop(slot);
            f(global, &snapshot)
        }
        Err(_) => f(global, &global.snapshot.load()),
    }
}

/// With one load of the current thread's snapshot: if any of `wanted` has a handler, runs
/// `f` with a function that delivers records to that snapshot, and returns what `f` did.
/// Spans use it so that checking for listeners and delivering `start` share one load.
pub(crate) fn with_listeners<T>(
    wanted: &[&Event],
    mut f: impl FnMut(&dyn Fn(&EventRecord<'_>)) -> T,
) -> Option<T> {
    with_current(|inner, snap| {
        wanted
            .iter()
            .any(|e| snap.wants(e))
            .then(|| f(&|record| deliver(inner, snap, record)))
    })
    .flatten()
}

/// Delivers a record to the current thread's registry.
pub(crate) fn dispatch(record: &EventRecord<'_>) {
    with_current(|inner, snap| deliver(inner, snap, record));
}

fn deliver(inner: &Inner, snap: &Snapshot, record: &EventRecord<'_>) {
    snap.for_each(record.event, |entry| {
        if entry.detached.load(Ordering::Relaxed) {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| entry.handler.handle(record))) {
            Ok(()) => {
                if entry.consecutive.load(Ordering::Relaxed) != 0 {
                    entry.consecutive.store(0, Ordering::Relaxed);
                }
            }
            Err(payload) => on_failure(inner, snap, entry, record, &*payload),
        }
    });
}

#[cold]
fn on_failure(
    inner: &Inner,
    snap: &Snapshot,
    entry: &Arc<Entry>,
    record: &EventRecord<'_>,
    payload: &(dyn std::any::Any + Send),
) {
    entry.failures.fetch_add(1, Ordering::Relaxed);
    let consecutive = entry.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
    let reason = crate::telemetry::panic_reason(payload);
    #[cfg(feature = "internal-logs")]
    tracing::error!(
        target: "authtel::pipeline",
        handler = &*entry.id,
        event = record.event.name(),
        reason,
        consecutive,
        "authtel handler panicked; the event was not handled by it. It stays attached; fix the handler or attach it with a FailurePolicy"
    );
    // A failure while reporting a failure is counted but not reported again: no loops.
    let nested = REPORTING_FAILURE.with(|r| r.replace(true));
    let meta = Metadata::new()
        .reason(reason)
        .with_extra("handler", &*entry.id)
        .with_extra("event", record.event.name())
        .with_extra("consecutive_failures", consecutive);
    if !nested {
        let report = EventRecord::signal(
            &catalogue::PIPELINE_HANDLER_FAILURE,
            SpanContext::child_of(Some(record.context)),
            Measurements::new().count(1),
            &meta,
        );
        deliver(inner, snap, &report);
    }
    // Decided after the report: a panic on the report itself counts as consecutive too.
    // Checked on nested failures as well, so a handler that only panics on reports still
    // meets its policy. Each detach removes a handler, so the recursion is bounded.
    let consecutive = entry.consecutive.load(Ordering::Relaxed);
    let detach = entry
        .policy
        .detach_after
        .is_some_and(|n| consecutive >= n.get());
    if detach
        && let Some(registry) = entry.registry.upgrade().map(|inner| Registry { inner })
        && registry.detach_entry(entry)
    {
        #[cfg(feature = "internal-logs")]
        tracing::error!(
            target: "authtel::pipeline",
            handler = &*entry.id,
            consecutive,
            "authtel detached a handler after consecutive panics, as its FailurePolicy asked; attach it again once fixed"
        );
        let report = EventRecord::signal(
            &catalogue::PIPELINE_HANDLER_DETACHED,
            SpanContext::child_of(Some(record.context)),
            Measurements::new().count(1),
            &meta,
        );
        deliver(inner, &registry.inner.snapshot.load(), &report);
    }
    if !nested {
        REPORTING_FAILURE.with(|r| r.set(false));
    }
}
