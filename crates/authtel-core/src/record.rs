//! What handlers receive: one [`EventRecord`] per event, with its place among spans
//! ([`SpanContext`]), its numbers ([`Measurements`]) and, for exceptions, what happened.
//!
//! These types sit below the code that uses them: the registry delivers records and the
//! telemetry functions build them, and neither needs the other for their definitions.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime};

use crate::catalogue::Event;
use crate::metadata::Metadata;
use crate::outcome::Outcome;
pub use crate::span_id::SpanId;

/// Where an event sits: its own id, its parent span (if emitted inside one) and the
/// outermost span of the chain (the correlation id of the whole operation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// This span's or signal's id.
    pub span_id: SpanId,
    /// The enclosing span, if any.
    pub parent_id: Option<SpanId>,
    /// The outermost enclosing span (itself when it has no parent).
    pub root_id: SpanId,
}

impl SpanContext {
    /// A fresh context under `parent` (a root when `None`).
    #[inline]
    pub fn child_of(parent: Option<SpanContext>) -> SpanContext {
        let span_id = SpanId::random();
        match parent {
            Some(p) => SpanContext {
                span_id,
                parent_id: Some(p.span_id),
                root_id: p.root_id,
            },
            None => SpanContext {
                span_id,
                parent_id: None,
                root_id: span_id,
            },
        }
    }

    /// The span currently open on this thread (or being polled, for async spans).
    ///
    /// ```
    /// use authtel_core::telemetry::SpanContext;
    /// assert!(SpanContext::current().is_none());
    /// ```
    #[inline]
    pub fn current() -> Option<SpanContext> {
        CURRENT.with(|c| c.get())
    }
}

thread_local! {
    /// The span open (or being polled) on this thread; telemetry's span lifecycle sets it.
    pub(crate) static CURRENT: Cell<Option<SpanContext>> = const { Cell::new(None) };
}

/// The numbers of an event.
///
/// For span events: `monotonic_time` is when the event happened, `system_time` the wall
/// time of the event (for stop/exception: start wall time plus `duration`, so no extra
/// clock read), `duration` the span's length. Signals carry what the emitter passes
/// (typically `count`); sinks read the wall clock themselves when `system_time` is unset.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measurements {
    /// Monotonic clock reading.
    pub monotonic_time: Option<Instant>,
    /// Wall clock time of the event.
    pub system_time: Option<SystemTime>,
    /// Span duration (stop and exception).
    pub duration: Option<Duration>,
    /// A count (signals: how many occurrences this event stands for).
    pub count: Option<u64>,
}

impl Measurements {
    /// No measurements.
    #[inline]
    pub const fn new() -> Measurements {
        Measurements {
            monotonic_time: None,
            system_time: None,
            duration: None,
            count: None,
        }
    }

    /// With a count.
    #[must_use]
    #[inline]
    pub const fn count(mut self, n: u64) -> Measurements {
        self.count = Some(n);
        self
    }

    /// With a wall clock time.
    #[must_use]
    #[inline]
    pub const fn at(mut self, time: SystemTime) -> Measurements {
        self.system_time = Some(time);
        self
    }

    /// With a duration.
    #[must_use]
    #[inline]
    pub const fn duration(mut self, d: Duration) -> Measurements {
        self.duration = Some(d);
        self
    }
}

/// How a span ended abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExceptionKind {
    /// The wrapped code panicked (the panic continues after the event).
    Panic,
    /// The span was dropped unfinished: a future dropped before completion, or a guard
    /// dropped without `stop`.
    Cancelled,
    /// The caller reported an error through [`SpanGuard::exception`](crate::telemetry::SpanGuard::exception).
    Error,
}

impl ExceptionKind {
    /// `panic`, `cancelled`, `error`.
    #[inline]
    pub const fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Panic => "panic",
            ExceptionKind::Cancelled => "cancelled",
            ExceptionKind::Error => "error",
        }
    }
}

/// Details of an exception event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception<'a> {
    /// What happened.
    pub kind: ExceptionKind,
    /// The panic message or reason: `None` unless the application opted in with
    /// [`policy::set_exception_messages`](crate::policy::set_exception_messages) (messages
    /// often quote the input that failed); then screened by the policy and truncated.
    pub reason: Option<&'a str>,
}

/// One event as handlers see it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct EventRecord<'a> {
    /// Which event.
    pub event: &'static Event,
    /// Its place among spans.
    pub context: SpanContext,
    /// Its numbers. Borrowed, like the metadata: copying them into each record cost more
    /// than the rest of a signal's emit (a copy right after the caller built them stalls on
    /// store forwarding).
    pub measurements: &'a Measurements,
    /// Its metadata, already screened by the policy.
    pub metadata: &'a Metadata<'a>,
    /// For stops: the outcome (explicit metadata outcome, else derived from the result).
    /// For exceptions: [`Outcome::Error`]. For signals: the metadata's outcome if set.
    pub outcome: Option<Outcome>,
    /// For failed stops: a low-cardinality error type name, if the result gave one.
    pub error_type: Option<&'static str>,
    /// For exceptions: what happened.
    pub exception: Option<Exception<'a>>,
}

impl<'a> EventRecord<'a> {
    /// A signal record; used by handlers that emit their own signals and by tests.
    ///
    /// ```
    /// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// use authtel_core::{catalogue, metadata::Metadata};
    /// let (meta, numbers) = (Metadata::new(), Measurements::new().count(1));
    /// let r = EventRecord::signal(&catalogue::MFA_LOCKOUT, SpanContext::child_of(None), &numbers, &meta);
    /// assert_eq!(r.event.name(), "mfa.lockout");
    /// ```
    pub fn signal(
        event: &'static Event,
        context: SpanContext,
        measurements: &'a Measurements,
        metadata: &'a Metadata<'a>,
    ) -> EventRecord<'a> {
        EventRecord {
            event,
            context,
            measurements,
            metadata,
            outcome: metadata.get_outcome(),
            error_type: None,
            exception: None,
        }
    }

    /// The span's name (`auth.login`) for span events; the event name for signals.
    ///
    /// ```
    /// # use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// # use authtel_core::{catalogue, metadata::Metadata};
    /// # let (meta, numbers) = (Metadata::new(), Measurements::new());
    /// let r = EventRecord::signal(catalogue::AUTH_LOGIN.stop(), SpanContext::child_of(None), &numbers, &meta);
    /// assert_eq!(r.span_name(), "auth.login");
    /// ```
    pub fn span_name(&self) -> &'static str {
        let name = self.event.name();
        match self.event.kind().phase_suffix() {
            Some(suffix) => &name[..name.len() - suffix.len() - 1],
            None => name,
        }
    }
}

/// The text of a panic payload. It reaches sinks only through [`screen_reason`]: panic
/// messages can carry secrets.
pub(crate) fn panic_reason(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str()
    } else {
        "panic with a non-string payload"
    }
}
