//! Who is calling: the client's address and user agent, taken from the connection and the
//! request, and put on every event and audit row of the request.

use std::net::{IpAddr, SocketAddr};

use authtel::audit::{AuditEvent, Party};
use authtel::telemetry::SpanContext;
use authtel::{Event, Metadata, Outcome};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};

use crate::App;

/// Longest user agent kept, in bytes (longer ones are cut at a character boundary).
pub const MAX_USER_AGENT: usize = 256;

/// The calling client, as far as the service can tell.
#[derive(Clone, Debug, Default)]
pub(crate) struct Client {
    pub(crate) ip: Option<IpAddr>,
    pub(crate) user_agent: Option<String>,
}

impl FromRequestParts<App> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Client, Self::Rejection> {
        if app.config().mutations.drop_request_context {
            return Ok(Client::default());
        }
        // The TCP peer. Forwarded headers are ignored: without a list of trusted proxies,
        // any client could claim any address.
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| bounded(ua, MAX_USER_AGENT).to_owned());
        Ok(Client { ip, user_agent })
    }
}

fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Client {
    /// `metadata` with the client's address and user agent added.
    pub(crate) fn on<'a>(&'a self, metadata: Metadata<'a>) -> Metadata<'a> {
        let mut m = metadata;
        if let Some(ip) = self.ip {
            m = m.client_ip(ip);
        }
        if let Some(ua) = self.user_agent.as_deref() {
            m = m.user_agent(ua);
        }
        m
    }

    /// An audit row for `event`, written by the caller in the transaction of the change it
    /// describes. It carries the client, and the current span's ids so the row and the log
    /// lines of the same operation can be joined.
    pub(crate) fn row(&self, event: &'static Event, outcome: Outcome) -> Row {
        let mut audit = AuditEvent::new(event.name(), outcome);
        audit.client_ip = self.ip;
        audit.user_agent = self.user_agent.clone();
        if let Some(context) = SpanContext::current() {
            audit.span_id = Some(context.span_id.to_string());
            audit.trace_id = Some(context.root_id.to_string());
        }
        Row(audit)
    }
}

/// An audit row being built; see [`Client::row`].
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
