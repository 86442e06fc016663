//! A small but real HTTP auth service on axum and SQLite, instrumented with authtel the
//! way the authtel docs recommend. It is the worked example of `docs/testing.md` and the
//! service `cargo xtask bench` measures.
//!
//! - Register, login (Argon2id), logout, sessions (opaque random ids, stored as digests),
//!   TOTP MFA, password reset (single-use, expiring tokens stored as digests), refresh
//!   tokens with rotation and reuse detection, and an authorization check.
//! - `authtel::tower::RequestContextLayer` sets each request's context (peer address, a
//!   trusted proxy's `X-Forwarded-For`, user agent, request id): every event and audit row
//!   of the request carries the client without any handler passing it along.
//! - Every operation runs in a `telemetry::span_async`; the audit row of a change is written
//!   with `AuditTx` in the same transaction as the change (a rolled-back registration
//!   leaves no row), with one outbox entry per configured forwarder.
//! - The attack detectors see every event; login asks `Detectors::verdict` first and
//!   answers `429 Too Many Requests` with `Retry-After` when they say slow down or block.
//! - The detectors' signals reach the audit trail too, through the store's batch writer
//!   (they follow a committed change, so they cannot join its transaction).
//! - `/metrics` serves the Prometheus text of the authtel handler.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use authtel_axum_service::{App, Config};
//! let app = App::start(Config::default()).await?;
//! app.attach_global()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! authtel_axum_service::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod client;
mod config;
mod db;
mod error;
mod mailbox;
mod relay;
mod routes;
mod secrets;
mod signals;

use std::net::SocketAddr;
use std::sync::Arc;

use authtel::detect::Detectors;
use authtel::prometheus::PrometheusSink;
use authtel::registry::{Registry, Selection};
use authtel::sql::sqlx::{Sqlite, SqlitePool};
use authtel::sql::{AuditStore, AuditTx};
use authtel::tower::RequestContextLayer;
use axum::Router;

pub use config::{Config, HashCost, Mutations};
pub use error::{ApiError, StartError};
pub use mailbox::{Mail, Mailbox};
pub use relay::NdjsonFile;
pub use secrets::totp;

/// The forwarder id the audit store writes outbox entries for (delivered by a relay when
/// one runs; see the README).
pub const OUTBOX_FORWARDER: &str = "siem";

/// The id the Prometheus handler is attached under.
pub const METRICS_HANDLER_ID: &str = "axum-service-metrics";

/// The id of the handler that writes the detectors' signals to the audit trail.
pub const SIGNALS_HANDLER_ID: &str = "axum-service-signal-trail";

/// The running service's shared state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    pool: SqlitePool,
    store: AuditStore<Sqlite>,
    hashing: secrets::PasswordHashing,
    detectors: Detectors,
    metrics: PrometheusSink,
    mailbox: Mailbox,
    signals: signals::SignalTrail,
    context_layer: RequestContextLayer,
}

impl App {
    /// Opens the database, creates the application tables and the audit trail's, and
    /// builds the detectors and the metrics sink. Nothing is attached yet: call
    /// [`App::attach`] (a scoped registry, in tests) or [`App::attach_global`].
    pub async fn start(config: Config) -> Result<App, StartError> {
        let db_error = |cause: String| StartError::Database {
            url: config.database_url.clone(),
            cause,
        };
        let pool = authtel::sql::sqlite::connect(&config.database_url)
            .await
            .map_err(|e| db_error(e.to_string()))?;
        let store = AuditStore::builder(pool.clone())
            .with_forwarder(OUTBOX_FORWARDER)
            .map_err(|e| StartError::Config(e.to_string()))?
            .build();
        store.migrate().await.map_err(|e| db_error(e.to_string()))?;
        db::migrate(&pool)
            .await
            .map_err(|e| db_error(e.to_string()))?;
        let hashing =
            secrets::PasswordHashing::new(config.hash_cost).map_err(StartError::Config)?;
        let context_layer = RequestContextLayer::new()
            .trusted_proxies(&config.trusted_proxies)
            .map_err(|e| {
                StartError::Config(format!(
                    "trusted proxy {:?} is not a network (write 10.0.0.0/8 or an address)",
                    e.value()
                ))
            })?
            .generate_request_id(true);
        let signal_trail = signals::SignalTrail::spawn(&store);
        let detectors = Detectors::builder()
            .with_config(config.detect.clone())
            .build()
            .map_err(|e| StartError::Config(e.to_string()))?;
        let metrics = PrometheusSink::builder()
            .build()
            .map_err(|e| StartError::Config(e.to_string()))?;
        Ok(App {
            inner: Arc::new(Inner {
                config,
                pool,
                store,
                hashing,
                detectors,
                metrics,
                mailbox: Mailbox::default(),
                signals: signal_trail,
                context_layer,
            }),
        })
    }

