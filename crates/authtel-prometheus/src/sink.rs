//! [`PrometheusSink`]: the recorder, its scrape endpoint and the handler bound to it.
//!
//! Three ways to run it:
//! - [`PrometheusSinkBuilder::install`]: global recorder plus an HTTP listener serving
//!   `/metrics` (any path, in fact) on its own thread.
//! - [`PrometheusSinkBuilder::install_recorder`]: global recorder only; render the text in
//!   the application's own `/metrics` route with the returned handle.
//! - [`PrometheusSinkBuilder::build`]: nothing global, for tests and for applications that
//!   keep several recorders; a listener too if an address was given.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use authtel_core::registry::{Registry, Selection};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use tokio::sync::oneshot;

use crate::error::PrometheusError;
use crate::handler::{PrometheusHandler, Target};
use crate::names;

/// Where [`PrometheusSinkBuilder::install`] listens when no address was given: loopback
/// only, so metrics are not exposed to the network by accident.
pub const DEFAULT_LISTEN_ADDRESS: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000));

/// The id [`PrometheusSinkBuilder::attach`] attaches the handler under.
pub const HANDLER_ID: &str = "authtel-prometheus";

/// How often the listener's thread refreshes registered collectors (the pipeline's
/// self-metrics) between scrapes.
pub const COLLECT_INTERVAL: Duration = Duration::from_secs(1);

/// How often a port-0 address is re-resolved when the free port was taken in between.
const FREE_PORT_ATTEMPTS: usize = 5;

/// Configures a [`PrometheusSink`]; see [`PrometheusSink::builder`].
#[derive(Clone, Debug)]
pub struct PrometheusSinkBuilder {
    listen_address: Option<SocketAddr>,
    buckets: Vec<f64>,
}

impl Default for PrometheusSinkBuilder {
    fn default() -> Self {
        PrometheusSinkBuilder {
            listen_address: None,
            buckets: names::DEFAULT_BUCKETS.to_vec(),
        }
    }
}

impl PrometheusSinkBuilder {
    /// Serves scrapes on `address`. Port 0 picks a free port; read it back with
    /// [`PrometheusSink::listen_address`].
    ///
    /// ```
    /// use authtel_prometheus::PrometheusSink;
    /// let sink = PrometheusSink::builder().with_listen_address(([127, 0, 0, 1], 0)).build()?;
    /// assert_ne!(sink.listen_address().unwrap().port(), 0);
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    #[must_use]
    pub fn with_listen_address(mut self, address: impl Into<SocketAddr>) -> Self {
        self.listen_address = Some(address.into());
        self
    }

    /// Histogram upper bounds in seconds (default [`names::DEFAULT_BUCKETS`]). With
    /// buckets, durations are exposed as Prometheus histograms, which `histogram_quantile`
    /// can aggregate across instances.
    ///
    /// ```
    /// use authtel_prometheus::{PrometheusError, PrometheusSink};
    /// let err = PrometheusSink::builder().with_buckets(&[0.5, 0.1]).build().unwrap_err();
    /// assert!(matches!(err, PrometheusError::InvalidBuckets { .. }));
    /// ```
    #[must_use]
    pub fn with_buckets(mut self, buckets: &[f64]) -> Self {
        self.buckets = buckets.to_vec();
        self
    }

    /// Builds a sink with its own recorder, not installed globally, with a listener if an
    /// address was given. Attach [`PrometheusSink::handler`] to a registry yourself.
    ///
    /// ```
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// assert!(sink.listen_address().is_none());
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn build(self) -> Result<PrometheusSink, PrometheusError> {
        self.build_with(false, self.listen_address)
    }

    /// Installs the recorder globally and serves scrapes on the configured address
    /// (default [`DEFAULT_LISTEN_ADDRESS`]) from a thread of its own; no tokio runtime is
    /// needed. Keep the returned sink: dropping it stops the listener.
    ///
    /// ```no_run
    /// let sink = authtel_prometheus::PrometheusSink::builder()
    ///     .with_listen_address(([0, 0, 0, 0], 9464))
    ///     .install()?;
    /// println!("metrics on http://{}/metrics", sink.listen_address().unwrap());
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn install(self) -> Result<PrometheusSink, PrometheusError> {
        let address = self.listen_address.unwrap_or(DEFAULT_LISTEN_ADDRESS);
        self.build_with(true, Some(address))
    }

    /// Installs the recorder globally without a listener and returns the handle whose
    /// [`render`](PrometheusHandle::render) gives the text for your own `/metrics` route
    /// (rendering also folds histogram samples, so nothing else needs to run).
    ///
    /// ```no_run
    /// let handle = authtel_prometheus::PrometheusSink::builder().install_recorder()?;
    /// let body: String = handle.render();
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn install_recorder(self) -> Result<PrometheusHandle, PrometheusError> {
        Ok(self.build_with(true, None)?.handle)
    }

