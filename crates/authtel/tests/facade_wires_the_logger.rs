//! Everything a user needs is reachable through the facade, and an event emitted through
//! it reaches the default logger's output.

#![cfg(feature = "log")]

use authtel::catalogue::{AUTH_LOGIN, SECURITY_LOCKOUT};
use authtel::log::{DEFAULT_LOGGER_ID, Logger, LoggerOptions};
use authtel::metadata::Metadata;
use authtel::registry::Registry;
use authtel::telemetry::{self, Measurements};
use authtel_testing::SharedBuffer;

#[test]
fn a_login_through_the_facade_is_logged() {
    let buffer = SharedBuffer::new();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(move || writer.clone())
        .finish();
    let registry = Registry::new();
    Logger::build(LoggerOptions::new())
        .attach_to(&registry)
        .expect("fresh registry");
    assert_eq!(registry.handlers()[0].id, DEFAULT_LOGGER_ID);

    tracing::subscriber::with_default(subscriber, || {
        let _scope = registry.enter();
        let ok = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_1"), || {
            Ok::<_, ()>(())
        });
        assert!(ok.is_ok());
        telemetry::event(
            &SECURITY_LOCKOUT,
            Measurements::new().count(1),
            Metadata::new(),
        );
    });

    let text = buffer.text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["event"], "auth.login.stop");
    assert_eq!(lines[0]["target"], "authtel::auth");
    assert_eq!(lines[0]["user_id"], "u_1");
    assert_eq!(lines[1]["event"], "security.lockout");
    assert_eq!(lines[1]["level"], "WARN");
}

#[test]
fn facade_types_are_the_core_types() {
    // The same descriptor, not a copy: handlers attached through either path see it.
    let via_facade: &'static authtel::Event = AUTH_LOGIN.stop();
    assert_eq!(via_facade.name(), "auth.login.stop");
    assert_eq!(
        authtel::Category::Security.log_target(),
        "authtel::security"
    );
    assert_eq!(authtel::Outcome::Denied.as_str(), "denied");
}
