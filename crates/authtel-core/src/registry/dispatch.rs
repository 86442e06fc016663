//! The emit side: where the current thread's events go, and delivering a record to the
//! handlers of a snapshot (the hot path; everything here is inlined into the emitters).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Entry, Inner, REPORTING_FAILURE, Registry, SCOPE_STACK, Snapshot};
use crate::catalogue::{self, SpanDef};
use crate::metadata::Metadata;
use crate::record::{EventRecord, Measurements, SpanContext};

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

    use super::super::{GLOBAL, GLOBAL_GENERATION, Inner, Snapshot};
    use super::{Target, with_uncached_target};

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
    pub(in crate::registry) fn release() {
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
    pub(in crate::registry) fn invalidate() {
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
