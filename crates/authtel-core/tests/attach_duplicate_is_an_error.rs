//! Attaching a second handler under an id already in use is a typed error that names the
//! id; the first handler stays attached and keeps receiving events. Bad ids and unknown
//! detaches are typed errors too.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use authtel_core::catalogue;
use authtel_core::registry::{AttachError, DetachError, Registry, Selection, handler_fn};
use authtel_core::telemetry;

fn counter(n: &Arc<AtomicUsize>) -> impl Fn(&telemetry::EventRecord<'_>) + Send + Sync + 'static {
    let n = n.clone();
    move |_| {
        n.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn duplicate_id_is_refused_and_the_first_handler_stays() {
    let registry = Registry::new();
    let first = Arc::new(AtomicUsize::new(0));
    let second = Arc::new(AtomicUsize::new(0));
    registry
        .attach("audit", Selection::All, handler_fn(counter(&first)))
        .unwrap();
    let err = registry
        .attach("audit", Selection::All, handler_fn(counter(&second)))
        .unwrap_err();
    assert_eq!(err, AttachError::AlreadyExists("audit".to_owned()));
    let message = err.to_string();
    assert!(message.contains("\"audit\""), "{message}");
    assert!(message.contains("detach it first"), "{message}");

    let _scope = registry.enter();
    telemetry::event(
        &catalogue::MFA_LOCKOUT,
        Default::default(),
        Default::default(),
    );
    assert_eq!(first.load(Ordering::Relaxed), 1);
    assert_eq!(second.load(Ordering::Relaxed), 0);
    assert_eq!(registry.handlers().len(), 1);
}

#[test]
fn same_id_in_another_registry_is_fine() {
    let a = Registry::new();
    let b = Registry::new();
    a.attach("logger", Selection::All, handler_fn(|_| {}))
        .unwrap();
    b.attach("logger", Selection::All, handler_fn(|_| {}))
        .unwrap();
}

#[test]
fn detach_frees_the_id() {
    let registry = Registry::new();
    registry
        .attach("x", Selection::All, handler_fn(|_| {}))
        .unwrap();
    registry.detach("x").unwrap();
    registry
        .attach("x", Selection::All, handler_fn(|_| {}))
        .unwrap();
    assert_eq!(registry.handlers().len(), 1);
}

#[test]
fn invalid_ids_and_unknown_detaches_are_typed_errors() {
    let registry = Registry::new();
    assert_eq!(
        registry.attach("", Selection::All, handler_fn(|_| {})),
        Err(AttachError::InvalidId(String::new()))
    );
    let long = "h".repeat(300);
    match registry.attach(&long, Selection::All, handler_fn(|_| {})) {
        Err(AttachError::InvalidId(id)) => assert_eq!(id.len(), 128, "the echoed id is truncated"),
        other => panic!("expected InvalidId, got {other:?}"),
    }
    let err = registry.detach("nobody").unwrap_err();
    assert_eq!(err, DetachError::NotFound("nobody".to_owned()));
    assert!(err.to_string().contains("handlers()"), "{err}");
    assert!(registry.handlers().is_empty());
}
