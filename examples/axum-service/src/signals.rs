//! The detectors' signals in the audit trail.
//!
//! A detector raises its signal from inside the event that tripped it, after that event's
//! transaction has committed, so the signal cannot join it. Its audit record goes through
//! the store's `BatchWriter` instead (the path for records not tied to a transaction): the
//! handler only hands an owned copy to a bounded queue (a login never waits on the
//! database), and a task writes batches.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use authtel::audit::AuditEvent;
use authtel::catalogue::{self, Event};
use authtel::registry::Handler;
use authtel::sql::sqlx::Sqlite;
use authtel::sql::{AuditStore, BatchWriter};
use authtel::telemetry::EventRecord;
use tokio::sync::{mpsc, oneshot};

/// The signals the detectors raise.
pub(crate) fn detector_signals() -> Vec<&'static Event> {
    vec![
        &catalogue::SECURITY_BRUTE_FORCE,
        &catalogue::SECURITY_PASSWORD_SPRAYING,
        &catalogue::SECURITY_CREDENTIAL_STUFFING,
        &catalogue::SECURITY_MFA_FATIGUE,
        &catalogue::SECURITY_MFA_GUESSING,
        &catalogue::SECURITY_SUSPICIOUS_LOGIN,
        &catalogue::SECURITY_IMPOSSIBLE_TRAVEL,
        &catalogue::SECURITY_REFRESH_TOKEN_REUSE,
    ]
}

/// How many signals may wait for the writer; beyond that they are dropped and counted.
const QUEUE: usize = 4096;

enum Message {
    Record(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// The handler side: copies each signal into the queue.
#[derive(Debug, Clone)]
pub(crate) struct SignalTrail {
    queue: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Record(_) => "Record",
            Message::Flush(_) => "Flush",
        })
    }
}

impl SignalTrail {
    /// Spawns the writer task on the current runtime.
    pub(crate) fn spawn(store: &AuditStore<Sqlite>) -> SignalTrail {
        let (queue, mut rx) = mpsc::channel::<Message>(QUEUE);
        let writer = BatchWriter::new(store);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut acks = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(message) = next.take().or_else(|| rx.try_recv().ok()) {
                    match message {
                        Message::Record(event) => batch.push(*event),
                        Message::Flush(ack) => acks.push(ack),
                    }
                    if batch.len() >= 500 {
                        break;
                    }
                }
                if !batch.is_empty() {
                    if let Err(e) = writer.write(&batch).await {
                        tracing::warn!(target: "axum_service", error = %e, records = batch.len(), "writing detector signals to the audit trail failed");
                    }
                    batch.clear();
                }
                for ack in acks.drain(..) {
                    let _ = ack.send(());
                }
            }
        });
        SignalTrail {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits until every signal queued before this call is written.
    pub(crate) async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Message::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// Signals dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Handler for SignalTrail {
    fn handle(&self, record: &EventRecord<'_>) {
        if let Some(event) = AuditEvent::from_record(record)
            && self
                .queue
                .try_send(Message::Record(Box::new(event)))
                .is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
