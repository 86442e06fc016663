use super::*;
use std::collections::HashSet;

#[test]
fn every_name_is_unique_and_valid() {
    let mut seen = HashSet::new();
    for e in all() {
        assert!(seen.insert(e.name()), "duplicate {}", e.name());
        assert!(validate_name(e.name()).is_ok(), "{}", e.name());
        assert_eq!(
            e.segments().next(),
            Some(e.category().as_str()),
            "{} is not under its category prefix",
            e.name()
        );
        if let Some(suffix) = e.kind().phase_suffix() {
            assert_eq!(e.segments().next_back(), Some(suffix));
        }
    }
}

#[test]
fn catalogue_has_the_documented_size() {
    assert_eq!(ALL_SPANS.len(), 26);
    assert_eq!(ALL_SIGNALS.len(), 32);
    assert_eq!(all().len(), 26 * 3 + 32);
}

#[test]
fn names_are_stable() {
    // A change here breaks every stored audit row and dashboard: names are API.
    let expected = [
        "auth.login.start",
        "mfa.backup_codes.regenerate.exception",
        "api_token.use.stop",
        "account.password_change.stop",
        "session.revoke_all",
        "mfa.trust.revoked_all",
        "security.invalid_credentials",
        "authorization.denied",
        "pipeline.handler.failure",
        "pipeline.forward.error",
    ];
    for name in expected {
        assert!(by_name(name).is_some(), "{name} missing");
    }
}

#[test]
fn category_lists_partition_the_catalogue() {
    let lists = [
        auth_events(),
        token_events(),
        email_events(),
        confirmation_events(),
        session_events(),
        oauth_events(),
        mfa_events(),
        api_token_events(),
        jwt_events(),
        account_events(),
        hook_events(),
        security_events(),
        reset_events(),
        authorization_events(),
        pipeline_events(),
    ];
    let total: usize = lists.iter().map(|l| l.len()).sum();
    assert_eq!(total, all().len());
    assert_eq!(mfa_events().len(), 4 * 3 + 4);
}

#[test]
fn application_names_are_checked() {
    assert!(matches!(
        validate_application_name("auth.custom"),
        Err(NameError::Reserved { prefix: "auth", .. })
    ));
    assert!(validate_application_name("authx.custom").is_ok());
    assert!(matches!(
        validate_name("a.b.c.d.e.f.g"),
        Err(NameError::SegmentCount { segments: 7, .. })
    ));
    assert!(matches!(
        validate_name("a.1b"),
        Err(NameError::InvalidCharacter { position: 2, .. })
    ));
    assert!(matches!(
        validate_name("a..b"),
        Err(NameError::EmptySegment { .. })
    ));
    assert!(matches!(
        validate_name("a.b."),
        Err(NameError::EmptySegment { .. })
    ));
    let long = format!("a.{}", "b".repeat(200));
    assert!(matches!(
        validate_name(&long),
        Err(NameError::TooLong { .. })
    ));
    let err = Event::declare("Billing.x").unwrap_err();
    assert!(err.to_string().contains("Billing.x"), "{err}");
}

#[test]
fn ids_are_dense_and_stable() {
    let a = AUTH_LOGIN.stop().id();
    assert_ne!(a, 0);
    assert_eq!(AUTH_LOGIN.stop().id(), a);
    assert_ne!(AUTH_LOGIN.start().id(), a);
}
