//! What can go wrong while [`install`](super::Setup::install)ing or shutting down.

#[cfg(any(feature = "pipeline", feature = "otlp"))]
use std::time::Duration;

/// A sink could not be set up, or did not shut down in time. Each variant names the sink
/// and carries the sink crate's own error, whose message says what to check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A handler could not be attached to the global registry (usually: this process
    /// already installed authtel once, and the handler id is taken).
    #[error(
        "authtel setup: attaching the {sink} handler failed: {source}; install authtel once per process (keep the guard for the process's lifetime)"
    )]
    Attach {
        /// Which sink.
        sink: &'static str,
        /// The registry's error.
        #[source]
        source: authtel_core::registry::AttachError,
    },
    /// `install()` was called from inside an async runtime and a sink needs one of its own
    /// to connect (SQL, Kafka, OTLP): blocking there would stall the runtime's worker.
    #[error(
        "authtel setup: install() was called inside an async runtime, and the {sink} sink has to connect before it returns; call `install_async().await` from async code instead"
    )]
    InsideRuntime {
        /// The sink that needs to connect.
        sink: &'static str,
    },
    /// The tokio runtime that delivers to SQL, Kafka and OTLP could not be started.
    #[error(
        "authtel setup: starting the delivery runtime failed: {0}; check the process's thread limit (ulimit -u)"
    )]
    Runtime(#[source] std::io::Error),
    /// The database URL names a backend this build does not have.
    #[cfg(feature = "sql")]
    #[error("authtel setup: database URL {url:?} is not supported by this build: {advice}")]
    UnsupportedDatabase {
        /// The URL as given, password masked.
        url: String,
        /// What to do.
        advice: &'static str,
    },
    /// Connecting to the SQL audit store or migrating its schema failed.
    #[cfg(feature = "sql")]
    #[error("authtel setup: the SQL audit store failed: {0}")]
    Sql(#[from] authtel_sql::SqlError),
    /// The delivery pipeline refused its configuration.
    #[cfg(feature = "pipeline")]
    #[error("authtel setup: the delivery pipeline could not be built: {0}")]
    Pipeline(#[from] authtel_pipeline::BuildError),
    /// Flushing or shutting down the delivery pipeline did not finish.
    #[cfg(feature = "pipeline")]
    #[error("authtel shutdown: the delivery pipeline did not finish within {timeout:?}: {source}")]
    PipelineShutdown {
        /// The time it had.
        timeout: Duration,
        /// What was still undelivered.
        #[source]
        source: authtel_pipeline::FlushError,
    },
    /// The Kafka producer refused its configuration.
    #[cfg(feature = "kafka")]
    #[error("authtel setup: the Kafka forwarder could not be built: {0}")]
    Kafka(#[from] authtel_kafka::BuildError),
    /// The OTLP exporter refused its configuration.
    #[cfg(feature = "otlp")]
    #[error("authtel setup: the OTLP exporter could not be built: {0}")]
    Otlp(#[from] authtel_otlp::BuildError),
    /// Flushing the OTLP exporter did not finish.
    #[cfg(feature = "otlp")]
    #[error("authtel shutdown: the OTLP exporter did not flush within {timeout:?}: {source}")]
    OtlpShutdown {
        /// The time it had.
        timeout: Duration,
        /// The exporter's error.
        #[source]
        source: authtel_otlp::FlushError,
    },
    /// The Prometheus recorder or listener could not be installed.
    #[cfg(feature = "prometheus")]
    #[error("authtel setup: Prometheus metrics could not be installed: {0}")]
    Prometheus(#[from] authtel_prometheus::PrometheusError),
    /// A listen address (`AUTHTEL_METRICS_ADDR`) is not `host:port`.
    #[error("authtel setup: {variable}={value:?} is not a socket address like 127.0.0.1:9464")]
    BadAddress {
        /// The environment variable.
        variable: &'static str,
        /// Its value.
        value: String,
    },
    /// The detectors' configuration is invalid.
    #[cfg(feature = "detect")]
    #[error("authtel setup: the detectors' configuration is invalid: {0}")]
    Detect(#[from] authtel_detect::ConfigError),
}
