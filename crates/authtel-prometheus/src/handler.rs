//! [`PrometheusHandler`]: catalogue events in, `metrics` counters and histograms out.
//!
//! The hot path never looks a series up by name. At construction the handler builds a
//! table indexed by each catalogue event's dense id; each slot holds lazily resolved
//! `metrics` handles (one per outcome, exception kind, operation), so a series is
//! registered with the recorder once, on first use, and every later event is an index,
//! an atomic load and the increment itself. Series that never happen are never
//! registered, which keeps the exposition free of thousands of zero lines. Application
//! events (`Event::declare`, `SpanDef::new`) are resolved on first sight into a slot
//! indexed the same way, so they take the same path as catalogue events.

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use authtel_core::catalogue::{self, Event, EventKind};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::{EventRecord, ExceptionKind};
use metrics::{Counter, Histogram, Key, Label, Recorder, SharedString};

use crate::names::{self, Kind};

static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The recorder handles are registered with.
#[derive(Clone)]
pub(crate) enum Target {
    /// Whatever recorder is installed (or locally set) when a series is first used.
    Global,
    /// A recorder owned by a [`crate::PrometheusSink`] that was not installed globally.
    Local(Arc<dyn Recorder + Send + Sync>),
}

impl Target {
    fn with<R>(&self, f: impl FnOnce(&dyn Recorder) -> R) -> R {
        match self {
            Target::Global => metrics::with_recorder(f),
            Target::Local(recorder) => f(&**recorder),
        }
    }

    /// Describes `name` (so exposition has HELP and TYPE lines) and registers it.
    fn describe(&self, recorder: &dyn Recorder, name: &'static str) {
        if let Some(d) = names::describe(name) {
            let help = SharedString::const_str(d.help);
            match d.kind {
                Kind::Counter => recorder.describe_counter(name.into(), d.unit, help),
                Kind::Gauge => recorder.describe_gauge(name.into(), d.unit, help),
                Kind::Histogram => recorder.describe_histogram(name.into(), d.unit, help),
            }
        }
    }

    pub(crate) fn counter(&self, name: &'static str, labels: Vec<Label>) -> Counter {
        let key = Key::from_parts(name, labels);
        self.with(|r| {
            self.describe(r, name);
            r.register_counter(&key, &METADATA)
        })
    }

    #[cfg_attr(not(feature = "pipeline"), allow(dead_code))]
    pub(crate) fn gauge(&self, name: &'static str, labels: Vec<Label>) -> metrics::Gauge {
        let key = Key::from_parts(name, labels);
        self.with(|r| {
            self.describe(r, name);
            r.register_gauge(&key, &METADATA)
        })
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> Histogram {
        let key = Key::from_parts(name, labels);
        self.with(|r| {
            self.describe(r, name);
            r.register_histogram(&key, &METADATA)
        })
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Global => f.write_str("Global"),
            Target::Local(_) => f.write_str("Local"),
        }
    }
}

