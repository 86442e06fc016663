//! One obvious way to wire authtel: [`setup()`], a few sinks, [`Setup::install`], and one
//! guard ([`Authtel`]) that flushes and shuts everything down.
//!
//! ```
//! let authtel = authtel::setup()
//!     .service_name("accounts")
//!     .default_logger(authtel::log::LoggerOptions::new())
//!     .install()?;
//!
//! let _ = authtel::telemetry::span(
//!     &authtel::catalogue::AUTH_LOGIN,
//!     authtel::Metadata::new().user_id("u_42"),
//!     || Ok::<_, &str>(()),
//! );
//! authtel.shutdown(std::time::Duration::from_secs(5))?;
//! # Ok::<(), authtel::SetupError>(())
//! ```
//!
//! With features `sql`, `kafka`, `otlp`, `prometheus` and `detect`, the same chain takes
//! `.sql("sqlite://audit.db")`, `.kafka(bootstrap, topic)`, `.otlp_from_env()`,
//! `.prometheus(addr)` and `.detectors(config)`, or `.from_env()` for all of them.
//!
//! The lower-level pieces ([`crate::sql`], [`crate::pipeline`], …) stay public for wiring
//! that this builder does not cover.

mod error;
mod guard;
#[cfg(feature = "pipeline")]
mod lanes;

#[cfg(feature = "prometheus")]
use std::net::SocketAddr;
#[cfg(feature = "pipeline")]
use std::path::PathBuf;

pub use error::SetupError;
pub use guard::{Authtel, ShutdownReport};

/// Starts a [`Setup`]: nothing is attached until [`Setup::install`].
///
/// ```
/// let setup = authtel::setup().service_name("accounts");
/// assert_eq!(setup.get_service_name(), "accounts");
/// ```
pub fn setup() -> Setup {
    Setup::default()
}

/// Where Prometheus metrics are served.
#[cfg(feature = "prometheus")]
#[derive(Debug, Clone)]
enum Metrics {
    /// A scrape listener of authtel's own on this address.
    Listen(SocketAddr),
    /// `AUTHTEL_METRICS_ADDR`, parsed at install time (a bad value is an error then).
    ListenFromEnv(String),
    /// The recorder only: the application serves [`Authtel::render_metrics`] itself.
    RecorderOnly,
}

/// Which detector configuration to use.
#[cfg(feature = "detect")]
#[derive(Debug, Clone)]
enum Detect {
    Config(Box<authtel_detect::DetectConfig>),
    FromEnv,
}

/// Which sinks to attach, and how. Each method names one sink; [`Setup::from_env`] reads the
/// usual environment for all of the sinks this build has. See the [module docs](self).
#[derive(Debug, Clone, Default)]
#[must_use = "nothing is attached until `install()`"]
pub struct Setup {
    service_name: Option<String>,
    warnings: Vec<String>,
    #[cfg(feature = "log")]
    logger: Option<authtel_log::LoggerOptions>,
    #[cfg(feature = "sql")]
    sql_url: Option<String>,
    #[cfg(feature = "kafka")]
    kafka: Option<(String, String)>,
    #[cfg(feature = "otlp")]
    otlp: bool,
    #[cfg(feature = "prometheus")]
    metrics: Option<Metrics>,
    #[cfg(feature = "detect")]
    detect: Option<Detect>,
    #[cfg(feature = "pipeline")]
    runtime: Option<tokio::runtime::Handle>,
    #[cfg(feature = "pipeline")]
    spill_dir: Option<PathBuf>,
    #[cfg(feature = "pipeline")]
    dead_letter_dir: Option<PathBuf>,
}

/// The service name used when none is set: the executable's file name.
fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "authtel".to_owned())
}

