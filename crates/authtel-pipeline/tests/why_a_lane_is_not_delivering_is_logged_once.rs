//! Why a lane is not delivering is logged at warn once per change of state, not once per
//! record (nor only as a metric): an outage of thousands of records gives one line when
//! the breaker opens and one info line when delivery resumes. The first version logged
//! nothing while a destination was down and frozen.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authtel_pipeline::{BreakerConfig, Dispatch, ForwarderConfig, Pipeline, RetryPolicy};
use common::{Capture, TempDir, numbered};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Collects (level, message) of every event on this thread.
#[derive(Default)]
struct Lines(Mutex<Vec<(Level, String)>>);

/// The subscriber handed to `tracing`: shares the lines with the test.
struct Collect(Arc<Lines>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collect {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        self.0
            .0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), m.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Lines {
    fn count(&self, level: Level, needle: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(l, m)| *l == level && m.contains(needle))
            .count()
    }
}

#[test]
fn one_warn_per_outage_and_one_info_when_delivery_resumes() {
    let lines = Arc::new(Lines::default());
    let dir = TempDir::new("health-log");
    let dest = Arc::new(Capture::new());
    // The inline lane logs on the publishing thread, where this subscriber listens.
    let p = Pipeline::builder()
        .forwarder(
            ForwarderConfig::from_arc("kafka", dest.clone())
                .dispatch(Dispatch::Sync)
                .retry(RetryPolicy {
                    max_attempts: 1,
                    base: Duration::ZERO,
                    max: Duration::ZERO,
                    jitter: false,
                })
                .breaker(BreakerConfig {
                    failure_threshold: 1,
                    open_for: Duration::ZERO,
                })
                .spill_dir(dir.path()),
        )
        .build()
        .unwrap();
    tracing::subscriber::with_default(Collect(lines.clone()), || {
        for outage in 0..2u64 {
            dest.down.store(true, Ordering::SeqCst);
            for e in numbered(outage * 1000..outage * 1000 + 200) {
                p.publish(e).unwrap();
            }
            dest.down.store(false, Ordering::SeqCst);
            for e in numbered(outage * 1000 + 500..outage * 1000 + 510) {
                p.publish(e).unwrap();
            }
        }
    });
    let not_delivering = lines.count(Level::WARN, "is not delivering");
    let again = lines.count(Level::INFO, "delivers to this forwarder again");
    assert_eq!(
        (not_delivering, again),
        (2, 2),
        "{:?}",
        lines.0.lock().unwrap()
    );
    assert_eq!(dest.len(), 420, "every record arrived after each outage");
}
