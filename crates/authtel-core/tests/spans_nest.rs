//! Spans nest: a child's `parent_id` is its parent's `span_id`, every span of a chain shares
//! the outermost span's `root_id`, and signals emitted inside a span are its children — for
//! closures, guards and futures polled across several await points.

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::telemetry::{self, SpanContext};
use authtel_testing::Capture;

#[test]
fn closure_spans_nest_three_deep() {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || {
            telemetry::span(&catalogue::SESSION_CREATE, Metadata::new(), || true)
        })
    });
    capture.assert_emitted(&[
        "auth.login.start",
        "mfa.verify.start",
        "session.create.start",
        "session.create.stop",
        "mfa.verify.stop",
        "auth.login.stop",
    ]);
    let login = capture.single("auth.login.start").context;
    let mfa = capture.single("mfa.verify.start").context;
    let session = capture.single("session.create.start").context;

    assert_eq!(login.parent_id, None);
    assert_eq!(login.root_id, login.span_id);
    assert_eq!(mfa.parent_id, Some(login.span_id));
    assert_eq!(session.parent_id, Some(mfa.span_id));
    assert_eq!(mfa.root_id, login.span_id);
    assert_eq!(session.root_id, login.span_id);
    let ids = [login.span_id, mfa.span_id, session.span_id];
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_eq!(SpanContext::current(), None);
}

#[test]
fn sibling_spans_share_parent_and_root() {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        telemetry::span(&catalogue::TOKEN_VERIFY, Metadata::new(), || true);
        telemetry::span(&catalogue::SESSION_CREATE, Metadata::new(), || true);
    });
    let login = capture.single("auth.login.start").context;
    let token = capture.single("token.verify.stop").context;
    let session = capture.single("session.create.stop").context;
    assert_eq!(token.parent_id, Some(login.span_id));
    assert_eq!(session.parent_id, Some(login.span_id));
    assert_eq!(token.root_id, login.root_id);
    assert_eq!(session.root_id, login.root_id);
}

#[test]
fn signal_inside_a_span_is_its_child() {
    let capture = Capture::new();
    let _scope = capture.enter();
    telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || {
        telemetry::span(&catalogue::MFA_VERIFY, Metadata::new(), || {
            telemetry::event(&catalogue::MFA_LOCKOUT, Default::default(), Metadata::new());
            false
        })
    });
    // Outside every span, a signal is its own root.
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Default::default(),
        Metadata::new(),
    );

    let login = capture.single("auth.login.start").context;
    let mfa = capture.single("mfa.verify.start").context;
    let lockout = capture.single("mfa.lockout").context;
    assert_eq!(lockout.parent_id, Some(mfa.span_id));
    assert_eq!(lockout.root_id, login.span_id);
    assert_ne!(lockout.span_id, mfa.span_id);

    let outside = capture.single("security.lockout").context;
    assert_eq!(outside.parent_id, None);
    assert_eq!(outside.root_id, outside.span_id);
}

/// Pending on the first poll, ready on the second.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[test]
fn async_spans_nest_across_polls() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let outer = telemetry::span_async(&catalogue::OAUTH_CALLBACK, Metadata::new(), async {
        YieldOnce(false).await;
        // Created after an await point, i.e. during a later poll of the outer span.
        let inner = telemetry::span_async(&catalogue::OAUTH_AUTHORIZE, Metadata::new(), async {
            YieldOnce(false).await;
            telemetry::event(
                &catalogue::OAUTH_REGISTER,
                Default::default(),
                Metadata::new(),
            );
            true
        });
        let linked = inner.await;
        // A synchronous span inside the async one, after two awaits.
        telemetry::span(&catalogue::SESSION_CREATE, Metadata::new(), || linked)
    });

    let mut outer = pin!(outer);
    let mut polls = 0;
    let done = loop {
        polls += 1;
        assert!(polls <= 10, "outer future not ready after 10 polls");
        // Between polls, another span on this thread must not be mistaken for a parent.
        assert_eq!(SpanContext::current(), None);
        if let Poll::Ready(v) = outer.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            break v;
        }
    };
    assert!(done);
    assert!(
        polls >= 3,
        "the future really was suspended ({polls} polls)"
    );

    let callback = capture.single("oauth.callback.start").context;
    let authorize = capture.single("oauth.authorize.start").context;
    let signal = capture.single("oauth.register").context;
    let session = capture.single("session.create.start").context;
    assert_eq!(authorize.parent_id, Some(callback.span_id));
    assert_eq!(signal.parent_id, Some(authorize.span_id));
    assert_eq!(session.parent_id, Some(callback.span_id));
    for ctx in [authorize, signal, session] {
        assert_eq!(ctx.root_id, callback.span_id);
    }
    assert_eq!(
        capture.single("oauth.callback.stop").context,
        callback,
        "stop carries the start's context"
    );
}

/// Ids are correlation ids, so they must not repeat: 4 threads × 50,000 signals and spans,
/// every id distinct and non-zero, and a signal outside any span is its own root.
#[test]
fn ids_do_not_repeat_across_threads() {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    use authtel_core::registry::{Registry, Selection, handler_fn};
    use authtel_core::telemetry::Measurements;

    let ids = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let ids = ids.clone();
            std::thread::spawn(move || {
                let seen = Arc::new(Mutex::new(Vec::with_capacity(75_000)));
                let registry = Registry::new();
                let sink = seen.clone();
                registry
                    .attach(
                        "ids",
                        Selection::All,
                        handler_fn(move |r| {
                            assert!(
                                r.context.parent_id.is_some()
                                    || r.context.root_id == r.context.span_id
                            );
                            sink.lock().unwrap().push(r.context.span_id.get());
                        }),
                    )
                    .unwrap();
                let _scope = registry.enter();
                for i in 0..50_000 {
                    if i % 2 == 0 {
                        telemetry::event(
                            &catalogue::SECURITY_LOCKOUT,
                            Measurements::new(),
                            Metadata::new(),
                        );
                    } else {
                        telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new(), || true);
                    }
                }
                let mut seen = seen.lock().unwrap();
                ids.lock().unwrap().append(&mut seen);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ids = ids.lock().unwrap();
    // Signals: one record each; spans: start and stop share their id.
    assert_eq!(ids.len(), 4 * (25_000 + 2 * 25_000));
    let distinct: HashSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), 4 * 50_000, "an id repeated");
    assert!(!distinct.contains(&0));
}
