//! Exporter wrappers that retry within a window and count what happens.
//!
//! The OTLP exporters of opentelemetry-otlp 0.33 retry on their own (three times, 100 ms to
//! 1.6 s), then the SDK's batch processor drops the batch with only an internal log line.
//! That window is too short for a collector restart, and a drop must be visible. So the
//! exporters are built with their retry disabled and wrapped here: every failed attempt is
//! counted ([`ExportStats::export_failures`]) and logged through `tracing`, the batch is
//! retried with exponential backoff (100 ms doubling to 2 s) until the retry window ends,
//! and only then dropped and counted ([`ExportStats::spans_dropped`],
//! [`ExportStats::logs_dropped`]).
//!
//! Retries run on the batch processor's own thread, never on the thread that emitted the
//! event: the application is unaffected while the collector is down. New data queues in the
//! batch processor meanwhile (2,048 spans and [`LOG_QUEUE_CAPACITY`] log records; beyond
//! that the SDK drops). The SDK does not say how many it dropped, so the sink counts every log
//! record it hands over ([`ExportStats::logs_emitted`]): at shutdown, a record neither
//! exported nor given up on after the retry window was dropped by the queue, and is added to
//! [`ExportStats::logs_dropped`] and logged at error.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// How many log records wait for export before the SDK's batch processor drops new ones:
/// 32 times the SDK's default, room for a burst of some tens of thousands of audited logins
/// (about 1 KiB each while queued).
pub const LOG_QUEUE_CAPACITY: usize = 65_536;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Counters of one sink's exports; see [`OtlpSink::stats`](crate::OtlpSink::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the collector acknowledged.
    pub spans_exported: u64,
    /// Log records the collector acknowledged.
    pub logs_exported: u64,
    /// Failed export attempts (each retry counts), traces and logs together.
    pub export_failures: u64,
    /// Spans given up on after the retry window.
    pub spans_dropped: u64,
    /// Log records handed to the batch processor (signals and audit records).
    pub logs_emitted: u64,
    /// Log records lost: given up on after the retry window, or (counted at shutdown)
    /// dropped by a full queue. After a shutdown that returned `Ok`,
    /// `logs_exported + logs_dropped == logs_emitted` (a shutdown cut off by its deadline
    /// leaves records in flight, and they are not counted).
    pub logs_dropped: u64,
    /// The last export error, for the operator.
    pub last_error: Option<String>,
}

#[derive(Default)]
pub(crate) struct Counters {
    spans_exported: AtomicU64,
    logs_exported: AtomicU64,
    export_failures: AtomicU64,
    spans_dropped: AtomicU64,
    pub(crate) logs_emitted: AtomicU64,
    logs_dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set on shutdown: stop retrying, give up at once.
    pub(crate) stopping: AtomicBool,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> ExportStats {
        ExportStats {
            spans_exported: self.spans_exported.load(Ordering::Relaxed),
            logs_exported: self.logs_exported.load(Ordering::Relaxed),
            export_failures: self.export_failures.load(Ordering::Relaxed),
            spans_dropped: self.spans_dropped.load(Ordering::Relaxed),
            logs_emitted: self.logs_emitted.load(Ordering::Relaxed),
            logs_dropped: self.logs_dropped.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// After the logger provider shut down: the records handed over but neither exported
    /// nor given up on were dropped by the SDK's queue. Counts them (once) and says so.
    pub(crate) fn reconcile_logs(&self, endpoint: &str) -> u64 {
        let emitted = self.logs_emitted.load(Ordering::SeqCst);
        let accounted =
            self.logs_exported.load(Ordering::SeqCst) + self.logs_dropped.load(Ordering::SeqCst);
        let lost = emitted.saturating_sub(accounted);
        if lost > 0 {
            self.logs_dropped.fetch_add(lost, Ordering::SeqCst);
            let message = format!(
                "otlp: {lost} of {emitted} log records to {endpoint} were dropped before export (the batch queue of {LOG_QUEUE_CAPACITY} was full, or shutdown's deadline passed); put audit records that must arrive behind the pipeline or the SQL outbox"
            );
            tracing::error!(target: "authtel::otlp", "{message}");
            *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
        }
        lost
    }

    fn failed(&self, signal: &str, endpoint: &str, attempt: u32, error: &OTelSdkError) {
        self.export_failures.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "otlp {signal} export to {endpoint} failed (attempt {attempt}): {error}; check that the collector is up and reachable"
        );
        tracing::warn!(target: "authtel::otlp", "{message}");
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
    }
}

/// Which signal a wrapper exports, for counters and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    Traces,
    Logs,
}

/// The retry loop shared by both wrappers. `attempt` runs one export.
async fn with_retry<F, Fut>(
    counters: &Counters,
    window: Duration,
    signal: Signal,
    endpoint: &str,
    items: u64,
    mut attempt: F,
) -> OTelSdkResult
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = OTelSdkResult>,
{
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut n = 1u32;
    let name = match signal {
        Signal::Traces => "traces",
        Signal::Logs => "logs",
    };
    loop {
        match attempt().await {
            Ok(()) => {
                let exported = match signal {
                    Signal::Traces => &counters.spans_exported,
                    Signal::Logs => &counters.logs_exported,
                };
                exported.fetch_add(items, Ordering::Relaxed);
                return Ok(());
            }
            Err(error) => {
                counters.failed(name, endpoint, n, &error);
                let out_of_window = started.elapsed() + backoff > window;
                if out_of_window || counters.stopping.load(Ordering::Relaxed) {
                    let dropped = match signal {
                        Signal::Traces => &counters.spans_dropped,
                        Signal::Logs => &counters.logs_dropped,
                    };
                    dropped.fetch_add(items, Ordering::Relaxed);
                    tracing::error!(
                        target: "authtel::otlp",
                        "otlp {name} export to {endpoint} gave up after {n} attempts in {:?}; {items} items dropped (counted in ExportStats)",
                        started.elapsed()
                    );
                    return Err(error);
                }
                // This runs on the batch processor's dedicated thread (the SDK drives the
                // export future with a blocking executor), so sleeping here blocks only it.
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                n += 1;
            }
        }
    }
}

/// Wraps a span exporter with the retry window and counters.
pub(crate) struct RetryingSpanExporter<E> {
    pub(crate) inner: E,
    pub(crate) counters: Arc<Counters>,
    pub(crate) window: Duration,
    pub(crate) endpoint: String,
}

impl<E> fmt::Debug for RetryingSpanExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryingSpanExporter")
            .field("endpoint", &self.endpoint)
            .field("window", &self.window)
            .finish()
    }
}

impl<E: SpanExporter> SpanExporter for RetryingSpanExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let items = batch.len() as u64;
        with_retry(
            &self.counters,
            self.window,
            Signal::Traces,
            &self.endpoint,
            items,
            || self.inner.export(batch.clone()),
        )
        .await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Wraps a log exporter with the retry window and counters.
pub(crate) struct RetryingLogExporter<E> {
    pub(crate) inner: E,
    pub(crate) counters: Arc<Counters>,
    pub(crate) window: Duration,
    pub(crate) endpoint: String,
}

impl<E> fmt::Debug for RetryingLogExporter<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryingLogExporter")
            .field("endpoint", &self.endpoint)
            .field("window", &self.window)
            .finish()
    }
}

impl<E: LogExporter> LogExporter for RetryingLogExporter<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let records: Vec<_> = batch.iter().collect();
        let items = records.len() as u64;
        with_retry(
            &self.counters,
            self.window,
            Signal::Logs,
            &self.endpoint,
            items,
            || self.inner.export(LogBatch::new(&records)),
        )
        .await
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
