//! Reading and setting an [`AuditEvent`]'s fields: getters return what the policy kept,
//! setters apply the policy ([`super::screen`]) as the value is set.

use std::collections::BTreeMap;
use std::net::IpAddr;

use uuid::Uuid;

use super::{AuditError, AuditEvent, Party, Timestamp, screen};
use crate::outcome::Outcome;

/// Getters: the record as the policy kept it.
impl AuditEvent {
    /// Shape version, [`SCHEMA_VERSION`](super::SCHEMA_VERSION).
    pub fn schema_version(&self) -> u16 {
        self.schema_version
    }

    /// UUIDv7: unique, time-ordered; the idempotency key.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// When it happened.
    pub fn occurred_at(&self) -> Timestamp {
        self.occurred_at
    }

    /// The catalogue's dotted event name (`auth.login.stop`) or an application action.
    pub fn action(&self) -> &str {
        &self.action
    }

    /// How it ended.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// Who acted.
    pub fn actor(&self) -> Option<&Party> {
        self.actor.as_ref()
    }

    /// What was acted upon.
    pub fn target(&self) -> Option<&Party> {
        self.target.as_ref()
    }

    /// The tenant's opaque id (an organisation, a realm).
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant_id.as_deref()
    }

    /// The session's opaque id.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The client's IP.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The client's user agent.
    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }

    /// The resource (authorization decisions).
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// The operation (authorization decisions).
    pub fn operation(&self) -> Option<&str> {
        self.operation.as_deref()
    }

    /// Why it failed or was denied.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The span id (16 hex digits) for correlation with logs.
    pub fn span_id(&self) -> Option<&str> {
        self.span_id.as_deref()
    }

    /// A trace id (32 hex digits) when the event happened inside a distributed trace, or
    /// the root span id (16 hex digits) otherwise.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }

    /// Further policy-approved fields, bounded by
    /// [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) and
    /// [`MAX_METADATA_DEPTH`](super::MAX_METADATA_DEPTH).
    pub fn metadata(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.metadata
    }

    /// The size of the metadata as compact JSON, in bytes (what
    /// [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) bounds).
    ///
    /// ```
    /// use authtel_core::audit::AuditEvent;
    /// use authtel_core::outcome::Outcome;
    /// let e = AuditEvent::new("security.lockout", Outcome::Failure)?;
    /// assert_eq!(e.metadata_size(), 0);
    /// let e = e.with_metadata("k", 1)?;
    /// assert_eq!(e.metadata_size(), r#"{"k":1}"#.len());
    /// # Ok::<(), authtel_core::audit::AuditError>(())
    /// ```
    pub fn metadata_size(&self) -> usize {
        screen::metadata_size(&self.metadata)
    }
}

/// Setters: each applies the policy to the value it sets, so the record stays screened.
/// Redacted values are counted once, in [`crate::policy::redaction_count`].
///
/// ```
/// use authtel_core::audit::{AuditEvent, Party};
/// use authtel_core::metadata::REDACTED;
/// use authtel_core::outcome::Outcome;
/// let e = AuditEvent::new("auth.login.stop", Outcome::Failure)?
///     .with_actor(Party::new("alice@example.com", "user"))
///     .with_session_id("sess_8fK2")
///     .with_reason("verify failed: password=hunter2")
///     .with_user_agent("curl/8.5 Authorization: Bearer 8fK2xQ9aB7")
///     .with_span_id("not hex")
///     .with_metadata("card", serde_json::json!({"last4": "4242", "api_key": "k_123"}))?;
/// assert_eq!(e.actor().unwrap().id, REDACTED);
/// assert_eq!(e.session_id(), Some("sess_8fK2"));
/// assert_eq!(e.reason(), Some(REDACTED));
/// assert_eq!(e.user_agent(), Some(REDACTED));
/// assert_eq!(e.span_id(), None);
/// assert_eq!(e.metadata()["card"]["api_key"], REDACTED);
/// assert_eq!(e.metadata()["card"]["last4"], "4242");
/// # Ok::<(), authtel_core::audit::AuditError>(())
/// ```
impl AuditEvent {
    /// Sets the id (a record read back or re-issued under its original id).
    pub fn with_id(mut self, id: Uuid) -> AuditEvent {
        self.id = id;
        self
    }

    /// Sets when it happened.
    pub fn with_occurred_at(mut self, at: Timestamp) -> AuditEvent {
        self.occurred_at = at;
        self
    }

    /// Sets how it ended.
    pub fn with_outcome(mut self, outcome: Outcome) -> AuditEvent {
        self.outcome = outcome;
        self
    }

