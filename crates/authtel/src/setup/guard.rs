//! The guard [`Setup::install`](super::Setup::install) returns: it holds every sink, and
//! flushes and detaches them when shut down or dropped.

// Which sinks exist depends on the features; with few of them, some bindings never change.
#![cfg_attr(
    not(all(feature = "prometheus", feature = "pipeline", feature = "otlp")),
    allow(unused_mut, dead_code)
)]

use std::fmt;
#[cfg(feature = "prometheus")]
use std::net::SocketAddr;
use std::time::Duration;

use authtel_core::registry::Registry;

use super::{Setup, SetupError};

/// Everything [`Setup::install`](super::Setup::install) attached. Keep it for the process's
/// lifetime: [`shutdown`](Authtel::shutdown) (or dropping it, with a 5 s deadline) detaches
/// the handlers, delivers what is queued and flushes the exporters.
pub struct Authtel {
    /// Handler ids attached to the global registry, in attach order.
    pub(super) attached: Vec<&'static str>,
    pub(super) warnings: Vec<String>,
    #[cfg(feature = "log")]
    pub(super) logger: bool,
    #[cfg(feature = "prometheus")]
    pub(super) metrics: Option<authtel_prometheus::PrometheusSink>,
    #[cfg(feature = "pipeline")]
    pub(super) pipeline: Option<authtel_pipeline::Pipeline>,
    #[cfg(feature = "sql")]
    pub(super) sqlite: Option<authtel_sql::AuditStore<authtel_sql::sqlx::Sqlite>>,
    #[cfg(feature = "postgres")]
    pub(super) postgres: Option<authtel_sql::AuditStore<authtel_sql::sqlx::Postgres>>,
    #[cfg(feature = "otlp")]
    pub(super) otlp: Option<authtel_otlp::OtlpSink>,
    #[cfg(feature = "detect")]
    pub(super) detectors: Option<authtel_detect::Detectors>,
    #[cfg(feature = "pipeline")]
    runtime: Option<tokio::runtime::Runtime>,
    #[cfg(feature = "pipeline")]
    pub(super) handle: Option<tokio::runtime::Handle>,
    shut_down: bool,
}

impl fmt::Debug for Authtel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authtel")
            .field("attached", &self.attached)
            .field("warnings", &self.warnings)
            .finish_non_exhaustive()
    }
}

/// What [`Authtel::shutdown`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Each delivery lane's counters (`sql`, `kafka`) as the pipeline reports them.
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub lanes: Vec<authtel_pipeline::ForwarderMetrics>,
}

impl ShutdownReport {
    /// Records the `lane` delivered, if there is such a lane.
    ///
    /// ```
    /// assert_eq!(authtel::ShutdownReport::default().delivered("sql"), None);
    /// ```
    pub fn delivered(&self, lane: &str) -> Option<u64> {
        #[cfg(feature = "pipeline")]
        return self
            .lanes
            .iter()
            .find(|l| l.forwarder == lane)
            .map(|l| l.delivered);
        #[cfg(not(feature = "pipeline"))]
        {
            let _ = lane;
            None
        }
    }
}

impl Authtel {
    /// Attaches the sinks that need no runtime and go first: the logger and Prometheus.
    pub(super) fn begin(setup: &Setup) -> Result<Authtel, SetupError> {
        let mut authtel = Authtel {
            attached: Vec::new(),
            warnings: setup.warnings.clone(),
            #[cfg(feature = "log")]
            logger: false,
            #[cfg(feature = "prometheus")]
            metrics: None,
            #[cfg(feature = "pipeline")]
            pipeline: None,
            #[cfg(feature = "sql")]
            sqlite: None,
            #[cfg(feature = "postgres")]
            postgres: None,
            #[cfg(feature = "otlp")]
            otlp: None,
            #[cfg(feature = "detect")]
            detectors: None,
            #[cfg(feature = "pipeline")]
            runtime: None,
            #[cfg(feature = "pipeline")]
            handle: None,
            shut_down: false,
        };
        #[cfg(feature = "log")]
        if let Some(options) = &setup.logger {
            authtel_log::attach_default_logger(options.clone()).map_err(|source| {
                SetupError::Attach {
                    sink: "logger",
                    source,
                }
            })?;
            authtel.logger = true;
        }
        #[cfg(feature = "prometheus")]
        if let Some(metrics) = &setup.metrics {
            use super::Metrics;
            let builder = authtel_prometheus::PrometheusSink::builder();
            let sink = match metrics {
                Metrics::Listen(address) => builder.with_listen_address(*address).install()?,
                Metrics::ListenFromEnv(text) => {
                    let address: SocketAddr =
                        text.trim().parse().map_err(|_| SetupError::BadAddress {
                            variable: "AUTHTEL_METRICS_ADDR",
                            value: text.clone(),
                        })?;
                    builder.with_listen_address(address).install()?
                }
                Metrics::RecorderOnly => builder.build()?,
            };
            authtel.attach("prometheus", authtel_prometheus::HANDLER_ID, sink.handler())?;
            authtel.metrics = Some(sink);
        }
        Ok(authtel)
    }

