//! `axum-service`: the example auth service, on the process-global registry with the
//! default logger. `AXUM_SERVICE_ADDR` (default `127.0.0.1:8080`), `DATABASE_URL` (default
//! `sqlite://axum-service.db`), `AUTHTEL_DETECT_*` for the detectors,
//! `AXUM_SERVICE_DEV=1` to get reset tokens in responses (local demos only),
//! `AXUM_SERVICE_AUDIT_NDJSON=path` to relay the audit outbox to an NDJSON file,
//! `AXUM_SERVICE_TRUSTED_PROXIES=10.0.0.0/8,192.0.2.1` to believe those proxies'
//! `X-Forwarded-For` (none by default).

use authtel_axum_service::{App, Config, NdjsonFile};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    authtel::log::attach_default_logger(authtel::log::LoggerOptions::new())?;

    let mut config = Config::default();
    if let Ok(url) = std::env::var("DATABASE_URL") {
        config.database_url = url;
    }
    config.detect = authtel::detect::DetectConfig::from_env()?;
    config.dev_return_reset_token = std::env::var("AXUM_SERVICE_DEV").is_ok_and(|v| v == "1");
    if let Ok(list) = std::env::var("AXUM_SERVICE_TRUSTED_PROXIES") {
        config.trusted_proxies = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let addr = std::env::var("AXUM_SERVICE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());

    let app = App::start(config).await?;
    app.attach_global()?;
    let _relay = match std::env::var_os("AXUM_SERVICE_AUDIT_NDJSON") {
        Some(path) => Some(app.spawn_relay(std::sync::Arc::new(NdjsonFile::new(path)))?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "axum-service listening on http://{} (audit trail in {})",
        listener.local_addr()?,
        app.config().database_url
    );
    authtel_axum_service::serve(listener, app).await?;
    Ok(())
}
