//! How authtel spans get OpenTelemetry ids, and how other sinks read them.
//!
//! # Ids
//! An authtel [`SpanId`](authtel_core::telemetry::SpanId) is 64 random non-zero bits, which
//! is exactly an OpenTelemetry span id: the OTel span id of an authtel span is its authtel id,
//! byte for byte ([`otel_span_id`]). So a span's parent is known at stop time without any
//! bookkeeping, and `AuditEvent.span_id` (16 hex digits) already names the OTel span.
//!
//! # Traces
//! The trace id belongs to the outermost authtel span of a chain (its root):
//! - When the root **starts** inside an active OpenTelemetry span — the current
//!   [`opentelemetry::Context`], or with feature `tracing-bridge` the current `tracing` span
//!   bridged by `tracing-opentelemetry` — the root becomes that span's child, and the
//!   parent's trace id is recorded, keyed by the root's authtel id, for every span and signal
//!   of the chain. Entries are kept after the root ends (so sinks running after us can still
//!   stamp records) and swept once [`MAX_TRACKED_ROOTS`] is reached.
//! - Else, when the root's metadata carries a W3C trace parent — inherited from the request
//!   context, which `authtel-tower` fills from the request's `traceparent` header — the root
//!   becomes a child of that remote span, the same way.
//! - Otherwise the trace id is derived from the root's id (deterministic, so no
//!   bookkeeping): its 8 bytes followed by a mix of them.
//!
//! Nested authtel spans keep their authtel parent even if the application opened other
//! OpenTelemetry spans in between.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use authtel_core::audit::AuditEvent;
use authtel_core::catalogue::EventKind;
use authtel_core::telemetry::{self, EventRecord, SpanContext};
use opentelemetry::trace::{SpanId, TraceContextExt, TraceFlags, TraceId};

/// How many roots with an external parent are tracked before ended ones are swept.
pub const MAX_TRACKED_ROOTS: usize = 4096;

/// The OpenTelemetry span a root authtel span was started under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExternalParent {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) flags: TraceFlags,
    pub(crate) remote: bool,
}

struct Root {
    parent: ExternalParent,
    ended: bool,
}

static ROOTS: Mutex<Option<HashMap<u64, Root>>> = Mutex::new(None);

fn roots() -> MutexGuard<'static, Option<HashMap<u64, Root>>> {
    ROOTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// The active OpenTelemetry span on this thread, if any.
pub(crate) fn external_parent() -> Option<ExternalParent> {
    let from_context = |cx: &opentelemetry::Context| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| ExternalParent {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
            flags: sc.trace_flags(),
            remote: sc.is_remote(),
        })
    };
    if let Some(p) = opentelemetry::Context::map_current(|cx| from_context(cx)) {
        return Some(p);
    }
    #[cfg(feature = "tracing-bridge")]
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let span = tracing::Span::current();
        if !span.is_none() {
            return from_context(&span.context());
        }
    }
    None
}

/// The active OpenTelemetry span, else the caller's span named by the record's trace parent
/// (a `traceparent` header, through the request context).
pub(crate) fn external_parent_of(record: &EventRecord<'_>) -> Option<ExternalParent> {
    external_parent().or_else(|| {
        record.metadata.get_trace_parent().map(|tp| ExternalParent {
            trace_id: TraceId::from_bytes(tp.trace_id()),
            span_id: otel_span_id(tp.parent_id()),
            flags: if tp.sampled() {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            remote: true,
        })
    })
}

/// Records the external parent of a root span that starts now (`record` is its start), if
/// there is one.
pub(crate) fn root_started(record: &EventRecord<'_>) {
    let root = record.context.span_id;
    let Some(parent) = external_parent_of(record) else {
        return;
    };
    let mut guard = roots();
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= MAX_TRACKED_ROOTS {
        map.retain(|_, r| !r.ended);
    }
    if map.len() < MAX_TRACKED_ROOTS {
        map.insert(
            root.get(),
            Root {
                parent,
                ended: false,
            },
        );
    }
}

/// Marks a root as ended: its entry may be swept from now on.
pub(crate) fn root_ended(root: telemetry::SpanId) {
    if let Some(r) = roots().as_mut().and_then(|m| m.get_mut(&root.get())) {
        r.ended = true;
    }
}

/// The external parent recorded for `root`, if any.
pub(crate) fn recorded_parent(root: telemetry::SpanId) -> Option<ExternalParent> {
    roots()
        .as_ref()
        .and_then(|m| m.get(&root.get()))
        .map(|r| r.parent)
}

/// The OpenTelemetry span id of an authtel span: the same 64 bits.
///
/// ```
/// use authtel_core::telemetry::SpanId;
/// let id = SpanId::from_u64(0x0123_4567_89ab_cdef).unwrap();
/// assert_eq!(authtel_otlp::otel_span_id(id).to_string(), "0123456789abcdef");
/// ```
pub fn otel_span_id(id: telemetry::SpanId) -> SpanId {
    SpanId::from_bytes(id.get().to_be_bytes())
}

/// The trace id derived from a root's id when it had no external parent.
pub(crate) fn derived_trace_id(root: telemetry::SpanId) -> TraceId {
    let hi = root.get();
    let lo = hi.rotate_left(29).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5_A5A5_A5A5_A5A5;
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&hi.to_be_bytes());
    bytes[8..].copy_from_slice(&lo.to_be_bytes());
    TraceId::from_bytes(bytes)
}

