//! The capture handler: owned copies of every event it hears.
//!
//! An [`EventRecord`] borrows its metadata from the emitter's stack, so a handler that wants
//! to look at events later must copy them. [`CapturedEvent`] is that copy, with every
//! metadata field rendered as owned text, exactly as a generic key/value sink would see it.

use std::sync::{Arc, Mutex, MutexGuard};

use authtel_core::catalogue::{Category, Event, EventKind};
use authtel_core::outcome::Outcome;
use authtel_core::registry::Handler;
use authtel_core::telemetry::{EventRecord, ExceptionKind, Measurements, SpanContext};

/// An owned copy of one [`EventRecord`].
///
/// ```
/// use authtel_core::{catalogue, metadata::Metadata};
/// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
/// use authtel_testing::CapturedEvent;
///
/// let meta = Metadata::new().user_id("u_7").attempts_remaining(2);
/// let numbers = Measurements::new().count(1);
/// let record = EventRecord::signal(&catalogue::MFA_LOCKOUT, SpanContext::child_of(None), &numbers, &meta);
/// let captured = CapturedEvent::from_record(&record);
/// assert_eq!(captured.name, "mfa.lockout");
/// assert_eq!(captured.field("user_id"), Some("u_7"));
/// assert_eq!(captured.field("attempts_remaining"), Some("2"));
/// assert_eq!(captured.measurements.count, Some(1));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedEvent {
    /// The event's dotted name (`auth.login.stop`).
    pub name: &'static str,
    /// The event descriptor itself.
    pub event: &'static Event,
    /// What the event marks (span start/stop/exception or signal).
    pub kind: EventKind,
    /// The event's category.
    pub category: Category,
    /// Span id, parent id and root id.
    pub context: SpanContext,
    /// Clock readings, duration and count.
    pub measurements: Measurements,
    /// The outcome, for stops, exceptions and signals that carry one.
    pub outcome: Option<Outcome>,
    /// The low-cardinality error type of a failed stop or an exception.
    pub error_type: Option<&'static str>,
    /// Kind and reason, for exception events.
    pub exception: Option<CapturedException>,
    /// Every metadata field as `(key, value)` text, standard fields first, in the order
    /// [`Metadata::for_each_field`](authtel_core::metadata::Metadata::for_each_field) gives.
    pub fields: Vec<(String, String)>,
}

/// An owned copy of an exception's details.
///
/// ```
/// use authtel_core::telemetry::ExceptionKind;
/// use authtel_testing::CapturedException;
/// let e = CapturedException { kind: ExceptionKind::Cancelled, reason: None };
/// assert_eq!(e.kind.as_str(), "cancelled");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedException {
    /// Panic, cancellation or reported error.
    pub kind: ExceptionKind,
    /// The screened reason, when the application opted in to exception messages
    /// (`policy::set_exception_messages`).
    pub reason: Option<String>,
}

impl CapturedEvent {
    /// Copies everything out of `record`.
    pub fn from_record(record: &EventRecord<'_>) -> CapturedEvent {
        let mut fields = Vec::new();
        record
            .metadata
            .for_each_field(|key, value| fields.push((key.to_owned(), value.to_string())));
        CapturedEvent {
            name: record.event.name(),
            event: record.event,
            kind: record.event.kind(),
            category: record.event.category(),
            context: record.context,
            measurements: *record.measurements,
            outcome: record.outcome,
            error_type: record.error_type,
            exception: record.exception.map(|e| CapturedException {
                kind: e.kind,
                reason: e.reason.map(str::to_owned),
            }),
            fields,
        }
    }

