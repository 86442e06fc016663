//! A request context reaches every record emitted inside it, and nothing outside it: on the
//! entering thread, through a future polled on one thread and then another, with the call
//! site's own fields winning, nested, out of order, and after a panic.

use std::future::Future;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use authtel_core::audit::AuditEvent;
use authtel_core::context::{REQUEST_ID_KEY, RequestContext, TENANT_KEY, TraceParent};
use authtel_core::metadata::{MAX_EXTRA_FIELDS, Metadata, REDACTED};
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::{catalogue, telemetry};
use authtel_testing::{CaptureHandler, CapturedEvent};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn capture() -> (Registry, CaptureHandler) {
    let capture = CaptureHandler::new();
    let registry = Registry::new();
    registry
        .attach("capture", Selection::All, capture.clone())
        .unwrap();
    (registry, capture)
}

fn lockout(meta: Metadata<'_>) {
    telemetry::event(&catalogue::SECURITY_LOCKOUT, Default::default(), meta);
}

fn ctx(client: &str, request_id: &str) -> RequestContext {
    RequestContext::builder()
        .client_ip(ip(client))
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .request_id(request_id)
        .tenant("acme")
        .trace_parent(TRACEPARENT.parse().unwrap())
        .build()
}

#[test]
fn events_and_spans_inside_an_entered_context_inherit_every_field() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    {
        let _entered = ctx("203.0.113.7", "req-1").enter();
        lockout(Metadata::new().user_id("u_1"));
        let _ = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || Ok::<_, ()>(()));
    }
    lockout(Metadata::new().user_id("u_2"));
    let events = capture.events();
    assert_eq!(events.len(), 4);
    for e in &events[..3] {
        assert_eq!(e.field("client_ip"), Some("203.0.113.7"), "{}", e.name);
        assert_eq!(
            e.field("user_agent"),
            Some("Mozilla/5.0 (X11; Linux x86_64)")
        );
        assert_eq!(e.field(REQUEST_ID_KEY), Some("req-1"));
        assert_eq!(e.field(TENANT_KEY), Some("acme"));
        assert_eq!(
            e.field("trace_id"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
    // After the guard: nothing inherited.
    let after = &events[3];
    assert_eq!(after.field("client_ip"), None);
    assert_eq!(after.field(REQUEST_ID_KEY), None);
    assert!(RequestContext::current().is_none());
}

#[test]
fn the_call_site_wins_over_the_context() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    let _entered = ctx("203.0.113.7", "req-ctx").enter();
    let own: TraceParent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        .parse()
        .unwrap();
    lockout(
        Metadata::new()
            .client_ip(ip("198.51.100.9"))
            .user_agent("my-own-agent")
            .trace_parent(&own)
            .with_extra(REQUEST_ID_KEY, "req-site"),
    );
    let e = &capture.events()[0];
    assert_eq!(e.field("client_ip"), Some("198.51.100.9"));
    assert_eq!(e.field("user_agent"), Some("my-own-agent"));
    assert_eq!(
        e.field("trace_id"),
        Some("0af7651916cd43dd8448eb211c80319c")
    );
    let request_ids: Vec<_> = e
        .fields
        .iter()
        .filter(|(k, _)| k == REQUEST_ID_KEY)
        .collect();
    assert_eq!(request_ids.len(), 1, "{:?}", e.fields);
    assert_eq!(e.field(REQUEST_ID_KEY), Some("req-site"));
    // Fields the call site left unset still come from the context.
    assert_eq!(e.field(TENANT_KEY), Some("acme"));
}

#[test]
fn full_extra_fields_are_left_alone() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    let _entered = ctx("203.0.113.7", "req-1").enter();
    let keys = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"];
    assert_eq!(keys.len(), MAX_EXTRA_FIELDS);
    let mut meta = Metadata::new();
    for k in keys {
        meta.try_extra(k, 1).unwrap();
    }
    lockout(meta);
    let e = &capture.events()[0];
    assert_eq!(e.field(REQUEST_ID_KEY), None);
    assert_eq!(e.field("a8"), Some("1"));
    // Standard fields are not extra fields: they still arrive.
    assert_eq!(e.field("client_ip"), Some("203.0.113.7"));
}