/// A library signal with a metric of its own besides the generic ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Special {
    None,
    /// `authorization.*`: the `result` label value.
    Authorization(&'static str),
    /// A signal counted by a dedicated label-less counter, by its `count` measurement.
    Counted(&'static str),
}

fn special_for(event: &'static Event) -> Special {
    let is = |other: &'static Event| std::ptr::eq(event, other);
    if is(&catalogue::AUTHORIZATION_ALLOWED) {
        Special::Authorization("allowed")
    } else if is(&catalogue::AUTHORIZATION_DENIED) {
        Special::Authorization("denied")
    } else if is(&catalogue::AUTHORIZATION_ERROR) {
        Special::Authorization("error")
    } else if is(&catalogue::PIPELINE_HANDLER_FAILURE) {
        Special::Counted(names::HANDLER_FAILURES_TOTAL)
    } else if is(&catalogue::PIPELINE_HANDLER_DETACHED) {
        Special::Counted(names::HANDLERS_DETACHED_TOTAL)
    } else if is(&catalogue::PIPELINE_FORWARD_ERROR) {
        Special::Counted(names::PIPELINE_FORWARD_ERRORS_TOTAL)
    } else if is(&catalogue::PIPELINE_RECORDS_DROPPED) {
        Special::Counted(names::PIPELINE_DROPPED_RECORDS_TOTAL)
    } else {
        Special::None
    }
}

/// The handles of one event (or of all overflow application events).
struct EventMetrics {
    event: Option<&'static Event>,
    /// `event` label: the event's name.
    event_label: &'static str,
    /// `span` label: the span's name for span phases, else the event's name.
    span_label: &'static str,
    special: Special,
    events: [OnceLock<Counter>; 5],
    durations: [OnceLock<Histogram>; 4],
    exceptions: [OnceLock<Counter>; 3],
    security: OnceLock<Counter>,
    decisions: [OnceLock<Counter>; 5],
    counted: OnceLock<Counter>,
}

impl EventMetrics {
    fn new(event: &'static Event) -> EventMetrics {
        let name = event.name();
        let span_label = match event.kind().phase_suffix() {
            Some(suffix) => &name[..name.len() - suffix.len() - 1],
            None => name,
        };
        EventMetrics::with_labels(Some(event), name, span_label, special_for(event))
    }

    fn overflow() -> EventMetrics {
        EventMetrics::with_labels(
            None,
            names::OVERFLOW_LABEL,
            names::OVERFLOW_LABEL,
            Special::None,
        )
    }

    fn with_labels(
        event: Option<&'static Event>,
        event_label: &'static str,
        span_label: &'static str,
        special: Special,
    ) -> EventMetrics {
        EventMetrics {
            event,
            event_label,
            span_label,
            special,
            events: Default::default(),
            durations: Default::default(),
            exceptions: Default::default(),
            security: OnceLock::new(),
            decisions: Default::default(),
            counted: OnceLock::new(),
        }
    }

    #[inline]
    fn record(&self, target: &Target, record: &EventRecord<'_>) {
        let outcome = outcome_slot(record.outcome);
        let kind = record.event.kind();
        let amount = match kind {
            EventKind::Signal => record.measurements.count.unwrap_or(1),
            _ => 1,
        };
        self.events[outcome]
            .get_or_init(|| {
                target.counter(
                    names::EVENTS_TOTAL,
                    vec![
                        Label::from_static_parts("event", self.event_label),
                        Label::from_static_parts("outcome", names::OUTCOME_LABELS[outcome]),
                    ],
                )
            })
            .increment(amount);
        match kind {
            EventKind::SpanStop | EventKind::SpanException => {
                self.record_span_end(target, record, outcome)
            }
            EventKind::Signal => self.record_signal(target, record, amount),
            EventKind::SpanStart => {}
        }
    }

    #[inline]
    fn record_span_end(&self, target: &Target, record: &EventRecord<'_>, outcome: usize) {
        if let (Some(duration), Some(slot)) =
            (record.measurements.duration, self.durations.get(outcome))
        {
            slot.get_or_init(|| {
                target.histogram(
                    names::SPAN_DURATION_SECONDS,
                    vec![
                        Label::from_static_parts("span", self.span_label),
                        Label::from_static_parts("outcome", names::OUTCOME_LABELS[outcome]),
                    ],
                )
            })
            .record(duration.as_secs_f64());
        }
        if let Some(exception) = record.exception {
            let kind = exception_slot(exception.kind);
            self.exceptions[kind]
                .get_or_init(|| {
                    target.counter(
                        names::SPAN_EXCEPTIONS_TOTAL,
                        vec![
                            Label::from_static_parts("span", self.span_label),
                            Label::from_static_parts("kind", names::EXCEPTION_KIND_LABELS[kind]),
                        ],
                    )
                })
                .increment(1);
        }
    }

    fn record_signal(&self, target: &Target, record: &EventRecord<'_>, amount: u64) {
        if record.event.is_security_signal() {
            self.security
                .get_or_init(|| {
                    target.counter(
                        names::SECURITY_SIGNALS_TOTAL,
                        vec![Label::from_static_parts("signal", self.event_label)],
                    )
                })
                .increment(amount);
        }
        match self.special {
            Special::None => {}
            Special::Authorization(result) => {
                let op = operation_slot(record.metadata.get_operation());
                self.decisions[op]
                    .get_or_init(|| {
                        target.counter(
                            names::AUTHORIZATION_DECISIONS_TOTAL,
                            vec![
                                Label::from_static_parts("operation", names::OPERATION_LABELS[op]),
                                Label::from_static_parts("result", result),
                            ],
                        )
                    })
                    .increment(amount);
            }
            Special::Counted(name) => self
                .counted
                .get_or_init(|| target.counter(name, Vec::new()))
                .increment(amount),
        }
    }
}

fn outcome_slot(outcome: Option<Outcome>) -> usize {
    match outcome {
        Some(Outcome::Success) => 0,
        Some(Outcome::Failure) => 1,
        Some(Outcome::Denied) => 2,
        Some(Outcome::Error) => 3,
        None => 4,
    }
}

fn exception_slot(kind: ExceptionKind) -> usize {
    match kind {
        ExceptionKind::Panic => 0,
        ExceptionKind::Cancelled => 1,
        ExceptionKind::Error => 2,
    }
}

/// Operation names outside the closed set are counted as `custom`: the value comes from
/// the caller and must never become a label as is.
fn operation_slot(operation: Option<&str>) -> usize {
    match operation {
        Some("call") => 0,
        Some("publish") => 1,
        Some("subscribe") => 2,
        Some("announce") => 3,
        _ => 4,
    }
}

/// Turns authtel events into Prometheus metrics through the `metrics` facade.
///
/// Attach it for every event (`Selection::All`); span starts are ignored. See the crate
/// docs for the metric table. Labels come only from closed sets (event names, outcomes,
/// exception kinds, authorization operations): metadata such as user ids, addresses or
/// session ids never becomes a label, so cardinality does not grow with traffic.
///
/// [`PrometheusHandler::new`] registers with the global recorder (install one first, e.g.
/// with [`crate::PrometheusSink::builder`]`.install()`); [`crate::PrometheusSink::handler`]
/// gives a handler bound to that sink's own recorder.
///
/// ```
/// use authtel_core::registry::{Registry, Selection};
/// use authtel_core::{catalogue, telemetry, metadata::Metadata};
/// use authtel_prometheus::PrometheusSink;
///
/// let sink = PrometheusSink::builder().build()?;
/// let registry = Registry::new();
/// registry.attach("prometheus", Selection::All, sink.handler())?;
/// let _scope = registry.enter();
/// let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_1"), || Ok::<_, ()>(()));
/// assert!(sink.render().contains(r#"authtel_events_total{event="auth.login.stop",outcome="success"} 1"#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PrometheusHandler {
    target: Target,
    /// Catalogue events by dense id; `None` for ids of application events.
    table: Box<[Option<EventMetrics>]>,
    /// Application events by dense id past the catalogue's (`id - table.len()`), each
    /// set on the event's first sight to its entry in `custom` or to `overflow`, so a
    /// declared event takes the same lock-free path as a catalogue one. Ids past the
    /// slots go through `custom` every time.
    app_slots: Box<[OnceLock<Arc<EventMetrics>>]>,
    /// Application events, resolved on first sight, at most `MAX_CUSTOM_EVENTS`.
    custom: RwLock<Vec<Arc<EventMetrics>>>,
    overflow: Arc<EventMetrics>,
}

