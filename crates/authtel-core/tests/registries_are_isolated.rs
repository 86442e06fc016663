//! Scoped registries are isolated: two threads, each with its own entered registry, see only
//! their own events; leaving a scope stops delivery to it.

use std::sync::Barrier;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::telemetry;
use authtel_testing::Capture;

#[test]
fn two_threads_two_registries_see_only_their_own() {
    let a = Capture::new();
    let b = Capture::new();
    // Both threads emit while both scopes are entered, so neither can pass by timing.
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        s.spawn(|| {
            let _scope = a.enter();
            barrier.wait();
            for _ in 0..100 {
                telemetry::event(
                    &catalogue::MFA_LOCKOUT,
                    Default::default(),
                    Metadata::new().user_id("thread_a"),
                );
            }
            telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || true);
            barrier.wait();
        });
        s.spawn(|| {
            let _scope = b.enter();
            barrier.wait();
            for _ in 0..100 {
                telemetry::event(
                    &catalogue::SECURITY_LOCKOUT,
                    Default::default(),
                    Metadata::new().user_id("thread_b"),
                );
            }
            barrier.wait();
        });
    });

    let a_events = a.events();
    assert_eq!(a_events.len(), 102);
    assert!(a_events.iter().all(|e| e.name != "security.lockout"));
    assert!(
        a_events
            .iter()
            .all(|e| e.field("user_id") != Some("thread_b"))
    );
    assert_eq!(a.events_named("mfa.lockout").len(), 100);

    let b_events = b.events();
    assert_eq!(b_events.len(), 100);
    assert!(b_events.iter().all(|e| e.name == "security.lockout"));
    assert!(
        b_events
            .iter()
            .all(|e| e.field("user_id") == Some("thread_b"))
    );
}

#[test]
fn a_thread_without_a_scope_does_not_reach_a_scoped_registry() {
    let capture = Capture::new();
    let _scope = capture.enter();
    std::thread::spawn(|| {
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Default::default(),
            Metadata::new(),
        );
    })
    .join()
    .unwrap();
    assert!(capture.names().is_empty(), "{:?}", capture.names());
}

#[test]
fn scopes_nest_and_restore() {
    let outer = Capture::new();
    let inner = Capture::new();
    let _outer_scope = outer.enter();
    telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
    {
        let _inner_scope = inner.enter();
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Default::default(),
            Metadata::new(),
        );
    }
    telemetry::event(
        &catalogue::TOKEN_EXPIRED,
        Default::default(),
        Metadata::new(),
    );
    outer.assert_emitted(&["mfa.lockout", "token.expired"]);
    inner.assert_emitted(&["security.lockout"]);
}

#[test]
fn scopes_dropped_out_of_order_never_revive_a_dropped_scope() {
    let first = Capture::new();
    let second = Capture::new();
    let first_scope = first.enter();
    let second_scope = second.enter();

    // The older scope ends first: the newer one stays in force.
    drop(first_scope);
    telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
    second.assert_emitted(&["mfa.lockout"]);

    // Then the newer one ends: no scope is left, so the dropped first scope must not
    // come back (events go to the empty global registry).
    drop(second_scope);
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new(),
    );
    assert!(first.events().is_empty(), "{:?}", first.names());
    second.assert_emitted(&["mfa.lockout"]);
}
