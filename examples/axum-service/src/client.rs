//! Audit rows carry the request's client: its address, user agent and request id come from
//! the request context that `authtel::tower::RequestContextLayer` sets for each request
//! (trusted proxies' `X-Forwarded-For` included), the same context every event emitted while
//! handling the request inherits. Nothing is threaded through the handlers by hand.

use std::net::IpAddr;

use authtel::audit::{AuditEvent, Party};
use authtel::context::RequestContext;
use authtel::telemetry::SpanContext;
use authtel::{Event, Outcome};

/// The client address of the request being handled, if the layer knows it.
pub(crate) fn client_ip() -> Option<IpAddr> {
    RequestContext::current().and_then(|c| c.client_ip())
}

/// An audit row for `event`, written by the caller in the transaction of the change it
/// describes. It carries the request context (client address, user agent, request id) and
/// the current span's ids, so the row and the log lines of the same operation can be joined.
pub(crate) fn row(event: &'static Event, outcome: Outcome) -> Row {
    // `AuditEvent::new` starts from the request context (client address, user agent,
    // request id), as every emitted event does.
    let mut audit =
        AuditEvent::new(event.name(), outcome).expect("a catalogue event's name is an action");
    if let Some(span) = SpanContext::current() {
        audit = audit
            .with_span_id(span.span_id.to_string())
            .with_trace_id(span.root_id.to_string());
    }
    Row(audit)
}

/// An audit row being built; see [`row`].
#[derive(Debug)]
pub(crate) struct Row(pub(crate) AuditEvent);

impl Row {
    pub(crate) fn user(mut self, id: &str) -> Row {
        self.0 = self.0.with_actor(Party::new(id, "user"));
        self
    }

    pub(crate) fn session(mut self, id: &str) -> Row {
        self.0 = self.0.with_session_id(id);
        self
    }

    pub(crate) fn reason(mut self, reason: &str) -> Row {
        self.0 = self.0.with_reason(reason);
        self
    }

    pub(crate) fn method(mut self, method: &str) -> Row {
        self.0 = self
            .0
            .with_metadata("method", method)
            .expect("one short entry is in bounds");
        self
    }

    pub(crate) fn done(self) -> AuditEvent {
        self.0
    }
}
