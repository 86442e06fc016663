//! [`OtlpSinkBuilder`]: protocol, endpoint, headers, timeout, resource and retry window,
//! then the exporters and batch processors of an [`OtlpSink`].

use super::*;

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
    pub(crate) retry_window: Duration,
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
