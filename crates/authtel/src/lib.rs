//! authtel: authentication telemetry.
//!
//! Authentication code says what happened — a login, a token refresh, an MFA lockout, an
//! OAuth callback, an authorization decision — through one small typed API, and every
//! sink understands it the same way: structured logs (`tracing`), a SQL audit trail,
//! Kafka, OTLP and Prometheus. Events come from a typed catalogue
//! ([`catalogue::AUTH_LOGIN`], [`catalogue::SECURITY_LOCKOUT`], …), so a typo is a compile
//! error, and a metadata policy keeps passwords, tokens and cookies out of every output.
//!
//! # In libraries
//! Depend on `authtel` with `default-features = false` and only emit: wrap operations in
//! [`telemetry::span`], send signals with [`telemetry::event()`]. With nothing attached an
//! emit costs one atomic load; the application decides where events go.
//!
//! # In applications
//! Attach sinks once at startup — here the default logger — and install a `tracing`
//! subscriber to see its output:
//!
//! ```
//! use authtel::{catalogue, metadata::Metadata, telemetry};
//! # fn check_password(_: &str) -> Result<(), &'static str> { Ok(()) }
//!
//! authtel::log::attach_default_logger(authtel::log::LoggerOptions::new())?;
//!
//! let login = telemetry::span(&catalogue::AUTH_LOGIN, Metadata::new().user_id("u_42"), || {
//!     check_password("u_42")
//! });
//! assert!(login.is_ok());
//! # authtel::log::detach_default_logger()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Modules
//! - [`catalogue`]: every event as a typed `static` with a stable dotted name.
//! - [`telemetry`]: [`telemetry::span`], [`telemetry::span_async`], [`telemetry::start`],
//!   [`telemetry::event()`].
//! - [`metadata`]: typed fields and the policy that keeps secrets out.
//! - [`vocabulary`]: the codes of the typed fields (`AuthMethod`, `Reason`, `Operation`,
//!   `GrantType`, `Aal`, `DenyReason`).
//! - [`pseudonym`]: keyed pseudonyms for emails where an identifier belongs.
//! - [`registry`]: attach and detach handlers; scoped registries for tests.
//! - [`context`]: the request context every event emitted inside a request inherits.
//! - [`outcome`]: how an operation ended.
//! - [`audit`]: the audit record every audit sink stores.
//! - [`forward`]: the contract sink crates implement.
//! - [`authorization`]: audit authorization decisions (`log_authorized`, `log_denied`,
//!   `log_error`).
//! - [`policy`]: the one screen that keeps secrets out of every sink.
//! - [`setup()`]: attach every sink in one chain and get one guard that shuts them down.
//! - [`log`] (feature `log`): the default logger.
//!
//! # Feature flags
//! - `log` (default): the default logger ([`log`]), writing into `tracing`. Needs nothing
//!   else; install any `tracing` subscriber to see the output.
//!
//! - `audit`: the in-memory recent-audit store (`authtel::audit_store`).
//! - `pipeline`: the forwarding pipeline on tokio (`authtel::pipeline`).
//! - `sql`: the SQL audit store on SQLite (`authtel::sql`); `postgres` adds PostgreSQL.
//! - `kafka`: the Kafka producer and projector (`authtel::kafka`); compiles librdkafka (needs a C
//!   compiler, make and zlib).
//! - `otlp`: OTLP export of spans and signals (`authtel::otlp`).
//! - `prometheus`: Prometheus metrics and a scrape listener (`authtel::prometheus`).
//! - `detect`: real-time attack detectors and login verdicts (`authtel::detect`); needs
//!   nothing else.
//! - `tower`: the request-context layer for tower/axum/hyper (`authtel::tower`); brings
//!   `http`, `tower-layer`, `tower-service` and axum (only its `tokio` feature).
//! - `console`: the web console (`authtel::console`), an axum router to mount in the
//!   application's service; implies `sql` (with `postgres`, it serves PostgreSQL too).
//!
//! [`setup()`] takes each enabled sink in one chain (`.sql(url)`, `.kafka(..)`,
//! `.otlp_from_env()`, `.prometheus(addr)`, `.detectors(config)`, or `.from_env()`); `sql`
//! and `kafka` turn on `pipeline`, which delivers to them.
//!
//! Enable only the sinks you deploy: every sink brings its client library.
//!
//! # Supported Rust versions
//! 1.94 and newer (the workspace's `rust-version`).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use authtel_core::event;
pub use authtel_core::{AuthMethod, Category, Event, Metadata, Outcome, Reason, SpanDef};
pub use authtel_core::{
    audit, authorization, catalogue, context, forward, metadata, outcome, policy, pseudonym,
    registry, telemetry, vocabulary,
};

pub mod setup;
pub use setup::{Authtel, Setup, SetupError, ShutdownReport, setup};

/// The default logger: span stops, exceptions and signals as structured `tracing` events
/// under per-category targets (`authtel::auth`, `authtel::security`, …).
///
/// ```
/// use authtel::log::{attach_default_logger, detach_default_logger, LoggerOptions};
/// use authtel::catalogue::Category;
/// attach_default_logger(LoggerOptions::new().with_categories([Category::Security]))?;
/// # detach_default_logger()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub mod log {
    pub use authtel_log::*;
}

/// The README's Rust examples, compiled and run as doctests so they cannot drift (the
/// setup example needs the features the workspace's examples turn on).
#[cfg(all(
    doctest,
    feature = "log",
    feature = "sql",
    feature = "prometheus",
    feature = "detect"
))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

macro_rules! sink_module {
    ($( $(#[$doc:meta])* $feature:literal => $module:ident = $krate:ident; )*) => {
        $(
            $(#[$doc])*
            #[cfg(feature = $feature)]
            #[cfg_attr(docsrs, doc(cfg(feature = $feature)))]
            pub mod $module {
                pub use $krate::*;
            }
        )*
    };
}

sink_module! {
    /// The in-memory recent-audit store (`authtel-audit`): bounded, indexed, access-checked.
    "audit" => audit_store = authtel_audit;
    /// The forwarding pipeline (`authtel-pipeline`): dispatch, retries, spill, breaker.
    "pipeline" => pipeline = authtel_pipeline;
    /// The SQL audit store (`authtel-sql`): SQLite and PostgreSQL, outbox and relay.
    "sql" => sql = authtel_sql;
    /// The Kafka producer and projector (`authtel-kafka`).
    "kafka" => kafka = authtel_kafka;
    /// OTLP export (`authtel-otlp`).
    "otlp" => otlp = authtel_otlp;
    /// Prometheus metrics (`authtel-prometheus`).
    "prometheus" => prometheus = authtel_prometheus;
    /// Real-time attack detectors (`authtel-detect`): signals and login verdicts.
    "detect" => detect = authtel_detect;
    /// The request-context layer for tower, axum and hyper (`authtel-tower`).
    "tower" => tower = authtel_tower;
    /// The web console (`authtel-console`): an axum router over the SQL store, behind an
    /// access policy.
    "console" => console = authtel_console;
}