    /// [`install`](Self::install)s and attaches the handler to the global authtel registry
    /// for every event, under [`HANDLER_ID`].
    ///
    /// ```no_run
    /// let _metrics = authtel_prometheus::PrometheusSink::builder().attach()?;
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn attach(self) -> Result<PrometheusSink, PrometheusError> {
        let sink = self.install()?;
        Registry::global()
            .attach(HANDLER_ID, Selection::All, sink.handler())
            .map_err(PrometheusError::Attach)?;
        Ok(sink)
    }

    fn build_with(
        &self,
        global: bool,
        listen: Option<SocketAddr>,
    ) -> Result<PrometheusSink, PrometheusError> {
        let collectors = Arc::new(Collectors::default());
        let (recorder, listener) = match listen {
            None => (self.exporter_builder()?.build_recorder(), None),
            Some(address) => {
                let (recorder, listener) =
                    start_listener(|| self.exporter_builder(), address, collectors.clone())?;
                (recorder, Some(listener))
            }
        };
        let handle = recorder.handle();
        let target = if global {
            metrics::set_global_recorder(recorder)
                .map_err(|_| PrometheusError::RecorderAlreadyInstalled)?;
            Target::Global
        } else {
            Target::Local(Arc::new(recorder))
        };
        let sink = PrometheusSink {
            handle,
            target,
            collectors,
            listener,
        };
        sink.add_collector(Box::new(policy_collector(&sink.target)));
        Ok(sink)
    }

    fn exporter_builder(&self) -> Result<PrometheusBuilder, PrometheusError> {
        let invalid = |problem| PrometheusError::InvalidBuckets {
            buckets: self.buckets.clone(),
            problem,
        };
        if self.buckets.is_empty() {
            return Err(invalid("no bounds given"));
        }
        if !self.buckets.iter().all(|b| b.is_finite() && *b > 0.0) {
            return Err(invalid("every bound must be a finite number above zero"));
        }
        if !self.buckets.windows(2).all(|w| w[0] < w[1]) {
            return Err(invalid("bounds must be strictly increasing"));
        }
        PrometheusBuilder::new()
            .set_buckets(&self.buckets)
            .map_err(|_| invalid("rejected by the exporter"))
    }
}

/// Copies core's process-wide policy counters into their series before each render.
fn policy_collector(target: &Target) -> impl Fn() + Send + Sync + use<> {
    let redactions = target.counter(names::POLICY_REDACTIONS_TOTAL, Vec::new());
    let refusals = target.counter(names::POLICY_REFUSALS_TOTAL, Vec::new());
    move || {
        redactions.absolute(authtel_core::policy::redaction_count());
        refusals.absolute(authtel_core::policy::refusal_count());
    }
}

/// The running listener: its thread and the signal that stops it.
#[derive(Debug)]
struct Listener {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds the exporter's HTTP listener and runs it (with the recorder's upkeep task) on a
/// current-thread runtime in a thread of its own, so callers need no runtime.
fn start_listener(
    exporter: impl Fn() -> Result<PrometheusBuilder, PrometheusError>,
    requested: SocketAddr,
    collectors: Arc<Collectors>,
) -> Result<(metrics_exporter_prometheus::PrometheusRecorder, Listener), PrometheusError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(PrometheusError::Runtime)?;
    let attempts = if requested.port() == 0 {
        FREE_PORT_ATTEMPTS
    } else {
        1
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let address = resolve_port(requested)?;
        let exporter = exporter()?.with_http_listener(address);
        let built = {
            let _entered = runtime.enter();
            exporter.build()
        };
        let (recorder, serve) = match built {
            Ok(built) => built,
            Err(BuildError::FailedToCreateHTTPListener(reason)) => {
                last_error = Some(PrometheusError::Listen { address, reason });
                continue;
            }
            Err(other) => {
                return Err(PrometheusError::Listen {
                    address,
                    reason: other.to_string(),
                });
            }
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("authtel-prometheus".into())
            .spawn(move || {
                runtime.spawn(serve);
                runtime.spawn(async move {
                    loop {
                        tokio::time::sleep(COLLECT_INTERVAL).await;
                        collectors.collect();
                    }
                });
                // Returns on the stop signal or when the sink (and its sender) is dropped;
                // dropping the runtime then ends the listener and upkeep tasks.
                let _ = runtime.block_on(stopped);
            })
            .map_err(PrometheusError::Runtime)?;
        return Ok((
            recorder,
            Listener {
                address,
                stop: Some(stop),
                thread: Some(thread),
            },
        ));
    }
    Err(last_error.unwrap_or(PrometheusError::Listen {
        address: requested,
        reason: "no attempt was made".into(),
    }))
}

