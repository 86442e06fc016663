//! Emitting never allocates: after warm-up, `event`, `span`, the guard form and
//! `span_async` with borrowed metadata allocate nothing — with nothing attached, and with one
//! no-op handler attached. A counting global allocator in this test binary checks it.
//!
//! Allocations are counted per thread, so tests running in parallel do not disturb each
//! other.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::outcome::Outcome;
use authtel_core::registry::{Registry, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the allocator may run while this thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
// a const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Held by every test that enters a scope. A scope entered on any thread makes emits on
/// every thread look for listeners (the process-wide "anyone listening?" count), so the
/// nothing-attached test must not overlap them: its emits would take the lookup path and,
/// the first time, register a thread-local destructor (one allocation).
static SCOPES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scopes() -> std::sync::MutexGuard<'static, ()> {
    SCOPES.lock().unwrap_or_else(|p| p.into_inner())
}

/// How many allocations `f` made on this thread.
fn allocations_in(mut f: impl FnMut()) -> u64 {
    // Warm-up: thread-locals, arc-swap's per-thread debt slots and lazy ids are set up on
    // first use; that one-time cost is not what this test is about.
    for _ in 0..3 {
        f();
    }
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..100 {
        f();
    }
    ALLOCATIONS.with(Cell::get) - before
}

/// The allocator really counts, or every zero below would be meaningless.
#[test]
fn the_counter_sees_allocations() {
    let n = allocations_in(|| {
        std::hint::black_box(Box::new(7u64));
    });
    assert_eq!(n, 100);
}

fn emit_everything(user: &str, resource: &str) {
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
    telemetry::event(
        &catalogue::SECURITY_LOCKOUT,
        Measurements::new().count(1),
        Metadata::new()
            .user_id(user)
            .client_ip(ip)
            .resource(resource)
            .reason(authtel_core::Reason::TooManyAttempts)
            .with_extra("tenant", "acme")
            .with_extra("attempts", 5u32),
    );
    let out = telemetry::span(
        &catalogue::AUTH_LOGIN,
        Metadata::new().user_id(user).method("password"),
        || {
            telemetry::event(
                &catalogue::SECURITY_INVALID_CREDENTIALS,
                Measurements::new(),
                Metadata::new().user_id(user),
            );
            Err::<(), &str>(resource)
        },
    );
    std::hint::black_box(out).ok();
    let mut guard = telemetry::start(&catalogue::MFA_VERIFY, Metadata::new().user_id(user));
    let _ = guard.metadata_mut().try_extra("device", "phone");
    guard.stop(Outcome::Success);

    let fut = telemetry::span_async(
        &catalogue::TOKEN_VERIFY,
        Metadata::new().user_id(user),
        async { true },
    );
    let mut fut = pin!(fut);
    assert_eq!(
        fut.as_mut().poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(true)
    );
}

#[test]
fn nothing_attached_allocates_nothing() {
    // No scope entered on any thread meanwhile, and no global handler in this binary.
    let _alone = scopes();
    assert!(Registry::global().handlers().is_empty());
    let user = String::from("u_42");
    let resource = String::from("/api/v1/users/42");
    let n = allocations_in(|| emit_everything(&user, &resource));
    assert_eq!(n, 0, "{n} allocations with nothing attached");
}

#[test]
fn one_noop_handler_allocates_nothing() {
    // A handler that does nothing but count, so we know it really ran.
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let registry = Registry::new();
    registry
        .attach(
            "noop",
            Selection::All,
            handler_fn(move |_| {
                counter.fetch_add(1, Ordering::Relaxed);
            }),
        )
        .unwrap();
    let _alone = scopes();
    let _scope = registry.enter();

    let user = String::from("u_42");
    let resource = String::from("/api/v1/users/42");
    let n = allocations_in(|| emit_everything(&user, &resource));
    assert_eq!(n, 0, "{n} allocations with a no-op handler attached");
    // 2 signals + login, mfa and token start/stop = 8 events per round, 103 rounds.
    assert_eq!(seen.load(Ordering::Relaxed), 103 * 8);
}

#[test]
fn one_handler_on_one_event_allocates_nothing() {
    let registry = Registry::new();
    registry
        .attach(
            "lockouts",
            &catalogue::SECURITY_LOCKOUT,
            handler_fn(|r| {
                std::hint::black_box(r.event.name());
            }),
        )
        .unwrap();
    let _alone = scopes();
    let _scope = registry.enter();
    let user = String::from("u_42");
    let n = allocations_in(|| {
        telemetry::event(
            &catalogue::SECURITY_LOCKOUT,
            Measurements::new().count(1),
            Metadata::new().user_id(&user),
        );
        telemetry::span(
            &catalogue::AUTH_LOGIN,
            Metadata::new().user_id(&user),
            || true,
        );
    });
    assert_eq!(n, 0);
}

#[test]
fn a_request_context_adds_no_allocation() {
    use authtel_core::context::RequestContext;
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let registry = Registry::new();
    registry
        .attach(
            "ips",
            Selection::All,
            handler_fn(move |r| {
                if r.metadata.get_client_ip().is_some() && r.metadata.extra().count() > 0 {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }),
        )
        .unwrap();
    let _alone = scopes();
    let _scope = registry.enter();
    let ctx = RequestContext::builder()
        .client_ip(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 4)))
        .user_agent("Mozilla/5.0")
        .request_id("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
        .build();
    let user = String::from("u_42");
    let resource = String::from("/api/v1/users/42");
    // Entering (once per request, or per poll of a scoped future) and every emit inside.
    let n = allocations_in(|| {
        let _entered = ctx.enter();
        emit_everything(&user, &resource);
    });
    assert_eq!(n, 0, "{n} allocations with a request context entered");
    // Every event saw the context's address and request id.
    assert_eq!(seen.load(Ordering::Relaxed), 103 * 8);
}