    /// Sets who acted. An id that is, or contains, an email or a credential is kept as
    /// `"[REDACTED]"`; the kind is screened as text.
    pub fn with_actor(mut self, actor: Party) -> AuditEvent {
        self.actor = Some(screen::noted(screen::party(actor)));
        self
    }

    /// Sets what was acted upon, screened as [`with_actor`](AuditEvent::with_actor) is.
    pub fn with_target(mut self, target: Party) -> AuditEvent {
        self.target = Some(screen::noted(screen::party(target)));
        self
    }

    /// Sets the tenant's opaque id; one the policy refuses as an identifier (an email, a
    /// credential, over the length limit) is not kept.
    ///
    /// ```
    /// use authtel_core::{audit::AuditEvent, outcome::Outcome};
    /// let e = AuditEvent::new("auth.login.stop", Outcome::Success)?.with_tenant_id("acme");
    /// assert_eq!(e.tenant_id(), Some("acme"));
    /// assert_eq!(e.with_tenant_id("ops@acme.example").tenant_id(), None);
    /// # Ok::<(), authtel_core::audit::AuditError>(())
    /// ```
    pub fn with_tenant_id(mut self, id: impl Into<String>) -> AuditEvent {
        self.tenant_id = screen::noted(screen::identifier(id.into()));
        self
    }

    /// Sets the session's opaque id; one the policy refuses as an identifier (an email, a
    /// credential, over the length limit) is not kept.
    pub fn with_session_id(mut self, id: impl Into<String>) -> AuditEvent {
        self.session_id = screen::noted(screen::identifier(id.into()));
        self
    }

    /// Sets the client's IP.
    pub fn with_client_ip(mut self, ip: IpAddr) -> AuditEvent {
        self.client_ip = Some(ip);
        self
    }

    /// Sets the user agent, screened as free text (see [`crate::policy::screen_text`]).
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> AuditEvent {
        self.user_agent = Some(screen::noted(screen::text(user_agent.into())));
        self
    }

    /// Sets the resource, screened as free text.
    pub fn with_resource(mut self, resource: impl Into<String>) -> AuditEvent {
        self.resource = Some(screen::noted(screen::text(resource.into())));
        self
    }

    /// Sets the operation, screened as free text.
    pub fn with_operation(mut self, operation: impl Into<String>) -> AuditEvent {
        self.operation = Some(screen::noted(screen::text(operation.into())));
        self
    }

    /// Sets why it failed or was denied, screened as free text.
    pub fn with_reason(mut self, reason: impl Into<String>) -> AuditEvent {
        self.reason = Some(screen::noted(screen::text(reason.into())));
        self
    }

    /// Sets the span id; anything but 16 lowercase hex digits is not kept.
    pub fn with_span_id(mut self, id: impl Into<String>) -> AuditEvent {
        self.span_id = screen::noted(screen::span_id(id.into()));
        self
    }

    /// Sets the trace id; anything but 32 or 16 lowercase hex digits is not kept.
    pub fn with_trace_id(mut self, id: impl Into<String>) -> AuditEvent {
        self.trace_id = screen::noted(screen::trace_id(id.into()));
        self
    }

    /// Adds (or replaces) a metadata entry. The value is screened at every depth
    /// ([`crate::policy::screen_json`]): anything under a key that names a secret, and any
    /// string with a credential in it, becomes `"[REDACTED]"`. An entry whose key is itself
    /// a value (a credential, or key and value swapped) or a `rate_limit_key` the policy
    /// refuses as an identifier is not kept. Metadata that would then nest deeper than
    /// [`MAX_METADATA_DEPTH`](super::MAX_METADATA_DEPTH) or serialize larger than
    /// [`MAX_METADATA_BYTES`](super::MAX_METADATA_BYTES) is refused.
    ///
    /// ```
    /// use authtel_core::audit::{AuditError, AuditEvent};
    /// use authtel_core::outcome::Outcome;
    /// let e = AuditEvent::new("security.lockout", Outcome::Failure)?;
    /// let deep = serde_json::json!({"a": {"b": {"c": {"d": 1}}}});
    /// assert!(matches!(e.with_metadata("deep", deep), Err(AuditError::MetadataTooDeep { .. })));
    /// # Ok::<(), AuditError>(())
    /// ```
    pub fn with_metadata(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Result<AuditEvent, AuditError> {
        let key = key.into();
        if let Some(value) = screen::noted(screen::entry(&key, value.into())) {
            self.metadata.insert(key, value);
        }
        screen::check_bounds(self.id, &self.metadata)?;
        Ok(self)
    }
}