/// How many application event ids get a lock-free slot (16 bytes each). Ids are dense and
/// global: every event a process declares or first uses takes the next one.
const APP_SLOTS: usize = 1024;

impl fmt::Debug for PrometheusHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusHandler")
            .field("target", &self.target)
            .field("catalogue_events", &self.table.iter().flatten().count())
            .finish()
    }
}

impl Default for PrometheusHandler {
    fn default() -> Self {
        PrometheusHandler::new()
    }
}

impl PrometheusHandler {
    /// A handler that registers its series with the global `metrics` recorder. Install
    /// the recorder first: a series is resolved on its first event, and one first seen
    /// while no recorder is installed stays bound to the no-op recorder.
    ///
    /// ```
    /// let handler = authtel_prometheus::PrometheusHandler::new();
    /// # drop(handler);
    /// ```
    pub fn new() -> PrometheusHandler {
        PrometheusHandler::with_target(Target::Global)
    }

    /// A handler that registers its series with `recorder` instead of the global one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use metrics_exporter_prometheus::PrometheusBuilder;
    /// let recorder = Arc::new(PrometheusBuilder::new().build_recorder());
    /// let handler = authtel_prometheus::PrometheusHandler::with_recorder(recorder);
    /// # drop(handler);
    /// ```
    pub fn with_recorder(recorder: Arc<dyn Recorder + Send + Sync>) -> PrometheusHandler {
        PrometheusHandler::with_target(Target::Local(recorder))
    }

    pub(crate) fn with_target(target: Target) -> PrometheusHandler {
        let events = catalogue::all();
        let len = events.iter().map(|e| e.id() as usize).max().unwrap_or(0) + 1;
        let mut table: Vec<Option<EventMetrics>> = (0..len).map(|_| None).collect();
        for event in events {
            table[event.id() as usize] = Some(EventMetrics::new(event));
        }
        PrometheusHandler {
            target,
            table: table.into_boxed_slice(),
            app_slots: (0..APP_SLOTS).map(|_| OnceLock::new()).collect(),
            custom: RwLock::new(Vec::new()),
            overflow: Arc::new(EventMetrics::overflow()),
        }
    }

    /// The slot of an application event's id, if it has one.
    #[inline]
    fn app_slot(&self, id: usize) -> Option<&OnceLock<Arc<EventMetrics>>> {
        id.checked_sub(self.table.len())
            .and_then(|i| self.app_slots.get(i))
    }

