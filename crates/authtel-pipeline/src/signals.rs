//! The pipeline's own signals: `pipeline.forward.error` and `pipeline.records.dropped`.
//!
//! They go to the registry given to the builder (tests use a scoped one) or, by default,
//! to whatever registry the emitting thread uses. While the pipeline emits, its own handler
//! ignores events on that thread: a failing destination must not feed its own failure
//! reports back into itself forever.

use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use authtel_core::catalogue;
use authtel_core::metadata::{Metadata, truncate};
use authtel_core::registry::Registry;
use authtel_core::telemetry::{self, Measurements};
use uuid::Uuid;

thread_local! {
    static EMITTING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside one of the pipeline's own emits.
pub(crate) fn emitting() -> bool {
    EMITTING.with(Cell::get)
}

/// Telemetry-record drops are reported at most this often (with the count since).
const DROP_REPORT_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct Signals {
    registry: Option<Registry>,
    unreported_drops: AtomicU64,
    last_drop_report: Mutex<Option<Instant>>,
}

impl Signals {
    pub(crate) fn new(registry: Option<Registry>) -> Signals {
        Signals {
            registry,
            ..Signals::default()
        }
    }

    fn emit(&self, f: impl FnOnce()) {
        let _scope = self.registry.as_ref().map(Registry::enter);
        EMITTING.with(|e| e.set(true));
        f();
        EMITTING.with(|e| e.set(false));
    }

    /// A batch was dead-lettered.
    pub(crate) fn forward_error(
        &self,
        forwarder: &str,
        error: &str,
        attempts: u32,
        ids: &[Uuid],
        file: &str,
    ) {
        let first = ids.first().map(Uuid::to_string).unwrap_or_default();
        tracing::error!(
            forwarder,
            reason = error,
            attempts,
            records = ids.len(),
            first_event_id = %first,
            dead_letter_file = file,
            "authtel pipeline gave up on a batch; records written to the dead-letter file"
        );
        self.emit(|| {
            telemetry::event(
                &catalogue::PIPELINE_FORWARD_ERROR,
                Measurements::new().count(ids.len() as u64),
                Metadata::new()
                    .reason("retries_exhausted")
                    .with_extra("error", truncate(error, 200))
                    .with_extra("forwarder", forwarder)
                    .with_extra("attempts", u64::from(attempts))
                    .with_extra("event_count", ids.len() as u64)
                    .with_extra("first_event_id", first.as_str())
                    .with_extra("dead_letter_file", file),
            )
        });
    }

    /// Records were dropped. Audit-record drops are reported every time; telemetry drops
    /// at most once per second, with the count accumulated since the last report.
    pub(crate) fn dropped(&self, forwarder: &str, reason: &'static str, n: u64, audit: bool) {
        let total = self.unreported_drops.fetch_add(n, Relaxed) + n;
        if !audit {
            let mut last = self
                .last_drop_report
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < DROP_REPORT_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let count = self.unreported_drops.swap(0, Relaxed).max(total.min(n));
        tracing::warn!(
            forwarder,
            reason,
            count,
            audit,
            "authtel pipeline dropped records"
        );
        self.emit(|| {
            telemetry::event(
                &catalogue::PIPELINE_RECORDS_DROPPED,
                Measurements::new().count(count),
                Metadata::new()
                    .reason(reason)
                    .with_extra("forwarder", forwarder)
                    .with_extra("count", count)
                    .with_extra("audit", audit),
            )
        });
    }
}
