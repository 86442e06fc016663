//! [`OtlpSink`]: the exporters, batch processors and handler, configured by a builder.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use authtel_core::registry::{AttachError, Registry, Selection};
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry_otlp::{
    ExporterBuildError, LogExporter as OtlpLogExporter, RetryPolicy,
    SpanExporter as OtlpSpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{BatchLogProcessor, LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanExporter, SpanProcessor};

use crate::export::{Counters, ExportStats, RetryingLogExporter, RetryingSpanExporter};
use crate::handler::{Inner, OtlpHandler, scope};

mod builder;
pub use builder::OtlpSinkBuilder;

/// The id an attached sink's handler has in the registry.
pub const HANDLER_ID: &str = "authtel-otlp";

/// The default retry window: how long a failing batch is retried before it is dropped.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(30);

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/gRPC (tonic), port 4317 by convention.
    Grpc,
    /// OTLP/HTTP with protobuf bodies, port 4318 by convention.
    HttpProtobuf,
}

impl Protocol {
    /// From the `OTEL_EXPORTER_OTLP_PROTOCOL` spelling: `grpc`, `http/protobuf`.
    ///
    /// ```
    /// use authtel_otlp::Protocol;
    /// assert_eq!(Protocol::from_env_value("grpc").unwrap(), Protocol::Grpc);
    /// assert!(Protocol::from_env_value("http/json").is_err());
    /// ```
    pub fn from_env_value(value: &str) -> Result<Protocol, BuildError> {
        match value.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            other => Err(BuildError::UnsupportedProtocol(other.to_owned())),
        }
    }
}

/// Why a sink could not be built or attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The protocol (from `OTEL_EXPORTER_OTLP_PROTOCOL`) is not one this crate speaks.
    #[error(
        "otlp protocol {0:?} is not supported; use \"grpc\" or \"http/protobuf\" (OTEL_EXPORTER_OTLP_PROTOCOL or with_protocol)"
    )]
    UnsupportedProtocol(String),
    /// A header name or value cannot be sent (the value is never shown: it may be a key).
    #[error(
        "otlp header {name:?} is invalid; names are ASCII letters, digits, '-' and '_', values printable ASCII without line breaks"
    )]
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// The endpoint is not an `http://` or `https://` URL.
    #[error("otlp endpoint {0:?} is invalid; give a URL such as \"http://collector:4317\"")]
    InvalidEndpoint(String),
    /// The endpoint (given, or from an `OTEL_EXPORTER_OTLP_*ENDPOINT` variable) is
    /// `https://`, but this crate is built without TLS: the connection would fail at every
    /// export.
    #[error(
        "otlp endpoint {endpoint:?} needs TLS, which authtel-otlp is built without; send to a collector over http:// on loopback or a private network (an OpenTelemetry Collector sidecar can forward over TLS)"
    )]
    TlsNotCompiled {
        /// The `https://` endpoint.
        endpoint: String,
    },
    /// opentelemetry-otlp refused the configuration.
    #[error(
        "building the otlp {signal} exporter for {endpoint} failed; check the endpoint and OTEL_EXPORTER_OTLP_* variables"
    )]
    Exporter {
        /// `traces` or `logs`.
        signal: &'static str,
        /// The endpoint in use.
        endpoint: String,
        /// What opentelemetry-otlp said.
        #[source]
        source: ExporterBuildError,
    },
    /// No tokio runtime was running and one could not be started for gRPC.
    #[error(
        "starting a tokio runtime for the otlp grpc exporter failed; build the sink inside a tokio runtime"
    )]
    Runtime(#[source] std::io::Error),
    /// The handler could not be attached.
    #[error(transparent)]
    Attach(#[from] AttachError),
}

/// Why a flush or shutdown did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The deadline passed first; exporting goes on in the background.
    #[error(
        "otlp {operation} did not finish within {waited:?}; the collector may be down or slow: see OtlpSink::stats() for failures"
    )]
    Timeout {
        /// `flush` or `shutdown`.
        operation: &'static str,
        /// How long it waited.
        waited: Duration,
    },
    /// The SDK reported an error.
    #[error("otlp {operation} failed: {message}; see OtlpSink::stats() for export failures")]
    Sdk {
        /// `flush` or `shutdown`.
        operation: &'static str,
        /// The SDK's message.
        message: String,
    },
}

