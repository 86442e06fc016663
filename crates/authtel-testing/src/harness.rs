//! The test harness: a scoped registry with a capture attached, and assertions on it.
//!
//! Assertions panic with a message that shows what was captured, like `assert_eq!`: they
//! are meant to be called from tests.

use std::fmt;

use authtel_core::registry::{Registry, ScopeGuard, Selection};

use crate::capture::{CaptureHandler, CapturedEvent};

/// A scoped [`Registry`] with a [`CaptureHandler`] attached, ready to [`enter`](Capture::enter).
///
/// ```
/// use authtel_core::{catalogue, telemetry::{self, Measurements}, metadata::Metadata};
/// use authtel_testing::Capture;
///
/// let capture = Capture::new();
/// {
///     let _scope = capture.enter();
///     telemetry::event(&catalogue::SECURITY_RATE_LIMITED, Measurements::new().count(1),
///         Metadata::new().rate_limit_key("ip:203.0.113.7"));
/// }
/// // Outside the scope, this thread emits to the global registry again.
/// telemetry::event(&catalogue::SECURITY_LOCKOUT, Measurements::new(), Metadata::new());
/// assert_eq!(capture.names(), ["security.rate_limited"]);
/// ```
#[derive(Clone, Debug)]
pub struct Capture {
    registry: Registry,
    handler: CaptureHandler,
}

impl Default for Capture {
    fn default() -> Self {
        Capture::new()
    }
}

impl Capture {
    /// The id the capture handler is attached under.
    pub const HANDLER_ID: &'static str = "authtel-testing-capture";

    /// A fresh scoped registry capturing every event, library and application.
    pub fn new() -> Capture {
        Capture::with_selection(Selection::All)
    }

