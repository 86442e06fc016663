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
    let mut audit = AuditEvent::new(event.name(), outcome);
    if let Some(context) = RequestContext::current() {
        audit.client_ip = context.client_ip();
        audit.user_agent = context.user_agent().map(str::to_owned);
        if let Some(id) = context.request_id() {
            audit.metadata.insert("request_id".to_owned(), id.into());
        }
    }
    if let Some(span) = SpanContext::current() {
        audit.span_id = Some(span.span_id.to_string());
        audit.trace_id = Some(span.root_id.to_string());
    }
    Row(audit)
}

/// An audit row being built; see [`row`].
#[derive(Debug)]
pub(crate) struct Row(pub(crate) AuditEvent);

impl Row {
    pub(crate) fn user(mut self, id: &str) -> Row {
        self.0.actor = Some(Party::new(id, "user"));
        self
    }

    pub(crate) fn session(mut self, id: &str) -> Row {
        self.0.session_id = Some(id.to_owned());
        self
    }

    pub(crate) fn reason(mut self, reason: &str) -> Row {
        self.0.reason = Some(reason.to_owned());
        self
    }

    pub(crate) fn method(mut self, method: &str) -> Row {
        self.0.metadata.insert("method".to_owned(), method.into());
        self
    }

    pub(crate) fn done(self) -> AuditEvent {
        self.0
    }
}