/// Exports auth spans as OpenTelemetry traces and signals and audit records as log
/// records, over OTLP. Holds the batch processors: [`flush`](Self::flush) and
/// [`shutdown`](Self::shutdown) them before the process exits (dropping the sink shuts it
/// down with a 5 s deadline).
pub struct OtlpSink {
    handler: OtlpHandler,
    span_processor: Arc<BatchSpanProcessor>,
    logger_provider: SdkLoggerProvider,
    counters: Arc<Counters>,
    endpoint: String,
    shut_down: AtomicBool,
    runtime: Option<tokio::runtime::Runtime>,
}

fn is_https(endpoint: &str) -> bool {
    endpoint.trim().to_ascii_lowercase().starts_with("https://")
}

impl fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpSink")
            .field("endpoint", &self.endpoint)
            .field("stats", &self.stats())
            .finish()
    }
}

impl OtlpSink {
    /// A builder; see [`OtlpSinkBuilder`].
    pub fn builder() -> OtlpSinkBuilder {
        OtlpSinkBuilder::default()
    }

    /// The handler, to attach where you choose.
    pub fn handler(&self) -> OtlpHandler {
        self.handler.clone()
    }

    /// Counts a log record handed to the logger outside the handler (the forwarder's).
    pub(crate) fn count_log_emitted(&self) {
        self.counters.logs_emitted.fetch_add(1, Ordering::Relaxed);
    }

    /// Attaches the handler to `registry` under [`HANDLER_ID`], for every event.
    ///
    /// ```
    /// use authtel_core::registry::Registry;
    /// use opentelemetry_sdk::{logs::InMemoryLogExporter, trace::InMemorySpanExporter};
    /// let sink = authtel_otlp::OtlpSink::builder()
    ///     .build_with_exporters(InMemorySpanExporter::default(), InMemoryLogExporter::default());
    /// let registry = Registry::new();
    /// sink.attach_to(&registry).unwrap();
    /// assert_eq!(registry.handlers()[0].id, "authtel-otlp");
    /// ```
    pub fn attach_to(&self, registry: &Registry) -> Result<(), AttachError> {
        registry.attach(HANDLER_ID, Selection::All, self.handler())
    }

    /// The endpoint exports go to (as configured or from the environment).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Export counters: exported, failed attempts, dropped, last error.
    pub fn stats(&self) -> ExportStats {
        self.counters.snapshot()
    }

    /// Exports everything queued, waiting at most until `deadline`. Blocks: from async
    /// code, call it inside `spawn_blocking`.
    pub fn flush(&self, deadline: Instant) -> Result<(), FlushError> {
        let spans = self.span_processor.clone();
        let logs = self.logger_provider.clone();
        run_until("flush", deadline, move || {
            let a = spans.force_flush();
            let b = logs.force_flush();
            a.and(b).map_err(|e| e.to_string())
        })
    }

    /// Exports what is queued and stops, waiting at most until `deadline`; a failing
    /// batch is not retried past it. Idempotent. Blocks: from async code, call it inside
    /// `spawn_blocking`.
    pub fn shutdown(&self, deadline: Instant) -> Result<(), FlushError> {
        if self.shut_down.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let spans = self.span_processor.clone();
        let logs = self.logger_provider.clone();
        let counters = self.counters.clone();
        let result = run_until("shutdown", deadline, move || {
            let budget = deadline.saturating_duration_since(Instant::now());
            // Flush first while retries are still allowed, then stop retrying.
            let _ = spans.force_flush();
            let _ = logs.force_flush();
            counters.stopping.store(true, Ordering::Relaxed);
            let a = spans.shutdown_with_timeout(budget);
            let b = logs.shutdown_with_timeout(budget);
            a.and(b).map_err(|e| e.to_string())
        });
        self.counters.stopping.store(true, Ordering::Relaxed);
        if result.is_ok() {
            self.counters.reconcile_logs(&self.endpoint);
        }
        result
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        let _ = self.shutdown(Instant::now() + Duration::from_secs(5));
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs a blocking SDK call on a helper thread and waits for it until `deadline`.
fn run_until(
    operation: &'static str,
    deadline: Instant,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), FlushError> {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name(format!("authtel-otlp-{operation}"))
        .spawn(move || {
            let _ = tx.send(f());
        });
    if let Err(e) = spawned {
        return Err(FlushError::Sdk {
            operation,
            message: format!("could not start a thread: {e}"),
        });
    }
    match rx.recv_timeout(deadline.saturating_duration_since(started)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(FlushError::Sdk { operation, message }),
        Err(_) => Err(FlushError::Timeout {
            operation,
            waited: started.elapsed(),
        }),
    }
}