    /// Attaches the sinks that go last: OTLP, then the detectors (whose signals every sink
    /// attached before them hears).
    pub(super) fn finish(mut self, setup: Setup) -> Result<Authtel, SetupError> {
        #[cfg(feature = "otlp")]
        if setup.otlp {
            // Audit records reach OTLP through the pipeline's `otlp` lane (lanes.rs).
            let sink = authtel_otlp::OtlpSink::builder()
                .with_service_name(setup.get_service_name())
                .with_audit_logs(false)
                .build()?;
            self.attach("otlp", authtel_otlp::HANDLER_ID, sink.handler())?;
            self.otlp = Some(sink);
        }
        #[cfg(feature = "detect")]
        if let Some(detect) = setup.detect {
            let config = match detect {
                super::Detect::Config(config) => *config,
                super::Detect::FromEnv => authtel_detect::DetectConfig::from_env()?,
            };
            let detectors = authtel_detect::Detectors::new(config)?;
            detectors
                .attach_global()
                .map_err(|source| SetupError::Attach {
                    sink: "detect",
                    source,
                })?;
            self.detectors = Some(detectors);
        }
        let _ = setup;
        Ok(self)
    }

    fn attach(
        &mut self,
        sink: &'static str,
        id: &'static str,
        handler: impl authtel_core::registry::Handler,
    ) -> Result<(), SetupError> {
        Registry::global()
            .attach(id, authtel_core::registry::Selection::All, handler)
            .map_err(|source| SetupError::Attach { sink, source })?;
        self.attached.push(id);
        Ok(())
    }

    #[cfg(feature = "pipeline")]
    pub(super) fn own_runtime(&mut self, runtime: tokio::runtime::Runtime) {
        self.runtime = Some(runtime);
    }

    #[cfg(feature = "pipeline")]
    pub(super) fn set_pipeline(
        &mut self,
        pipeline: authtel_pipeline::Pipeline,
    ) -> Result<(), SetupError> {
        self.attach("pipeline", super::lanes::HANDLER_ID, pipeline.handler())?;
        #[cfg(feature = "prometheus")]
        if let Some(metrics) = &self.metrics {
            metrics.register_pipeline_metrics(pipeline.clone());
        }
        self.pipeline = Some(pipeline);
        Ok(())
    }

