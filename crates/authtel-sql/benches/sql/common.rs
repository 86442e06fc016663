//! What every group shares: the benchmarked record and its 500-record batch, the writer's
//! criterion case, the group settings and the alternated pairs.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use authtel_core::audit::{AuditEvent, Party};
use authtel_core::forward::Forwarder;
use authtel_core::outcome::Outcome;
use criterion::{BatchSize, BenchmarkGroup, Throughput, measurement::WallTime};
use tokio::runtime::Runtime;

pub(crate) const BATCH: usize = 500;

pub(crate) fn record() -> AuditEvent {
    let mut e = AuditEvent::new("auth.login.stop", Outcome::Failure).unwrap();
    e = e.with_actor(Party::new("u_0123456789abcdef", "user"));
    e = e.with_client_ip(
        "203.0.113.77"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
    );
    e = e.with_session_id("sess_8f14e45fceea167a5a36dedd4bea2543");
    e = e.with_user_agent(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    );
    e = e.with_reason("invalid_credentials");
    e = e.with_span_id("a3ce929d0e0e4736");
    e = e.with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
    e = e.with_metadata("method", "password").unwrap();
    e = e.with_metadata("provider", "local").unwrap();
    e = e.with_metadata("attempts_remaining", 2).unwrap();
    e = e.with_metadata("duration_ms", 12.5).unwrap();
    e = e
        .with_metadata("tenant", "acme-corporation-eu-west")
        .unwrap();
    e
}

pub(crate) fn bench_err(cause: sqlx::Error) -> authtel_sql::SqlError {
    authtel_sql::SqlError::Database {
        context: "run a bench statement",
        cause,
    }
}

pub(crate) fn batch() -> Vec<AuditEvent> {
    (0..BATCH).map(|_| record()).collect()
}

pub(crate) fn quick() -> bool {
    std::env::var_os("AUTHTEL_BENCH_QUICK").is_some()
}

/// The `authtel_batch_writer` case of a batch group: one fresh batch per iteration through
/// the writer's `Forwarder` interface, as a pipeline lane calls it.
pub(crate) fn bench_batch_writer(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    writer: &impl Forwarder,
) {
    group.bench_function("authtel_batch_writer", |b| {
        b.to_async(rt).iter_batched(
            batch,
            |batch| async move {
                writer
                    .forward(black_box(&batch))
                    .await
                    .expect("batch write")
            },
            BatchSize::PerIteration,
        )
    });
}

pub(crate) fn short(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(BATCH as u64));
}

pub(crate) fn meta_json(e: &AuditEvent) -> String {
    serde_json::to_string(&e.metadata()).unwrap_or_default()
}

/// Runs `a` and `b` on fresh batches in alternation (`a` first on even rounds, `b` first on
/// odd ones) and returns their times in ms, sorted, after `warm_up` untimed rounds.
pub(crate) async fn paired<A, B, FA, FB>(rounds: usize, mut a: A, mut b: B) -> (Vec<f64>, Vec<f64>)
where
    A: FnMut(Vec<AuditEvent>) -> FA,
    B: FnMut(Vec<AuditEvent>) -> FB,
    FA: Future<Output = ()>,
    FB: Future<Output = ()>,
{
    let warm_up = 3;
    let (mut ta, mut tb) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..rounds + warm_up {
        for first in [i % 2 == 0, i % 2 != 0] {
            let input = batch();
            let started = Instant::now();
            if first {
                a(input).await
            } else {
                b(input).await
            }
            let ms = started.elapsed().as_secs_f64() * 1e3;
            if i >= warm_up {
                if first { ta.push(ms) } else { tb.push(ms) }
            }
        }
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    (ta, tb)
}
