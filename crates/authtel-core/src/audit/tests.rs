use super::*;
use crate::metadata::{self, REDACTED};

const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.SflKxwRJSMeKKF2QT4fwpM";

/// The secret shapes every free-text position is tried with, and the part of each that
/// must never reach an output.
fn secrets() -> Vec<(String, &'static str)> {
    vec![
        ("password=hunter2".to_owned(), "hunter2"),
        (
            format!("token {JWT} was rejected"),
            "SflKxwRJSMeKKF2QT4fwpM",
        ),
        (
            "upstream said: Authorization: Bearer abc8fK2xQ9aB7mN3pL5 failed".to_owned(),
            "abc8fK2xQ9aB7mN3pL5",
        ),
    ]
}

fn record() -> AuditEvent {
    AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap()
}

type Setter = fn(AuditEvent, String) -> AuditEvent;

/// Every setter that takes free text (or an identifier), by the field it sets.
fn text_setters() -> Vec<(&'static str, Setter)> {
    vec![
        ("reason", |e, v| e.with_reason(v)),
        ("resource", |e, v| e.with_resource(v)),
        ("operation", |e, v| e.with_operation(v)),
        ("user_agent", |e, v| e.with_user_agent(v)),
        ("session_id", |e, v| e.with_session_id(v)),
        ("tenant_id", |e, v| e.with_tenant_id(v)),
        ("span_id", |e, v| e.with_span_id(v)),
        ("trace_id", |e, v| e.with_trace_id(v)),
        ("actor.id", |e, v| e.with_actor(Party::new(v, "user"))),
        ("actor.type", |e, v| e.with_actor(Party::new("u_1", v))),
        ("target.id", |e, v| e.with_target(Party::new(v, "user"))),
        ("target.type", |e, v| e.with_target(Party::new("u_1", v))),
        ("metadata string", |e, v| {
            e.with_metadata("note", v).unwrap()
        }),
        ("metadata nested", |e, v| {
            e.with_metadata("request", serde_json::json!({"headers": [{"x": v}]}))
                .unwrap()
        }),
    ]
}

#[test]
fn a_secret_set_through_any_setter_never_survives() {
    for (field, set) in text_setters() {
        for (value, secret) in secrets() {
            let e = set(record(), value.clone());
            let json = serde_json::to_string(&e).unwrap();
            assert!(!json.contains(secret), "{field} kept {value:?}: {json}");
            let debug = format!("{e:?}");
            assert!(!debug.contains(secret), "{field} kept {value:?}: {debug}");
        }
    }
}

#[test]
fn a_secret_in_a_decoded_record_never_survives() {
    for (value, secret) in secrets() {
        let e = record();
        let mut json = serde_json::to_value(&e).unwrap();
        for field in [
            "session_id",
            "user_agent",
            "resource",
            "operation",
            "reason",
            "span_id",
            "trace_id",
        ] {
            json[field] = value.clone().into();
        }
        json["actor"] = serde_json::json!({"id": value, "type": value});
        json["target"] = serde_json::json!({"id": "u_2", "type": value});
        json["metadata"] = serde_json::json!({
            "note": value,
            "password": "hunter2",
            "nested": {"list": [value, {"refresh_token": "r1"}]},
        });
        let decoded: AuditEvent = serde_json::from_value(json).unwrap();
        let out = serde_json::to_string(&decoded).unwrap();
        for leaked in [secret, "hunter2", "r1"] {
            assert!(!out.contains(leaked), "{leaked} survived decoding: {out}");
        }
        // Decoding is the same policy as the setters: decoding again changes nothing.
        let again: AuditEvent = serde_json::from_str(&out).unwrap();
        assert_eq!(again, decoded);
    }
}

#[test]
fn decoding_refuses_what_the_constructors_refuse() {
    let e = record();
    let mut json = serde_json::to_value(&e).unwrap();
    json["action"] = "auth.not_in_catalogue".into();
    let err = serde_json::from_value::<AuditEvent>(json).unwrap_err();
    assert!(err.to_string().contains("auth.not_in_catalogue"), "{err}");

    let mut parts = AuditEventParts::new(e.id(), e.occurred_at(), "auth.login.stop", e.outcome());
    parts.schema_version = SCHEMA_VERSION + 1;
    assert!(matches!(
        AuditEvent::try_from(parts.clone()),
        Err(AuditError::UnsupportedSchemaVersion { found, .. }) if found == SCHEMA_VERSION + 1
    ));
    parts.schema_version = SCHEMA_VERSION;
    parts.metadata.insert(
        "deep".into(),
        serde_json::json!({"a": {"b": {"c": {"d": 1}}}}),
    );
    assert!(matches!(
        AuditEvent::try_from(parts),
        Err(AuditError::MetadataTooDeep { key, .. }) if key == "deep"
    ));
}

