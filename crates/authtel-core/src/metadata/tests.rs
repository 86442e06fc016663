use super::*;
use std::sync::atomic::Ordering;

#[test]
fn optional_extras_add_a_field_only_when_present() {
    let owned = String::from("web");
    let absent: Option<&String> = None;
    let mut m = Metadata::new()
        .with_extra("client", Some(&owned))
        .with_extra("device", absent)
        // An absent value under an invalid key adds nothing, so nothing is refused.
        .with_extra("Bad Key", None::<u32>)
        .with_extra("admin_ui", Some(true));
    assert_eq!(m.try_extra("step", None::<i64>), Ok(()));
    assert!(matches!(
        m.try_extra("Bad Key", Some(1)),
        Err(MetadataError::InvalidKey { .. })
    ));
    let fields: Vec<_> = m.extra().collect();
    assert_eq!(
        fields,
        [
            ("client", Value::Str("web")),
            ("admin_ui", Value::Bool(true))
        ]
    );
    assert_eq!(m.refused(), 0);
}

#[test]
fn secret_keys_are_redacted_but_booleans_and_descriptive_keys_survive() {
    for key in [
        "password",
        "new_password",
        "session_token",
        "client_secret",
        "otp",
        "totp_code",
        "password_hash",
        "cookie",
        "authorization",
        "api_key",
        "private_key",
        "pw",
        "pin",
        "mfa",
        "key",
        "auth",
        "sid",
        "jwt",
    ] {
        let m = Metadata::new().with_extra(key, "s3cr3t-value");
        assert_eq!(m.extra().next(), Some((key, Value::Str(REDACTED))), "{key}");
        assert_eq!(m.redacted(), 1, "{key}");
    }
    let m = Metadata::new()
        .with_extra("otp_enabled", true)
        .with_extra("pin", 1234)
        .with_extra("token_type", "bearer")
        .with_extra("password_age_days", 31)
        .with_extra("error_code", "E1042");
    let fields: Vec<_> = m.extra().collect();
    assert_eq!(
        fields,
        [
            ("otp_enabled", Value::Bool(true)),
            ("pin", Value::Str(REDACTED)),
            ("token_type", Value::Str("bearer")),
            ("password_age_days", Value::I64(31)),
            ("error_code", Value::Str("E1042")),
        ]
    );
}

#[test]
fn credentials_anywhere_in_standard_text_fields_are_redacted() {
    let m = Metadata::new()
        // Codes are `'static`, so only a literal gets here; the screen still reads them.
        .reason("password=hunter2-in-reason")
        .operation("Authorization: Bearer x")
        .method("totp 123456 was wrong")
        .resource("/reset?token=abc123")
        .user_agent("curl https://svc:s3cret@host/")
        .provider("github");
    assert_eq!(m.get_reason(), Some(REDACTED));
    assert_eq!(m.get_operation(), Some(REDACTED));
    assert_eq!(m.get_method(), Some(REDACTED));
    assert_eq!(m.get_resource(), Some(REDACTED));
    assert_eq!(m.get_user_agent(), Some(REDACTED));
    assert_eq!(m.get_provider(), Some("github"));
    assert_eq!(m.redacted(), 5);
}

#[test]
fn identifiers_refuse_emails_and_credentials() {
    let m = Metadata::new()
        .user_id("bob@example.com")
        .caller("svc@x")
        .session_id("password=hunter2")
        .rate_limit_key("email:alice@example.com");
    assert_eq!(m.get_user_id(), None);
    assert_eq!(m.get_caller(), None);
    assert_eq!(m.get_session_id(), None);
    assert_eq!(m.get_rate_limit_key(), None);
    assert_eq!(m.refused(), 4);
    let ok = Metadata::new()
        .session_id("sess_8fK2xQ9aB7LmZ3pQ4rT6")
        .rate_limit_key("ip:203.0.113.7");
    assert_eq!(ok.get_session_id(), Some("sess_8fK2xQ9aB7LmZ3pQ4rT6"));
    assert_eq!(ok.get_rate_limit_key(), Some("ip:203.0.113.7"));
    assert!(matches!(
        Metadata::new().try_user_id("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"),
        Err(MetadataError::RefusedIdentifier {
            field: "user_id",
            ..
        })
    ));
}

#[test]
fn a_key_that_is_a_value_is_dropped() {
    // Arguments swapped: the secret became the key.
    let m = Metadata::new()
        .with_extra("hunter2", "password")
        .with_extra("abcd1234efgh", "x")
        .with_extra("method", "password");
    let fields: Vec<_> = m.extra().collect();
    assert_eq!(fields, [("method", Value::Str("password"))]);
    assert_eq!(m.refused(), 2);
}

#[test]
fn redactions_are_counted_once_per_metadata_whatever_the_number_of_readers() {
    let m = Metadata::new().reason("password=x1").with_extra("pw", "y");
    let before = policy::redaction_count();
    for _ in 0..8 {
        let _ = m.get_reason();
        let _ = m.extra().count();
    }
    // Other tests run in parallel and count too: this value added exactly two.
    let after = policy::redaction_count();
    assert!(after >= before + 2);
    assert!(m.counted.load(Ordering::Relaxed));
    let again = m.clone();
    assert!(!again.counted.load(Ordering::Relaxed));
}

