//! Where a caller can put a value, and how each plant is emitted.
//!
//! Hand-built records are generated from the record's shape: a template `AuditEvent` is
//! serialised to JSON, every string leaf (and metadata at every depth 1..=4) becomes a
//! position, and the planted JSON is deserialised back, so a field added to the record
//! is planted in without editing this file.

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::authorization::{DenyReason, Operation, log_authorized, log_denied, log_error};
use authtel_core::catalogue;
use authtel_core::context::RequestContext;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry;
use authtel_core::vocabulary::AuthMethod;
use serde_json::Value;

use super::secrets::{self, Slot};

/// A position a caller controls.
#[derive(Clone, Debug)]
pub enum Position {
    /// A standard text field of [`Metadata`], by key.
    TextField(&'static str),
    /// An extra field under a key (innocent `note`, or one naming a secret).
    Extra(&'static str),
    /// `with_extra(secret, "password")`: the secret as the key.
    Swapped,
    /// The message of a panic inside a span.
    Panic,
    /// `SpanGuard::exception(message)`.
    Exception,
    /// The error text of a failing forwarder behind the pipeline.
    ForwarderError,
    /// `authorization::log_denied(.., DenyReason::Custom(secret))`.
    DenyReason,
    /// `authorization::log_error(.., &error)` with the secret in the error's text.
    AuthorizationError,
    /// `authorization::log_authorized(Operation::Custom(secret), ..)`.
    CustomOperation,
    /// `Metadata::factors(&[AuthMethod::Password, AuthMethod::Custom(secret)])`.
    Factor,
    /// A field of the request context (`user_agent`, `request_id`, `tenant`), which every
    /// event emitted inside it inherits.
    Context(&'static str),
    /// The same field, in an audit record the application builds itself inside the context
    /// (`AuditEvent::new`, as for a row written in its own transaction).
    ContextRecord(&'static str),
    /// A string leaf of a hand-built record, by JSON pointer.
    Record(String),
    /// A hand-built record's metadata key, swapped with a secret's name as its value
    /// (`{"<secret>": "password"}`), in the object at this JSON pointer.
    RecordKey(String),
    /// The same leaf in a record decoded from JSON text (the secret's first character
    /// written as a `\u` escape).
    Decoded(String),
}

/// Record leaves that hold identifiers.
const IDENTIFIER_LEAVES: [&str; 4] = ["/actor/id", "/target/id", "/session_id", "/tenant_id"];
/// The request context's fields that become identifiers (the tenant is `tenant_id`).
const CONTEXT_IDENTIFIERS: [&str; 1] = ["tenant"];
/// The request context's text fields.
const CONTEXT_FIELDS: [&str; 3] = ["user_agent", "request_id", "tenant"];
/// Keys that name a secret (planted under, everything is redacted).
pub const SECRET_KEYS: [&str; 6] = ["pw", "pin", "auth", "sid", "jwt", "key"];

impl Position {
    /// The kind of slot, which decides what is in scope.
    pub fn slot(&self) -> Slot {
        match self {
            // Which fields are identifiers comes from core, so a new one is covered as such.
            Position::TextField(f) if Metadata::IDENTIFIER_FIELDS.contains(f) => Slot::Identifier,
            Position::Context(f) | Position::ContextRecord(f)
                if CONTEXT_IDENTIFIERS.contains(f) =>
            {
                Slot::Identifier
            }
            Position::Extra(k) if SECRET_KEYS.contains(k) => Slot::SecretKey,
            Position::Swapped | Position::RecordKey(_) => Slot::SecretKey,
            Position::Record(p) | Position::Decoded(p) => {
                if IDENTIFIER_LEAVES.contains(&p.as_str()) {
                    Slot::Identifier
                } else if p.ends_with("/pw") {
                    Slot::SecretKey
                } else {
                    Slot::Text
                }
            }
            _ => Slot::Text,
        }
    }

    /// A short name for the report.
    pub fn name(&self) -> String {
        match self {
            Position::TextField(f) => format!("field:{f}"),
            Position::Extra(k) => format!("extra:{k}"),
            Position::Swapped => "swapped_key".into(),
            Position::Panic => "panic_message".into(),
            Position::Exception => "exception_message".into(),
            Position::ForwarderError => "forwarder_error".into(),
            Position::DenyReason => "deny_reason_custom".into(),
            Position::AuthorizationError => "authorization_error_text".into(),
            Position::CustomOperation => "operation_custom".into(),
            Position::Factor => "factor_custom".into(),
            Position::Context(f) => format!("context:{f}"),
            Position::ContextRecord(f) => format!("context_record:{f}"),
            Position::Record(p) => format!("record:{p}"),
            Position::RecordKey(p) => format!("record_key:{p}"),
            Position::Decoded(p) => format!("decoded:{p}"),
        }
    }
}

/// The template every hand-built record starts from: every optional field set, and
/// metadata with an innocent and a secret-named key at each depth 1..=4.
pub fn template() -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    e = e.with_actor(Party::new("u_canary", "user"));
    e = e.with_target(Party::new("u_target", "user"));
    e = e.with_session_id("sess_canary");
    e = e.with_tenant_id("tenant_canary");
    e = e.with_client_ip(std::net::IpAddr::from([203, 0, 113, 9]));
    e = e.with_user_agent("Mozilla/5.0");
    e = e.with_resource("/api/v1/users/42");
    e = e.with_operation("call");
    e = e.with_reason("invalid_password");
    e = e.with_span_id("00f067aa0ba902b7");
    e = e.with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
    let l4 = serde_json::json!({"note": "n4", "pw": "p4"});
    let l3 = serde_json::json!({"note": "n3", "pw": "p3", "l4": l4});
    let l2 = serde_json::json!({"note": "n2", "pw": "p2", "l3": l3});
    e = e.with_metadata("note", "n1").unwrap();
    e = e.with_metadata("pw", "p1").unwrap();
    e = e.with_metadata("l2", l2).unwrap();
    e
}

/// JSON pointers of every string leaf of `v`.
pub fn string_leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::String(_) => out.push(at),
        Value::Object(m) => {
            for (k, v) in m {
                string_leaves(v, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                string_leaves(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every position: metadata positions, message positions, and each string leaf of the
/// template as a hand-built and as a decoded record.
pub fn positions() -> Vec<Position> {
    let mut p: Vec<Position> = Metadata::TEXT_FIELDS
        .iter()
        .map(|f| Position::TextField(f))
        .collect();
    p.push(Position::Extra("note"));
    p.extend(SECRET_KEYS.iter().map(|k| Position::Extra(k)));
    p.extend([
        Position::Swapped,
        Position::Panic,
        Position::Exception,
        Position::ForwarderError,
        Position::DenyReason,
        Position::AuthorizationError,
        Position::CustomOperation,
        Position::Factor,
    ]);
    p.extend(CONTEXT_FIELDS.map(Position::Context));
    p.extend(CONTEXT_FIELDS.map(Position::ContextRecord));
    let mut leaves = Vec::new();
    string_leaves(
        &serde_json::to_value(template()).unwrap(),
        String::new(),
        &mut leaves,
    );
    p.extend(leaves.iter().cloned().map(Position::Record));
    p.extend(
        [
            "/metadata",
            "/metadata/l2",
            "/metadata/l2/l3",
            "/metadata/l2/l3/l4",
        ]
        .map(|o| Position::RecordKey(o.to_owned())),
    );
    p.extend(leaves.into_iter().map(Position::Decoded));
    p
}

/// One planted value.
#[derive(Clone, Debug)]
pub struct Plant {
    pub class: &'static str,
    pub form: &'static str,
    pub position: Position,
    pub value: String,
    pub needles: Vec<String>,
}

/// Every in-scope (secret, form, position) combination, each with its own secret; also
/// the number of combinations left out as out of scope.
pub fn plants(positions: &[Position]) -> (Vec<Plant>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0;
    for position in positions {
        for class in 0..secrets::classes() {
            for (form, template) in secrets::FORMS {
                // A swapped key is the bare secret itself.
                if matches!(position, Position::Swapped | Position::RecordKey(_)) && form != "bare"
                {
                    continue;
                }
                let secret = secrets::all(out.len()).swap_remove(class);
                if !secrets::in_scope(&secret, form, position.slot()) {
                    skipped += 1;
                    continue;
                }
                out.push(Plant {
                    class: secret.class,
                    form,
                    position: position.clone(),
                    value: secrets::fill(template, &secret.value),
                    needles: secret.needles,
                });
            }
        }
    }
    (out, skipped)
}

/// What emitting a plant did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Emitted {
    /// Records a sink refused as a whole (the planted value broke the record's type or
    /// its action name): safe by construction, nothing written.
    pub refused_by_type: usize,
}

/// The planted value as a `'static` code. The code fields take only `'static` strings, so
/// an application can put a secret there only by leaking one on purpose; the matrix does
/// exactly that to show the screen behind the type still catches it (a few KiB per run).
fn leaked(v: &str) -> &'static str {
    Box::leak(v.to_owned().into_boxed_str())
}

/// Emits one metadata or message plant through the registry (call with it current).
pub fn emit(plant: &Plant, sinks: &super::sinks::Sinks, emitted: &mut Emitted) {
    let v = plant.value.as_str();
    let base = || Metadata::new().user_id("u_canary");
    match &plant.position {
        Position::TextField(f) => {
            let m = if Metadata::CODE_FIELDS.contains(f) {
                base().with_code_field(f, leaked(v))
            } else {
                base().with_text_field(f, v)
            }
            .expect("a standard field");
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                Err::<(), _>("invalid_password")
            });
        }
        Position::Extra(k) => {
            let m = base().with_extra(k, v);
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                Err::<(), _>("invalid_password")
            });
        }
        Position::Swapped => {
            let m = base().with_extra(v, "password");
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                Err::<(), _>("invalid_password")
            });
        }
        Position::Panic => {
            let caught = std::panic::catch_unwind(|| {
                telemetry::span(&catalogue::MFA_VERIFY, base(), || -> bool { panic!("{v}") })
            });
            assert!(caught.is_err(), "the span re-raises the panic");
        }
        Position::Exception => telemetry::start(&catalogue::OAUTH_CALLBACK, base()).exception(v),
        Position::ForwarderError => {
            sinks.rejects.texts.lock().unwrap().push_back(v.to_owned());
            let before = sinks
                .rejects
                .calls
                .load(std::sync::atomic::Ordering::SeqCst);
            sinks
                .pipeline
                .publish(AuditEvent::new("auth.logout.stop", Outcome::Success).unwrap())
                .unwrap();
            // The rejecting forwarder is synchronous: publish returned after its call.
            assert_eq!(
                sinks
                    .rejects
                    .calls
                    .load(std::sync::atomic::Ordering::SeqCst),
                before + 1
            );
        }
        Position::DenyReason => log_denied(
            Operation::Call,
            "svc_canary",
            "/api/v1/users/42",
            DenyReason::Custom(leaked(v)),
        ),
        Position::AuthorizationError => log_error(
            Operation::Call,
            "svc_canary",
            "/api/v1/users/42",
            &format!("upstream said: {v}"),
        ),
        Position::CustomOperation => log_authorized(
            Operation::Custom(leaked(v)),
            "svc_canary",
            "/api/v1/users/42",
        ),
        Position::Factor => {
            let factors = [AuthMethod::Password, AuthMethod::Custom(leaked(v))];
            let m = base().factors(&factors);
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, m, || {
                Err::<(), _>("invalid_password")
            });
        }
        Position::Context(f) => context(f, v).in_scope(|| {
            let _ = telemetry::span(&catalogue::AUTH_LOGIN, base(), || {
                Err::<(), _>("invalid_password")
            });
        }),
        Position::ContextRecord(f) => {
            let e = context(f, v)
                .in_scope(|| AuditEvent::new("auth.register.stop", Outcome::Success).unwrap());
            let _ = sinks.pipeline.publish(e.clone());
            let _ = sinks.recent.insert(e);
        }
        Position::Record(_) | Position::RecordKey(_) | Position::Decoded(_) => {
            match record(plant) {
                Some(e) => {
                    let _ = sinks.pipeline.publish(e.clone());
                    let _ = sinks.recent.insert(e);
                }
                None => emitted.refused_by_type += 1,
            }
        }
    }
}

