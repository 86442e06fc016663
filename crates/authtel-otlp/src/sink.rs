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

/// Configures an [`OtlpSink`]; see [`OtlpSink::builder`].
///
/// Anything not set here comes from the standard environment variables, read by
/// opentelemetry-otlp: `OTEL_EXPORTER_OTLP_ENDPOINT` (and `_TRACES_`/`_LOGS_` variants),
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, and here
/// `OTEL_EXPORTER_OTLP_PROTOCOL`; the resource reads `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES`. Values set here win.
#[derive(Clone)]
pub struct OtlpSinkBuilder {
    protocol: Option<Protocol>,
    endpoint: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Option<Duration>,
    service_name: Option<String>,
    service_version: Option<String>,
    retry_window: Duration,
    audit_logs: bool,
}

impl fmt::Debug for OtlpSinkBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are often API keys or bearer tokens: names only.
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, _)| (name.as_str(), "***"))
            .collect();
        f.debug_struct("OtlpSinkBuilder")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("service_name", &self.service_name)
            .field("service_version", &self.service_version)
            .field("retry_window", &self.retry_window)
            .field("audit_logs", &self.audit_logs)
            .finish()
    }
}

impl Default for OtlpSinkBuilder {
    fn default() -> Self {
        OtlpSinkBuilder {
            protocol: None,
            endpoint: None,
            headers: Vec::new(),
            timeout: None,
            service_name: None,
            service_version: None,
            retry_window: DEFAULT_RETRY_WINDOW,
            audit_logs: true,
        }
    }
}

impl OtlpSinkBuilder {
    /// The transport (default: `OTEL_EXPORTER_OTLP_PROTOCOL`, else HTTP/protobuf).
    #[must_use]
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// The collector's base URL, e.g. `http://collector:4317` (gRPC) or
    /// `http://collector:4318` (HTTP: `/v1/traces` and `/v1/logs` are appended).
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Headers (gRPC metadata) sent with every export, e.g. an API key; added to those of
    /// `OTEL_EXPORTER_OTLP_HEADERS`.
    #[must_use]
    pub fn with_headers<K: Into<String>, V: Into<String>>(
        mut self,
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.headers
            .extend(headers.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The timeout of one export request (default 10 s or `OTEL_EXPORTER_OTLP_TIMEOUT`).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The resource's `service.name`.
    #[must_use]
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The resource's `service.version`.
    #[must_use]
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// How long a failing batch is retried before it is dropped and counted (default
    /// [`DEFAULT_RETRY_WINDOW`]).
    #[must_use]
    pub fn with_retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// Whether span stops and exceptions (the audit records) also become log records
    /// (default `true`); signals always do.
    #[must_use]
    pub fn with_audit_logs(mut self, enabled: bool) -> Self {
        self.audit_logs = enabled;
        self
    }

    /// Builds the exporters, batch processors and handler, unattached.
    ///
    /// ```no_run
    /// use authtel_otlp::{OtlpSink, Protocol};
    /// let sink = OtlpSink::builder()
    ///     .with_protocol(Protocol::HttpProtobuf)
    ///     .with_endpoint("http://127.0.0.1:4318")
    ///     .with_service_name("accounts")
    ///     .build()?;
    /// # Ok::<(), authtel_otlp::BuildError>(())
    /// ```
    pub fn build(self) -> Result<OtlpSink, BuildError> {
        let protocol = match self.protocol {
            Some(p) => p,
            None => match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL") {
                Ok(v) if !v.trim().is_empty() => Protocol::from_env_value(&v)?,
                _ => Protocol::HttpProtobuf,
            },
        };
        for (name, value) in &self.headers {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let value_ok = value.bytes().all(|b| (0x20..0x7f).contains(&b));
            if !name_ok || !value_ok {
                return Err(BuildError::InvalidHeader { name: name.clone() });
            }
        }
        let base = match &self.endpoint {
            Some(e) => {
                let e = e.trim_end_matches('/');
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(BuildError::InvalidEndpoint(e.to_owned()));
                }
                Some(e.to_owned())
            }
            None => None,
        };
        // No TLS is compiled in (tonic and reqwest without TLS features): refuse https://
        // now rather than fail every export later.
        let env_endpoints = [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ];
        let https = match &base {
            Some(e) => Some(e.clone()).filter(|e| is_https(e)),
            None => env_endpoints
                .iter()
                .filter_map(|v| std::env::var(v).ok())
                .find(|e| is_https(e)),
        };
        if let Some(endpoint) = https {
            return Err(BuildError::TlsNotCompiled { endpoint });
        }
        let shown = base.clone().unwrap_or_else(|| {
            std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_else(|_| {
                match protocol {
                    Protocol::Grpc => "http://localhost:4317",
                    Protocol::HttpProtobuf => "http://localhost:4318",
                }
                .to_owned()
            })
        });
        let err = |signal| {
            let endpoint = shown.clone();
            move |source| BuildError::Exporter {
                signal,
                endpoint,
                source,
            }
        };
        let mut runtime = None;
        let (spans, logs) = match protocol {
            Protocol::Grpc => {
                // tonic's lazy channel spawns its worker on the current tokio runtime.
                let handle = match tokio::runtime::Handle::try_current() {
                    Ok(h) => h,
                    Err(_) => {
                        let rt = tokio::runtime::Builder::new_multi_thread()
                            .worker_threads(1)
                            .thread_name("authtel-otlp-grpc")
                            .enable_all()
                            .build()
                            .map_err(BuildError::Runtime)?;
                        let h = rt.handle().clone();
                        runtime = Some(rt);
                        h
                    }
                };
                let _entered = handle.enter();
                let mut metadata = tonic::metadata::MetadataMap::new();
                for (k, v) in &self.headers {
                    let key =
                        tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                            .map_err(|_| BuildError::InvalidHeader { name: k.clone() })?;
                    let value = v
                        .parse()
                        .map_err(|_| BuildError::InvalidHeader { name: k.clone() })?;
                    metadata.insert(key, value);
                }
                let mut s = OtlpSpanExporter::builder()
                    .with_tonic()
                    .with_metadata(metadata.clone())
                    .with_retry_policy(RetryPolicy::disabled());
                let mut l = OtlpLogExporter::builder()
                    .with_tonic()
                    .with_metadata(metadata)
                    .with_retry_policy(RetryPolicy::disabled());
                if let Some(b) = &base {
                    s = s.with_endpoint(b.clone());
                    l = l.with_endpoint(b.clone());
                }
                if let Some(t) = self.timeout {
                    s = s.with_timeout(t);
                    l = l.with_timeout(t);
                }
                (
                    s.build().map_err(err("traces"))?,
                    l.build().map_err(err("logs"))?,
                )
            }
            Protocol::HttpProtobuf => {
                let headers: HashMap<String, String> = self.headers.iter().cloned().collect();
                let mut s = OtlpSpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_headers(headers.clone())
                    .with_retry_policy(RetryPolicy::disabled());
                let mut l = OtlpLogExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_headers(headers)
                    .with_retry_policy(RetryPolicy::disabled());
                if let Some(b) = &base {
                    s = s.with_endpoint(format!("{b}/v1/traces"));
                    l = l.with_endpoint(format!("{b}/v1/logs"));
                }
                if let Some(t) = self.timeout {
                    s = s.with_timeout(t);
                    l = l.with_timeout(t);
                }
                (
                    s.build().map_err(err("traces"))?,
                    l.build().map_err(err("logs"))?,
                )
            }
        };
        let mut sink = self.build_with_exporters_at(spans, logs, shown);
        sink.runtime = runtime;
        Ok(sink)
    }