    /// A fresh scoped registry capturing only the selected events.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry};
    /// use authtel_testing::Capture;
    /// let capture = Capture::with_selection(catalogue::mfa_events());
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Default::default());
    /// telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Default::default());
    /// capture.assert_emitted(&["mfa.lockout"]);
    /// ```
    pub fn with_selection(selection: impl Into<Selection>) -> Capture {
        let registry = Registry::new();
        let handler = CaptureHandler::new();
        // A fresh registry holds no handler, so this id cannot clash.
        if let Err(error) = registry.attach(Capture::HANDLER_ID, selection, handler.clone()) {
            unreachable!("attaching to a fresh registry failed: {error}");
        }
        Capture { registry, handler }
    }

    /// The scoped registry, to attach the handlers under test next to the capture.
    ///
    /// ```
    /// use authtel_core::registry::{handler_fn, Selection};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// capture.registry().attach("under-test", Selection::All, handler_fn(|_| {})).unwrap();
    /// assert_eq!(capture.registry().handlers().len(), 2);
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The capture handler itself.
    pub fn handler(&self) -> &CaptureHandler {
        &self.handler
    }

    /// Makes the scoped registry the one this thread emits to, until the guard drops.
    /// Other threads need their own `enter` (a `Capture` is `Clone + Send`).
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let worker = capture.clone();
    /// std::thread::spawn(move || {
    ///     let _scope = worker.enter();
    ///     telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Default::default());
    /// }).join().unwrap();
    /// capture.assert_emitted(&["mfa.lockout"]);
    /// ```
    pub fn enter(&self) -> ScopeGuard {
        self.registry.enter()
    }

    /// A copy of every captured event, in arrival order.
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.handler.events()
    }

    /// The names of the captured events, in arrival order.
    pub fn names(&self) -> Vec<&'static str> {
        self.handler.names()
    }

    /// The captured events with this name, in arrival order.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::span(&catalogue::MFA_VERIFY, Metadata::new().method("totp"), || false);
    /// let stops = capture.events_named("mfa.verify.stop");
    /// assert_eq!(stops.len(), 1);
    /// assert_eq!(stops[0].outcome, Some(authtel_core::Outcome::Failure));
    /// ```
    pub fn events_named(&self, name: &str) -> Vec<CapturedEvent> {
        self.handler
            .events()
            .into_iter()
            .filter(|e| e.name == name)
            .collect()
    }

    /// The one captured event with this name; panics (listing what was captured) when there
    /// is none or more than one.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::TOKEN_EXPIRED, Default::default(), Default::default());
    /// assert_eq!(capture.single("token.expired").name, "token.expired");
    /// ```
    #[track_caller]
    pub fn single(&self, name: &str) -> CapturedEvent {
        let mut found = self.events_named(name);
        if found.len() != 1 {
            panic!(
                "expected exactly one {name:?} event, captured {} of them; all captured events: {:?}",
                found.len(),
                self.names()
            );
        }
        found.remove(0)
    }

    /// A position in the capture: pass it to [`Capture::events_since`] to get what was
    /// emitted after it (one flow's events, for [`crate::flows`]).
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Default::default());
    /// let mark = capture.mark();
    /// telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), Default::default());
    /// let names: Vec<_> = capture.events_since(mark).iter().map(|e| e.name).collect();
    /// assert_eq!(names, ["security.lockout"]);
    /// ```
    pub fn mark(&self) -> usize {
        self.handler.len()
    }

    /// The events captured after `mark` (from [`Capture::mark`]), in arrival order.
    pub fn events_since(&self, mark: usize) -> Vec<CapturedEvent> {
        let mut events = self.handler.events();
        events.drain(..mark.min(events.len()));
        events
    }

    /// Forgets everything captured so far (for example after warm-up).
    pub fn clear(&self) {
        self.handler.clear();
    }

    /// Asserts that exactly these events were captured, in this order.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// let _ = telemetry::span(&catalogue::JWT_VERIFY, Metadata::new(), || Ok::<_, ()>(()));
    /// capture.assert_emitted(&["jwt.verify.start", "jwt.verify.stop"]);
    /// ```
    #[track_caller]
    pub fn assert_emitted(&self, expected: &[&str]) {
        let names = self.names();
        if names != expected {
            panic!("captured events differ\n  expected: {expected:?}\n  captured: {names:?}");
        }
    }

    /// Asserts that some captured event named `event_name` carries the metadata field `key`
    /// with the text `value` (as [`Value`](authtel_core::metadata::Value)'s `Display` renders it).
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(),
    ///     Metadata::new().user_id("u_9").attempts_remaining(0));
    /// capture.assert_field("mfa.lockout", "user_id", "u_9");
    /// capture.assert_field("mfa.lockout", "attempts_remaining", "0");
    /// ```
    #[track_caller]
    pub fn assert_field(&self, event_name: &str, key: &str, value: &str) {
        let events = self.events_named(event_name);
        if events.iter().any(|e| e.field(key) == Some(value)) {
            return;
        }
        if events.is_empty() {
            panic!(
                "no {event_name:?} event was captured (looking for {key} = {value:?}); captured: {:?}",
                self.names()
            );
        }
        let seen: Vec<Option<&str>> = events.iter().map(|e| e.field(key)).collect();
        panic!(
            "no {event_name:?} event has {key} = {value:?}; the {} captured {event_name:?} events have {key} = {seen:?}",
            events.len()
        );
    }

    /// The first place one of `secrets` appears in anything captured (event names, field
    /// keys and values, error types, exception reasons), or `None`. Empty strings are
    /// skipped (they would match everything).
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// use authtel_testing::Capture;
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::SECURITY_INVALID_CREDENTIALS, Default::default(),
    ///     Metadata::new().with_extra("password", "hunter2").with_extra("tenant", "acme"));
    /// assert_eq!(capture.find_secret(&["hunter2"]), None);
    /// let found = capture.find_secret(&["acme"]).unwrap();
    /// assert_eq!(found.event, "security.invalid_credentials");
    /// ```
    pub fn find_secret(&self, secrets: &[&str]) -> Option<SecretFound> {
        let events = self.handler.events();
        for event in &events {
            for text in event.texts() {
                if let Some(secret) = secrets.iter().find(|s| !s.is_empty() && text.contains(*s)) {
                    return Some(SecretFound {
                        secret: (*secret).to_owned(),
                        event: event.name,
                        text: text.to_owned(),
                    });
                }
            }
        }
        None
    }

    /// Asserts that none of `secrets` appears anywhere in what was captured; see
    /// [`Capture::find_secret`]. An empty secret is a mistake in the test and fails it.
    ///
    /// ```
    /// use authtel_core::{catalogue, telemetry, metadata::Metadata};
    /// use authtel_testing::Capture;
    /// let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA";
    /// let capture = Capture::new();
    /// let _scope = capture.enter();
    /// telemetry::event(&catalogue::SECURITY_SUSPICIOUS_LOGIN, Default::default(),
    ///     Metadata::new().user_agent(jwt).with_extra("refresh_token", "rt-123"));
    /// capture.assert_no_secret(&[jwt, "rt-123"]);
    /// ```
    #[track_caller]
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        if secrets.iter().any(|s| s.is_empty()) {
            panic!(
                "assert_no_secret got an empty secret, which would match everything; pass the planted values"
            );
        }
        if let Some(found) = self.find_secret(secrets) {
            panic!("{found}");
        }
    }
}

