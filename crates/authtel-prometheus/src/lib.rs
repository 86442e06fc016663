//! authtel-prometheus: authtel events as Prometheus metrics.
//!
//! Operators alert on rates and latencies. This crate turns every login, token check, MFA
//! verification, lockout and authorization decision into counters and latency histograms
//! through the [`metrics`] facade, and serves them with `metrics-exporter-prometheus`.
//! Alert rules, their `promtool` tests and a Grafana dashboard live in `docs/ops/`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `authtel_events_total` | counter | `event`, `outcome` |
//! | `authtel_span_duration_seconds` | histogram | `span`, `outcome` |
//! | `authtel_span_exceptions_total` | counter | `span`, `kind` |
//! | `authtel_security_signals_total` | counter | `signal` |
//! | `authtel_authorization_decisions_total` | counter | `operation`, `result` |
//! | `authtel_handler_failures_total` | counter | — |
//! | `authtel_handlers_detached_total` | counter | — |
//! | `authtel_pipeline_forward_errors_total` | counter | — |
//! | `authtel_pipeline_dropped_records_total` | counter | — |
//!
//! Label values come only from closed sets ([`names`]); user ids, addresses, emails and
//! session ids never become labels, so the number of series does not grow with traffic.
//!
//! # In libraries
//! Do not depend on this crate: emit through `authtel-core` and let the application decide.
//!
//! # In applications
//! Install once at startup and keep the sink alive:
//!
//! ```no_run
//! let _metrics = authtel_prometheus::attach_prometheus(([0, 0, 0, 0], 9464).into())?;
//! // … serve requests; Prometheus scrapes http://<host>:9464/metrics
//! # Ok::<(), authtel_prometheus::PrometheusError>(())
//! ```
//!
//! Or render the text in your own `/metrics` route with
//! [`PrometheusSinkBuilder::install_recorder`], or keep everything local with
//! [`PrometheusSinkBuilder::build`] (what the tests do).
//!
//! With the `pipeline` feature, [`PrometheusSink::register_pipeline_metrics`] adds the
//! pipeline's per-forwarder series: `authtel_pipeline_records_total{forwarder,state}`,
//! `authtel_pipeline_queue_depth`, `authtel_pipeline_spill_bytes`,
//! `authtel_pipeline_breaker_open` (gauges by `forwarder`) and
//! `authtel_pipeline_forwarder_faults_total{forwarder,kind}`.
//!
//! # Feature flags
//! - `pipeline`: publish `authtel-pipeline`'s self-metrics (adds that crate and its tokio
//!   runtime features). The HTTP listener is always built (`metrics-exporter-prometheus`
//!   with `http-listener` only; no push gateway, no TLS stack).
//!
//! # Supported Rust versions
//! 1.94 and newer.

mod error;
mod handler;
pub mod names;
#[cfg(feature = "pipeline")]
mod pipeline;
mod sink;

use std::net::SocketAddr;

pub use error::PrometheusError;
pub use handler::PrometheusHandler;
pub use sink::{
    COLLECT_INTERVAL, DEFAULT_LISTEN_ADDRESS, HANDLER_ID, PrometheusSink, PrometheusSinkBuilder,
};

/// Installs the Prometheus recorder globally, serves scrapes on `listen_address` and
/// attaches the handler to the global authtel registry. Keep the returned sink alive.
///
/// ```no_run
/// let _metrics = authtel_prometheus::attach_prometheus("127.0.0.1:9464".parse().unwrap())?;
/// # Ok::<(), authtel_prometheus::PrometheusError>(())
/// ```
pub fn attach_prometheus(listen_address: SocketAddr) -> Result<PrometheusSink, PrometheusError> {
    PrometheusSink::builder()
        .with_listen_address(listen_address)
        .attach()
}
