//! What emitting costs on the process-global registry, next to baselines.
//!
//! - `event`: a signal with nothing attached, and with one no-op handler, against
//!   `tracing::info!` with no subscriber (target: nothing attached < 1 ns). The
//!   `*_user_id` cases add one metadata field, built by the caller whether or not anyone
//!   listens — except in the `event!` macro case, which builds its arguments only when
//!   someone could hear the event (as `tracing::info!` does); the handler cases carry it too.
//! - `event_handler`: a signal with one no-op handler against one `Instant::now()`
//!   (target: < 10 ns), with a user id built by the caller and with no field.
//! - `span`: a closure span with nothing attached, and with one handler hearing start and
//!   stop, against the clock reads the span makes: two `Instant::now()` and the elapsed
//!   time between them, as hand-written timing does (`let t = Instant::now(); …;
//!   t.elapsed()`). The span's wall-clock times come from a per-thread anchor (one
//!   `SystemTime::now()` per thread every 100 ms), not a wall-clock read per span
//!   (target: ≤ 100 ns, ratio ≤ 1.25). `baseline:two_instant_one_systemtime` (the
//!   baseline used first, with a wall-clock read the span does not make) is an extra row.
//!   The guard and async forms with one handler are measured next to it.
//!
//! The global registry is used on purpose: it is the production path (the scoped one is for
//! tests and slower by design). Handlers are attached only for the cases that need them and
//! detached right after, so "nothing attached" really means nothing in this process.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use authtel_core::catalogue;
use authtel_core::metadata::Metadata;
use authtel_core::registry::{self, Registry, Selection, handler_fn};
use authtel_core::telemetry::{self, Measurements};
use common::user_id;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};

fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
}

fn emit_lockout() {
    telemetry::event(
        black_box(&catalogue::SECURITY_LOCKOUT),
        Measurements::new().count(1),
        Metadata::new().user_id(user_id()),
    );
}

/// The `event!` form: its arguments are built only when someone listens.
fn emit_lockout_macro() {
    authtel_core::event!(
        black_box(&catalogue::SECURITY_LOCKOUT),
        Measurements::new().count(1),
        Metadata::new().user_id(user_id()),
    );
}

/// The emit call alone: metadata with no fields, so only `event` itself is measured.
fn emit_lockout_empty() {
    telemetry::event(
        black_box(&catalogue::SECURITY_LOCKOUT),
        Measurements::new().count(1),
        Metadata::new(),
    );
}

fn login_span_empty() -> bool {
    telemetry::span(black_box(&catalogue::AUTH_LOGIN), Metadata::new(), || {
        black_box(true)
    })
}

fn login_span() -> bool {
    telemetry::span(
        black_box(&catalogue::AUTH_LOGIN),
        Metadata::new().user_id(user_id()),
        || black_box(true),
    )
}

fn login_guard() {
    let guard = telemetry::start(
        black_box(&catalogue::AUTH_LOGIN),
        Metadata::new().user_id(user_id()),
    );
    guard.stop(authtel_core::outcome::Outcome::Success);
}

/// A future that is ready at its first poll, polled once: the span's own cost.
fn login_async() -> bool {
    let future = telemetry::span_async(
        black_box(&catalogue::AUTH_LOGIN),
        Metadata::new().user_id(user_id()),
        async { black_box(true) },
    );
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(future.as_mut().poll(&mut cx), std::task::Poll::Ready(true))
}

/// Runs `f` with one no-op handler attached to `selection` on the global registry.
fn with_global_handler(selection: impl Into<Selection>, f: impl FnOnce()) {
    registry::attach(
        "bench-noop",
        selection,
        handler_fn(|r| {
            black_box(r.event);
        }),
    )
    .expect("the bench owns the global registry: nothing else attaches");
    f();
    registry::detach("bench-noop").expect("attached above");
}

fn assert_nothing_attached() {
    assert!(
        Registry::global().handlers().is_empty() && !telemetry::is_active(),
        "the nothing-attached cases need an empty global registry"
    );
}

fn event(c: &mut Criterion) {
    let mut group = c.benchmark_group("event");
    short(&mut group);
    assert_nothing_attached();
    group.bench_function("nothing_attached", |b| b.iter(emit_lockout_empty));
    // The same with a user id: the setter screens the value (email, JWT, bearer) even
    // when nobody listens, because metadata is built before the call.
    group.bench_function("nothing_attached_user_id", |b| b.iter(emit_lockout));
    group.bench_function("nothing_attached_macro_user_id", |b| {
        b.iter(emit_lockout_macro)
    });
    group.bench_function("baseline:tracing_info_no_subscriber", |b| {
        b.iter(|| tracing::info!(user_id = user_id(), "security lockout"))
    });
    with_global_handler(&catalogue::SECURITY_LOCKOUT, || {
        group.bench_function("one_noop_handler", |b| b.iter(emit_lockout));
    });
    group.finish();
}

fn event_handler(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_handler");
    short(&mut group);
    with_global_handler(&catalogue::SECURITY_LOCKOUT, || {
        group.bench_function("one_noop_handler", |b| b.iter(emit_lockout));
        // The emit alone, as `event/nothing_attached` measures it: no metadata field for
        // the caller to build.
        group.bench_function("one_noop_handler_no_fields", |b| b.iter(emit_lockout_empty));
    });
    group.bench_function("baseline:clock_read_instant_now", |b| {
        b.iter(|| black_box(Instant::now()))
    });
    group.finish();
}

fn span(c: &mut Criterion) {
    let mut group = c.benchmark_group("span");
    short(&mut group);
    assert_nothing_attached();
    const CLOCKS: &str = "@two_instant_now_and_elapsed";
    group.bench_function(format!("nothing_attached{CLOCKS}"), |b| {
        b.iter(login_span_empty)
    });
    group.bench_function(format!("nothing_attached_user_id{CLOCKS}"), |b| {
        b.iter(login_span)
    });
    group.bench_function("baseline:two_instant_now_and_elapsed", |b| {
        b.iter(|| {
            let start = black_box(Instant::now());
            black_box(start.elapsed())
        })
    });
    with_global_handler(&catalogue::AUTH_LOGIN, || {
        group.bench_function(format!("one_handler_start_stop{CLOCKS}"), |b| {
            b.iter(login_span)
        });
        // The other two forms: they keep the metadata in a guard (or the future) between
        // start and stop, so they pay a copy of it and a second registry lookup.
        group.bench_function(format!("guard_one_handler_start_stop{CLOCKS}"), |b| {
            b.iter(login_guard)
        });
        group.bench_function(format!("async_one_handler_start_stop{CLOCKS}"), |b| {
            b.iter(login_async)
        });
    });
    group.bench_function("baseline:two_instant_one_systemtime", |b| {
        b.iter(|| {
            let start = black_box(Instant::now());
            let wall = black_box(SystemTime::now());
            black_box(Instant::now().duration_since(start));
            wall
        })
    });
    group.finish();
}

criterion_group!(benches, event, event_handler, span);
criterion_main!(benches);
