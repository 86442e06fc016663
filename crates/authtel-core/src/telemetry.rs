//! Emitting: [`span`], [`span_async`], [`start`] (a guard) and [`event()`] (or the [`event!`](crate::event!) macro).
//!
//! ```
//! use authtel_core::{catalogue, telemetry};
//! use authtel_core::metadata::Metadata;
//!
//! fn check_password(_user: &str) -> Result<(), &'static str> { Ok(()) }
//!
//! // One line around the operation: start, then stop with the outcome read from the
//! // `Result` (or an exception if it panics; the panic then continues).
//! let result = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || {
//!     check_password("u_1")
//! });
//! assert!(result.is_ok());
//!
//! // A one-shot signal.
//! telemetry::event(
//!     &catalogue::SECURITY_RATE_LIMITED,
//!     telemetry::Measurements::new().count(1),
//!     Metadata::new().rate_limit_key("ip:203.0.113.7"),
//! );
//! ```
//!
//! With nothing attached, each of these costs one atomic load: no clock is read, no id
//! drawn, nothing allocated.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use crate::catalogue::{Event, SpanDef};
use crate::metadata::Metadata;
use crate::outcome::{Outcome, SpanOutcome};
use crate::registry::{self, Target};

pub use crate::event;
use crate::record::CURRENT;
pub use crate::record::{EventRecord, Exception, ExceptionKind, Measurements, SpanContext, SpanId};
pub use crate::registry::{attach, detach, handlers, is_active};

/// Wall-clock time for a monotonic reading, without a second clock read per span.
///
/// Each thread keeps an anchor — a monotonic reading and the wall time read right after
/// it — and derives wall time as anchor + elapsed. The anchor is re-read every
/// [`REANCHOR_AFTER`](wall_clock::REANCHOR_AFTER), so an NTP step of the system clock
/// shows in span times within that interval, and slewing drift stays in microseconds.
mod wall_clock {
    use std::cell::Cell;
    use std::time::{Duration, Instant, SystemTime};

    pub(super) const REANCHOR_AFTER: Duration = Duration::from_millis(100);

    thread_local! {
        static ANCHOR: Cell<Option<(Instant, SystemTime)>> = const { Cell::new(None) };
    }

    #[inline]
    pub(super) fn at(now: Instant) -> SystemTime {
        if let Some((mono, wall)) = ANCHOR.get()
            && let Some(elapsed) = now.checked_duration_since(mono)
            && elapsed < REANCHOR_AFTER
        {
            return wall + elapsed;
        }
        reanchor(now)
    }

    #[cold]
    fn reanchor(now: Instant) -> SystemTime {
        let wall = SystemTime::now();
        ANCHOR.set(Some((now, wall)));
        wall
    }
}

/// Spans whose guards were stopped while a span opened inside them was still current
/// (guards stopped out of order), with the span each one had replaced as current.
///
/// Bounded and allocation-free: the emit path never allocates. Beyond
/// [`CAPACITY`](ended_out_of_order::CAPACITY) such spans at once on one thread, the
/// oldest is forgotten, and an ended span may then become current again until its
/// parent-most span ends.
mod ended_out_of_order {
    use std::cell::{Cell, RefCell};

    use super::{SpanContext, SpanId};

    pub(super) const CAPACITY: usize = 8;

    type Slot = Option<(SpanId, Option<SpanContext>)>;

    thread_local! {
        static LEN: Cell<usize> = const { Cell::new(0) };
        static SLOTS: RefCell<[Slot; CAPACITY]> = const { RefCell::new([None; CAPACITY]) };
    }

    pub(super) fn remember(ended: SpanId, previous: Option<SpanContext>) {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if LEN.get() == CAPACITY {
                slots.rotate_left(1);
                slots[CAPACITY - 1] = None;
                LEN.set(CAPACITY - 1);
            }
            slots[LEN.get()] = Some((ended, previous));
            LEN.set(LEN.get() + 1);
        });
    }

    /// `previous`, or — if that span already ended — what it had replaced, and so on.
    #[inline]
    pub(super) fn skip_ended(mut previous: Option<SpanContext>) -> Option<SpanContext> {
        if LEN.get() == 0 {
            return previous;
        }
        // Each step removes one slot, so this ends within CAPACITY steps.
        while let Some(ctx) = previous {
            match take(ctx.span_id) {
                Some(before) => previous = before,
                None => break,
            }
        }
        previous
    }

    fn take(id: SpanId) -> Option<Option<SpanContext>> {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            let len = LEN.get();
            let pos = slots[..len]
                .iter()
                .position(|s| matches!(s, Some((ended, _)) if *ended == id))?;
            let (_, before) = slots[pos].take()?;
            slots[pos..len].rotate_left(1);
            LEN.set(len - 1);
            Some(before)
        })
    }
}