/// Where a secret was found by [`Capture::find_secret`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretFound {
    /// The secret that was found.
    pub secret: String,
    /// The event that carried it.
    pub event: &'static str,
    /// The captured text that contains it.
    pub text: String,
}

impl fmt::Display for SecretFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "secret {:?} leaked into event {:?} as {:?}; it must be redacted before it reaches a handler",
            self.secret, self.event, self.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use authtel_core::catalogue;
    use authtel_core::metadata::Metadata;
    use authtel_core::telemetry;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    fn panic_text(f: impl FnOnce()) -> String {
        let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion should fail");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn assert_emitted_fails_on_a_different_sequence() {
        let capture = Capture::new();
        let _scope = capture.enter();
        telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
        let text = panic_text(|| capture.assert_emitted(&["security.lockout"]));
        assert!(text.contains("mfa.lockout"), "{text}");
    }

    #[test]
    fn assert_field_fails_and_shows_what_was_seen() {
        let capture = Capture::new();
        let _scope = capture.enter();
        telemetry::event(
            &catalogue::MFA_LOCKOUT,
            Default::default(),
            Metadata::new().user_id("u_1"),
        );
        let text = panic_text(|| capture.assert_field("mfa.lockout", "user_id", "u_2"));
        assert!(text.contains("u_1"), "{text}");
        let text = panic_text(|| capture.assert_field("security.lockout", "user_id", "u_1"));
        assert!(text.contains("no \"security.lockout\" event"), "{text}");
    }

    #[test]
    fn assert_no_secret_finds_a_leak_in_any_field() {
        let capture = Capture::new();
        let _scope = capture.enter();
        // "note" is not a secret-named key, so the policy keeps it: the scan must see it.
        telemetry::event(
            &catalogue::TOKEN_EXPIRED,
            Default::default(),
            Metadata::new().with_extra("note", "leaked-value-42"),
        );
        let text = panic_text(|| capture.assert_no_secret(&["leaked-value-42"]));
        assert!(text.contains("token.expired"), "{text}");
        let text = panic_text(|| capture.assert_no_secret(&[""]));
        assert!(text.contains("empty secret"), "{text}");
    }

    #[test]
    fn single_fails_on_zero_or_many() {
        let capture = Capture::new();
        let _scope = capture.enter();
        telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
        telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
        let text = panic_text(|| {
            capture.single("mfa.lockout");
        });
        assert!(text.contains("captured 2"), "{text}");
        capture.clear();
        let text = panic_text(|| {
            capture.single("mfa.lockout");
        });
        assert!(text.contains("captured 0"), "{text}");
    }
}