#[test]
fn nested_contexts_restore_the_outer_one_in_any_drop_order() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    let outer = ctx("192.0.2.1", "outer");
    let inner = ctx("192.0.2.2", "inner");
    let a = outer.enter();
    let b = inner.enter();
    lockout(Metadata::new());
    drop(b);
    lockout(Metadata::new());
    // Out of order: the outer guard first. The inner one is newer and stays in force.
    let a2 = outer.enter();
    let b2 = inner.enter();
    drop(a2);
    lockout(Metadata::new());
    drop(b2);
    lockout(Metadata::new());
    drop(a);
    lockout(Metadata::new());
    let ids: Vec<Option<String>> = capture
        .events()
        .iter()
        .map(|e| e.field(REQUEST_ID_KEY).map(str::to_owned))
        .collect();
    let want = [
        Some("inner"),
        Some("outer"),
        Some("inner"),
        Some("outer"),
        None,
    ];
    assert_eq!(ids, want.map(|s| s.map(str::to_owned)));
}

#[test]
fn a_panic_inside_the_scope_leaves_no_context_installed() {
    let c = ctx("203.0.113.7", "req-panic");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        c.in_scope(|| panic!("handler failed"));
    }));
    assert!(caught.is_err());
    assert!(RequestContext::current().is_none());

    // The same through a future whose poll panics.
    let mut fut = Box::pin(c.scope(async { panic!("poll failed") }));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _ = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    }));
    assert!(caught.is_err());
    assert!(RequestContext::current().is_none());
}

/// Pending once, then ready: lets the test move the future to another thread between polls.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

#[test]
fn a_scoped_future_carries_its_context_to_whichever_thread_polls_it() {
    let c = ctx("2001:db8::7", "req-async");
    let fut = c.scope(async {
        let first = std::thread::current().id();
        let before = RequestContext::current().and_then(|c| c.request_id().map(str::to_owned));
        YieldOnce(false).await;
        let second = std::thread::current().id();
        let after = RequestContext::current().and_then(|c| c.client_ip());
        (first, before, second, after)
    });
    let mut fut = Box::pin(fut);
    fn poll<F: Future>(fut: &mut Pin<Box<F>>) -> Poll<F::Output> {
        let (registry, _capture) = capture();
        let _scope = registry.enter();
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop()))
    }
    assert!(poll(&mut fut).is_pending());
    // Between polls the context is not in force on the polling thread.
    assert!(RequestContext::current().is_none());
    let (first, before, second, after) = std::thread::spawn(move || {
        let out = match poll(&mut fut) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("the future must finish on its second poll"),
        };
        assert!(RequestContext::current().is_none());
        out
    })
    .join()
    .unwrap();
    assert_ne!(first, second, "the second poll ran on another thread");
    assert_eq!(before.as_deref(), Some("req-async"));
    assert_eq!(after, Some(ip("2001:db8::7")));
}

#[test]
fn a_credential_in_the_user_agent_is_screened_and_a_long_one_bounded() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    let with_token = RequestContext::builder()
        .user_agent("curl/8.5 Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln")
        .build();
    with_token.in_scope(|| lockout(Metadata::new()));
    let huge = format!("Mozilla/5.0 {}", "x".repeat(10_000));
    let long = RequestContext::builder().user_agent(&huge).build();
    long.in_scope(|| lockout(Metadata::new()));
    // A secret past the first 256 bytes (what sinks write) but inside what the screen reads.
    let late_secret = format!("{} password=hunter2", "Mozilla/5.0 ".repeat(22));
    assert!(late_secret.len() > 256 && late_secret.len() < 512);
    let late = RequestContext::builder().user_agent(&late_secret).build();
    late.in_scope(|| lockout(Metadata::new()));
    let events = capture.events();
    assert_eq!(events[0].field("user_agent"), Some(REDACTED));
    let kept = events[1].field("user_agent").unwrap();
    assert!(kept.len() <= 256 && kept.starts_with("Mozilla/5.0 xxx"));
    assert_eq!(events[2].field("user_agent"), Some(REDACTED));
    for e in &events {
        assert!(
            !e.texts()
                .any(|t| t.contains("hunter2") || t.contains("eyJ"))
        );
    }
}