/// Emits a one-shot signal.
///
/// The arguments are built by the caller before the call, even when nothing is attached
/// (a few stores); [`event!`](crate::event!) takes the same arguments and builds them only
/// when a handler could hear the event.
///
/// ```
/// use authtel_core::{catalogue, telemetry::{self, Measurements}, metadata::Metadata};
/// telemetry::event(&catalogue::MFA_LOCKOUT, Measurements::new(), Metadata::new().user_id("u_9"));
/// ```
#[inline]
pub fn event(event: &'static Event, measurements: Measurements, metadata: Metadata<'_>) {
    if !registry::is_active() {
        return;
    }
    emit_signal(event, &measurements, &metadata);
}

/// What [`event!`](crate::event!) calls when someone listens: builds the arguments and
/// emits. Not inlined, so the macro's call site stays small.
#[doc(hidden)]
#[cold]
#[inline(never)]
pub fn __event_with<'a>(arguments: impl FnOnce() -> (&'static Event, Measurements, Metadata<'a>)) {
    let (event, measurements, metadata) = arguments();
    emit_signal(event, &measurements, &metadata);
}

/// A signal when someone may listen: straight to the thread's cached handlers when they are
/// current (the hot path: nothing spilled, nothing else inlined), else the cold path.
#[inline(never)]
fn emit_signal(event: &'static Event, measurements: &Measurements, metadata: &Metadata<'_>) {
    match registry::global_snapshot::cached() {
        Some(cached) => deliver_signal(cached.target(), event, measurements, metadata),
        None => emit_signal_uncached(event, measurements, metadata),
    }
}

/// The thread's cached handlers were stale, or it is in a scope.
#[cold]
#[inline(never)]
fn emit_signal_uncached(
    event: &'static Event,
    measurements: &Measurements,
    metadata: &Metadata<'_>,
) {
    registry::with_uncached_target(|target| {
        if let Some(target) = target {
            deliver_signal(target, event, measurements, metadata);
        }
    });
}

/// Builds the signal's record (its id, its parent span) and delivers it.
#[inline(always)]
fn deliver_signal(
    target: Target<'_>,
    event: &'static Event,
    measurements: &Measurements,
    metadata: &Metadata<'_>,
) {
    target.deliver(&EventRecord::signal(
        event,
        SpanContext::child_of(SpanContext::current()),
        measurements,
        metadata,
    ));
}

/// Runs `f` inside a span: emits `start`, then `stop` with the outcome of `f`'s return
/// value, or `exception` (kind `panic`) if `f` panics — and then the panic continues.
///
/// Start and end go to the handlers attached when the span started (one registry lookup
/// per span). Meant for operations (a login, a token check): a span around a thread's whole
/// run loop would keep that thread on a slower path after handlers change; use [`start`]
/// for that.
///
/// ```
/// use authtel_core::{catalogue, telemetry, metadata::Metadata};
/// let ok: bool = telemetry::span(&catalogue::MFA_VERIFY, Metadata::new().method("totp"), || true);
/// assert!(ok);
/// ```
#[inline]
pub fn span<R, F>(span: &'static SpanDef, metadata: Metadata<'_>, f: F) -> R
where
    R: SpanOutcome,
    F: FnOnce() -> R,
{
    if !registry::is_active() {
        return f();
    }
    // The metadata stays in this frame and is lent to start/stop: moving it into a guard
    // would copy a few hundred bytes twice per span.
    registry::with_target(|target| match target {
        Some(target) if target.wants_span(span) => run_span(target, span, &metadata, f),
        _ => f(),
    })
}

/// A closure span someone listens to: start, the body, then stop or exception. Start and
/// end go to the handlers attached when the span started (one registry lookup per span);
/// a handler detached meanwhile is skipped, one attached meanwhile hears neither.
fn run_span<R, F>(target: Target<'_>, span: &'static SpanDef, metadata: &Metadata<'_>, f: F) -> R
where
    R: SpanOutcome,
    F: FnOnce() -> R,
{
    let live = emit_start(target, span, metadata, true);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => {
            emit_end(target, span, metadata, live, Ending::stop_with(&result));
            result
        }
        Err(payload) => {
            let reason = crate::record::panic_reason(&*payload);
            let ending = Ending::Exception(ExceptionKind::Panic, reason);
            emit_end(target, span, metadata, live, ending);
            resume_unwind(payload)
        }
    }
}