    /// The value of the metadata field `key`, if the event carried it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every piece of text this event carries (name, field keys and values, error type,
    /// exception reason), for searches such as secret scans.
    ///
    /// ```
    /// # use authtel_core::{catalogue, metadata::Metadata};
    /// # use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// # use authtel_testing::CapturedEvent;
    /// let (meta, numbers) = (Metadata::new().reason("expired"), Measurements::new());
    /// let record = EventRecord::signal(&catalogue::TOKEN_EXPIRED, SpanContext::child_of(None), &numbers, &meta);
    /// let captured = CapturedEvent::from_record(&record);
    /// let texts: Vec<&str> = captured.texts().collect();
    /// assert_eq!(texts, ["token.expired", "reason", "expired"]);
    /// ```
    pub fn texts(&self) -> impl Iterator<Item = &str> + '_ {
        std::iter::once(self.name)
            .chain(
                self.fields
                    .iter()
                    .flat_map(|(k, v)| [k.as_str(), v.as_str()]),
            )
            .chain(self.error_type)
            .chain(self.exception.as_ref().and_then(|e| e.reason.as_deref()))
    }
}

/// A [`Handler`] that records an owned [`CapturedEvent`] for every event it receives.
/// Clones share the same record list, so keep one clone and attach the other.
///
/// ```
/// use authtel_core::{catalogue, telemetry, registry::{Registry, Selection}};
/// use authtel_testing::CaptureHandler;
///
/// let capture = CaptureHandler::new();
/// let registry = Registry::new();
/// registry.attach("capture", Selection::from(catalogue::security_events()), capture.clone()).unwrap();
/// let _scope = registry.enter();
/// telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Default::default());
/// telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Default::default());
/// assert_eq!(capture.names(), ["security.lockout"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct CaptureHandler {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

impl CaptureHandler {
    /// An empty capture.
    pub fn new() -> CaptureHandler {
        CaptureHandler::default()
    }

    /// A copy of every captured event, in arrival order.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.lock().clone()
    }

    /// The names of the captured events, in arrival order.
    pub fn names(&self) -> Vec<&'static str> {
        self.lock().iter().map(|e| e.name).collect()
    }

    /// How many events were captured.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets everything captured so far.
    ///
    /// ```
    /// # use authtel_testing::CaptureHandler;
    /// let capture = CaptureHandler::new();
    /// capture.clear();
    /// assert!(capture.is_empty());
    /// ```
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<CapturedEvent>> {
        // A test that panicked while holding the lock must not hide what was captured.
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for CaptureHandler {
    fn handle(&self, record: &EventRecord<'_>) {
        let captured = CapturedEvent::from_record(record);
        self.lock().push(captured);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::catalogue;
    use authtel_core::metadata::Metadata;

    #[test]
    fn captured_event_owns_every_field() {
        let captured = {
            let user = String::from("u_1");
            let meta = Metadata::new()
                .user_id(&user)
                .reason("invalid_password")
                .client_ip("203.0.113.7".parse().unwrap())
                .with_extra("tenant", "acme");
            let measurements = Measurements::new().count(3);
            let record = EventRecord::signal(
                &catalogue::SECURITY_INVALID_CREDENTIALS,
                SpanContext::child_of(None),
                &measurements,
                &meta,
            );
            CapturedEvent::from_record(&record)
        };
        assert_eq!(
            captured.fields,
            [
                ("user_id".to_owned(), "u_1".to_owned()),
                ("reason".to_owned(), "invalid_password".to_owned()),
                ("client_ip".to_owned(), "203.0.113.7".to_owned()),
                ("tenant".to_owned(), "acme".to_owned()),
            ]
        );
        assert_eq!(captured.kind, EventKind::Signal);
        assert_eq!(captured.category, Category::Security);
        assert_eq!(captured.measurements.count, Some(3));
        assert_eq!(captured.field("missing"), None);
    }

    #[test]
    fn clones_share_one_record_list() {
        let a = CaptureHandler::new();
        let b = a.clone();
        let meta = Metadata::new();
        b.handle(&EventRecord::signal(
            &catalogue::MFA_LOCKOUT,
            SpanContext::child_of(None),
            &Measurements::new(),
            &meta,
        ));
        assert_eq!(a.names(), ["mfa.lockout"]);
        assert_eq!(a.len(), 1);
        a.clear();
        assert!(b.is_empty());
    }
}
