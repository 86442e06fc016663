//! The audit record: one per security-relevant occurrence, the same shape in every sink.
//!
//! An [`AuditEvent`] is built from an [`EventRecord`] by [`AuditEvent::from_record`] for the
//! events [`is_audited`] names (span stops and exceptions, and one-shot signals; never
//! starts). Its `id` is a UUIDv7: unique, time-ordered, and the idempotency key every sink
//! deduplicates on. Its JSON shape is stable and versioned by [`SCHEMA_VERSION`]; the JSON
//! Schema is `docs/audit-event.schema.json`.
//!
//! # Screened when it is made
//! A record's fields are private. Every way to give one a value applies the secret policy
//! ([`crate::policy`]) as the value is set: the constructors ([`AuditEvent::new`],
//! [`AuditEvent::for_action`], [`AuditEvent::from_record`]), the `with_*` setters, and
//! decoding (`Deserialize`, and [`AuditEventParts`] for SQL rows and other decoders). A
//! value with a secret in it is rewritten (free text and metadata strings become
//! `"[REDACTED]"`, an identifier the policy refuses is redacted or dropped); what cannot be
//! rewritten is refused with an [`AuditError`] (an action that is not an event name, an
//! unknown schema version, metadata over [`MAX_METADATA_BYTES`], [`MAX_METADATA_DEPTH`] or
//! [`MAX_METADATA_ENTRIES`]).
//! So every [`AuditEvent`] a sink receives is already screened and bounded: sinks write it
//! as it is, through its getters or its serializer.
//!
//! No field can be written directly:
//!
//! ```compile_fail,E0616
//! use authtel_core::{audit::AuditEvent, outcome::Outcome};
//! let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
//! e.reason = Some("password=hunter2".into());
//! ```
//!
//! nor can a record be built as a struct literal:
//!
//! ```compile_fail,E0451
//! use authtel_core::{audit::AuditEvent, outcome::Outcome};
//! let e = AuditEvent { reason: Some("password=hunter2".into()), ..AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap() };
//! ```

mod fields;
mod screen;
#[cfg(test)]
mod tests;
mod timestamp;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::catalogue::{self, Event, EventKind, NameError};
use crate::metadata::Value;
use crate::outcome::Outcome;
use crate::policy;
use crate::record::EventRecord;

pub use screen::AuditEventParts;
pub use timestamp::{Timestamp, TimestampError};

/// The version of the audit record's JSON shape. Bumped on any incompatible change.
pub const SCHEMA_VERSION: u16 = 1;

/// Largest serialized (compact JSON) size of a record's `metadata`, in bytes.
pub const MAX_METADATA_BYTES: usize = policy::LIMITS.metadata_bytes;

/// Deepest nesting of a record's `metadata`: a top-level value is at depth 1, a value
/// inside a top-level object or array at depth 2, and so on.
pub const MAX_METADATA_DEPTH: usize = policy::LIMITS.metadata_depth;

/// Most entries in a record's `metadata`, counted at every depth: each key of an object and
/// each item of an array is one (so `{"a": [1, 2]}` has three).
pub const MAX_METADATA_ENTRIES: usize = policy::LIMITS.metadata_entries;

/// Why an audit record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The action is not a valid event name, or an application action uses a prefix
    /// reserved for the library's catalogue.
    #[error(transparent)]
    InvalidAction(#[from] NameError),
    /// The metadata serializes to more than [`MAX_METADATA_BYTES`].
    #[error(
        "audit record {id} carries {bytes} bytes of metadata, over the {max}-byte cap: keep large payloads out of audit records and store a reference to them instead"
    )]
    MetadataTooLarge {
        /// The record's id.
        id: Uuid,
        /// Its metadata's serialized size.
        bytes: usize,
        /// [`MAX_METADATA_BYTES`].
        max: usize,
    },
    /// The metadata nests deeper than [`MAX_METADATA_DEPTH`].
    #[error(
        "audit record {id} nests metadata deeper than {max} levels under key {key:?}: flatten the structure"
    )]
    MetadataTooDeep {
        /// The record's id.
        id: Uuid,
        /// The top-level key under which the nesting went too deep.
        key: String,
        /// [`MAX_METADATA_DEPTH`].
        max: usize,
    },
    /// The metadata holds more than [`MAX_METADATA_ENTRIES`] entries (at every depth).
    #[error(
        "audit record {id} carries more than {max} metadata entries (counted at every depth): keep audit metadata to a few descriptive fields and store bulk data elsewhere"
    )]
    MetadataTooManyEntries {
        /// The record's id.
        id: Uuid,
        /// [`MAX_METADATA_ENTRIES`].
        max: usize,
    },
    /// The record declares a schema version this build does not read.
    #[error(
        "audit record {id} has schema version {found}, this build reads version {SCHEMA_VERSION}: upgrade authtel where the record is read"
    )]
    UnsupportedSchemaVersion {
        /// The record's id.
        id: Uuid,
        /// The version it declared.
        found: u16,
    },
}

