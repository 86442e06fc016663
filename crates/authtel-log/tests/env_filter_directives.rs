//! Per-category targets make `RUST_LOG`-style directives work.

mod support;

use authtel_core::catalogue::{AUTH_LOGIN, MFA_VERIFY, SECURITY_LOCKOUT, SECURITY_RATE_LIMITED};
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, Measurements};
use authtel_log::LoggerOptions;
use support::capture;

#[test]
fn security_warn_directive_keeps_security_signals_and_drops_auth_stops() {
    let out = capture(LoggerOptions::new(), Some("authtel::security=warn"), || {
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_1"), || true);
        telemetry::event(
            &SECURITY_LOCKOUT,
            Measurements::new(),
            Metadata::new().user_id("u_1"),
        );
        telemetry::event(
            &SECURITY_RATE_LIMITED,
            Measurements::new().count(3),
            Metadata::new().rate_limit_key("ip:203.0.113.7"),
        );
    });
    let events: Vec<String> = out
        .lines()
        .iter()
        .map(|l| l["event"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        events,
        ["security.lockout", "security.rate_limited"],
        "{}",
        out.text
    );
    assert_eq!(
        out.one("security.rate_limited")["rate_limit_key"],
        "ip:203.0.113.7"
    );
}

#[test]
fn quieting_one_category_leaves_the_others() {
    let out = capture(
        LoggerOptions::new(),
        Some("info,authtel::auth=warn"),
        || {
            let _ = telemetry::span(&AUTH_LOGIN, Metadata::new(), || true);
            let _ = telemetry::span(&MFA_VERIFY, Metadata::new(), || true);
            telemetry::event(&SECURITY_LOCKOUT, Measurements::new(), Metadata::new());
        },
    );
    assert!(out.events("auth.login.stop").is_empty(), "{}", out.text);
    assert_eq!(out.events("mfa.verify.stop").len(), 1, "{}", out.text);
    assert_eq!(out.events("security.lockout").len(), 1, "{}", out.text);
}