/// A request context with `value` in its field `field`, as a request would set it.
fn context(field: &str, value: &str) -> RequestContext {
    let builder = RequestContext::builder().client_ip([198, 51, 100, 4].into());
    match field {
        "user_agent" => builder.user_agent(value),
        "request_id" => builder.request_id(value),
        "tenant" => builder.tenant(value),
        other => unreachable!("not a context field: {other}"),
    }
    .build()
}

/// The hand-built (or decoded) record of a record plant; `None` when the planted value
/// does not deserialise (a typed field: id, time, IP, outcome).
pub fn record(plant: &Plant) -> Option<AuditEvent> {
    let mut v = serde_json::to_value(template()).unwrap();
    match &plant.position {
        Position::Record(p) => {
            *v.pointer_mut(p).unwrap() = Value::String(plant.value.clone());
            serde_json::from_value(v).ok()
        }
        Position::RecordKey(p) => {
            v.pointer_mut(p)
                .and_then(Value::as_object_mut)
                .expect("an object in the template")
                .insert(plant.value.clone(), Value::from("password"));
            serde_json::from_value(v).ok()
        }
        Position::Decoded(p) => {
            const MARK: &str = "\u{1}canary\u{1}";
            *v.pointer_mut(p).unwrap() = Value::String(MARK.into());
            let text = serde_json::to_string(&v).unwrap();
            let mut chars = plant.value.chars();
            let first = chars.next().unwrap();
            let escaped = serde_json::to_string(chars.as_str()).unwrap();
            let planted = format!("\\u{:04x}{}", first as u32, &escaped[1..escaped.len() - 1]);
            let marker = serde_json::to_string(MARK).unwrap();
            let text = text.replace(&marker[1..marker.len() - 1], &planted);
            serde_json::from_str(&text).ok()
        }
        _ => unreachable!("not a record plant"),
    }
}
