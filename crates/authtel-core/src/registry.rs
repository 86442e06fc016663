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
use crate::record::{EventRecord, Measurements, SpanContext};

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

/// Where the current thread's events go: its registry, and the handlers it had when the
/// emit began.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    inner: &'a Inner,
    snapshot: &'a Snapshot,
}

impl Target<'_> {
    /// Whether a handler hears any of the span's events. Checked start first: a handler
    /// that hears a span almost always hears its start, so this is usually one lookup.
    #[inline]
    pub(crate) fn wants_span(&self, span: &SpanDef) -> bool {
        self.snapshot.wants(span.start())
            || self.snapshot.wants(span.stop())
            || self.snapshot.wants(span.exception())
    }

    /// Delivers a record to the handlers that want it.
    #[inline]
    pub(crate) fn deliver(&self, record: &EventRecord<'_>) {
        deliver(self.inner, self.snapshot, record)
    }
}

/// Runs `f` once with the registry the current thread emits to (`None` when there is none).
///
/// A closure span runs its whole body inside `f`, so its start and its stop go to the same
/// handlers with one lookup.
#[inline]
pub(crate) fn with_target<R>(f: impl FnOnce(Option<Target<'_>>) -> R) -> R {
    global_snapshot::with(f)
}

/// The thread's cache was not valid: the thread's newest scope if it entered one (tests),
/// else the global registry's snapshot, refreshing the cache.
#[cold]
#[inline(never)]
pub(crate) fn with_uncached_target<R>(f: impl FnOnce(Option<Target<'_>>) -> R) -> R {
    // `try_with`: an emit from a thread-local destructor (the scope stack may be gone) must
    // not abort the process; with no stack there is no scope, so it goes to the global.
    let scope = SCOPE_STACK.try_with(|s| s.borrow().last().map(|(_, i)| i.clone()));
    let Some(inner) = scope.ok().flatten() else {
        return global_snapshot::refresh_and_run(f);
    };
    let snapshot = inner.snapshot.load();
    f(Some(Target {
        inner: &inner,
        snapshot: &snapshot,
    }))
}

/// Each thread's cached reference to the global registry's snapshot.
///
/// Why a cache: an `ArcSwap` load costs two fenced atomic operations (its debt slot), which
/// is most of what a no-op handler costs. The cached snapshot is revalidated with one load
/// of [`GLOBAL_GENERATION`] and read through a plain thread-local cell (no `RefCell`, no
/// destructor-state check on the hot path).
///
/// The cache owns one strong reference (`Arc::into_raw`). It is replaced or released only
/// when no emit on this thread is reading it (`READERS` is zero): at a refresh, when the
/// thread detaches a handler, and when the thread exits.
pub(crate) mod global_snapshot {
    use std::cell::Cell;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::{GLOBAL, GLOBAL_GENERATION, Inner, Snapshot, Target, with_uncached_target};

    /// No generation is ever this: the cache is empty.
    const EMPTY: u64 = u64::MAX;

    /// The generation the snapshot was loaded at, the snapshot, and the global registry's
    /// state it belongs to (kept here so the hot path does not touch `GLOBAL` either).
    type Cached = (u64, *const Snapshot, *const Inner);

    const NOTHING: Cached = (EMPTY, std::ptr::null(), std::ptr::null());

    thread_local! {
        /// This thread's cache; valid only when its generation is the current one (never
        /// `EMPTY`). An invalidated cache keeps its reference until the next refresh.
        static CACHED: Cell<Cached> = const { Cell::new(NOTHING) };
        /// Emits on this thread reading the cached snapshot right now (a handler that
        /// emits, or a closure span's body, nests them).
        static READERS: Cell<u32> = const { Cell::new(0) };
        /// Releases the cached snapshot when the thread exits.
        static OWNER: Owner = const { Owner };
    }

    struct Owner;

    impl Drop for Owner {
        fn drop(&mut self) {
            // A reader still holding it cannot happen (nothing emits while this destructor
            // runs); if it did, `release` leaves the reference alone: leaking beats freeing
            // under it.
            release();
        }
    }

    /// Counts a reader for as long as it lives, also when the reader unwinds.
    struct Reading;

    impl Reading {
        #[inline]
        fn begin() -> Reading {
            READERS.set(READERS.get() + 1);
            Reading
        }
    }

    impl Drop for Reading {
        #[inline]
        fn drop(&mut self) {
            READERS.set(READERS.get() - 1);
        }
    }

    /// Drops this thread's cached snapshot now (the thread detached a handler, or is
    /// exiting), unless an emit on this thread is reading it; then it only invalidates it.
    pub(super) fn release() {
        if READERS.get() != 0 {
            invalidate();
            return;
        }
        let (_, cached, _) = CACHED.replace(NOTHING);
        if !cached.is_null() {
            // SAFETY: `cached` came from `Arc::into_raw` in `refresh_and_run` and was just
            // removed from the cache, so this thread's reference is released exactly once;
            // no reader is counted, so nothing borrows it.
            drop(unsafe { Arc::from_raw(cached) });
        }
    }

    /// Makes this thread's cache invalid (it entered a scope), keeping its reference to be
    /// released or replaced by the next refresh.
    pub(super) fn invalidate() {
        let (_, snapshot, inner) = CACHED.get();
        CACHED.set((EMPTY, snapshot, inner));
    }

    /// Runs `f` with the global registry and its current snapshot (`None` when the global
    /// registry was never used), or with the thread's scope if it entered one: a valid cache
    /// means the thread is in no scope.
    #[inline]
    pub(super) fn with<R>(f: impl FnOnce(Option<Target<'_>>) -> R) -> R {
        match cached() {
            Some(cached) => f(Some(cached.target())),
            None => with_uncached_target(f),
        }
    }

    /// The thread's cached global snapshot, while it is valid: held for one emit.
    pub(crate) struct CachedTarget {
        snapshot: *const Snapshot,
        inner: *const Inner,
        _reading: Reading,
    }

    impl CachedTarget {
        /// The target this cache stands for.
        #[inline]
        pub(crate) fn target(&self) -> Target<'_> {
            // SAFETY: `cached` built this only from a valid cache (generation not EMPTY), so
            // `snapshot` is this thread's strong reference from `Arc::into_raw`, not released
            // while `_reading` counts this reader; `inner` points into the global registry,
            // which lives for the whole process.
            Target {
                inner: unsafe { &*self.inner },
                snapshot: unsafe { &*self.snapshot },
            }
        }
    }

    /// The cached target if the cache is valid (the thread is in no scope and nothing was
    /// attached or detached since it was filled); `None` sends the caller to
    /// `with_uncached_target`.
    #[inline]
    pub(crate) fn cached() -> Option<CachedTarget> {
        let generation = GLOBAL_GENERATION.load(Ordering::Acquire);
        let (cached_generation, snapshot, inner) = CACHED.get();
        if cached_generation != generation {
            return None;
        }
        Some(CachedTarget {
            snapshot,
            inner,
            _reading: Reading::begin(),
        })
    }

    /// The cache is stale or empty: replace it, unless an emit on this thread is reading it
    /// (a handler that emits) or the thread is exiting; then load without caching.
    pub(super) fn refresh_and_run<R>(f: impl FnOnce(Option<Target<'_>>) -> R) -> R {
        // Read before the snapshot: a cache stamped with it is at worst refreshed once more.
        let generation = GLOBAL_GENERATION.load(Ordering::Acquire);
        let Some(global) = GLOBAL.get() else {
            return f(None);
        };
        let inner: &'static Inner = &global.inner;
        // Touching OWNER registers its destructor; it fails once the thread is exiting.
        if READERS.get() != 0 || OWNER.try_with(|_| ()).is_err() {
            return f(Some(Target {
                inner,
                snapshot: &inner.snapshot.load(),
            }));
        }
        // Counted as reading before the old snapshot is dropped: dropping it may drop a
        // detached handler whose `Drop` emits, and that emit must not replace `fresh`.
        let _reading = Reading::begin();
        let fresh = Arc::into_raw(inner.snapshot.load_full());
        let (_, old, _) = CACHED.replace((generation, fresh, inner));
        if !old.is_null() {
            // SAFETY: `old` came from `Arc::into_raw` here and was just removed from the
            // cache, so this releases this thread's reference exactly once.
            drop(unsafe { Arc::from_raw(old) });
        }
        // SAFETY: `fresh` is this thread's strong reference; it is replaced only when no
        // reader is counted, and `_reading` counts this one.
        f(Some(Target {
            inner,
            snapshot: unsafe { &*fresh },
        }))
    }
}

/// Hands a record to the handlers that want it: the one place every record passes, so the
/// one place a request context is merged in (at the cost of one thread-local load when no
/// context is set).
#[inline(always)]
fn deliver(inner: &Inner, snap: &Snapshot, record: &EventRecord<'_>) {
    if crate::context::is_set() {
        return deliver_in_context(inner, snap, record);
    }
    deliver_to_handlers(inner, snap, record)
}

/// A request context is in force: handlers get the record's metadata with the context's
/// fields filled in where the call site left them unset. Built only if someone listens.
#[inline(never)]
fn deliver_in_context(inner: &Inner, snap: &Snapshot, record: &EventRecord<'_>) {
    if !snap.wants(record.event) {
        return;
    }
    match crate::context::current_fields() {
        Some(fields) => {
            let mut metadata = record.metadata.clone();
            fields.fill(&mut metadata);
            deliver_to_handlers(
                inner,
                snap,
                &EventRecord {
                    metadata: &metadata,
                    ..*record
                },
            );
        }
        None => deliver_to_handlers(inner, snap, record),
    }
}

#[inline(always)]
fn deliver_to_handlers(inner: &Inner, snap: &Snapshot, record: &EventRecord<'_>) {
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
    // The panic text goes out only as the policy allows (not at all by default).
    let message = crate::policy::exception_message(crate::record::panic_reason(payload));
    let reason = message.unwrap_or("the handler panicked");
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
    let nested = REPORTING_FAILURE.replace(true);
    let meta = Metadata::new()
        .reason(crate::vocabulary::Reason::HandlerPanicked)
        .with_extra("panic_message", message)
        .with_extra("handler", &*entry.id)
        .with_extra("event", record.event.name())
        .with_extra("consecutive_failures", consecutive);
    let once = Measurements::new().count(1);
    if !nested {
        let report = EventRecord::signal(
            &catalogue::PIPELINE_HANDLER_FAILURE,
            SpanContext::child_of(Some(record.context)),
            &once,
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
            &once,
            &meta,
        );
        deliver(inner, &registry.inner.snapshot.load(), &report);
    }
    if !nested {
        REPORTING_FAILURE.set(false);
    }
}