/// Port 0 becomes a concrete free port, so the sink can report where it listens.
fn resolve_port(address: SocketAddr) -> Result<SocketAddr, PrometheusError> {
    if address.port() != 0 {
        return Ok(address);
    }
    TcpListener::bind(address)
        .and_then(|probe| probe.local_addr())
        .map_err(|e| PrometheusError::Listen {
            address,
            reason: e.to_string(),
        })
}

/// Functions that copy externally kept counters (the pipeline's) into series.
#[derive(Default)]
pub(crate) struct Collectors(Mutex<Vec<Box<dyn Fn() + Send + Sync>>>);

impl Collectors {
    fn collect(&self) {
        for collect in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            collect();
        }
    }
}

impl fmt::Debug for Collectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().map(|v| v.len()).unwrap_or(0);
        write!(f, "Collectors({n})")
    }
}

/// A Prometheus recorder, the handle that renders it, and (optionally) the HTTP listener
/// serving it. Dropping the sink stops the listener; series already registered stay in
/// the recorder.
///
/// ```
/// use authtel_core::registry::{Registry, Selection};
/// use authtel_core::{catalogue, telemetry::{self, Measurements}, metadata::Metadata};
///
/// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
/// let registry = Registry::new();
/// registry.attach("prometheus", Selection::All, sink.handler()).unwrap();
/// let _scope = registry.enter();
/// telemetry::event(&catalogue::SECURITY_LOCKOUT, Measurements::new(), Metadata::new().user_id("u_7"));
/// let text = sink.render();
/// assert!(text.contains(r#"authtel_security_signals_total{signal="security.lockout"} 1"#));
/// assert!(!text.contains("u_7"));
/// # Ok::<(), authtel_prometheus::PrometheusError>(())
/// ```
#[must_use = "dropping the sink stops its scrape listener"]
#[derive(Debug)]
pub struct PrometheusSink {
    handle: PrometheusHandle,
    target: Target,
    collectors: Arc<Collectors>,
    listener: Option<Listener>,
}

impl PrometheusSink {
    /// Starts configuring a sink.
    ///
    /// ```
    /// let builder = authtel_prometheus::PrometheusSink::builder().with_buckets(&[0.1, 0.5, 2.0]);
    /// # drop(builder);
    /// ```
    pub fn builder() -> PrometheusSinkBuilder {
        PrometheusSinkBuilder::default()
    }

    /// A handler bound to this sink's recorder (the global one after `install`).
    ///
    /// ```
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// let handler = sink.handler();
    /// # drop(handler);
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn handler(&self) -> PrometheusHandler {
        PrometheusHandler::with_target(self.target.clone())
    }

    /// The current exposition text, as a scrape would get it. Core's secret-policy counters
    /// are always there.
    ///
    /// ```
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// assert!(sink.render().contains("authtel_policy_redactions_total"));
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn render(&self) -> String {
        self.collectors.collect();
        self.handle.render()
    }

    /// The exporter's handle, for an application's own `/metrics` route.
    ///
    /// ```
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// let handle = sink.handle().clone();
    /// # drop(handle);
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    #[cfg_attr(not(feature = "pipeline"), allow(dead_code))]
    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    pub(crate) fn add_collector(&self, collect: Box<dyn Fn() + Send + Sync>) {
        self.collectors
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(collect);
    }

    /// Where scrapes are served, if a listener runs.
    ///
    /// ```
    /// let sink = authtel_prometheus::PrometheusSink::builder().build()?;
    /// assert_eq!(sink.listen_address(), None);
    /// # Ok::<(), authtel_prometheus::PrometheusError>(())
    /// ```
    pub fn listen_address(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|l| l.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_buckets_are_refused_with_the_values() {
        for bad in [&[][..], &[0.1, f64::NAN], &[-1.0, 1.0], &[1.0, 1.0]] {
            let err = PrometheusSink::builder()
                .with_buckets(bad)
                .build()
                .unwrap_err();
            assert!(
                matches!(&err, PrometheusError::InvalidBuckets { buckets, .. } if buckets.len() == bad.len()),
                "{err}"
            );
            assert!(err.to_string().starts_with("histogram buckets"));
        }
    }

    #[test]
    fn a_taken_port_is_a_listen_error_naming_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let err = PrometheusSink::builder()
            .with_listen_address(address)
            .build()
            .unwrap_err();
        match err {
            PrometheusError::Listen { address: a, .. } => assert_eq!(a, address),
            other => panic!("expected a listen error, got {other}"),
        }
    }
}