/// Whether an event becomes an audit record: stops, exceptions and signals do; starts don't.
///
/// ```
/// use authtel_core::{audit::is_audited, catalogue};
/// assert!(is_audited(catalogue::AUTH_LOGIN.stop()));
/// assert!(!is_audited(catalogue::AUTH_LOGIN.start()));
/// assert!(is_audited(&catalogue::SECURITY_LOCKOUT));
/// ```
pub fn is_audited(event: &Event) -> bool {
    match event.kind() {
        EventKind::SpanStart => false,
        EventKind::SpanStop | EventKind::SpanException | EventKind::Signal => true,
    }
}

/// Who acted, or what was acted upon: an opaque id and its type (`user`, `service`, …).
///
/// A party is a plain value; the policy applies when it is set on a record
/// ([`AuditEvent::with_actor`], [`AuditEvent::with_target`]): an id that is, or contains, an
/// email or a credential is kept as `"[REDACTED]"`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Party {
    /// Opaque id (never an email).
    pub id: String,
    /// What kind of party: `user`, `service`, `api_token`, `anonymous`, …
    #[serde(rename = "type")]
    pub kind: String,
}

impl Party {
    /// A party of kind `kind`.
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> Party {
        Party {
            id: id.into(),
            kind: kind.into(),
        }
    }
}

/// One audit record, screened by the policy when it is made. See the module docs and
/// `docs/audit-event.schema.json`.
///
/// ```
/// use authtel_core::audit::{AuditEvent, Party};
/// use authtel_core::outcome::Outcome;
/// let e = AuditEvent::new("auth.login.stop", Outcome::Failure)?
///     .with_actor(Party::new("u_42", "user"))
///     .with_reason("invalid_password")
///     .with_metadata("method", "password")?;
/// let json = serde_json::to_string(&e).unwrap();
/// let back: AuditEvent = serde_json::from_str(&json).unwrap();
/// assert_eq!(back, e);
/// assert_eq!(back.actor().map(|a| a.id.as_str()), Some("u_42"));
/// # Ok::<(), authtel_core::audit::AuditError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AuditEventParts")]
pub struct AuditEvent {
    schema_version: u16,
    id: Uuid,
    occurred_at: Timestamp,
    action: String,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Party>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    span_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, serde_json::Value>,
}

