//! [`OtlpHandler`]: turns authtel events into OpenTelemetry spans and log records.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use authtel_core::catalogue::{Category, EventKind};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::{EventRecord, ExceptionKind};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::logs::SdkLogger;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks, SpanProcessor};

use crate::attributes::{self, record_attributes};
use crate::correlation::{self, otel_span_id};

/// The instrumentation scope of everything authtel exports.
pub const SCOPE_NAME: &str = "authtel";

pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE_NAME)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

pub(crate) struct Inner {
    pub(crate) spans: Arc<dyn SpanProcessor>,
    pub(crate) logger: SdkLogger,
    pub(crate) scope: InstrumentationScope,
    pub(crate) audit_logs: bool,
    pub(crate) counters: Arc<crate::export::Counters>,
}

/// The [`Handler`] of an [`OtlpSink`](crate::OtlpSink): each catalogue span becomes an
/// OpenTelemetry span when it stops, each signal (and, unless turned off, each audit record:
/// span stops and exceptions) becomes a log record. Cheap to clone.
///
/// Spans are built at stop time from the stop's measurements (start = end − duration) and
/// handed to the sink's batch processor; nothing blocks the emitting thread. Start events
/// only record the external parent of root spans (see [`correlation`](crate::correlation)).
#[derive(Clone)]
pub struct OtlpHandler {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for OtlpHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpHandler")
            .field("audit_logs", &self.inner.audit_logs)
            .finish()
    }
}

impl Handler for OtlpHandler {
    fn handle(&self, record: &EventRecord<'_>) {
        match record.event.kind() {
            EventKind::SpanStart => {
                if record.context.parent_id.is_none() {
                    correlation::root_started(record);
                }
            }
            EventKind::SpanStop | EventKind::SpanException => {
                self.inner.spans.on_end(self.span_data(record));
                if self.inner.audit_logs {
                    self.emit_log(record);
                }
                if record.context.parent_id.is_none() {
                    correlation::root_ended(record.context.span_id);
                }
            }
            EventKind::Signal => self.emit_log(record),
        }
    }
}

/// Whether a record reports a failed operation.
fn failed(record: &EventRecord<'_>) -> bool {
    record.exception.is_some()
        || matches!(
            record.outcome,
            Some(Outcome::Failure | Outcome::Denied | Outcome::Error)
        )
}

/// `error.type`: the error's type name if the result gave one, else the outcome.
fn error_type(record: &EventRecord<'_>) -> &'static str {
    record
        .error_type
        .or_else(|| record.outcome.map(Outcome::as_str))
        .unwrap_or("_OTHER")
}

impl OtlpHandler {
    fn span_data(&self, record: &EventRecord<'_>) -> SpanData {
        let ctx = record.context;
        let (trace_id, external) = correlation::trace_of(&ctx);
        let (parent_span_id, parent_span_is_remote) = match (ctx.parent_id, external) {
            (Some(parent), _) => (otel_span_id(parent), false),
            (None, Some(p)) => (p.span_id, p.remote),
            (None, None) => (SpanId::INVALID, false),
        };
        let end_time = record
            .measurements
            .system_time
            .unwrap_or_else(SystemTime::now);
        let start_time = record
            .measurements
            .duration
            .and_then(|d| end_time.checked_sub(d))
            .unwrap_or(end_time);
        let mut attrs = Vec::with_capacity(8);
        record_attributes(record, &mut attrs);
        let mut status = Status::Unset;
        if failed(record) {
            let kind = error_type(record);
            attrs.push(KeyValue::new(attributes::ERROR_TYPE, kind));
            status = Status::error(kind);
        }
        let mut events = SpanEvents::default();
        if let Some(exception) = record.exception
            && exception.kind != ExceptionKind::Cancelled
        {
            events.events.push(opentelemetry::trace::Event::new(
                "exception",
                end_time,
                std::iter::once(KeyValue::new(
                    attributes::EXCEPTION_TYPE,
                    exception.kind.as_str(),
                ))
                .chain(exception.reason.map(|message| {
                    // Screened by core's policy (and absent unless the application opted in).
                    KeyValue::new(attributes::EXCEPTION_MESSAGE, message.to_owned())
                }))
                .collect(),
                0,
            ));
        }
        let flags = external.map_or(TraceFlags::SAMPLED, |p| p.flags.with_sampled(true));
        SpanData {
            span_context: SpanContext::new(
                trace_id,
                otel_span_id(ctx.span_id),
                flags,
                false,
                TraceState::NONE,
            ),
            parent_span_id,
            parent_span_is_remote,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed(record.span_name()),
            start_time,
            end_time,
            attributes: attrs,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status,
            instrumentation_scope: self.inner.scope.clone(),
        }
    }

    fn emit_log(&self, record: &EventRecord<'_>) {
        let logger = &self.inner.logger;
        let mut log = logger.create_log_record();
        let event = record.event;
        let (severity, text) = severity(record);
        log.set_event_name(event.name());
        log.set_severity_number(severity);
        log.set_severity_text(text);
        log.set_body(AnyValue::from(event.name()));
        let now = SystemTime::now();
        log.set_timestamp(record.measurements.system_time.unwrap_or(now));
        log.set_observed_timestamp(now);
        let (trace_id, span_id) = correlation::otel_ids(record);
        log.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
        let mut attrs = Vec::with_capacity(8);
        attrs.push(KeyValue::new(attributes::EVENT_NAME, event.name()));
        record_attributes(record, &mut attrs);
        if event.kind() != EventKind::Signal && failed(record) {
            attrs.push(KeyValue::new(attributes::ERROR_TYPE, error_type(record)));
        }
        if let Some(exception) = record.exception {
            attrs.push(KeyValue::new(
                attributes::EXCEPTION_TYPE,
                exception.kind.as_str(),
            ));
            if let Some(message) = exception.reason {
                attrs.push(KeyValue::new(
                    attributes::EXCEPTION_MESSAGE,
                    message.to_owned(),
                ));
            }
        }
        log.add_attributes(attrs.into_iter().map(|kv| (kv.key, any_value(kv.value))));
        self.inner
            .counters
            .logs_emitted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        logger.emit(log);
    }
}

/// Log severity by category: security signals WARN, exceptions and authtel's own pipeline
/// events ERROR, everything else INFO.
fn severity(record: &EventRecord<'_>) -> (Severity, &'static str) {
    let event = record.event;
    if event.kind() == EventKind::SpanException
        || event.category() == Category::Pipeline
        || event.severity() == authtel_core::catalogue::Severity::Error
    {
        (Severity::Error, "ERROR")
    } else if event.is_security_signal() {
        (Severity::Warn, "WARN")
    } else {
        (Severity::Info, "INFO")
    }
}

fn any_value(value: Value) -> AnyValue {
    match value {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(n) => AnyValue::Int(n),
        Value::F64(n) => AnyValue::Double(n),
        Value::String(s) => AnyValue::String(s),
        other => AnyValue::String(other.to_string().into()),
    }
}