/// Starts a span and returns a guard, for code that cannot be wrapped in a closure.
/// Call [`SpanGuard::stop`] (or [`stop_with`](SpanGuard::stop_with)); a guard dropped
/// without it emits an exception: kind `panic` while unwinding, `cancelled` otherwise.
///
/// ```
/// use authtel_core::{catalogue, telemetry, metadata::Metadata, outcome::Outcome};
/// let mut guard = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new().user_id("u_3"));
/// // … the verification …
/// guard.metadata_mut().try_extra("device", "phone").unwrap();
/// guard.stop(Outcome::Success);
/// ```
// Inlined, like `SpanGuard::begin`: otherwise the metadata (a few hundred bytes) is copied
// once more on its way into the guard.
#[inline]
pub fn start<'a>(span: &'static SpanDef, metadata: Metadata<'a>) -> SpanGuard<'a> {
    SpanGuard::begin(span, metadata, true)
}

/// Wraps a future in a span: `start` when created, `stop` with the output's outcome when
/// it completes, `exception` if a poll panics (kind `panic`) or if it is dropped before
/// completing (kind `cancelled`). While it is polled, it is the current span, so spans
/// and signals inside it are its children.
///
/// ```
/// use authtel_core::{catalogue, telemetry, metadata::Metadata};
/// async fn login() -> Result<(), ()> { Ok(()) }
/// let fut = telemetry::span_async(&catalogue::AUTH_LOGIN, Metadata::new(), login());
/// # drop(fut);
/// ```
pub fn span_async<'a, F>(
    span: &'static SpanDef,
    metadata: Metadata<'a>,
    future: F,
) -> SpanFuture<'a, F>
where
    F: Future,
    F::Output: SpanOutcome,
{
    SpanFuture {
        inner: future,
        guard: SpanGuard::begin(span, metadata, false),
    }
}

pin_project_lite::pin_project! {
    /// A future running inside a span; see [`span_async`].
    #[must_use = "futures do nothing unless polled"]
    pub struct SpanFuture<'a, F> {
        #[pin]
        inner: F,
        guard: SpanGuard<'a>,
    }
}

impl<F> fmt::Debug for SpanFuture<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanFuture")
            .field("guard", &self.guard)
            .finish()
    }
}

impl<F> Future for SpanFuture<'_, F>
where
    F: Future,
    F::Output: SpanOutcome,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let Some(live) = this.guard.live.as_ref() else {
            return this.inner.poll(cx);
        };
        let previous = CURRENT.with(|c| c.replace(Some(live.context)));
        let polled = catch_unwind(AssertUnwindSafe(|| this.inner.poll(cx)));
        CURRENT.with(|c| c.set(previous));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => {
                this.guard.end(Ending::stop_with(&output));
                Poll::Ready(output)
            }
            Err(payload) => {
                let reason = crate::record::panic_reason(&*payload);
                this.guard
                    .end(Ending::Exception(ExceptionKind::Panic, reason));
                resume_unwind(payload)
            }
        }
    }
}

struct Live {
    context: SpanContext,
    started: Instant,
    started_wall: SystemTime,
    /// The previous current span, when this guard made itself current.
    restore: Option<Option<SpanContext>>,
}

/// An open span; see [`start`].
#[must_use = "dropping the guard ends the span as cancelled; call stop()"]
pub struct SpanGuard<'a> {
    span: &'static SpanDef,
    metadata: Metadata<'a>,
    live: Option<Live>,
}

impl fmt::Debug for SpanGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanGuard")
            .field("span", &self.span.name())
            .field("context", &self.context())
            .finish()
    }
}

impl<'a> SpanGuard<'a> {
    #[inline]
    fn begin(span: &'static SpanDef, metadata: Metadata<'a>, make_current: bool) -> SpanGuard<'a> {
        let live = if registry::is_active() {
            open(span, &metadata, make_current)
        } else {
            None
        };
        SpanGuard {
            span,
            metadata,
            live,
        }
    }

    /// The span's context, when anyone listens (`None` when nothing is attached).
    pub fn context(&self) -> Option<SpanContext> {
        self.live.as_ref().map(|l| l.context)
    }

    /// The metadata, to add what is only known at the end (attempts remaining, reason).
    pub fn metadata_mut(&mut self) -> &mut Metadata<'a> {
        &mut self.metadata
    }

    /// Ends the span with `outcome`.
    #[inline] // taking `self` by value must not copy the guard's metadata
    pub fn stop(mut self, outcome: Outcome) {
        self.end(Ending::Stop(outcome, None));
    }

    /// Ends the span with the outcome of `result`.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// let guard = telemetry::start(&catalogue::JWT_VERIFY, Metadata::new());
    /// let result: Result<u32, String> = Err("expired".into());
    /// guard.stop_with(&result);
    /// ```
    #[inline]
    pub fn stop_with<R: SpanOutcome + ?Sized>(mut self, result: &R) {
        self.end(Ending::stop_with(result));
    }

    /// Ends the span with an exception of kind [`ExceptionKind::Error`] and a reason.
    #[inline]
    pub fn exception(mut self, reason: &str) {
        self.end(Ending::Exception(ExceptionKind::Error, reason));
    }

    fn end(&mut self, ending: Ending<'_>) {
        if let Some(live) = self.live.take() {
            close(self.span, &self.metadata, live, ending);
        }
    }
}