#[test]
fn the_published_field_lists_agree_with_the_slots() {
    for (field, key) in TEXT_KEYS {
        assert_eq!(
            Metadata::IDENTIFIER_FIELDS.contains(&key),
            field.is_identifier(),
            "{key}"
        );
        assert_eq!(
            Metadata::CODE_FIELDS.contains(&key),
            field.is_code(),
            "{key}"
        );
    }
}

#[test]
fn long_values_are_truncated_on_char_boundaries() {
    let long = "é".repeat(300);
    let m = Metadata::new().resource(&long);
    let r = m.get_resource().unwrap();
    assert!(r.len() <= MAX_TEXT_LEN);
    assert!(r.chars().all(|c| c == 'é'));
}

#[test]
fn extra_fields_are_bounded() {
    let mut m = Metadata::new();
    let keys = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    for k in keys {
        m.try_extra(k, 1).unwrap();
    }
    assert!(matches!(
        m.try_extra("a9", 1),
        Err(MetadataError::TooManyFields { .. })
    ));
    assert_eq!(m.extra().count(), MAX_EXTRA_FIELDS);
    let huge_key = "k".repeat(500);
    assert!(matches!(
        m.try_extra(&huge_key, 1),
        Err(MetadataError::InvalidKey { key }) if key.len() == MAX_KEY_LEN
    ));
}

#[test]
fn for_each_field_formats_ip() {
    let m = Metadata::new().client_ip("2001:db8::1".parse().unwrap());
    let mut seen = None;
    m.for_each_field(|k, v| {
        if k == "client_ip" {
            seen = Some(v.to_string());
        }
    });
    assert_eq!(seen.as_deref(), Some("2001:db8::1"));
}

#[test]
fn factors_are_bounded_screened_and_counted_once() {
    use crate::vocabulary::AuthMethod;
    // More than MAX_FACTORS: the first MAX_FACTORS are kept, in order.
    let many = [AuthMethod::Password; MAX_FACTORS + 3];
    let m = Metadata::new().factors(&many);
    assert_eq!(m.get_factors().unwrap().len(), MAX_FACTORS);

    // A deliberately leaked credential as a custom code reads as REDACTED, in place.
    let leaked: &'static str = Box::leak("password=hunter2".to_owned().into_boxed_str());
    let used = [AuthMethod::Totp, AuthMethod::Custom(leaked)];
    let m = Metadata::new().factors(&used);
    let factors = m.get_factors().unwrap();
    assert_eq!(factors.iter().collect::<Vec<_>>(), ["totp", REDACTED]);
    assert_eq!(factors.text().as_str(), format!("totp,{REDACTED}"));
    assert_eq!(m.redacted(), 1);
    let mut seen = Vec::new();
    m.for_each_field(|k, v| seen.push((k.to_owned(), v.to_string())));
    assert_eq!(seen, [("factors".to_owned(), format!("totp,{REDACTED}"))]);
    assert!(!format!("{m:?}").contains("hunter2"));

    // The joined text stops on a code boundary before MAX_TEXT_LEN.
    let long: &'static str = Box::leak("f".repeat(100).into_boxed_str());
    let three = [AuthMethod::Custom(long); 3];
    let text = Metadata::new()
        .factors(&three)
        .get_factors()
        .unwrap()
        .text();
    assert_eq!(text.as_str(), format!("{long},{long}"));

    // An empty list is a set, empty field.
    let none: [AuthMethod; 0] = [];
    assert!(
        Metadata::new()
            .factors(&none)
            .get_factors()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_counts_agree_with_what_readers_see_in_every_text_field() {
    // Every standard text field, with values each rule answers differently: the counts must
    // say exactly what a reader finds (absent for refused, the marker for redacted).
    let values = [
        "u_42",
        "alice@example.com",
        "password=hunter2",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "login failed",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
    ];
    let (mut refused, mut redacted) = (0, 0);
    for (_, key) in super::slots::TEXT_KEYS {
        for value in values {
            // Code fields (method, reason, …) take a code: planted the same way.
            let m = Metadata::new()
                .with_text_field(key, value)
                .or_else(|| Metadata::new().with_code_field(key, value))
                .unwrap_or_else(|| panic!("{key} is a text or code field"));
            let mut seen = None;
            m.for_each_field(|k, v| {
                if k == key {
                    seen = Some(format!("{v:?}"));
                }
            });
            let absent = seen.is_none();
            let marked = seen.as_deref().is_some_and(|s| s.contains(REDACTED));
            assert_eq!(m.refused(), u32::from(absent), "{key}={value}: {seen:?}");
            assert_eq!(m.redacted(), u32::from(marked), "{key}={value}: {seen:?}");
            refused += usize::from(absent);
            redacted += usize::from(marked);
        }
    }
    // Both rules were exercised: identifiers refuse, free text redacts.
    assert!(
        refused > 0 && redacted > 0,
        "{refused} refused, {redacted} redacted"
    );
}
