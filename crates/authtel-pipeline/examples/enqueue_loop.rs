//! The pipeline bench's enqueue loop without criterion, for instruction counts:
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*publish_one*' --toggle-collect='*send_one*' \
//!     target/release/examples/enqueue_loop publish 20000
//! ```
//!
//! Cases: `publish` (`Pipeline::publish` into an async lane with a no-op forwarder, the
//! bench's `enqueue_async`) and `mpsc` (its baseline, `tokio::sync::mpsc::Sender::try_send`
//! with a task draining). Records are built before the loop; collecting only inside
//! `publish_one` / `send_one` leaves out setup and the worker thread. Run each at two
//! counts and divide the difference of the totals by the difference of the counts: that is
//! the producer's cost of one record.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use authtel_core::audit::AuditEvent;
use authtel_core::forward::{ForwardFuture, Forwarder};
use authtel_core::outcome::Outcome;
use authtel_pipeline::{Dispatch, ForwarderConfig, Pipeline};
use tokio::sync::mpsc::Sender;

#[derive(Debug, Default)]
struct Noop(AtomicU64);

impl Forwarder for Noop {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

#[inline(never)]
fn publish_one(pipeline: &Pipeline, e: AuditEvent) {
    pipeline.publish(black_box(e)).unwrap();
}

#[inline(never)]
fn send_one(tx: &Sender<AuditEvent>, e: AuditEvent) {
    tx.try_send(black_box(e)).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "publish".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let template = AuditEvent::new("auth.login.stop", Outcome::Success).unwrap();
    let events: Vec<AuditEvent> = (0..n).map(|_| template.clone()).collect();
    let t0;
    match case.as_str() {
        "publish" => {
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
            t0 = Instant::now();
            for e in events {
                publish_one(&pipeline, e);
            }
            pipeline
                .flush(Instant::now() + Duration::from_secs(30))
                .unwrap();
            assert_eq!(noop.0.load(Ordering::Relaxed), n as u64);
        }
        "mpsc" => {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<AuditEvent>(1 << 20);
            rt.spawn(async move { while rx.recv().await.is_some() {} });
            t0 = Instant::now();
            for e in events {
                send_one(&tx, e);
            }
        }
        other => panic!("unknown case {other:?}: use publish or mpsc"),
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    println!("{case}: {ns:.1} ns per record, delivery included for publish ({n} records)");
}