impl AuditEvent {
    /// A record for `action` — a catalogue event name (`auth.login.stop`) or a valid
    /// application action — with a fresh UUIDv7 id, happening now. Anything else is refused
    /// with [`AuditError::InvalidAction`].
    ///
    /// Built inside a [request context](crate::context) (an audit row an application writes
    /// itself, in its own transaction), it starts with the context's client IP, user agent,
    /// trace id, tenant and `request_id` metadata, as every emitted event does; set a
    /// field afterwards to override it.
    ///
    /// ```
    /// use authtel_core::{audit::AuditEvent, context::RequestContext, outcome::Outcome};
    /// let ctx = RequestContext::builder().client_ip("203.0.113.7".parse()?).request_id("r-1").build();
    /// let e = ctx.in_scope(|| AuditEvent::new("auth.register.stop", Outcome::Success))?;
    /// assert_eq!(e.client_ip(), Some("203.0.113.7".parse()?));
    /// assert_eq!(e.metadata()["request_id"], "r-1");
    /// assert_eq!(AuditEvent::new("auth.register.stop", Outcome::Success)?.client_ip(), None);
    /// assert!(AuditEvent::new("Not A Name", Outcome::Success).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(action: impl Into<String>, outcome: Outcome) -> Result<AuditEvent, AuditError> {
        let action = action.into();
        screen::check_action(&action)?;
        let audit = AuditEvent::bare(action, outcome);
        Ok(match crate::context::RequestContext::current() {
            Some(ctx) => audit.inherit(&ctx),
            None => audit,
        })
    }

    /// The context's fields, read through the policy as every getter of it is.
    fn inherit(mut self, ctx: &crate::context::RequestContext) -> AuditEvent {
        self.client_ip = ctx.client_ip();
        if let Some(ua) = ctx.user_agent() {
            self = self.with_user_agent(ua);
        }
        if let Some(tp) = ctx.trace_parent() {
            self = self.with_trace_id(tp.trace_id_hex().as_str());
        }
        if let Some(tenant) = ctx.tenant() {
            self = self.with_tenant_id(tenant);
        }
        if let Some(request) = ctx.request_id() {
            self.put(crate::context::REQUEST_ID_KEY, request.into());
        }
        self
    }

    /// A record with nothing but its id, time, action and outcome.
    fn bare(action: String, outcome: Outcome) -> AuditEvent {
        AuditEvent {
            schema_version: SCHEMA_VERSION,
            id: Uuid::now_v7(),
            occurred_at: Timestamp::now(),
            action,
            outcome,
            actor: None,
            target: None,
            tenant_id: None,
            session_id: None,
            client_ip: None,
            user_agent: None,
            resource: None,
            operation: None,
            reason: None,
            span_id: None,
            trace_id: None,
            metadata: BTreeMap::new(),
        }
    }

    /// A record for an application action (`billing.invoice.viewed`), validated against the
    /// catalogue's name grammar and kept out of the library's reserved prefixes
    /// ([`catalogue::validate_application_name`]).
    ///
    /// ```
    /// use authtel_core::audit::{AuditError, AuditEvent};
    /// use authtel_core::outcome::Outcome;
    /// let e = AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).unwrap();
    /// assert_eq!(e.action(), "billing.invoice.viewed");
    /// assert!(matches!(
    ///     AuditEvent::for_action("auth.login.stop", Outcome::Success),
    ///     Err(AuditError::InvalidAction(_))
    /// ));
    /// ```
    pub fn for_action(action: &str, outcome: Outcome) -> Result<AuditEvent, AuditError> {
        catalogue::validate_application_name(action)?;
        AuditEvent::new(action, outcome)
    }

    /// The audit record for an event, or `None` when the event is not audited
    /// ([`is_audited`]). Every value passes the policy as it would through the setters.
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
    /// use authtel_core::{catalogue, metadata::Metadata};
    /// let meta = Metadata::new().user_id("u_1").reason("too_many_attempts");
    /// let measurements = Measurements::new();
    /// let record = EventRecord::signal(&catalogue::SECURITY_LOCKOUT, SpanContext::child_of(None), &measurements, &meta);
    /// let audit = AuditEvent::from_record(&record).unwrap();
    /// assert_eq!(audit.action(), "security.lockout");
    /// assert_eq!(audit.actor().unwrap().id, "u_1");
    /// ```
    pub fn from_record(record: &EventRecord<'_>) -> Option<AuditEvent> {
        if !is_audited(record.event) {
            return None;
        }
        let m = record.metadata;
        let outcome = record.outcome.unwrap_or(match record.event.kind() {
            EventKind::SpanException => Outcome::Error,
            _ => default_signal_outcome(record.event),
        });
        // Not `new`: the record's metadata already holds the context it was emitted in, and
        // a catalogue event's name needs no check.
        let mut audit = AuditEvent::bare(record.event.name().to_owned(), outcome);
        if let Some(t) = record.measurements.system_time {
            audit.occurred_at = Timestamp::from(t);
        }
        let actor = m
            .get_user_id()
            .map(|id| Party::new(id, "user"))
            .or_else(|| m.get_caller().map(|id| Party::new(id, "caller")));
        if let Some(actor) = actor {
            audit = audit.with_actor(actor);
        }
        if let Some(id) = m.get_session_id() {
            audit = audit.with_session_id(id);
        }
        if let Some(id) = m.get_tenant_id() {
            audit = audit.with_tenant_id(id);
        }
        audit.client_ip = m.get_client_ip();
        if let Some(ua) = m.get_user_agent() {
            audit = audit.with_user_agent(ua);
        }
        if let Some(r) = m.get_resource() {
            audit = audit.with_resource(r);
        }
        if let Some(op) = m.get_operation() {
            audit = audit.with_operation(op);
        }
        if let Some(r) = m
            .get_reason()
            .or_else(|| record.exception.and_then(|e| e.reason))
        {
            audit = audit.with_reason(r);
        }
        audit = audit.with_span_id(record.context.span_id.to_string());
        // Inside a distributed trace (a `traceparent`, usually from the request context) the
        // trace's id; else the root span's id.
        audit = audit.with_trace_id(match m.get_trace_parent() {
            Some(tp) => tp.trace_id_hex().as_str().to_owned(),
            None => record.context.root_id.to_string(),
        });
        // The typed fields without a column of their own go in metadata under their names.
        for (key, value) in [
            ("provider", m.get_provider()),
            ("method", m.get_method()),
            ("rate_limit_key", m.get_rate_limit_key()),
            ("client_id", m.get_client_id()),
            ("grant_type", m.get_grant_type()),
            ("aal", m.get_aal()),
        ] {
            if let Some(value) = value {
                audit.put(key, value.into());
            }
        }
        if let Some(n) = m.get_attempts_remaining() {
            audit.put("attempts_remaining", n.into());
        }
        for (key, value) in [("admin", m.get_admin()), ("is_mfa", m.get_is_mfa())] {
            if let Some(value) = value {
                audit.put(key, value.into());
            }
        }
        if let Some(factors) = m.get_factors() {
            audit.put("factors", factors.iter().collect::<Vec<_>>().into());
        }
        if let Some(e) = record.error_type {
            audit.put("error_type", e.into());
        }
        if let Some(d) = record.measurements.duration {
            audit.put("duration_ms", serde_json::json!(d.as_secs_f64() * 1000.0));
        }
        for (k, v) in m.extra() {
            audit.put(k, value_to_json(v));
        }
        // Emitted metadata is bounded by the event's own limits (a few typed fields and at
        // most `LIMITS.extra_fields` scalars of at most `LIMITS.text_bytes`), far inside
        // the record's.
        debug_assert!(screen::check_bounds(audit.id, &audit.metadata).is_ok());
        Some(audit)
    }

    /// Adds a metadata entry through the policy, without the bounds check (callers whose
    /// entries are bounded by construction).
    fn put(&mut self, key: &str, value: serde_json::Value) {
        if let Some(value) = screen::noted(screen::entry(key, value)) {
            self.metadata.insert(key.to_owned(), value);
        }
    }

    /// The key that orders this record among its peers: the actor id, else the client IP,
    /// else `"anonymous"`, behind the tenant id and a `/` when the record has a tenant (so
    /// one tenant's accounts never share a key with another's). Kafka uses it as the
    /// message key.
    ///
    /// ```
    /// use authtel_core::{audit::{AuditEvent, Party}, outcome::Outcome};
    /// let e = AuditEvent::new("auth.login.stop", Outcome::Success)?;
    /// assert_eq!(e.partition_key(), "anonymous");
    /// let e = e.with_actor(Party::new("u_1", "user"));
    /// assert_eq!(e.partition_key(), "u_1");
    /// assert_eq!(e.with_tenant_id("acme").partition_key(), "acme/u_1");
    /// # Ok::<(), authtel_core::audit::AuditError>(())
    /// ```
    pub fn partition_key(&self) -> String {
        let within = match (&self.actor, self.client_ip) {
            (Some(a), _) => a.id.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "anonymous".to_owned(),
        };
        match &self.tenant_id {
            Some(tenant) => format!("{tenant}/{within}"),
            None => within,
        }
    }
}

fn default_signal_outcome(event: &Event) -> Outcome {
    match event.name() {
        "authorization.denied" => Outcome::Denied,
        "authorization.error" => Outcome::Error,
        _ if event.severity() >= crate::catalogue::Severity::Warn => Outcome::Failure,
        _ => Outcome::Success,
    }
}

fn value_to_json(v: Value<'_>) -> serde_json::Value {
    match v {
        Value::Str(s) => s.into(),
        Value::I64(n) => n.into(),
        Value::U64(n) => n.into(),
        Value::F64(n) => {
            serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Bool(b) => b.into(),
    }
}
