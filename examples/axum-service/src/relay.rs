//! Delivering the outbox: every audit row committed with a business change has an outbox
//! entry for [`OUTBOX_FORWARDER`](crate::OUTBOX_FORWARDER); a relay hands them to a
//! forwarder after the commit, at least once, with retries and dead letters (see
//! `docs/sql.md`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use authtel::audit::AuditEvent;
use authtel::forward::{ForwardError, ForwardFuture, Forwarder};
use authtel::sql::{Relay, RelayConfig, RelayHandle};

use crate::{App, OUTBOX_FORWARDER, StartError};

impl App {
    /// Starts the outbox relay on the current tokio runtime, delivering every committed
    /// audit row to `forwarder`. Keep the handle; `shutdown` it before exit.
    pub fn spawn_relay(&self, forwarder: Arc<dyn Forwarder>) -> Result<RelayHandle, StartError> {
        let relay = Relay::new(self.audit_store(), RelayConfig::default())
            .with_forwarder(OUTBOX_FORWARDER, forwarder)
            .map_err(|e| StartError::Config(format!("starting the outbox relay failed: {e}")))?;
        Ok(relay.spawn())
    }
}

/// A forwarder appending each record as one JSON line to a file (a stand-in for a SIEM).
///
/// ```
/// let path = std::env::temp_dir().join("authtel-axum-service-doctest.ndjson");
/// let file = authtel_axum_service::NdjsonFile::new(&path);
/// assert_eq!(file.path(), path);
/// ```
#[derive(Debug)]
pub struct NdjsonFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl NdjsonFile {
    /// Appends to `path` (created when missing).
    pub fn new(path: impl Into<PathBuf>) -> NdjsonFile {
        NdjsonFile {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    /// The file written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn append(&self, batch: &[AuditEvent]) -> Result<(), ForwardError> {
        let mut text = Vec::new();
        for event in batch {
            serde_json::to_writer(&mut text, event)
                .map_err(|e| ForwardError::permanent("serialize", e))?;
            text.push(b'\n');
        }
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| ForwardError::transient("open the NDJSON file", e))?;
        file.write_all(&text)
            .and_then(|()| file.flush())
            .map_err(|e| ForwardError::transient("append to the NDJSON file", e))
    }
}

impl Forwarder for NdjsonFile {
    fn forward<'a>(&'a self, batch: &'a [AuditEvent]) -> ForwardFuture<'a> {
        Box::pin(async move { self.append(batch) })
    }
}