/// An environment variable's value, if set and not blank.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Setup {
    /// Names the service in OTLP resources and Kafka's CloudEvents `source`
    /// (default: the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// The service name this setup will use.
    pub fn get_service_name(&self) -> String {
        self.service_name
            .clone()
            .unwrap_or_else(default_service_name)
    }

    /// Reads the usual environment for every sink this build has: `DATABASE_URL` (SQL),
    /// `KAFKA_BOOTSTRAP` and `KAFKA_TOPIC` (Kafka, topic default `authtel-audit`),
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` and the other `OTEL_EXPORTER_OTLP_*` variables (OTLP),
    /// `AUTHTEL_METRICS_ADDR` (a Prometheus scrape listener), `AUTHTEL_DETECT_*`
    /// (detectors), and attaches the default logger. A variable naming a sink this build
    /// was compiled without is reported in [`Authtel::warnings`], never ignored silently.
    /// Sinks configured in code before this call are kept.
    ///
    /// ```
    /// let setup = authtel::setup().from_env();
    /// # let _ = setup;
    /// ```
    pub fn from_env(mut self) -> Self {
        #[cfg(feature = "log")]
        if self.logger.is_none() {
            self.logger = Some(authtel_log::LoggerOptions::new());
        }
        self.sql_from_env_or_warn();
        self.kafka_from_env_or_warn();
        self.otlp_from_env_or_warn();
        self.metrics_from_env_or_warn();
        #[cfg(feature = "detect")]
        if self.detect.is_none() {
            self.detect = Some(Detect::FromEnv);
        }
        self
    }

    #[cfg(not(all(
        feature = "sql",
        feature = "kafka",
        feature = "otlp",
        feature = "prometheus"
    )))]
    fn missing_feature(&mut self, variable: &str, feature: &str) {
        if env(variable).is_some() {
            self.warnings.push(format!(
                "{variable} is set, but this build of authtel has no `{feature}` feature: nothing is sent there; enable `authtel/{feature}` in Cargo.toml"
            ));
        }
    }

    fn sql_from_env_or_warn(&mut self) {
        #[cfg(feature = "sql")]
        if self.sql_url.is_none() {
            self.sql_url = env("DATABASE_URL");
        }
        #[cfg(not(feature = "sql"))]
        self.missing_feature("DATABASE_URL", "sql");
    }

    fn kafka_from_env_or_warn(&mut self) {
        #[cfg(feature = "kafka")]
        if self.kafka.is_none()
            && let Some(bootstrap) = env("KAFKA_BOOTSTRAP")
        {
            let topic = env("KAFKA_TOPIC").unwrap_or_else(|| "authtel-audit".to_owned());
            self.kafka = Some((bootstrap, topic));
        }
        #[cfg(not(feature = "kafka"))]
        self.missing_feature("KAFKA_BOOTSTRAP", "kafka");
    }

    fn otlp_from_env_or_warn(&mut self) {
        #[cfg(feature = "otlp")]
        if env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            self.otlp = true;
        }
        #[cfg(not(feature = "otlp"))]
        self.missing_feature("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp");
    }

    fn metrics_from_env_or_warn(&mut self) {
        #[cfg(feature = "prometheus")]
        if self.metrics.is_none()
            && let Some(addr) = env("AUTHTEL_METRICS_ADDR")
        {
            self.metrics = Some(Metrics::ListenFromEnv(addr));
        }
        #[cfg(not(feature = "prometheus"))]
        self.missing_feature("AUTHTEL_METRICS_ADDR", "prometheus");
    }

    /// Attaches the default logger (feature `log`) with these options.
    #[cfg(feature = "log")]
    #[cfg_attr(docsrs, doc(cfg(feature = "log")))]
    pub fn default_logger(mut self, options: authtel_log::LoggerOptions) -> Self {
        self.logger = Some(options);
        self
    }

    /// Writes every audited event to the SQL audit trail at `url` (feature `sql`):
    /// `sqlite://path/to/audit.db` (created if missing), a bare file path,
    /// `sqlite::memory:`, or — with feature `postgres` — `postgres://…`. The schema is
    /// migrated at install, and records arrive through the delivery pipeline's `sql` lane
    /// (batched, retried, never sampled). For the audit row inside the application's own
    /// transaction, use [`Authtel::sqlite`] / [`Authtel::postgres`] and
    /// [`crate::sql::AuditTx`].
    #[cfg(feature = "sql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
    pub fn sql(mut self, url: impl Into<String>) -> Self {
        self.sql_url = Some(url.into());
        self
    }

    /// Sends every audited event to the Kafka `topic` at `bootstrap` (feature `kafka`),
    /// through the pipeline's `kafka` lane (one worker, so each user's records stay in
    /// order). The topic is not created: audit topics are created on purpose
    /// ([`crate::kafka::create_topic`]).
    #[cfg(feature = "kafka")]
    #[cfg_attr(docsrs, doc(cfg(feature = "kafka")))]
    pub fn kafka(mut self, bootstrap: impl Into<String>, topic: impl Into<String>) -> Self {
        self.kafka = Some((bootstrap.into(), topic.into()));
        self
    }

    /// Exports spans, signals and audit records over OTLP when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (feature `otlp`), configured by the standard
    /// `OTEL_EXPORTER_OTLP_*` variables. Spans and signals go out through the OTLP
    /// handler's batch processors (what they must drop is counted); audit records go
    /// through the pipeline's lane `otlp`, like the SQL and Kafka lanes: an audit record the
    /// collector has not acknowledged is retried, spilled (with [`Setup::spill_dir`]) or
    /// dead-lettered, never dropped.
    #[cfg(feature = "otlp")]
    #[cfg_attr(docsrs, doc(cfg(feature = "otlp")))]
    pub fn otlp_from_env(mut self) -> Self {
        self.otlp_from_env_or_warn();
        self
    }

    /// Records Prometheus metrics and serves them on `address` (feature `prometheus`);
    /// port 0 picks a free port ([`Authtel::metrics_address`] says which).
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn prometheus(mut self, address: impl Into<SocketAddr>) -> Self {
        self.metrics = Some(Metrics::Listen(address.into()));
        self
    }

    /// Records Prometheus metrics without a listener of authtel's own: serve
    /// [`Authtel::render_metrics`] on the application's `/metrics` route.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn prometheus_recorder(mut self) -> Self {
        self.metrics = Some(Metrics::RecorderOnly);
        self
    }

    /// Attaches the real-time attack detectors with this configuration (feature `detect`);
    /// [`Authtel::detectors`] answers the application's "allow, slow down or block?".
    #[cfg(feature = "detect")]
    #[cfg_attr(docsrs, doc(cfg(feature = "detect")))]
    pub fn detectors(mut self, config: authtel_detect::DetectConfig) -> Self {
        self.detect = Some(Detect::Config(Box::new(config)));
        self
    }

    /// Delivers on this tokio runtime instead of one of authtel's own (one worker thread).
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Spills records a destination cannot take yet to `dir/<lane>` (durable across a
    /// crash; replayed when the destination is back). Without it, audit records that find
    /// a lane full are refused with a counted error, never dropped silently.
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn spill_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Keeps records a destination refused for good in `dir/<lane>` for replay.
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn dead_letter_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dead_letter_dir = Some(dir.into());
        self
    }

    /// Whether a sink needs the delivery runtime, and which one (for the error message).
    #[cfg(feature = "pipeline")]
    fn sink_needing_runtime(&self) -> Option<&'static str> {
        #[cfg(feature = "sql")]
        if self.sql_url.is_some() {
            return Some("sql");
        }
        #[cfg(feature = "kafka")]
        if self.kafka.is_some() {
            return Some("kafka");
        }
        #[cfg(feature = "otlp")]
        if self.otlp {
            return Some("otlp");
        }
        None
    }

    /// Attaches everything configured, in an order where each sink hears the others'
    /// signals: logger, Prometheus, the delivery pipeline (SQL, Kafka, OTLP audit records),
    /// the OTLP handler (spans, signals), detectors.
    /// If one step fails, what was already attached is detached again before the error
    /// returns. Call it from synchronous code (`main` before a runtime starts); from async
    /// code, use [`Setup::install_async`].
    pub fn install(self) -> Result<Authtel, SetupError> {
        #[cfg(feature = "pipeline")]
        if let Some(sink) = self.sink_needing_runtime() {
            if tokio::runtime::Handle::try_current().is_ok() {
                return Err(SetupError::InsideRuntime { sink });
            }
            let (handle, owned) = match self.runtime.clone() {
                Some(handle) => (handle, None),
                None => {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(1)
                        .thread_name("authtel-delivery")
                        .enable_all()
                        .build()
                        .map_err(SetupError::Runtime)?;
                    (runtime.handle().clone(), Some(runtime))
                }
            };
            let mut authtel = Authtel::begin(&self)?;
            if let Some(runtime) = owned {
                authtel.own_runtime(runtime);
            }
            handle.block_on(authtel.attach_pipeline(&self, handle.clone()))?;
            return authtel.finish(self);
        }
        Authtel::begin(&self)?.finish(self)
    }

    /// [`install`](Self::install) from async code: delivery runs on the current tokio
    /// runtime.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), authtel::SetupError> {
    /// let authtel = authtel::setup().install_async().await?;
    /// authtel.shutdown(std::time::Duration::from_secs(1))?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub async fn install_async(self) -> Result<Authtel, SetupError> {
        let handle = self
            .runtime
            .clone()
            .unwrap_or_else(tokio::runtime::Handle::current);
        let mut authtel = Authtel::begin(&self)?;
        if self.sink_needing_runtime().is_some() {
            authtel.attach_pipeline(&self, handle).await?;
        }
        authtel.finish(self)
    }
}
