//! What a request context costs, on the process-global registry (the production path).
//!
//! - `context_event/*`: a signal with a user id, with nothing attached and with one no-op
//!   handler, each with no context and inside an entered context. The cost rules: nothing
//!   attached stays one atomic load whether or not a context is set; with a handler and no
//!   context, the context adds one thread-local load; inside a context, the merge (a copy
//!   of the metadata with the context's fields filled in) is the extra.
//! - `context_scope/*`: polling a ready future, bare and wrapped in `RequestContext::scope`
//!   (the per-poll cost of entering and leaving the context).

use std::future::Future;
mod common;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use authtel_core::catalogue;
use authtel_core::context::RequestContext;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{self, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};
use criterion::{Criterion, criterion_group, criterion_main};

fn emit_lockout() {
    let id = common::user_id();
    telemetry::event(
        black_box(&catalogue::SECURITY_LOCKOUT),
        Measurements::new().count(1),
        Metadata::new().user_id(id),
    );
}

fn request_context() -> RequestContext {
    RequestContext::builder()
        .client_ip(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)))
        .user_agent("Mozilla/5.0 (X11; Linux x86_64)")
        .request_id("0190a5f2-7b3c-7d4e-9f10-2a3b4c5d6e7f")
        .build()
}

fn context_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_event");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    assert!(
        registry::handlers().is_empty(),
        "the bench owns the global registry"
    );
    let ctx = request_context();
    group.bench_function("nothing_attached_no_context", |b| b.iter(emit_lockout));
    {
        let _entered = ctx.enter();
        group.bench_function("nothing_attached_in_context", |b| b.iter(emit_lockout));
    }
    registry::attach(
        "bench-noop",
        Selection::All,
        handler_fn(|r| {
            black_box(r.metadata.get_client_ip());
        }),
    )
    .expect("nothing else attaches");
    group.bench_function("one_noop_handler_no_context", |b| b.iter(emit_lockout));
    {
        let _entered = ctx.enter();
        group.bench_function("one_noop_handler_in_context", |b| b.iter(emit_lockout));
    }
    registry::detach("bench-noop").expect("attached above");
    group.finish();
}

fn context_scope(c: &mut Criterion) {
    let mut group = c.benchmark_group("context_scope");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let ctx = request_context();
    let mut cx = Context::from_waker(Waker::noop());
    group.bench_function("poll_ready_future_bare", |b| {
        b.iter(|| {
            let fut = pin!(std::future::ready(black_box(1u8)));
            matches!(fut.poll(&mut cx), Poll::Ready(1))
        })
    });
    group.bench_function("poll_ready_future_in_scope", |b| {
        b.iter(|| {
            let fut = pin!(ctx.scope(std::future::ready(black_box(1u8))));
            matches!(fut.poll(&mut cx), Poll::Ready(1))
        })
    });
    group.finish();
}

criterion_group!(benches, context_event, context_scope);
criterion_main!(benches);
