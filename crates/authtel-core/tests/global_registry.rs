//! The process-global registry, which production code emits to: each thread caches its
//! handler snapshot, so these check that the cache follows attach and detach, survives a
//! handler that changes the registry while it runs, and lets go of detached handlers.
//!
//! One test function on purpose: everything here shares the one global registry, and tests
//! in one binary run in parallel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{self, Handler, Selection, handler_fn};
use authtel_core::telemetry::{self, EventRecord, Measurements};

/// Counts what it hears; its `Arc<()>` shows whether the handler value is still alive.
#[derive(Debug)]
struct Counting {
    heard: Arc<AtomicU64>,
    _alive: Arc<()>,
}

impl Handler for Counting {
    fn handle(&self, _record: &EventRecord<'_>) {
        self.heard.fetch_add(1, Ordering::Relaxed);
    }
}

fn lockout() {
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new().count(1),
        Metadata::new().user_id("u_1"),
    );
}

fn counter() -> Arc<AtomicU64> {
    Arc::new(AtomicU64::new(0))
}

#[test]
fn global_registry_follows_attach_and_detach() {
    // 1. Threads see an attach made after they already emitted (their cache is stale).
    let first = counter();
    let alive = Arc::new(());
    lockout(); // nothing attached yet: nothing heard, nothing cached
    registry::attach(
        "first",
        &catalogue::SECURITY_LOCKOUT,
        Counting {
            heard: first.clone(),
            _alive: alive.clone(),
        },
    )
    .unwrap();
    let threads = 4;
    let ready = Arc::new(Barrier::new(threads + 1));
    let go = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (ready, go) = (ready.clone(), go.clone());
            thread::spawn(move || {
                for _ in 0..100 {
                    lockout();
                }
                ready.wait();
                // The main thread detaches "first" and attaches "second" here.
                go.wait();
                for _ in 0..100 {
                    lockout();
                }
            })
        })
        .collect();
    ready.wait();
    assert_eq!(first.load(Ordering::Relaxed), 400);

    // 2. After a detach, no thread's cache still delivers to the detached handler.
    registry::detach("first").unwrap();
    let second = counter();
    let s = second.clone();
    registry::attach(
        "second",
        &catalogue::SECURITY_LOCKOUT,
        handler_fn(move |_| {
            s.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    go.wait();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(
        first.load(Ordering::Relaxed),
        400,
        "a detached handler heard events"
    );
    assert_eq!(second.load(Ordering::Relaxed), 400);

    // 3. The detached handler value is dropped once the threads that cached it moved on:
    // the workers exited; the main thread lets go at its next emit.
    lockout();
    assert_eq!(second.load(Ordering::Relaxed), 401);
    assert_eq!(
        Arc::strong_count(&alive),
        1,
        "the detached handler is still alive"
    );

    // 4. A handler that attaches and detaches while it runs (the cache is in use by the
    // emit that called it), and emits itself.
    let nested = counter();
    let n = nested.clone();
    registry::attach(
        "reentrant",
        &catalogue::MFA_LOCKOUT,
        handler_fn(move |_| {
            let n = n.clone();
            registry::attach(
                "inner",
                &catalogue::SECURITY_RATE_LIMITED,
                handler_fn(move |_| {
                    n.fetch_add(1, Ordering::Relaxed);
                }),
            )
            .unwrap();
            telemetry::event(
                &catalogue::SECURITY_RATE_LIMITED,
                Measurements::new(),
                Metadata::new(),
            );
            registry::detach("inner").unwrap();
        }),
    )
    .unwrap();
    for _ in 0..3 {
        telemetry::event(
            &catalogue::MFA_LOCKOUT,
            Measurements::new(),
            Metadata::new(),
        );
    }
    assert_eq!(
        nested.load(Ordering::Relaxed),
        3,
        "a handler attached during an emit hears the nested emit"
    );
    registry::detach("reentrant").unwrap();

    // 5. A closure span delivers start and stop to the handlers attached when it started:
    // one detached inside the body hears no stop; one attached inside it hears the body's
    // events but not the stop of a span it never saw start.
    let spans = counter();
    let sp = spans.clone();
    registry::attach(
        "spans",
        &catalogue::AUTH_LOGIN,
        handler_fn(move |_| {
            sp.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    let late = counter();
    let l = late.clone();
    let ok = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        registry::attach(
            "late",
            Selection::All,
            handler_fn(move |_| {
                l.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
        lockout(); // heard by "late" and "second"
        registry::detach("spans").unwrap();
        true
    });
    assert!(ok);
    assert_eq!(
        spans.load(Ordering::Relaxed),
        1,
        "start only: detached before stop"
    );
    assert_eq!(late.load(Ordering::Relaxed), 1, "the lockout only, no stop");
    assert_eq!(second.load(Ordering::Relaxed), 402);

    // 6. After the span, the thread's cache catches up with all of the above.
    lockout();
    assert_eq!(late.load(Ordering::Relaxed), 2);
    assert_eq!(second.load(Ordering::Relaxed), 403);
    registry::detach("late").unwrap();
    registry::detach("second").unwrap();
    lockout();
    assert_eq!(second.load(Ordering::Relaxed), 403);
    assert!(registry::handlers().is_empty());

    // 7. A thread whose global cache is valid enters a scope: its events go to the scope
    // until the scope ends, then to the global registry again. Also inside a closure span
    // that started on the global registry: the body's events go to the scope, the span's
    // stop to the handlers that heard its start.
    let global = counter();
    let g = global.clone();
    registry::attach(
        "global",
        Selection::All,
        handler_fn(move |_| {
            g.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    lockout();
    lockout(); // the cache is valid now
    assert_eq!(global.load(Ordering::Relaxed), 2);
    let scoped = counter();
    let sc = scoped.clone();
    let scope_registry = registry::Registry::new();
    scope_registry
        .attach(
            "scoped",
            Selection::All,
            handler_fn(move |_| {
                sc.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    {
        let _scope = scope_registry.enter();
        lockout();
        lockout();
    }
    assert_eq!(scoped.load(Ordering::Relaxed), 2);
    assert_eq!(
        global.load(Ordering::Relaxed),
        2,
        "a scoped event reached the global registry"
    );
    lockout();
    assert_eq!(global.load(Ordering::Relaxed), 3);
    telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        let _scope = scope_registry.enter();
        lockout();
    });
    assert_eq!(scoped.load(Ordering::Relaxed), 3, "the body's lockout");
    assert_eq!(
        global.load(Ordering::Relaxed),
        5,
        "the span's start and stop"
    );
    lockout();
    assert_eq!(global.load(Ordering::Relaxed), 6);
    registry::detach("global").unwrap();

    // 8. Detaching the last handler: the detaching thread lets go of its cached snapshot at
    // once (with nothing attached, emits never look at the cache again, so waiting for the
    // next emit would keep the handler alive for the thread's lifetime). Before that, a
    // closure span's body panics and unwinds out of the cached lookup: had it left the
    // reader count raised, the release would be refused and the handler stay alive.
    let heard = counter();
    let alive = Arc::new(());
    registry::attach(
        "panicky-span",
        Selection::All,
        Counting {
            heard: heard.clone(),
            _alive: alive.clone(),
        },
    )
    .unwrap();
    lockout(); // fills this thread's cache with the snapshot holding the handler
    let unwound = std::panic::catch_unwind(|| {
        telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || -> bool {
            panic!("body failed")
        })
    });
    assert!(unwound.is_err());
    assert_eq!(
        heard.load(Ordering::Relaxed),
        3,
        "lockout, start, exception"
    );
    registry::detach("panicky-span").unwrap();
    assert_eq!(
        Arc::strong_count(&alive),
        1,
        "the detaching thread still holds the detached handler"
    );
    lockout(); // nothing attached: not heard, nothing cached
    assert_eq!(heard.load(Ordering::Relaxed), 3);
    assert!(registry::handlers().is_empty());
}