    /// Notes about the environment: a variable naming a sink this build lacks, say.
    ///
    /// ```
    /// let authtel = authtel::setup().install()?;
    /// assert!(authtel.warnings().iter().all(|w| !w.is_empty()));
    /// # Ok::<(), authtel::SetupError>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The handler ids attached to the global registry, in order.
    ///
    /// ```
    /// let authtel = authtel::setup().default_logger(authtel::log::LoggerOptions::new()).install()?;
    /// assert_eq!(authtel.handlers(), ["authtel-default-logger"]);
    /// # Ok::<(), authtel::SetupError>(())
    /// ```
    pub fn handlers(&self) -> Vec<&'static str> {
        let mut ids = Vec::new();
        #[cfg(feature = "log")]
        if self.logger {
            ids.push(authtel_log::DEFAULT_LOGGER_ID);
        }
        ids.extend(self.attached.iter().copied());
        #[cfg(feature = "detect")]
        if let Some(d) = &self.detectors {
            ids.extend(d.handler_ids());
        }
        ids
    }

    /// The SQLite audit store, when [`Setup::sql`](super::Setup::sql) named one: for the
    /// audit row inside the application's own transaction ([`crate::sql::AuditTx`]) and
    /// for queries.
    #[cfg(feature = "sql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
    pub fn sqlite(&self) -> Option<&authtel_sql::AuditStore<authtel_sql::sqlx::Sqlite>> {
        self.sqlite.as_ref()
    }

    /// The PostgreSQL audit store, when [`Setup::sql`](super::Setup::sql) named one.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub fn postgres(&self) -> Option<&authtel_sql::AuditStore<authtel_sql::sqlx::Postgres>> {
        self.postgres.as_ref()
    }

    /// The delivery pipeline, when a SQL or Kafka lane runs: publish records built by hand,
    /// read per-lane metrics.
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn pipeline(&self) -> Option<&authtel_pipeline::Pipeline> {
        self.pipeline.as_ref()
    }

    /// The runtime the delivery lanes run on (authtel's own unless
    /// [`Setup::runtime`](super::Setup::runtime) gave one): `block_on` it from synchronous
    /// code to run the audit store's async queries.
    #[cfg(feature = "pipeline")]
    #[cfg_attr(docsrs, doc(cfg(feature = "pipeline")))]
    pub fn runtime_handle(&self) -> Option<tokio::runtime::Handle> {
        self.handle.clone()
    }

    /// The detectors, for [`verdict`](authtel_detect::Detectors::verdict) before a login.
    #[cfg(feature = "detect")]
    #[cfg_attr(docsrs, doc(cfg(feature = "detect")))]
    pub fn detectors(&self) -> Option<&authtel_detect::Detectors> {
        self.detectors.as_ref()
    }

    /// Where Prometheus scrapes are served, if authtel runs a listener.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|m| m.listen_address())
    }

    /// The Prometheus exposition text, for the application's own `/metrics` route.
    #[cfg(feature = "prometheus")]
    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    pub fn render_metrics(&self) -> Option<String> {
        self.metrics.as_ref().map(|m| m.render())
    }

    /// Delivers what is queued, within `timeout`, and keeps everything attached.
    pub fn flush(&self, timeout: Duration) -> Result<(), SetupError> {
        let deadline = std::time::Instant::now() + timeout;
        #[cfg(feature = "pipeline")]
        if let Some(pipeline) = &self.pipeline {
            pipeline
                .flush(deadline)
                .map_err(|source| SetupError::PipelineShutdown { timeout, source })?;
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp {
            otlp.flush(deadline)
                .map_err(|source| SetupError::OtlpShutdown { timeout, source })?;
        }
        let _ = deadline;
        Ok(())
    }

    /// Detaches every handler (nothing new is accepted), then delivers what is queued and
    /// flushes the exporters within `timeout`. Records that do not make it stay spilled
    /// when a spill directory is set; the error says how many did not.
    pub fn shutdown(mut self, timeout: Duration) -> Result<ShutdownReport, SetupError> {
        self.shutdown_inner(timeout)
    }

    fn shutdown_inner(&mut self, timeout: Duration) -> Result<ShutdownReport, SetupError> {
        if self.shut_down {
            return Ok(ShutdownReport::default());
        }
        self.shut_down = true;
        let deadline = std::time::Instant::now() + timeout;
        self.detach_all();
        let mut report = ShutdownReport::default();
        let mut first_error = None;
        #[cfg(feature = "pipeline")]
        if let Some(pipeline) = &self.pipeline {
            if let Err(source) = pipeline.shutdown(deadline) {
                first_error.get_or_insert(SetupError::PipelineShutdown { timeout, source });
            }
            report.lanes = pipeline.metrics();
        }
        #[cfg(feature = "otlp")]
        if let Some(otlp) = &self.otlp
            && let Err(source) = otlp.shutdown(deadline)
        {
            first_error.get_or_insert(SetupError::OtlpShutdown { timeout, source });
        }
        #[cfg(feature = "pipeline")]
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime blocks, which a runtime's own thread must not do.
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(
                    deadline.saturating_duration_since(std::time::Instant::now()),
                );
            }
        }
        let _ = deadline;
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    fn detach_all(&mut self) {
        #[cfg(feature = "detect")]
        if let Some(d) = &self.detectors {
            let _ = d.detach(Registry::global());
        }
        for id in self.attached.drain(..).rev() {
            let _ = Registry::global().detach(id);
        }
        #[cfg(feature = "log")]
        if std::mem::take(&mut self.logger) {
            let _ = authtel_log::detach_default_logger();
        }
    }
}

impl Drop for Authtel {
    fn drop(&mut self) {
        // A failed shutdown at drop has nobody to return to; the pipeline and the
        // exporters report their own undelivered counts through `tracing`.
        let _ = self.shutdown_inner(Duration::from_secs(5));
    }
}
