//! Span stops, exceptions and signals are logged with the right level, target and fields;
//! span starts are not logged.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use authtel_core::catalogue::{
    AUTH_LOGIN, AUTHORIZATION_DENIED, JWT_REFRESH, MFA_VERIFY, OAUTH_LINK, SECURITY_LOCKOUT,
};
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, Measurements};
use authtel_core::vocabulary::{Aal, AuthMethod, GrantType};
use authtel_log::LoggerOptions;
use support::capture;
use tracing::Level;

#[derive(Debug)]
struct WrongPassword;

#[test]
fn span_stop_is_logged_with_outcome_duration_ids_and_typed_fields() {
    let out = capture(LoggerOptions::new(), None, || {
        let meta = Metadata::new()
            .user_id("u_42")
            .session_id("s_9")
            .client_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
            .method("password")
            .tenant_id("t_acme")
            .client_id("cli_web")
            .grant_type(GrantType::Password)
            .aal(Aal::Aal2)
            .is_mfa(true)
            .factors(&[AuthMethod::Password, AuthMethod::Totp])
            .with_extra("tenant", "acme");
        let result: Result<(), WrongPassword> =
            telemetry::span(&AUTH_LOGIN, meta, || Err(WrongPassword));
        assert!(result.is_err());
    });
    assert!(
        out.events("auth.login.start").is_empty(),
        "starts are not logged:\n{}",
        out.text
    );
    let stop = out.one("auth.login.stop");
    assert_eq!(stop["level"], "INFO");
    assert_eq!(stop["target"], "authtel::auth");
    assert_eq!(stop["outcome"], "failure");
    assert_eq!(stop["user_id"], "u_42");
    assert_eq!(stop["session_id"], "s_9");
    assert_eq!(stop["client_ip"], "203.0.113.7");
    assert_eq!(stop["method"], "password");
    assert_eq!(stop["tenant_id"], "t_acme");
    assert_eq!(stop["client_id"], "cli_web");
    assert_eq!(stop["grant_type"], "password");
    assert_eq!(stop["aal"], "aal2");
    assert_eq!(stop["is_mfa"], true);
    assert_eq!(stop["factors"], "password,totp");
    assert_eq!(stop["extra"], "tenant=acme");
    assert!(
        stop["error_type"]
            .as_str()
            .is_some_and(|t| t.ends_with("WrongPassword")),
        "{stop}"
    );
    assert!(
        stop["duration_ms"].as_f64().is_some_and(|d| d >= 0.0),
        "{stop}"
    );
    let span_id = stop["span_id"].as_str().expect("span_id is text");
    assert_eq!(span_id.len(), 16, "a 64-bit id in hex: {span_id}");
    assert_eq!(stop["root_id"], span_id, "a root span is its own root");
    assert!(
        stop.get("parent_id").is_none(),
        "a root span has no parent: {stop}"
    );
    assert!(
        stop.get("attempts_remaining").is_none(),
        "unset fields are not written"
    );
}

#[test]
fn configured_level_applies_to_routine_events_only() {
    let out = capture(LoggerOptions::new().with_level(Level::DEBUG), None, || {
        let _ = telemetry::span(&JWT_REFRESH, Metadata::new().user_id("u_1"), || {
            Ok::<_, ()>(())
        });
        telemetry::event(
            &OAUTH_LINK,
            Measurements::new(),
            Metadata::new().provider("github"),
        );
        telemetry::event(
            &SECURITY_LOCKOUT,
            Measurements::new().count(1),
            Metadata::new().user_id("u_1"),
        );
    });
    assert_eq!(out.one("jwt.refresh.stop")["level"], "DEBUG");
    let link = out.one("oauth.link");
    assert_eq!(
        (link["level"].as_str(), link["target"].as_str()),
        (Some("DEBUG"), Some("authtel::oauth"))
    );
    assert_eq!(link["provider"], "github");
    let lockout = out.one("security.lockout");
    assert_eq!(lockout["level"], "WARN");
    assert_eq!(lockout["target"], "authtel::security");
    assert_eq!(lockout["count"], 1);
}

#[test]
fn nested_spans_and_signals_carry_their_parent() {
    let out = capture(LoggerOptions::new(), None, || {
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_7"), || {
            let mut verify = telemetry::start(&MFA_VERIFY, Metadata::new().method("totp"));
            verify
                .metadata_mut()
                .try_extra("device", "phone")
                .expect("a valid key");
            let verify_meta_attempts = Metadata::new().attempts_remaining(2).reason("invalid_code");
            telemetry::event(
                &AUTHORIZATION_DENIED,
                Measurements::new(),
                verify_meta_attempts,
            );
            verify.stop(Outcome::Failure);
            Ok::<_, ()>(())
        });
    });
    let login = out.one("auth.login.stop");
    let verify = out.one("mfa.verify.stop");
    let denied = out.one("authorization.denied");
    assert_eq!(verify["parent_id"], login["span_id"]);
    assert_eq!(verify["root_id"], login["span_id"]);
    assert_eq!(verify["outcome"], "failure");
    assert_eq!(verify["extra"], "device=phone");
    assert_eq!(verify["target"], "authtel::mfa");
    assert_eq!(denied["parent_id"], verify["span_id"]);
    assert_eq!(denied["level"], "WARN");
    assert_eq!(denied["attempts_remaining"], 2);
    assert_eq!(denied["reason"], "invalid_code");
}

#[test]
fn exceptions_are_logged_at_error_with_their_kind() {
    // Exception messages are opt-in; no test in this binary expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let out = capture(LoggerOptions::new(), None, || {
        let panicked = std::panic::catch_unwind(|| {
            telemetry::span(
                &AUTH_LOGIN,
                Metadata::new().user_id("u_3"),
                || -> Result<(), ()> { panic!("database unreachable") },
            )
        });
        assert!(panicked.is_err());
        drop(telemetry::start(&MFA_VERIFY, Metadata::new()));
    });
    let login = out.one("auth.login.exception");
    assert_eq!(login["level"], "ERROR");
    assert_eq!(login["exception"], "panic");
    assert_eq!(login["exception_reason"], "database unreachable");
    assert_eq!(login["outcome"], "error");
    let dropped = out.one("mfa.verify.exception");
    assert_eq!(dropped["exception"], "cancelled");
    assert!(out.events("auth.login.stop").is_empty());
}

#[test]
fn a_request_context_reaches_the_log_line() {
    use authtel_core::context::RequestContext;
    let ctx = RequestContext::builder()
        .client_ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)))
        .user_agent("Mozilla/5.0")
        .request_id("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
        .trace_parent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        )
        .build();
    let out = capture(LoggerOptions::new(), None, || {
        ctx.in_scope(|| {
            let _ = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_42"), || {
                Ok::<_, WrongPassword>(())
            });
        });
    });
    let stop = out.one("auth.login.stop");
    assert_eq!(stop["client_ip"], "198.51.100.4");
    assert_eq!(stop["user_agent"], "Mozilla/5.0");
    assert_eq!(stop["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        stop["extra"],
        "request_id=0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f"
    );
}
