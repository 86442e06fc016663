//! Every event of the specification is in the catalogue, with the right kind and category:
//! the Sigra telemetry reference (auth, token, email, confirmation, session, OAuth, MFA and
//! security events), the authorization audit events (allowed, denied, error), and the
//! issue's additions (API tokens, JWTs, account lifecycle, hooks, pipeline signals).
//! The lists are spelled out on purpose: names are API.

use authtel_core::catalogue::{self, Category, EventKind, Severity};

/// Spans: each has `.start`, `.stop` and `.exception`.
const SPANS: &[(&str, Category)] = &[
    // Sigra reference: authentication, tokens, email, confirmation, sessions, OAuth, MFA.
    ("auth.login", Category::Auth),
    ("auth.logout", Category::Auth),
    ("auth.register", Category::Auth),
    ("token.generate", Category::Token),
    ("token.verify", Category::Token),
    ("email.deliver", Category::Email),
    ("confirmation.verify", Category::Confirmation),
    ("session.create", Category::Session),
    ("session.delete", Category::Session),
    ("session.sudo", Category::Session),
    ("oauth.authorize", Category::OAuth),
    ("oauth.callback", Category::OAuth),
    ("mfa.enroll", Category::Mfa),
    ("mfa.verify", Category::Mfa),
    ("mfa.disable", Category::Mfa),
    ("mfa.backup_codes.regenerate", Category::Mfa),
    // The issue: API tokens, JWTs, account lifecycle, hooks.
    ("api_token.create", Category::ApiToken),
    ("api_token.use", Category::ApiToken),
    ("api_token.revoke", Category::ApiToken),
    ("jwt.issue", Category::Jwt),
    ("jwt.verify", Category::Jwt),
    ("jwt.refresh", Category::Jwt),
    ("account.email_change", Category::Account),
    ("account.password_change", Category::Account),
    ("account.delete", Category::Account),
    ("hook.execute", Category::Hook),
];

/// One-shot signals and whether each is a security signal (never sampled or dropped).
const SIGNALS: &[(&str, Category, bool)] = &[
    // Sigra reference: session, OAuth and MFA signals.
    ("session.revoke_all", Category::Session, true),
    ("oauth.link", Category::OAuth, false),
    ("oauth.unlink", Category::OAuth, false),
    ("oauth.refresh", Category::OAuth, false),
    ("oauth.register", Category::OAuth, false),
    ("oauth.login", Category::OAuth, false),
    ("mfa.lockout", Category::Mfa, true),
    ("mfa.pending_expired", Category::Mfa, true),
    ("mfa.trust.granted", Category::Mfa, false),
    ("mfa.trust.revoked_all", Category::Mfa, false),
    // Sigra reference: security signals and the others listed with them.
    ("security.rate_limited", Category::Security, true),
    ("security.lockout", Category::Security, true),
    ("security.suspicious_login", Category::Security, true),
    ("security.invalid_credentials", Category::Security, true),
    ("confirmation.sent", Category::Confirmation, false),
    ("reset.requested", Category::Reset, false),
    ("reset.completed", Category::Reset, false),
    ("token.expired", Category::Token, false),
    // Authorization audit (macula reference): every decision is a security signal.
    ("authorization.allowed", Category::Authorization, true),
    ("authorization.denied", Category::Authorization, true),
    ("authorization.error", Category::Authorization, true),
    // The issue: authtel's own operational signals.
    ("pipeline.handler.failure", Category::Pipeline, true),
    ("pipeline.handler.detached", Category::Pipeline, true),
    ("pipeline.forward.error", Category::Pipeline, true),
    ("pipeline.records.dropped", Category::Pipeline, true),
    // Issue 15: the signals raised by the authtel-detect detectors (new IP or device logins
    // reuse `security.suspicious_login`).
    ("security.brute_force", Category::Security, true),
    ("security.password_spraying", Category::Security, true),
    ("security.credential_stuffing", Category::Security, true),
    ("security.mfa_fatigue", Category::Security, true),
    ("security.mfa_guessing", Category::Security, true),
    ("security.impossible_travel", Category::Security, true),
    ("security.refresh_token_reuse", Category::Security, true),
];

#[test]
fn every_specified_span_is_present_with_three_phases() {
    for &(name, category) in SPANS {
        let span = catalogue::ALL_SPANS
            .iter()
            .find(|s| s.name() == name)
            .unwrap_or_else(|| panic!("span {name} is missing from catalogue::ALL_SPANS"));
        assert_eq!(span.category(), category, "{name}");
        for (phase, kind) in [
            ("start", EventKind::SpanStart),
            ("stop", EventKind::SpanStop),
            ("exception", EventKind::SpanException),
        ] {
            let full = format!("{name}.{phase}");
            let event = catalogue::by_name(&full).unwrap_or_else(|| panic!("{full} missing"));
            assert_eq!(event.kind(), kind, "{full}");
            assert_eq!(event.category(), category, "{full}");
            assert!(!event.is_security_signal(), "{full} is a span phase");
        }
        assert_eq!(span.exception().severity(), Severity::Error, "{name}");
    }
}

#[test]
fn every_specified_signal_is_present() {
    for &(name, category, security) in SIGNALS {
        let event = catalogue::by_name(name).unwrap_or_else(|| panic!("signal {name} missing"));
        assert_eq!(event.kind(), EventKind::Signal, "{name}");
        assert_eq!(event.category(), category, "{name}");
        assert_eq!(
            event.is_security_signal(),
            security,
            "{name}: security signal?"
        );
    }
}

#[test]
fn the_catalogue_holds_nothing_unspecified() {
    assert_eq!(catalogue::ALL_SPANS.len(), SPANS.len());
    assert_eq!(catalogue::ALL_SIGNALS.len(), SIGNALS.len());
    assert_eq!(catalogue::all().len(), SPANS.len() * 3 + SIGNALS.len());
}

#[test]
fn category_lists_match_the_specification() {
    let expected = |category: Category| {
        SPANS.iter().filter(|s| s.1 == category).count() * 3
            + SIGNALS.iter().filter(|s| s.1 == category).count()
    };
    let lists: [(Category, &[&authtel_core::Event]); 15] = [
        (Category::Auth, catalogue::auth_events()),
        (Category::Token, catalogue::token_events()),
        (Category::Email, catalogue::email_events()),
        (Category::Confirmation, catalogue::confirmation_events()),
        (Category::Session, catalogue::session_events()),
        (Category::OAuth, catalogue::oauth_events()),
        (Category::Mfa, catalogue::mfa_events()),
        (Category::ApiToken, catalogue::api_token_events()),
        (Category::Jwt, catalogue::jwt_events()),
        (Category::Account, catalogue::account_events()),
        (Category::Hook, catalogue::hook_events()),
        (Category::Security, catalogue::security_events()),
        (Category::Reset, catalogue::reset_events()),
        (Category::Authorization, catalogue::authorization_events()),
        (Category::Pipeline, catalogue::pipeline_events()),
    ];
    for (category, list) in lists {
        assert_eq!(list.len(), expected(category), "{category}");
        assert!(list.iter().all(|e| e.category() == category), "{category}");
    }
}
