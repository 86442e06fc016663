//! Properties of the one screen, on arbitrary input: it never panics, it is idempotent,
//! and what it lets out passes it. The same for JSON metadata and whole audit records.

use authtel_core::audit::{AuditEvent, AuditEventParts};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::policy::{self, REDACTED};
use proptest::prelude::*;

/// Text that mixes the pieces credentials are made of with arbitrary characters, so the
/// rules' boundaries are exercised far more often than by uniform strings.
fn texty() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9_=:/?&.%@$+ -]{0,40}",
        Just("password".to_owned()),
        Just("Bearer ".to_owned()),
        Just("eyJhbGciOi".to_owned()),
        Just("://".to_owned()),
        Just("%3D".to_owned()),
        Just("123456".to_owned()),
        Just("@example.com".to_owned()),
        Just("é😀\u{0}\t".to_owned()),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|parts| parts.concat())
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(Into::into),
        any::<i64>().prop_map(Into::into),
        texty().prop_map(Into::into),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Into::into),
            proptest::collection::btree_map(
                prop_oneof![
                    texty(),
                    Just("pw".to_owned()),
                    Just("otp_enabled".to_owned())
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_text_screen_is_idempotent_and_its_output_passes(text in texty()) {
        let once = policy::screen_text(&text);
        prop_assert!(policy::text_is_screened(once), "{once:?}");
        prop_assert_eq!(policy::screen_text(once), once);
        prop_assert!(once.len() <= policy::MAX_TEXT_LEN);
        let _ = policy::classify_key(&text);
        let _ = policy::check_identifier(&text);
        let _ = policy::valid_key(&text);
    }

    #[test]
    fn metadata_reads_always_pass_the_policy(a in texty(), b in texty(), c in texty()) {
        let m = Metadata::new()
            .resource(&a)
            .user_agent(&b)
            .session_id(&c)
            .user_id(&a)
            .with_extra("note", b.as_str())
            .with_extra("pw", c.as_str());
        m.for_each_field(|key, value| {
            if let authtel_core::metadata::Value::Str(s) = value {
                if matches!(key, "session_id" | "user_id" | "caller" | "rate_limit_key") {
                    // Identifiers have their own, stricter-on-emails rule.
                    assert!(policy::check_identifier(s).is_ok(), "{key}: {s:?}");
                } else {
                    assert!(policy::text_is_screened(s), "{key}: {s:?}");
                }
            }
        });
    }

    #[test]
    fn json_screening_is_idempotent_and_agrees_with_its_read_only_twin(key in texty(), mut value in json()) {
        let before = value.clone();
        let changed = policy::screen_json(&key, &mut value, 1);
        prop_assert_eq!(changed == 0 && value == before, policy::json_is_screened(&key, &before, 1));
        prop_assert!(policy::json_is_screened(&key, &value, 1), "{value}");
        let again = value.clone();
        prop_assert_eq!(policy::screen_json(&key, &mut value, 1), 0);
        prop_assert_eq!(value, again);
    }

    #[test]
    fn records_built_through_setters_are_screened_and_decode_to_themselves(
        texts in proptest::collection::vec(texty(), 6),
        meta in proptest::collection::btree_map(texty(), json(), 0..6),
    ) {
        let e = AuditEvent::new("security.lockout", Outcome::Failure)
            .unwrap()
            .with_actor(authtel_core::audit::Party::new(texts[0].clone(), texts[1].clone()))
            .with_session_id(texts[2].clone())
            .with_user_agent(texts[3].clone())
            .with_reason(texts[4].clone())
            .with_span_id(texts[5].clone());
        let built = meta
            .into_iter()
            .try_fold(e, |e, (k, v)| e.with_metadata(k, v));
        match built {
            Ok(e) => {
                for text in [e.user_agent(), e.reason(), e.actor().map(|a| a.kind.as_str())]
                    .into_iter()
                    .flatten()
                {
                    prop_assert!(policy::text_is_screened(text), "{text:?}");
                }
                for (k, v) in e.metadata() {
                    prop_assert!(policy::json_is_screened(k, v, 1), "{k}: {v}");
                }
                // Decoding applies the same policy: a screened record decodes to itself.
                let text = serde_json::to_string(&e).unwrap();
                let back: AuditEvent = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(back, e);
            }
            // Over a bound: a typed error, never a panic.
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn decoded_records_are_screened_and_decode_to_themselves(
        texts in proptest::collection::vec(texty(), 8),
        meta in proptest::collection::btree_map(texty(), json(), 0..6),
    ) {
        let e = AuditEvent::new("security.lockout", Outcome::Failure).unwrap();
        let parts = AuditEventParts {
            actor: Some(authtel_core::audit::Party::new(texts[0].clone(), texts[1].clone())),
            session_id: Some(texts[2].clone()),
            user_agent: Some(texts[3].clone()),
            resource: Some(texts[4].clone()),
            operation: Some(texts[5].clone()),
            reason: Some(texts[6].clone()),
            trace_id: Some(texts[7].clone()),
            metadata: meta,
            ..AuditEventParts::new(e.id(), e.occurred_at(), e.action(), e.outcome())
        };
        match AuditEvent::try_from(parts) {
            Ok(e) => {
                let text = serde_json::to_string(&e).unwrap();
                let back: AuditEvent = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(back, e);
            }
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }
}

#[test]
fn redacted_marker_passes_the_screen() {
    assert!(policy::text_is_screened(REDACTED));
}
