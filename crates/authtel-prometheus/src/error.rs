//! What can go wrong when building or installing the Prometheus sink.

use std::net::SocketAddr;

use authtel_core::registry::AttachError;

/// Why the Prometheus sink could not be built, installed or attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrometheusError {
    /// The histogram bucket bounds are empty, not finite, not positive or not increasing.
    #[error(
        "histogram buckets {buckets:?} are invalid: {problem}; pass finite, positive, strictly increasing upper bounds in seconds such as authtel_prometheus::names::DEFAULT_BUCKETS"
    )]
    InvalidBuckets {
        /// The rejected bounds.
        buckets: Vec<f64>,
        /// What is wrong with them.
        problem: &'static str,
    },
    /// The scrape listener could not bind its address.
    #[error(
        "cannot listen for Prometheus scrapes on {address}: {reason}; choose a free port or another address with with_listen_address"
    )]
    Listen {
        /// The address that was tried.
        address: SocketAddr,
        /// What the operating system said.
        reason: String,
    },
    /// The thread or runtime that serves scrapes could not be started.
    #[error(
        "cannot start the thread that serves Prometheus scrapes; the process may be out of threads or memory"
    )]
    Runtime(#[source] std::io::Error),
    /// Another `metrics` recorder is already installed globally.
    #[error(
        "a global metrics recorder is already installed; install the Prometheus sink once at startup, or use build() and attach sink.handler() to your registry"
    )]
    RecorderAlreadyInstalled,
    /// The handler could not be attached to the global registry.
    #[error("cannot attach the Prometheus handler to the global authtel registry")]
    Attach(#[source] AttachError),
}