/// Emits a span's `start` if anyone listens to the span, and returns what its end needs.
fn open(span: &'static SpanDef, metadata: &Metadata<'_>, make_current: bool) -> Option<Live> {
    registry::with_target(|target| {
        let target = target.filter(|t| t.wants_span(span))?;
        Some(emit_start(target, span, metadata, make_current))
    })
}

/// Emits a span's `stop` (or `exception`) to the current thread's registry.
fn close(span: &'static SpanDef, metadata: &Metadata<'_>, live: Live, ending: Ending<'_>) {
    registry::with_target(|target| match target {
        Some(target) => emit_end(target, span, metadata, live, ending),
        None => restore_current(&live),
    });
}

/// How a span ended: the one thing its end event is built from.
#[derive(Clone, Copy)]
enum Ending<'r> {
    /// A `stop`: the outcome, and for a failure a low-cardinality error type if known.
    Stop(Outcome, Option<&'static str>),
    /// An `exception` (its outcome is always [`Outcome::Error`]): what happened, and the
    /// reason, screened when the event is built.
    Exception(ExceptionKind, &'r str),
}

impl Ending<'_> {
    /// A stop with the outcome (and error type) a result reports.
    #[inline]
    fn stop_with<R: SpanOutcome + ?Sized>(result: &R) -> Self {
        Ending::Stop(result.outcome(), result.error_type())
    }
}

/// Reads the clocks, delivers `start`, and makes the span current if asked.
#[inline]
fn emit_start(
    target: Target<'_>,
    span: &'static SpanDef,
    metadata: &Metadata<'_>,
    make_current: bool,
) -> Live {
    let context = SpanContext::child_of(SpanContext::current());
    let started = Instant::now();
    let started_wall = wall_clock::at(started);
    target.deliver(&EventRecord {
        event: span.start(),
        context,
        measurements: &Measurements {
            monotonic_time: Some(started),
            system_time: Some(started_wall),
            duration: None,
            count: None,
        },
        metadata,
        outcome: None,
        error_type: None,
        exception: None,
    });
    let restore = make_current.then(|| CURRENT.replace(Some(context)));
    Live {
        context,
        started,
        started_wall,
        restore,
    }
}

/// Restores the span that was current before this one, and delivers its `stop` (or
/// `exception`).
#[inline]
fn emit_end(
    target: Target<'_>,
    span: &'static SpanDef,
    metadata: &Metadata<'_>,
    live: Live,
    ending: Ending<'_>,
) {
    restore_current(&live);
    let now = Instant::now();
    let duration = now.saturating_duration_since(live.started);
    let measurements = Measurements {
        monotonic_time: Some(now),
        system_time: Some(live.started_wall + duration),
        duration: Some(duration),
        count: None,
    };
    let record = match ending {
        Ending::Stop(outcome, error_type) => {
            // The application's explicit outcome wins; a success never has an error type.
            let outcome = metadata.get_outcome().unwrap_or(outcome);
            EventRecord {
                event: span.stop(),
                context: live.context,
                measurements: &measurements,
                metadata,
                outcome: Some(outcome),
                error_type: if outcome == Outcome::Success {
                    None
                } else {
                    error_type
                },
                exception: None,
            }
        }
        Ending::Exception(kind, reason) => EventRecord {
            event: span.exception(),
            context: live.context,
            measurements: &measurements,
            metadata,
            outcome: Some(Outcome::Error),
            error_type: Some(kind.as_str()),
            exception: Some(Exception {
                kind,
                reason: crate::policy::exception_message(reason),
            }),
        },
    };
    target.deliver(&record);
}

/// Makes current again what was current before the span (when it had made itself current).
#[inline]
fn restore_current(live: &Live) {
    if let Some(previous) = live.restore {
        if CURRENT.get().map(|cur| cur.span_id) == Some(live.context.span_id) {
            CURRENT.set(ended_out_of_order::skip_ended(previous));
        } else {
            // A span opened inside this one is still current: when it ends, it must
            // restore what this span replaced, not this ended span.
            ended_out_of_order::remember(live.context.span_id, previous);
        }
    }
}

impl Drop for SpanGuard<'_> {
    fn drop(&mut self) {
        if self.live.is_none() {
            return;
        }
        self.end(if std::thread::panicking() {
            Ending::Exception(ExceptionKind::Panic, "panicked while the span was open")
        } else {
            Ending::Exception(ExceptionKind::Cancelled, "dropped before completion")
        });
    }
}
