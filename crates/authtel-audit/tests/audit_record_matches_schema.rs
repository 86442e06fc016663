//! Every audited catalogue action yields a record that survives a JSON round trip and
//! matches `docs/audit-event.schema.json`.
//!
//! The validator below covers the schema keywords the file uses (type, const, enum,
//! required, properties, additionalProperties, $ref, maxLength, anyOf with formats) and
//! checks the patterns the file documents with explicit code, so the test fails when the
//! record and the schema file drift apart.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use authtel_core::audit::{AuditEvent, MAX_METADATA_BYTES, Party, is_audited};
use authtel_core::catalogue::{self, EventKind};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{EventRecord, Measurements, SpanContext};
use serde_json::Value;

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/audit-event.schema.json"
    );
    let text = std::fs::read_to_string(path).expect("docs/audit-event.schema.json is readable");
    serde_json::from_str(&text).expect("the schema file is JSON")
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("only local $refs");
            root.pointer(pointer).expect("$ref resolves")
        }
        None => schema,
    }
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema uses unsupported type {other}"),
    }
}

fn format_matches(format: &str, s: &str) -> bool {
    match format {
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(ty, v)
    {
        errors.push(format!("{at}: expected {ty}, got {v}"));
        return;
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        errors.push(format!("{at}: expected const {c}, got {v}"));
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {options:?}"));
    }
    if let (Some(max), Some(s)) = (schema.get("maxLength").and_then(Value::as_u64), v.as_str())
        && s.chars().count() as u64 > max
    {
        errors.push(format!("{at}: longer than {max}"));
    }
    if let (Some(any), Some(s)) = (schema.get("anyOf").and_then(Value::as_array), v.as_str()) {
        let ok = any.iter().any(|alt| {
            alt.get("format")
                .and_then(Value::as_str)
                .is_none_or(|f| format_matches(f, s))
        });
        if !ok {
            errors.push(format!("{at}: {s:?} matches none of anyOf"));
        }
    }
    let Some(obj) = v.as_object() else { return };
    for req in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let req = req.as_str().unwrap();
        if !obj.contains_key(req) {
            errors.push(format!("{at}: missing required {req}"));
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, child) in obj {
        match props.and_then(|p| p.get(k)) {
            Some(sub) => validate(root, sub, child, &format!("{at}.{k}"), errors),
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                errors.push(format!("{at}: property {k} is not in the schema"))
            }
            None => {}
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The patterns the schema file states, checked in code.
fn check_patterns(json: &Value, errors: &mut Vec<String>) {
    let id = json["id"].as_str().unwrap_or("");
    let parts: Vec<&str> = id.split('-').collect();
    let uuid_ok = parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| is_hex(p, *n))
        && parts[2].starts_with('7')
        && parts[3].starts_with(['8', '9', 'a', 'b']);
    if !uuid_ok {
        errors.push(format!("id {id:?} is not a lowercase UUIDv7"));
    }
    let at = json["occurred_at"].as_str().unwrap_or("");
    if at.len() != 27 || !at.ends_with('Z') || at.as_bytes()[19] != b'.' {
        errors.push(format!(
            "occurred_at {at:?} is not RFC 3339 UTC with microseconds"
        ));
    }
    let action = json["action"].as_str().unwrap_or("");
    if catalogue::validate_name(action).is_err() {
        errors.push(format!("action {action:?} breaks the name grammar"));
    }
    if let Some(span) = json.get("span_id").and_then(Value::as_str)
        && !is_hex(span, 16)
    {
        errors.push(format!("span_id {span:?} is not 16 hex digits"));
    }
    if let Some(trace) = json.get("trace_id").and_then(Value::as_str)
        && !(is_hex(trace, 16) || is_hex(trace, 32))
    {
        errors.push(format!("trace_id {trace:?} is not 16 or 32 hex digits"));
    }
}

fn assert_valid(schema: &Value, event: &AuditEvent) {
    let json = serde_json::to_value(event).unwrap();
    let mut errors = Vec::new();
    validate(schema, schema, &json, "$", &mut errors);
    check_patterns(&json, &mut errors);
    assert!(errors.is_empty(), "{}: {errors:#?}", event.action());
}

/// A record for `event` with every field the metadata can fill set.
fn full_record(event: &'static catalogue::Event) -> Option<AuditEvent> {
    let meta = Metadata::new()
        .user_id("u_42")
        .session_id("sess_9")
        .client_ip("2001:db8::7".parse::<IpAddr>().unwrap())
        .user_agent("Mozilla/5.0")
        .provider("github")
        .method("totp")
        .reason("invalid_code")
        .operation("call")
        .resource("energy.home")
        .attempts_remaining(2)
        .admin(false)
        .rate_limit_key("ip:2001:db8::7")
        .with_extra("tenant", "acme")
        .with_extra("ratio", 0.5);
    let measurements = Measurements::new()
        .at(SystemTime::UNIX_EPOCH + Duration::from_micros(1_790_000_000_123_456))
        .duration(Duration::from_millis(12));
    let mut record = EventRecord::signal(event, SpanContext::child_of(None), &measurements, &meta);
    if event.kind() == EventKind::SpanStop {
        record.outcome = Some(Outcome::Failure);
    }
    let mut audit = AuditEvent::from_record(&record)?;
    audit = audit.with_target(Party::new("acct_7", "account"));
    Some(audit)
}

#[test]
fn every_audited_catalogue_action_round_trips_and_matches_the_schema() {
    let schema = schema();
    let mut audited = 0;
    for event in catalogue::all() {
        let record = full_record(event);
        assert_eq!(record.is_some(), is_audited(event), "{}", event.name());
        let Some(record) = record else { continue };
        audited += 1;
        assert_eq!(record.action(), event.name());
        let text = serde_json::to_string(&record).unwrap();
        let back: AuditEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record, "{}", event.name());
        assert_valid(&schema, &record);
    }
    // Starts are never audited; every stop, exception and signal is.
    let starts = catalogue::all()
        .iter()
        .filter(|e| e.kind() == EventKind::SpanStart)
        .count();
    assert!(starts > 0);
    assert_eq!(audited, catalogue::all().len() - starts);
}

#[test]
fn a_minimal_application_record_matches_the_schema() {
    let schema = schema();
    let e = AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).unwrap();
    assert_valid(&schema, &e);
    let e = e
        .with_metadata(
            "invoice",
            serde_json::json!({"id": "inv_1", "lines": [1, 2]}),
        )
        .unwrap();
    assert_eq!(
        e.metadata()["invoice"]["id"],
        "inv_1",
        "nothing in it is redacted"
    );
    assert_valid(&schema, &e);
    let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
}

