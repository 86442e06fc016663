//! The attribute table: which metadata becomes which OpenTelemetry attribute.
//!
//! OpenTelemetry semantic conventions where one exists (`user.id`, `session.id`,
//! `client.address`, `user_agent.original`, `error.type`), the `auth.*` namespace where
//! none does. Only the policy-screened fields of [`Metadata`] are read — never a dump of
//! the application's values — and free-text reasons get one more screening here, because
//! a panic message or a reason can quote a secret by name (`password=…`).

use authtel_core::metadata::{Metadata, Value};
use authtel_core::telemetry::EventRecord;
use opentelemetry::{Key, KeyValue, StringValue};

/// `user.id` (semantic convention): the account's opaque id.
pub const USER_ID: &str = "user.id";
/// `session.id` (semantic convention): the session's opaque id.
pub const SESSION_ID: &str = "session.id";
/// `client.address` (semantic convention): the client's IP address.
pub const CLIENT_ADDRESS: &str = "client.address";
/// `user_agent.original` (semantic convention).
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
/// `error.type` (semantic convention): a low-cardinality error name on failures.
pub const ERROR_TYPE: &str = "error.type";
/// `auth.outcome`: `success`, `failure`, `denied` or `error`.
pub const AUTH_OUTCOME: &str = "auth.outcome";
/// `auth.method`: `password`, `totp`, `webauthn`, …
pub const AUTH_METHOD: &str = "auth.method";
/// `auth.provider`: the identity provider (`github`, …).
pub const AUTH_PROVIDER: &str = "auth.provider";
/// `auth.attempts_remaining`: attempts left before a lockout (integer).
pub const AUTH_ATTEMPTS_REMAINING: &str = "auth.attempts_remaining";
/// `auth.reason`: why it failed or was denied (screened text).
pub const AUTH_REASON: &str = "auth.reason";
/// `auth.operation`: the operation of an authorization decision.
pub const AUTH_OPERATION: &str = "auth.operation";
/// `auth.resource`: the resource of an authorization decision.
pub const AUTH_RESOURCE: &str = "auth.resource";
/// `auth.caller`: who asked, in an authorization decision.
pub const AUTH_CALLER: &str = "auth.caller";
/// `auth.rate_limit_key`: the key a rate limit counted on.
pub const AUTH_RATE_LIMIT_KEY: &str = "auth.rate_limit_key";
/// `auth.tenant_id`: the tenant's opaque id.
pub const AUTH_TENANT_ID: &str = "auth.tenant_id";
/// `auth.client_id`: the OAuth client's id.
pub const AUTH_CLIENT_ID: &str = "auth.client_id";
/// `auth.grant_type`: the OAuth grant type code.
pub const AUTH_GRANT_TYPE: &str = "auth.grant_type";
/// `auth.aal`: the authentication assurance level reached (`aal1`, `aal2`, `aal3`).
pub const AUTH_AAL: &str = "auth.aal";
/// `auth.is_mfa`: whether more than one factor was used (boolean).
pub const AUTH_IS_MFA: &str = "auth.is_mfa";
/// `auth.factors`: the authentication factors used, in order (string array of
/// `AuthMethod` codes).
pub const AUTH_FACTORS: &str = "auth.factors";
/// `auth.admin`: whether an administrator acted (boolean).
pub const AUTH_ADMIN: &str = "auth.admin";
/// `auth.category`: the catalogue category (`auth`, `mfa`, `security`, …).
pub const AUTH_CATEGORY: &str = "auth.category";
/// Prefix of the application's extra fields: `auth.extra.<key>`.
pub const AUTH_EXTRA_PREFIX: &str = "auth.extra.";
/// `event.name` on log records: the catalogue name (`security.lockout`).
pub const EVENT_NAME: &str = "event.name";
/// `exception.type` on the `exception` span event: `panic` or `error`.
pub const EXCEPTION_TYPE: &str = "exception.type";
/// `exception.message` on the `exception` span event: the screened reason, present only
/// when the application opted in to exception messages (`authtel_core::policy`).
pub const EXCEPTION_MESSAGE: &str = "exception.message";

fn text(key: &'static str, value: &str) -> KeyValue {
    KeyValue::new(key, StringValue::from(value.to_owned()))
}

/// The attributes of a record, per the table above (`error.type` excepted: the span
/// builder adds it with the status).
pub(crate) fn record_attributes(record: &EventRecord<'_>, out: &mut Vec<KeyValue>) {
    let m: &Metadata<'_> = record.metadata;
    out.push(KeyValue::new(
        AUTH_CATEGORY,
        record.event.category().as_str(),
    ));
    if let Some(o) = record.outcome {
        out.push(KeyValue::new(AUTH_OUTCOME, o.as_str()));
    }
    if let Some(v) = m.get_user_id() {
        out.push(text(USER_ID, v));
    }
    if let Some(v) = m.get_session_id() {
        out.push(text(SESSION_ID, v));
    }
    if let Some(ip) = m.get_client_ip() {
        out.push(KeyValue::new(CLIENT_ADDRESS, ip.to_string()));
    }
    if let Some(v) = m.get_user_agent() {
        out.push(text(USER_AGENT_ORIGINAL, v));
    }
    if let Some(v) = m.get_method() {
        out.push(text(AUTH_METHOD, v));
    }
    if let Some(v) = m.get_provider() {
        out.push(text(AUTH_PROVIDER, v));
    }
    if let Some(n) = m.get_attempts_remaining() {
        out.push(KeyValue::new(AUTH_ATTEMPTS_REMAINING, i64::from(n)));
    }
    if let Some(v) = m.get_reason() {
        // Screened by core's policy when read from the metadata.
        out.push(text(AUTH_REASON, v));
    }
    if let Some(v) = m.get_operation() {
        out.push(text(AUTH_OPERATION, v));
    }
    if let Some(v) = m.get_resource() {
        out.push(text(AUTH_RESOURCE, v));
    }
    if let Some(v) = m.get_caller() {
        out.push(text(AUTH_CALLER, v));
    }
    if let Some(v) = m.get_rate_limit_key() {
        out.push(text(AUTH_RATE_LIMIT_KEY, v));
    }
    if let Some(a) = m.get_admin() {
        out.push(KeyValue::new(AUTH_ADMIN, a));
    }
    for (key, value) in [
        (AUTH_TENANT_ID, m.get_tenant_id()),
        (AUTH_CLIENT_ID, m.get_client_id()),
        (AUTH_GRANT_TYPE, m.get_grant_type()),
        (AUTH_AAL, m.get_aal()),
    ] {
        if let Some(v) = value {
            out.push(text(key, v));
        }
    }
    if let Some(mfa) = m.get_is_mfa() {
        out.push(KeyValue::new(AUTH_IS_MFA, mfa));
    }
    if let Some(factors) = m.get_factors() {
        let codes = factors.iter().map(StringValue::from).collect();
        out.push(KeyValue::new(
            AUTH_FACTORS,
            opentelemetry::Value::Array(opentelemetry::Array::String(codes)),
        ));
    }
    for (k, v) in m.extra() {
        let key = Key::new(format!("{AUTH_EXTRA_PREFIX}{k}"));
        out.push(match v {
            Value::Str(s) => KeyValue::new(key, StringValue::from(s.to_owned())),
            Value::I64(n) => KeyValue::new(key, n),
            Value::U64(n) => KeyValue::new(key, i64::try_from(n).unwrap_or(i64::MAX)),
            Value::F64(n) => KeyValue::new(key, n),
            Value::Bool(b) => KeyValue::new(key, b),
        });
    }
}
