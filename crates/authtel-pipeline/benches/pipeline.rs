//! Pipeline throughput: enqueue cost on the async path against a raw tokio mpsc send,
//! end-to-end delivery to a no-op forwarder, spill (fsync per batch) against raw synced
//! writes of the same lines, and replay after a restart; and the caller's side: what a
//! login span costs under the default configuration while the destination hangs forever.

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ErrorKind, ForwardError, ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_pipeline::{
    Backpressure, BreakerConfig, Dispatch, ForwarderConfig, FsyncPolicy, Pipeline, RetryPolicy,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

#[derive(Debug, Default)]
struct Noop(AtomicU64);

impl Forwarder for Noop {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Debug)]
struct Down;

impl Forwarder for Down {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async {
            Err(ForwardError::message(
                ErrorKind::Transient,
                "bench destination down",
            ))
        })
    }
}

fn events(n: usize) -> Vec<AuditEvent> {
    let template = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
    (0..n).map(|_| template.clone()).collect()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("authtel-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    // Enqueue from one producer; the worker drains concurrently.
    let noop = Arc::new(Noop::default());
    let pipeline = {
        let _g = rt.enter();
        Pipeline::builder()
            .forwarder(
                ForwarderConfig::from_arc("noop", noop.clone())
                    .dispatch(Dispatch::Async)
                    .queue_capacity(1 << 20)
                    .batch_size(1024),
            )
            .build()
            .unwrap()
    };
    // Records are built outside the timed loop, a chunk per iteration, so only the
    // hand-over is timed and one worker wake-up is spread over the whole chunk.
    const CHUNK: usize = 10_000;
    let fresh = || events(CHUNK);
    group.throughput(Throughput::Elements(CHUNK as u64));
    group.bench_function("enqueue_async@tokio_mpsc_send", |b| {
        b.iter_batched(
            fresh,
            |chunk| {
                for e in chunk {
                    pipeline.publish(black_box(e)).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    pipeline
        .flush(Instant::now() + Duration::from_secs(30))
        .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::channel::<AuditEvent>(1 << 20);
    rt.spawn(async move { while rx.recv().await.is_some() {} });
    group.bench_function("baseline:tokio_mpsc_send", |b| {
        b.iter_batched(
            fresh,
            |chunk| {
                for e in chunk {
                    tx.try_send(black_box(e)).unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });

    // End to end: publish a batch of records and wait until all are delivered.
    const N: usize = 20_000;
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("end_to_end_noop", |b| {
        b.iter_batched(
            || events(N),
            |batch| {
                for e in batch {
                    pipeline.publish(e).unwrap();
                }
                pipeline
                    .flush(Instant::now() + Duration::from_secs(30))
                    .unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    drop(pipeline);

    // Spill with fsync per batch: the destination is down and the breaker open.
    const S: usize = 2_000;
    let spill_root = temp_dir("spill");
    let spilling = {
        let _g = rt.enter();
        Pipeline::builder()
            .forwarder(
                ForwarderConfig::new("down", Down)
                    .dispatch(Dispatch::Async)
                    .batch_size(256)
                    .queue_capacity(1 << 16)
                    .backpressure(Backpressure::Spill)
                    .breaker(BreakerConfig {
                        failure_threshold: 1,
                        open_for: Duration::from_secs(3600),
                    })
                    .retry(RetryPolicy {
                        max_attempts: 1,
                        base: Duration::ZERO,
                        max: Duration::ZERO,
                        jitter: false,
                    })
                    .spill_dir(&spill_root)
                    .spill_max_bytes(u64::MAX / 2)
                    .fsync(FsyncPolicy::EveryBatch)
                    .dead_letter_dir(spill_root.join("dead")),
            )
            .build()
            .unwrap()
    };
    group.throughput(Throughput::Elements(S as u64));
    group.bench_function("spill_fsync_per_batch@write_fsync_per_batch", |b| {
        b.iter_batched(
            || events(S),
            |batch| {
                for e in batch {
                    spilling.publish(e).unwrap();
                }
                spilling
                    .flush(Instant::now() + Duration::from_secs(30))
                    .unwrap();
            },
            BatchSize::PerIteration,
        )
    });
    // The raw floor for spilling: the same JSON lines, 256 per write, each write synced.
    let raw_path = spill_root.join("raw.jsonl");
    group.bench_function("baseline:write_fsync_per_batch", |b| {
        b.iter_batched(
            || events(S),
            |batch| {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&raw_path)
                    .unwrap();
                let mut buf = Vec::new();
                for chunk in batch.chunks(256) {
                    buf.clear();
                    for e in chunk {
                        serde_json::to_writer(&mut buf, e).unwrap();
                        buf.push(b'\n');
                    }
                    f.write_all(&buf).unwrap();
                    f.sync_data().unwrap();
                }
            },
            BatchSize::PerIteration,
        )
    });
    spilling
        .shutdown(Instant::now() + Duration::from_secs(30))
        .unwrap();
    drop(spilling);

    // Replay: a fresh pipeline on a spill directory holding S records, healthy destination.
    let replay_root = temp_dir("replay");
    group.bench_function("replay", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_dir_all(&replay_root);
                {
                    let _g = rt.enter();
                    let writer = Pipeline::builder()
                        .forwarder(
                            ForwarderConfig::new("r", Down)
                                .dispatch(Dispatch::Sync)
                                .backpressure(Backpressure::Spill)
                                .breaker(BreakerConfig {
                                    failure_threshold: 1,
                                    open_for: Duration::from_secs(3600),
                                })
                                .retry(RetryPolicy {
                                    max_attempts: 1,
                                    base: Duration::ZERO,
                                    max: Duration::ZERO,
                                    jitter: false,
                                })
                                .spill_dir(&replay_root)
                                .fsync(FsyncPolicy::Never)
                                .dead_letter_dir(replay_root.join("dead")),
                        )
                        .build()
                        .unwrap();
                    for e in events(S) {
                        writer.publish(e).unwrap();
                    }
                }
                let sink = Arc::new(Noop::default());
                let start = Instant::now();
                let _g = rt.enter();
                let reader = Pipeline::builder()
                    .forwarder(
                        ForwarderConfig::from_arc("r", sink.clone())
                            .dispatch(Dispatch::Async)
                            .batch_size(512)
                            .spill_dir(&replay_root)
                            .dead_letter_dir(replay_root.join("dead")),
                    )
                    .build()
                    .unwrap();
                let deadline = Instant::now() + Duration::from_secs(30);
                while sink.0.load(Ordering::Relaxed) < S as u64 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                total += start.elapsed();
                reader
                    .shutdown(Instant::now() + Duration::from_secs(5))
                    .unwrap();
            }
            total
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&spill_root);
    let _ = std::fs::remove_dir_all(&replay_root);
}

/// Takes the batch and never answers.
#[derive(Debug)]
struct Hangs;

impl Forwarder for Hangs {
    fn forward<'a>(&'a self, _: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// A login span with the pipeline handler attached, default configuration (built outside
/// any runtime: `Dispatch::Auto` runs its own worker thread), the destination hanging.
/// Each sample is a fresh pipeline and `L` logins, fewer than the queue and its audit
/// reserve hold, so every login is accepted; the baseline is the same span with nothing
/// attached.
fn caller(c: &mut Criterion) {
    use authtel_core::catalogue::AUTH_LOGIN;
    use authtel_core::metadata::Metadata;
    use authtel_core::registry::{Registry, Selection};
    use authtel_core::telemetry;
    const L: u64 = 10_000;
    let mut group = c.benchmark_group("caller");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(L));
    let logins = |iters: u64, attach: bool| {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let registry = Registry::new();
            let pipeline = Pipeline::builder()
                .forwarder(ForwarderConfig::new("kafka", Hangs))
                .build()
                .unwrap();
            if attach {
                registry
                    .attach("pipeline", Selection::All, pipeline.handler())
                    .unwrap();
            }
            let _scope = registry.enter();
            let start = Instant::now();
            for _ in 0..L {
                let r = telemetry::span(&AUTH_LOGIN, Metadata::new().user_id("u_1"), || {
                    Ok::<_, ()>(black_box(1u8))
                });
                black_box(r).unwrap();
            }
            total += start.elapsed();
            // Untimed: stop the worker stuck in the hanging call.
            let _ = pipeline.shutdown(Instant::now());
        }
        total
    };
    group.bench_function("login_span_destination_hangs", |b| {
        b.iter_custom(|iters| logins(iters, true))
    });
    group.bench_function("baseline:login_span_nothing_attached", |b| {
        b.iter_custom(|iters| logins(iters, false))
    });
    group.finish();
}

criterion_group!(benches, bench, caller);
criterion_main!(benches);
