//! `with_categories` really filters: unselected categories log nothing at all.

mod support;

use authtel_core::catalogue::{self, AUTH_LOGIN, Category, MFA_LOCKOUT, SECURITY_LOCKOUT};
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, Measurements};
use authtel_log::{Logger, LoggerOptions};
use support::capture;

#[test]
fn unselected_categories_log_nothing() {
    let options = LoggerOptions::new().with_categories([Category::Auth, Category::Security]);
    let out = capture(options, None, || {
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new(), || true);
        telemetry::event(&SECURITY_LOCKOUT, Measurements::new(), Metadata::new());
        // Every other category: nothing of these may appear.
        let _ = telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || true);
        let _ = telemetry::span(&catalogue::JWT_REFRESH, Metadata::new(), || true);
        telemetry::event(&MFA_LOCKOUT, Measurements::new(), Metadata::new());
        telemetry::event(
            &catalogue::AUTHORIZATION_DENIED,
            Measurements::new(),
            Metadata::new(),
        );
        telemetry::event(&catalogue::OAUTH_LINK, Measurements::new(), Metadata::new());
    });
    let targets: Vec<String> = out
        .lines()
        .iter()
        .map(|l| l["target"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        targets,
        ["authtel::auth", "authtel::security"],
        "{}",
        out.text
    );
}

#[test]
fn empty_category_list_logs_nothing() {
    let out = capture(LoggerOptions::new().with_categories([]), None, || {
        let _ = telemetry::span(&AUTH_LOGIN, Metadata::new(), || true);
        telemetry::event(&SECURITY_LOCKOUT, Measurements::new(), Metadata::new());
    });
    assert_eq!(out.text, "");
}

#[test]
fn filter_holds_even_when_attached_with_a_wider_selection() {
    let logger = Logger::build(LoggerOptions::new().with_categories([Category::Security]));
    assert!(logger.level_for(&SECURITY_LOCKOUT).is_some());
    assert!(logger.level_for(AUTH_LOGIN.stop()).is_none());
    assert!(logger.level_for(&MFA_LOCKOUT).is_none());
}
