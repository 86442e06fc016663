//! Shared by the HTTP tests: start the service on 127.0.0.1:0 with its handlers attached to
//! a capture's scoped registry, and collect what each flow produced.
#![allow(dead_code, unreachable_pub)]

pub mod http;
pub mod suite;

use std::net::SocketAddr;
use std::path::PathBuf;

use authtel::audit::AuditEvent;
use authtel::sql::{AuditQuery, MAX_PAGE};
use authtel_axum_service::{App, Config};
use authtel_testing::Capture;
use authtel_testing::flows::Observation;

/// A running service, its capture and its database file (removed on drop).
pub struct Service {
    pub app: App,
    pub addr: SocketAddr,
    pub capture: Capture,
    db: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.db.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A fresh database path under the temp directory.
fn temp_db() -> PathBuf {
    std::env::temp_dir().join(format!(
        "authtel-axum-service-{}.db",
        uuid::Uuid::now_v7().simple()
    ))
}

impl Service {
    /// Starts the service. The caller must have entered `capture` on this thread (the
    /// test's current-thread runtime runs the server's tasks here too), so every event the
    /// service emits reaches the capture's scoped registry, never the global one.
    pub async fn start(capture: &Capture, configure: impl FnOnce(&mut Config)) -> Service {
        let db = temp_db();
        let mut config = Config::for_tests(db.display().to_string());
        configure(&mut config);
        let app = App::start(config).await.expect("the service starts");
        app.attach(capture.registry()).expect("handlers attach");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(authtel_axum_service::serve(listener, app.clone()));
        Service {
            app,
            addr,
            capture: capture.clone(),
            db,
        }
    }

    /// Every committed audit row, oldest first.
    pub async fn audit_rows(&self) -> Vec<AuditEvent> {
        let mut all = Vec::new();
        let mut query = AuditQuery::new().limit(MAX_PAGE);
        loop {
            let page = self
                .app
                .audit_store()
                .query(&query)
                .await
                .expect("audit query");
            all.extend(page.events);
            match page.next {
                Some(cursor) => query = AuditQuery::new().limit(MAX_PAGE).after(cursor),
                None => return all,
            }
        }
    }

    /// Where the capture and the audit trail stand now.
    pub async fn mark(&self) -> (usize, usize) {
        (self.capture.mark(), self.audit_rows().await.len())
    }

    /// What happened since `mark`.
    pub async fn since(&self, (events, rows): (usize, usize)) -> Observation {
        let mut audit = self.audit_rows().await;
        audit.drain(..rows.min(audit.len()));
        Observation::new(self.capture.events_since(events)).with_audit(audit)
    }

    /// Counts outbox entries (one per audit row for the configured forwarder).
    pub async fn outbox_entries(&self) -> i64 {
        authtel::sql::sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_outbox")
            .fetch_one(self.app.pool())
            .await
            .expect("count outbox")
    }
}