/// The trace of a chain, and the external parent of its root if it had one.
pub(crate) fn trace_of(context: &SpanContext) -> (TraceId, Option<ExternalParent>) {
    match recorded_parent(context.root_id) {
        Some(p) => (p.trace_id, Some(p)),
        None => (derived_trace_id(context.root_id), None),
    }
}

/// OpenTelemetry ids of an event, as hex text: what an audit record stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceIds {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits: the span the event belongs to.
    pub span_id: String,
}

/// The OpenTelemetry ids of an event: for span events the span itself; for a signal, the
/// span it was emitted in (or, outside any authtel span, the active OpenTelemetry span).
/// A signal outside any span gets its own id and a trace derived from it.
///
/// ```
/// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
/// use authtel_core::{catalogue, metadata::Metadata};
/// let meta = Metadata::new();
/// let measurements = Measurements::new();
/// let record = EventRecord::signal(&catalogue::SECURITY_LOCKOUT, SpanContext::child_of(None), &measurements, &meta);
/// let ids = authtel_otlp::trace_ids(&record);
/// assert_eq!(ids.trace_id.len(), 32);
/// assert_eq!(ids.span_id, record.context.span_id.to_string());
/// ```
pub fn trace_ids(record: &EventRecord<'_>) -> TraceIds {
    let (trace_id, span_id) = otel_ids(record);
    TraceIds {
        trace_id: trace_id.to_string(),
        span_id: span_id.to_string(),
    }
}

/// The trace and span ids a record's log record (and audit record) carries.
pub(crate) fn otel_ids(record: &EventRecord<'_>) -> (TraceId, SpanId) {
    let ctx = &record.context;
    if record.event.kind() == EventKind::Signal {
        match ctx.parent_id {
            Some(parent) => (trace_of(ctx).0, otel_span_id(parent)),
            None => match external_parent_of(record) {
                Some(p) => (p.trace_id, p.span_id),
                None => (derived_trace_id(ctx.span_id), otel_span_id(ctx.span_id)),
            },
        }
    } else {
        (trace_of(ctx).0, otel_span_id(ctx.span_id))
    }
}

/// The ids of the current authtel span on this thread, or else of the active OpenTelemetry
/// span; `None` outside both.
///
/// ```
/// assert!(authtel_otlp::current_trace_ids().is_none());
/// ```
pub fn current_trace_ids() -> Option<TraceIds> {
    if let Some(ctx) = SpanContext::current() {
        return Some(TraceIds {
            trace_id: trace_of(&ctx).0.to_string(),
            span_id: otel_span_id(ctx.span_id).to_string(),
        });
    }
    external_parent().map(|p| TraceIds {
        trace_id: p.trace_id.to_string(),
        span_id: p.span_id.to_string(),
    })
}

/// Sets `audit.trace_id` (32 hex digits) and `audit.span_id` from the OpenTelemetry ids of
/// `record`, so the audit trail joins the traces. Call it in a sink's handler right after
/// [`AuditEvent::from_record`].
///
/// ```
/// use authtel_core::audit::AuditEvent;
/// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
/// use authtel_core::{catalogue, metadata::Metadata};
/// let meta = Metadata::new().user_id("u_1");
/// let measurements = Measurements::new();
/// let record = EventRecord::signal(&catalogue::SECURITY_LOCKOUT, SpanContext::child_of(None), &measurements, &meta);
/// let audit = AuditEvent::from_record(&record).unwrap();
/// let audit = authtel_otlp::stamp_trace_ids(audit, &record);
/// assert_eq!(audit.trace_id().map(str::len), Some(32));
/// ```
#[must_use = "the stamped record is returned; the one passed in is consumed"]
pub fn stamp_trace_ids(audit: AuditEvent, record: &EventRecord<'_>) -> AuditEvent {
    let ids = trace_ids(record);
    audit.with_trace_id(ids.trace_id).with_span_id(ids.span_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_trace_ids_are_deterministic_and_valid() {
        let root = telemetry::SpanId::from_u64(42).unwrap();
        assert_eq!(derived_trace_id(root), derived_trace_id(root));
        assert_ne!(derived_trace_id(root), TraceId::INVALID);
        let other = telemetry::SpanId::from_u64(43).unwrap();
        assert_ne!(derived_trace_id(root), derived_trace_id(other));
    }

    #[test]
    fn a_trace_parent_in_the_metadata_becomes_the_roots_remote_parent() {
        use authtel_core::catalogue;
        use authtel_core::context::TraceParent;
        use authtel_core::metadata::Metadata;
        use authtel_core::telemetry::Measurements;
        let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap();
        let meta = Metadata::new().trace_parent(&tp);
        let numbers = Measurements::new();
        let root = SpanContext::child_of(None);
        let start = EventRecord::signal(catalogue::AUTH_LOGIN.start(), root, &numbers, &meta);
        root_started(&start);
        let (trace, parent) = trace_of(&root);
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let parent = parent.expect("the traceparent's span is the root's parent");
        assert_eq!(parent.span_id.to_string(), "00f067aa0ba902b7");
        assert!(parent.remote);
        // A signal outside any span, in the same request: the request's trace.
        let signal = EventRecord::signal(
            &catalogue::SECURITY_LOCKOUT,
            SpanContext::child_of(None),
            &numbers,
            &meta,
        );
        assert_eq!(
            trace_ids(&signal).trace_id,
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        root_ended(root.span_id);
    }
}