#[test]
fn audit_records_take_the_context_ip_agent_request_id_and_trace_id() {
    let (registry, _capture) = capture();
    let audits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = audits.clone();
    registry
        .attach(
            "audit",
            Selection::All,
            handler_fn(move |r| sink.lock().unwrap().extend(AuditEvent::from_record(r))),
        )
        .unwrap();
    let _scope = registry.enter();
    ctx("203.0.113.7", "req-audit").in_scope(|| {
        lockout(Metadata::new().user_id("u_1"));
    });
    let audits = audits.lock().unwrap();
    let a = &audits[0];
    assert_eq!(a.client_ip(), Some(ip("203.0.113.7")));
    assert_eq!(a.user_agent(), Some("Mozilla/5.0 (X11; Linux x86_64)"));
    assert_eq!(a.metadata()[REQUEST_ID_KEY], "req-audit");
    assert_eq!(a.tenant_id(), Some("acme"));
    assert!(
        !a.metadata().contains_key(TENANT_KEY),
        "a column, not metadata"
    );
    assert_eq!(a.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(&decoded(a), a, "screened: decoding changes nothing");
}

#[test]
fn captured_events_outside_any_context_are_unchanged() {
    let (registry, capture) = capture();
    let _scope = registry.enter();
    lockout(Metadata::new().user_id("u_1"));
    let e: &CapturedEvent = &capture.events()[0];
    assert_eq!(e.fields, [("user_id".to_owned(), "u_1".to_owned())]);
}

#[test]
fn audit_rows_an_application_builds_itself_inherit_the_context_too() {
    let c = ctx("203.0.113.7", "req-tx");
    let e = c.in_scope(|| {
        let mut e =
            AuditEvent::for_action("billing.card.added", authtel_core::Outcome::Success).unwrap();
        // The call site overrides what it knows better.
        e = e.with_user_agent("mobile-app/3.1");
        e
    });
    assert_eq!(e.client_ip(), Some(ip("203.0.113.7")));
    assert_eq!(e.user_agent(), Some("mobile-app/3.1"));
    assert_eq!(e.metadata()[REQUEST_ID_KEY], "req-tx");
    assert_eq!(e.tenant_id(), Some("acme"));
    assert_eq!(e.trace_id(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(decoded(&e), e, "screened: decoding changes nothing");
    let outside =
        AuditEvent::for_action("billing.card.added", authtel_core::Outcome::Success).unwrap();
    assert_eq!(outside.client_ip(), None);
    assert!(outside.metadata().is_empty());
}

#[test]
fn a_leaked_guard_is_safe_even_for_emits_from_thread_local_destructors() {
    struct EmitOnExit;
    impl Drop for EmitOnExit {
        fn drop(&mut self) {
            // Runs while the thread's locals are torn down, perhaps after the context stack.
            let seen = RequestContext::current().and_then(|c| c.request_id().map(str::to_owned));
            lockout(Metadata::new());
            // Either the context is still there (whole) or it is gone: never a freed one.
            assert!(seen.is_none() || seen.as_deref() == Some("leaked"));
        }
    }
    thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<EmitOnExit>> = const { std::cell::RefCell::new(None) };
    }
    std::thread::spawn(|| {
        ON_EXIT.with(|e| *e.borrow_mut() = Some(EmitOnExit));
        let ctx = ctx("192.0.2.9", "leaked");
        // A leaked guard: its context stays in force on this thread until it exits.
        std::mem::forget(ctx.enter());
        drop(ctx);
        assert_eq!(
            RequestContext::current().and_then(|c| c.client_ip()),
            Some(ip("192.0.2.9"))
        );
    })
    .join()
    .unwrap();
}

/// `e` encoded and decoded again, through the policy.
fn decoded(e: &AuditEvent) -> AuditEvent {
    serde_json::from_value(serde_json::to_value(e).unwrap()).unwrap()
}