    /// Builds the sink around exporters of your own (an in-memory exporter in tests, a
    /// custom transport); the retry window and counters apply to them too.
    ///
    /// ```
    /// use authtel_otlp::OtlpSink;
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    /// use opentelemetry_sdk::logs::InMemoryLogExporter;
    /// let sink = OtlpSink::builder()
    ///     .build_with_exporters(InMemorySpanExporter::default(), InMemoryLogExporter::default());
    /// assert_eq!(sink.stats().spans_exported, 0);
    /// ```
    pub fn build_with_exporters<S, L>(self, spans: S, logs: L) -> OtlpSink
    where
        S: SpanExporter + 'static,
        L: LogExporter + 'static,
    {
        self.build_with_exporters_at(spans, logs, "custom exporter".to_owned())
    }

    fn build_with_exporters_at<S, L>(self, spans: S, logs: L, endpoint: String) -> OtlpSink
    where
        S: SpanExporter + 'static,
        L: LogExporter + 'static,
    {
        let mut resource = Resource::builder();
        if let Some(name) = self.service_name {
            resource = resource.with_service_name(name);
        }
        if let Some(version) = self.service_version {
            resource =
                resource.with_attribute(opentelemetry::KeyValue::new("service.version", version));
        }
        let resource = resource.build();
        let counters = Arc::new(Counters::default());
        let mut span_exporter = RetryingSpanExporter {
            inner: spans,
            counters: counters.clone(),
            window: self.retry_window,
            endpoint: endpoint.clone(),
        };
        span_exporter.set_resource(&resource);
        let span_processor: Arc<BatchSpanProcessor> =
            Arc::new(BatchSpanProcessor::builder(span_exporter).build());
        let log_exporter = RetryingLogExporter {
            inner: logs,
            counters: counters.clone(),
            window: self.retry_window,
            endpoint: endpoint.clone(),
        };
        let logger_provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(
                BatchLogProcessor::builder(log_exporter)
                    .with_batch_config(
                        opentelemetry_sdk::logs::BatchConfigBuilder::default()
                            .with_max_queue_size(crate::export::LOG_QUEUE_CAPACITY)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let handler = OtlpHandler {
            inner: Arc::new(Inner {
                spans: span_processor.clone(),
                logger: logger_provider.logger_with_scope(scope()),
                scope: scope(),
                audit_logs: self.audit_logs,
                counters: counters.clone(),
            }),
        };
        OtlpSink {
            handler,
            span_processor,
            logger_provider,
            counters,
            endpoint,
            shut_down: AtomicBool::new(false),
            runtime: None,
        }
    }

    /// Builds the sink and attaches its handler to the global registry under
    /// [`HANDLER_ID`], for every event.
    ///
    /// ```no_run
    /// // Endpoint, headers and protocol from OTEL_EXPORTER_OTLP_* variables.
    /// let sink = authtel_otlp::OtlpSink::builder().with_service_name("accounts").attach()?;
    /// // … at exit:
    /// sink.shutdown(std::time::Instant::now() + std::time::Duration::from_secs(5)).ok();
    /// # Ok::<(), authtel_otlp::BuildError>(())
    /// ```
    pub fn attach(self) -> Result<OtlpSink, BuildError> {
        let sink = self.build()?;
        sink.attach_to(Registry::global())?;
        Ok(sink)
    }
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