#[test]
fn the_validator_rejects_records_that_break_the_schema() {
    let schema = schema();
    let good = serde_json::to_value(AuditEvent::new("security.lockout", Outcome::Failure).unwrap())
        .unwrap();
    let mut broken = Vec::new();
    let mut bad_outcome = good.clone();
    bad_outcome["outcome"] = "maybe".into();
    broken.push(bad_outcome);
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("action");
    broken.push(missing);
    let mut extra = good.clone();
    extra["surprise"] = 1.into();
    broken.push(extra);
    let mut bad_party = good.clone();
    bad_party["actor"] = serde_json::json!({"id": "u1"});
    broken.push(bad_party);
    let mut bad_ip = good;
    bad_ip["client_ip"] = "not-an-ip".into();
    broken.push(bad_ip);
    for json in broken {
        let mut errors = Vec::new();
        validate(&schema, &schema, &json, "$", &mut errors);
        assert!(!errors.is_empty(), "accepted {json}");
    }
}

#[test]
fn the_schema_states_the_library_bounds() {
    let schema = schema();
    let text = schema["properties"]["metadata"]["description"]
        .as_str()
        .unwrap();
    assert!(text.contains(&MAX_METADATA_BYTES.to_string()), "{text}");
    assert_eq!(
        schema["properties"]["schema_version"]["const"],
        authtel_core::audit::SCHEMA_VERSION
    );
}
