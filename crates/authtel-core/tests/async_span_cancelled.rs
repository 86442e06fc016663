//! `span_async`: a future that completes emits `stop`; one dropped before completing emits
//! an exception of kind `cancelled`; a poll that panics emits kind `panic`. Futures are
//! driven by hand with a no-op waker, so no runtime is involved.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::telemetry::{self, ExceptionKind};
use authtel_testing::Capture;

/// Pending on the first poll, ready on the second: an await point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn yield_once() -> YieldOnce {
    YieldOnce(false)
}

fn poll_once<F: Future>(fut: Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Polls until ready, at most `limit` times.
fn block_on<F: Future>(fut: F, limit: usize) -> F::Output {
    let mut fut = pin!(fut);
    for _ in 0..limit {
        if let Poll::Ready(out) = poll_once(fut.as_mut()) {
            return out;
        }
    }
    panic!("future not ready after {limit} polls");
}

#[test]
fn completed_future_emits_stop_with_its_outcome() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let fut = telemetry::span_async(&catalogue::EMAIL_DELIVER, Metadata::new(), async {
        yield_once().await;
        Err::<(), &str>("smtp_timeout")
    });
    // The start is emitted when the span future is created.
    capture.assert_emitted(&["email.deliver.start"]);
    let out = block_on(fut, 10);
    assert_eq!(out, Err("smtp_timeout"));
    capture.assert_emitted(&["email.deliver.start", "email.deliver.stop"]);
    let stop = capture.single("email.deliver.stop");
    assert_eq!(stop.outcome, Some(Outcome::Failure));
    assert_eq!(stop.error_type, Some("&str"));
    assert_eq!(stop.context, capture.single("email.deliver.start").context);
}

#[test]
fn dropped_unfinished_future_emits_cancelled() {
    let capture = Capture::new();
    let _scope = capture.enter();
    {
        let mut fut = Box::pin(telemetry::span_async(
            &catalogue::OAUTH_CALLBACK,
            Metadata::new().provider("google"),
            async {
                yield_once().await;
                true
            },
        ));
        assert!(poll_once(fut.as_mut()).is_pending());
        // Dropped here, half-way: the request was abandoned (a client disconnect, a timeout).
    }
    capture.assert_emitted(&["oauth.callback.start", "oauth.callback.exception"]);
    let exception = capture.single("oauth.callback.exception");
    let details = exception.exception.expect("exception details");
    assert_eq!(details.kind, ExceptionKind::Cancelled);
    assert_eq!(exception.error_type, Some("cancelled"));
    assert_eq!(exception.outcome, Some(Outcome::Error));
    capture.assert_field("oauth.callback.exception", "provider", "google");
}

#[test]
fn never_polled_future_dropped_is_cancelled_too() {
    let capture = Capture::new();
    let _scope = capture.enter();
    drop(telemetry::span_async(
        &catalogue::AUTH_REGISTER,
        Metadata::new(),
        async { true },
    ));
    let exception = capture.single("auth.register.exception");
    assert_eq!(exception.exception.unwrap().kind, ExceptionKind::Cancelled);
}

#[test]
fn panicking_poll_emits_panic_and_resumes_it() {
    // This binary's tests that read messages opt in; none expects them absent.
    authtel_core::policy::set_exception_messages(true);
    let capture = Capture::new();
    let _scope = capture.enter();
    let fut = telemetry::span_async(&catalogue::HOOK_EXECUTE, Metadata::new(), async {
        yield_once().await;
        if capture.names().len() == 1 {
            panic!("hook crashed");
        }
        true
    });
    let mut fut = Box::pin(fut);
    assert!(poll_once(fut.as_mut()).is_pending());
    let caught = catch_unwind(AssertUnwindSafe(|| poll_once(fut.as_mut())));
    assert!(caught.is_err(), "the panic continues to the poller");
    drop(fut);
    capture.assert_emitted(&["hook.execute.start", "hook.execute.exception"]);
    let details = capture.single("hook.execute.exception").exception.unwrap();
    assert_eq!(details.kind, ExceptionKind::Panic);
    assert_eq!(details.reason.as_deref(), Some("hook crashed"));
}

#[test]
fn current_span_is_set_only_while_polled() {
    let capture = Capture::new();
    let _scope = capture.enter();
    let mut fut = Box::pin(telemetry::span_async(
        &catalogue::SESSION_SUDO,
        Metadata::new(),
        async {
            let during = telemetry::SpanContext::current();
            yield_once().await;
            Ok::<_, ()>((during, telemetry::SpanContext::current()))
        },
    ));
    assert_eq!(telemetry::SpanContext::current(), None);
    assert!(poll_once(fut.as_mut()).is_pending());
    assert_eq!(
        telemetry::SpanContext::current(),
        None,
        "between polls the span is not current"
    );
    let Poll::Ready(Ok((first, second))) = poll_once(fut.as_mut()) else {
        panic!("second poll should finish");
    };
    let span_id = capture.single("session.sudo.start").context.span_id;
    assert_eq!(first.map(|c| c.span_id), Some(span_id));
    assert_eq!(second.map(|c| c.span_id), Some(span_id));
    assert_eq!(telemetry::SpanContext::current(), None);
}