#[test]
fn clean_records_decode_to_themselves() {
    let e = record()
        .with_actor(Party::new("u_42", "user"))
        .with_target(Party::new("acct_7", "account"))
        .with_session_id("sess_8fK2xQ9aB7")
        .with_client_ip("203.0.113.7".parse().unwrap())
        .with_user_agent("Mozilla/5.0")
        .with_resource("/accounts/7")
        .with_operation("read")
        .with_reason("password reset link expired")
        .with_span_id("00f067aa0ba902b7")
        .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
        .with_metadata("token_type", "refresh")
        .unwrap()
        .with_metadata("otp_enabled", true)
        .unwrap();
    assert_eq!(e.reason(), Some("password reset link expired"));
    assert_eq!(e.metadata()["otp_enabled"], true);
    let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
}

#[test]
fn application_actions_are_validated_and_kept_out_of_reserved_prefixes() {
    assert!(AuditEvent::for_action("billing.invoice.viewed", Outcome::Success).is_ok());
    for (bad, want_reserved) in [
        ("security.lockout", true),
        ("authtel.anything", true),
        ("Billing.Invoice", false),
        ("billing", false),
        ("billing..x", false),
    ] {
        let err = AuditEvent::for_action(bad, Outcome::Success).unwrap_err();
        let reserved = matches!(err, AuditError::InvalidAction(NameError::Reserved { .. }));
        assert_eq!(reserved, want_reserved, "{bad}: {err}");
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn new_accepts_catalogue_actions_and_refuses_unknown_reserved_ones() {
    assert!(AuditEvent::new("auth.login.stop", Outcome::Success).is_ok());
    assert!(AuditEvent::new("billing.invoice.viewed", Outcome::Success).is_ok());
    for bad in ["auth.not_in_catalogue", "", "password=hunter2"] {
        assert!(
            matches!(
                AuditEvent::new(bad, Outcome::Success),
                Err(AuditError::InvalidAction(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn setters_redact_secrets_at_every_depth_and_count_them() {
    let before = metadata::redaction_count();
    let e = AuditEvent::for_action("billing.card.added", Outcome::Success)
        .unwrap()
        .with_reason(format!("token={JWT}"))
        .with_metadata("password", "hunter2")
        .unwrap()
        .with_metadata(
            "request",
            serde_json::json!({
                "headers": {"Cookie": "sid=abc", "accept": "json"},
                "items": [{"refresh_token": "r1"}, "Bearer xyz", "plain"],
                "nested": {"deeper": {"client_secret": "s3"}}
            }),
        )
        .unwrap();
    assert!(metadata::redaction_count() >= before + 6);
    let text = serde_json::to_string(&e).unwrap();
    for secret in ["hunter2", "sid=abc", "r1", "xyz", "s3", JWT] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(e.reason(), Some(REDACTED));
    assert_eq!(e.metadata()["request"]["headers"]["accept"], "json");
    assert_eq!(e.metadata()["request"]["items"][2], "plain");
}

#[test]
fn keys_that_are_values_and_refused_identifiers_are_not_kept() {
    let e = record()
        .with_metadata("hunter2X9", "password")
        .unwrap()
        .with_metadata("rate_limit_key", "alice@example.com")
        .unwrap()
        .with_metadata("rate_limit_key_ok", "ip:203.0.113.7")
        .unwrap();
    assert!(!e.metadata().contains_key("hunter2X9"), "{e:?}");
    assert!(!e.metadata().contains_key("rate_limit_key"), "{e:?}");
    assert!(e.metadata().contains_key("rate_limit_key_ok"), "{e:?}");
}

#[test]
fn oversized_metadata_is_a_typed_error() {
    let mut e = AuditEvent::for_action("billing.export.done", Outcome::Success).unwrap();
    let mut refused = None;
    for i in 0..64 {
        match e.with_metadata(format!("row{i}"), "x".repeat(200)) {
            Ok(next) => e = next,
            Err(err) => {
                refused = Some(err);
                break;
            }
        }
    }
    let err = refused.expect("64 rows of 200 bytes are over the cap");
    assert!(
        matches!(err, AuditError::MetadataTooLarge { bytes, max, .. } if bytes > max && max == MAX_METADATA_BYTES),
        "{err}"
    );
    assert!(err.to_string().contains("over the 8192-byte cap"), "{err}");
}

#[test]
fn too_deep_metadata_is_a_typed_error() {
    let e = AuditEvent::for_action("billing.export.done", Outcome::Success)
        .unwrap()
        .with_metadata("ok", serde_json::json!({"a": {"b": {"c": 1}}}))
        .unwrap();
    assert!(matches!(
        e.with_metadata("deep", serde_json::json!({"a": {"b": {"c": {"d": 1}}}})),
        Err(AuditError::MetadataTooDeep { key, max: MAX_METADATA_DEPTH, .. }) if key == "deep"
    ));
}

#[test]
fn too_many_metadata_entries_are_a_typed_error_at_every_depth() {
    let base = || AuditEvent::for_action("billing.export.done", Outcome::Success).unwrap();
    // Exactly the cap, spread over depths, is accepted.
    let items: Vec<u32> = (0..MAX_METADATA_ENTRIES as u32 - 2).collect();
    let at_cap = base()
        .with_metadata("rows", serde_json::json!({"ids": items}))
        .expect("256 entries: one key, one nested key, 254 items");
    // One item more under the same key is refused, though far under the byte cap.
    let items: Vec<u32> = (0..MAX_METADATA_ENTRIES as u32 - 1).collect();
    let over = at_cap.with_metadata("rows", serde_json::json!({"ids": items}));
    assert!(
        matches!(
            over,
            Err(AuditError::MetadataTooManyEntries {
                max: MAX_METADATA_ENTRIES,
                ..
            })
        ),
        "{over:?}"
    );
    // Many small top-level keys are counted too.
    let mut e = base();
    let mut refused = None;
    for i in 0..MAX_METADATA_ENTRIES + 1 {
        match e.with_metadata(format!("k{i}"), 1) {
            Ok(next) => e = next,
            Err(err) => {
                refused = Some((i, err));
                break;
            }
        }
    }
    let (at, err) = refused.expect("257 keys are over the entry cap");
    assert_eq!(at, MAX_METADATA_ENTRIES);
    assert!(
        err.to_string().contains("more than 256 metadata entries"),
        "{err}"
    );
    // A decoded record is held to the same bound.
    let mut json = serde_json::to_value(record()).unwrap();
    json["metadata"] = serde_json::json!({"list": vec![0; MAX_METADATA_ENTRIES]});
    let decoded = serde_json::from_value::<AuditEvent>(json);
    assert!(decoded.is_err(), "{decoded:?}");
}

#[test]
fn ids_are_time_ordered() {
    let a = record();
    let b = record();
    assert!(a.id() < b.id());
    assert_eq!(a.id().get_version_num(), 7);
}

#[test]
fn identity_provider_fields_reach_the_record_typed() {
    use crate::telemetry::{EventRecord, Measurements, SpanContext};
    use crate::vocabulary::{Aal, AuthMethod, GrantType};
    let meta = metadata::Metadata::new()
        .user_id("u_1")
        .tenant_id("acme")
        .client_id("cli_dashboard")
        .grant_type(GrantType::AuthorizationCode)
        .aal(Aal::Aal2)
        .is_mfa(true)
        .factors(&[AuthMethod::Password, AuthMethod::Totp]);
    let audit_of = |meta: &metadata::Metadata<'_>| {
        let measurements = Measurements::new();
        let record = EventRecord::signal(
            &crate::catalogue::SECURITY_LOCKOUT,
            SpanContext::child_of(None),
            &measurements,
            meta,
        );
        AuditEvent::from_record(&record).unwrap()
    };
    let e = audit_of(&meta);
    assert_eq!(e.tenant_id(), Some("acme"));
    assert_eq!(e.partition_key(), "acme/u_1");
    assert_eq!(e.metadata()["client_id"], "cli_dashboard");
    assert_eq!(e.metadata()["grant_type"], "authorization_code");
    assert_eq!(e.metadata()["aal"], "aal2");
    assert_eq!(e.metadata()["is_mfa"], true);
    assert_eq!(
        e.metadata()["factors"],
        serde_json::json!(["password", "totp"])
    );
    assert!(
        !e.metadata().contains_key("tenant_id"),
        "a field of its own"
    );
    let back: AuditEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);

    // Emails and credentials are refused in the new identifier positions too.
    let meta = metadata::Metadata::new()
        .tenant_id("admin@acme.example")
        .client_id(JWT);
    assert_eq!(meta.get_tenant_id(), None);
    assert_eq!(meta.get_client_id(), None);
    let e = audit_of(&meta);
    assert_eq!(e.tenant_id(), None);
    assert!(!e.metadata().contains_key("client_id"));
}