    /// Attaches the detectors and the metrics handler to `registry`.
    pub fn attach(&self, registry: &Registry) -> Result<(), StartError> {
        let fail = |e: &dyn std::fmt::Display| {
            StartError::Config(format!("attaching handlers failed: {e}"))
        };
        self.inner
            .detectors
            .attach(registry)
            .map_err(|e| fail(&e))?;
        registry
            .attach(
                METRICS_HANDLER_ID,
                Selection::All,
                self.inner.metrics.handler(),
            )
            .map_err(|e| fail(&e))?;
        registry
            .attach(
                SIGNALS_HANDLER_ID,
                Selection::Events(signals::detector_signals()),
                self.inner.signals.clone(),
            )
            .map_err(|e| fail(&e))?;
        Ok(())
    }

    /// Attaches the detectors and the metrics handler to the process-global registry.
    pub fn attach_global(&self) -> Result<(), StartError> {
        self.attach(Registry::global())
    }

    /// The axum router with every route, inside the request-context layer (peer address,
    /// trusted proxies' `X-Forwarded-For`, user agent, request id, `traceparent`), so every
    /// event and audit row of a request carries its client.
    pub fn router(&self) -> Router {
        let router = routes::router(self.clone());
        if self.config().mutations.drop_request_context {
            return router;
        }
        router.layer(self.inner.context_layer.clone())
    }

    /// The settings the service runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The audit store (the same database as the application tables).
    pub fn audit_store(&self) -> &AuditStore<Sqlite> {
        &self.inner.store
    }

    /// The database pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The detectors, for their verdicts and statistics.
    pub fn detectors(&self) -> &Detectors {
        &self.inner.detectors
    }

    /// The Prometheus text of every authtel metric so far.
    pub fn render_metrics(&self) -> String {
        self.inner.metrics.render()
    }

    /// Waits until every detector signal raised so far is in the audit trail.
    pub async fn flush_signals(&self) {
        self.inner.signals.flush().await;
    }

    /// Detector signals dropped because their queue to the audit trail was full.
    pub fn signals_dropped(&self) -> u64 {
        self.inner.signals.dropped()
    }

    /// The outgoing mail (reset tokens): a real service hands these to its mailer.
    pub fn mailbox(&self) -> &Mailbox {
        &self.inner.mailbox
    }

    /// Records `row` in `tx` (nothing when `Config::audit_trail` is off).
    pub(crate) async fn record(
        &self,
        tx: &mut AuditTx<'static, Sqlite>,
        row: &authtel::audit::AuditEvent,
    ) -> Result<(), ApiError> {
        if self.config().audit_trail {
            tx.record(row).await?;
        }
        Ok(())
    }

    pub(crate) fn hashing(&self) -> &secrets::PasswordHashing {
        &self.inner.hashing
    }
}

/// Serves `app` on `listener` until the process ends, with the peer address of every
/// connection available to the handlers.
pub async fn serve(listener: tokio::net::TcpListener, app: App) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}