    #[inline]
    fn with_metrics(&self, event: &'static Event, f: impl FnOnce(&EventMetrics)) {
        let id = event.id() as usize;
        if let Some(Some(m)) = self.table.get(id)
            && m.event.is_some_and(|e| std::ptr::eq(e, event))
        {
            return f(m);
        }
        // An id belongs to one event for the life of the process, so the slot needs no
        // second check. (An application event whose id came before the catalogue's has
        // no slot and always takes the locked path: correct, only slower.)
        if let Some(m) = self.app_slot(id).and_then(OnceLock::get) {
            return f(m);
        }
        self.with_custom(event, f)
    }

    #[cold]
    fn with_custom(&self, event: &'static Event, f: impl FnOnce(&EventMetrics)) {
        let m = self.resolve_custom(event);
        if let Some(slot) = self.app_slot(event.id() as usize) {
            let _ = slot.set(m.clone());
        }
        f(&m)
    }

    /// The application event's entry in `custom` (added when there is room), else
    /// `overflow`.
    fn resolve_custom(&self, event: &'static Event) -> Arc<EventMetrics> {
        let find = |list: &[Arc<EventMetrics>]| {
            list.iter()
                .find(|m| m.event.is_some_and(|e| std::ptr::eq(e, event)))
                .cloned()
        };
        let (found, full) = {
            let list = self.custom.read().unwrap_or_else(|p| p.into_inner());
            (find(&list), list.len() >= names::MAX_CUSTOM_EVENTS)
        };
        if let Some(m) = found {
            return m;
        }
        if full {
            return self.overflow.clone();
        }
        let mut list = self.custom.write().unwrap_or_else(|p| p.into_inner());
        match find(&list) {
            Some(m) => m,
            None if list.len() >= names::MAX_CUSTOM_EVENTS => self.overflow.clone(),
            None => {
                let m = Arc::new(EventMetrics::new(event));
                list.push(m.clone());
                m
            }
        }
    }
}

impl Handler for PrometheusHandler {
    #[inline]
    fn handle(&self, record: &EventRecord<'_>) {
        if record.event.kind() == EventKind::SpanStart {
            return;
        }
        self.with_metrics(record.event, |m| m.record(&self.target, record));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_event_has_a_slot_with_its_own_labels() {
        let handler = PrometheusHandler::new();
        for event in catalogue::all() {
            let slot = handler.table[event.id() as usize].as_ref().unwrap();
            assert_eq!(slot.event_label, event.name());
            assert!(event.name().starts_with(slot.span_label));
        }
        let login = handler.table[catalogue::AUTH_LOGIN.stop().id() as usize]
            .as_ref()
            .unwrap();
        assert_eq!(login.span_label, "auth.login");
    }

    #[test]
    fn application_events_get_a_lock_free_slot_on_first_sight() {
        use authtel_core::metadata::Metadata;
        use authtel_core::telemetry::{Measurements, SpanContext};
        let handler = PrometheusHandler::new();
        let event = Event::declare("bench.slot.first_sight").unwrap();
        let (meta, numbers) = (Metadata::new(), Measurements::new());
        let record = EventRecord::signal(event, SpanContext::child_of(None), &numbers, &meta);
        let slot = handler.app_slot(event.id() as usize).expect("a low id");
        assert!(slot.get().is_none());
        handler.handle(&record);
        let m = slot.get().expect("set on first sight");
        assert_eq!(m.event_label, "bench.slot.first_sight");
        assert!(Arc::ptr_eq(m, &handler.custom.read().unwrap()[0]));
        handler.handle(&record);
        assert_eq!(handler.custom.read().unwrap().len(), 1, "resolved once");
    }

    #[test]
    fn unknown_operations_are_counted_as_custom() {
        assert_eq!(
            names::OPERATION_LABELS[operation_slot(Some("publish"))],
            "publish"
        );
        assert_eq!(
            names::OPERATION_LABELS[operation_slot(Some("u_123"))],
            "custom"
        );
        assert_eq!(names::OPERATION_LABELS[operation_slot(None)], "custom");
    }

    #[test]
    fn pipeline_signals_map_to_their_dedicated_counters() {
        assert_eq!(
            special_for(&catalogue::PIPELINE_RECORDS_DROPPED),
            Special::Counted(names::PIPELINE_DROPPED_RECORDS_TOTAL)
        );
        assert_eq!(
            special_for(&catalogue::AUTHORIZATION_DENIED),
            Special::Authorization("denied")
        );
        assert_eq!(special_for(&catalogue::SECURITY_LOCKOUT), Special::None);
    }
}
